"""Async job queries."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from overcast.access.acl import resolve_owner_filters, scope_owned
from overcast.access.roles import ALL_ROLES
from overcast.api.context import CallContext
from overcast.api.declare import (
    BOOLEAN, DATE, STRING, UUID, Access, Command, FlatResult, ListResult, Param, Result, api_command,
)  # fmt: skip
from overcast.api.listing import fetch_page, keyword_filter
from overcast.api.responses.jobs import AsyncJobResponse
from overcast.db.models import Account, AsyncJob, Domain, ManagementNode, User
from overcast.errors import InvalidParameterValue


def jobs_payload(ctx: CallContext, jobs: list[AsyncJob]) -> list[dict[str, Any]]:
    s = ctx.session
    if not jobs:
        return []
    accounts = {a.id: a for a in s.scalars(select(Account).where(Account.id.in_({j.account_id for j in jobs})))}
    domains = {d.id: d for d in s.scalars(select(Domain).where(Domain.id.in_({j.domain_id for j in jobs})))}
    users = {u.id: u for u in s.scalars(select(User).where(User.id.in_({j.user_id for j in jobs})))}
    node_ids = {j.claimed_by for j in jobs if j.claimed_by}
    nodes = {n.id: (n.uuid, n.name) for n in s.scalars(
        select(ManagementNode).where(ManagementNode.id.in_(node_ids)))} if node_ids else {}
    return [AsyncJobResponse.of(j, accounts.get(j.account_id), domains.get(j.domain_id), users.get(j.user_id), nodes)
            for j in jobs]


@api_command("queryAsyncJobResult", response=AsyncJobResponse, roles=ALL_ROLES, read_only=True,
             description="Retrieves the current status of asynchronous job.")
class QueryAsyncJobResult(Command):
    job_id = Param(STRING, "jobid", required=True, description="the ID of the asynchronous job")

    def execute(self, ctx: CallContext) -> Result:
        job = ctx.session.scalar(select(AsyncJob).where(AsyncJob.uuid == self.job_id))
        if job is None:
            raise InvalidParameterValue(f"Unable to find a job by id {self.job_id}",
                                        uuids=[(self.job_id, "jobId")])
        me = ctx.me
        if job.user_id != me.user_id:
            ctx.acl.check_owned(me, job.account_id, Access.LIST)
        return FlatResult(jobs_payload(ctx, [job])[0])


@api_command("listAsyncJobs", response=AsyncJobResponse, roles=ALL_ROLES, is_list=True,
             description="Lists all pending asynchronous jobs for the account.")
class ListAsyncJobs(Command):
    start_date = Param(DATE, "startdate", description="The start date of the async job (use format"
                       " \"yyyy-MM-dd'T'HH:mm:ss'+'SSSS\")")
    account = Param(STRING, description="list resources by account. Must be used with the domainId parameter.")
    domain = Param(UUID, "domainid", entity=Domain, description="list only resources belonging to the"
                   " domain specified")
    is_recursive = Param(BOOLEAN, "isrecursive", description="defaults to false, but if true, lists all"
                         " resources from the parent specified by the domainId till leaves.")
    list_all = Param(BOOLEAN, "listall", description="If set to false, list only resources belonging to"
                     " the command's caller; if set to true - list resources that the caller is authorized"
                     " to see. Default value is false")
    management_server = Param(STRING, "managementserverid", since="4.19", description="The id of the"
                              " management server")
    resource_id = Param(STRING, "resourceid", description="the ID of the resource the job acts on")
    resource_type = Param(STRING, "resourcetype", description="the type of the resource the job acts on")

    def execute(self, ctx: CallContext) -> Result:
        me = ctx.me
        domain, account = resolve_owner_filters(ctx.acl, me, domain=self.domain, account_name=self.account)
        stmt = scope_owned(select(AsyncJob).order_by(AsyncJob.id), me, account_col=AsyncJob.account_id,
                           domain_col=AsyncJob.domain_id, list_all=bool(self.list_all),
                           is_recursive=bool(self.is_recursive), domain=domain, account=account)
        if self.start_date is not None:
            stmt = stmt.where(AsyncJob.created >= self.start_date)
        if self.resource_id:
            stmt = stmt.where(AsyncJob.instance_uuid == self.resource_id)
        if self.resource_type:
            stmt = stmt.where(AsyncJob.instance_type == self.resource_type)
        if self.management_server:
            stmt = stmt.where(AsyncJob.claimed_by.in_(
                select(ManagementNode.id).where(ManagementNode.uuid == self.management_server)))
        kw = keyword_filter(self.keyword, AsyncJob.command)
        if kw is not None:
            stmt = stmt.where(kw)
        rows, count = fetch_page(ctx, stmt, self)
        return ListResult(jobs_payload(ctx, rows), count)
