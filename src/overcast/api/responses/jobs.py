"""The async job response (queryAsyncJobResult, listAsyncJobs)."""

from __future__ import annotations

import json
from typing import Any

from overcast.access.identity import domain_wire_path
from overcast.api.declare import Field, ResponseObject
from overcast.api.serialize import cs_date
from overcast.db.models import Account, AsyncJob, Domain, User

F = Field


class AsyncJobResponse(ResponseObject):
    object_name = "asyncjobs"
    fields = (
        F("jobid", "string", "the ID of the async job"),
        F("accountid", "string", "the account id that executed the async command"),
        F("account", "string", "the account that executed the async command"),
        F("domainid", "string", "the domain id that executed the async command"),
        F("domainpath", "string", "the domain that executed the async command"),
        F("userid", "string", "the user that executed the async command"),
        F("cmd", "string", "the async command executed"),
        F("jobstatus", "integer", "the current job status-should be 0 for PENDING"),
        F("jobprocstatus", "integer", "the progress information of the PENDING job"),
        F("jobresultcode", "integer", "the result code for the job"),
        F("jobresulttype", "string", "the result type"),
        F("jobresult", "responseobject", "the result reason"),
        F("jobinstancetype", "string", "the instance/entity object related to the job"),
        F("jobinstanceid", "string", "the unique ID of the instance/entity object related to the job"),
        F("created", "date", "the created date of the job"),
        F("completed", "date", "the completed date of the job"),
        F("managementserverid", "string", "the msid of the management server on which the job is running"),
        F("managementservername", "string", "the management server name of the host"),
    )

    @staticmethod
    def of(job: AsyncJob, account: Account | None, domain: Domain | None, user: User | None,
           node_names: dict[str, tuple[str, str]] | None = None) -> dict[str, Any]:
        node = (node_names or {}).get(job.claimed_by or "")
        out: dict[str, Any] = {
            "jobid": job.uuid,
            "accountid": account.uuid if account else None,
            "account": account.name if account else None,
            "domainid": domain.uuid if domain else None,
            "domainpath": domain_wire_path(domain) if domain else None,
            "userid": user.uuid if user else None,
            "cmd": job.command,
            "jobstatus": job.status,
            "jobprocstatus": job.proc_status,
            "jobresultcode": job.result_code,
            "jobinstancetype": job.instance_type if job.instance_uuid else None,
            "jobinstanceid": job.instance_uuid if job.instance_type else None,
            "created": cs_date(job.created),
            "completed": cs_date(job.completed),
            "managementserverid": node[0] if node else None,
            "managementservername": node[1] if node else None,
        }
        if job.status != 0 and job.result is not None:
            out["jobresulttype"] = job.result_type or "object"
            out["jobresult"] = json.loads(job.result)
        return out
