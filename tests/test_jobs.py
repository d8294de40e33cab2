"""Async jobs: the first reply, queryAsyncJobResult/listAsyncJobs, ordering, and crash recovery.

Server tests drive real ``overcast serve`` processes; a few tests write straight into a server's
database (a job claimed by a node that "died") or run the job queue in-process.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from cs import CloudStack, CloudStackApiException
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from servers import Server, drop_database, new_database

from overcast.db.models import Account, AsyncJob, Event, ManagementNode, User, utcnow
from overcast.db.session import Database

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{4}$")
ADMIN_USER_ID, ADMIN_ACCOUNT_ID, ROOT_DOMAIN_ID = 2, 2, 1


# -- helpers ------------------------------------------------------------------------------------


def api_for(srv: Server) -> CloudStack:
    """A root-admin ``cs`` client that never polls by itself (callers poll with a deadline)."""
    return CloudStack(endpoint=srv.url, key=srv.api_key, secret=srv.secret_key, fetch_result=False,
                      timeout=30)


def raw(api: CloudStack, command: str, **params: Any) -> requests.Response:
    """A signed request through ``cs``, returning the HTTP response untouched."""
    kind, prepared = api._prepare_request(command, **params)
    return api._send(kind, prepared, api.headers, 30)


def submit(api: CloudStack, command: str, **params: Any) -> str:
    """Submit an async command; return its job id (checking the first reply's shape)."""
    resp = raw(api, command, **params)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert list(body) == [f"{command.lower()}response"], body
    return str(body[f"{command.lower()}response"]["jobid"])


def query(api: CloudStack, jobid: str) -> dict[str, Any]:
    return api.queryAsyncJobResult(jobid=jobid, fetch_result=False)  # type: ignore[no-any-return]


def wait_job(api: CloudStack, jobid: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = query(api, jobid)
        if job["jobstatus"] != 0:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {jobid} still pending after {timeout}s: {job}")
        time.sleep(0.05)


def wait_jobs(api: CloudStack, jobids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    done: dict[str, dict[str, Any]] = {}
    while True:
        for jobid in jobids:
            if jobid not in done:
                job = query(api, jobid)
                if job["jobstatus"] != 0:
                    done[jobid] = job
        if len(done) == len(jobids):
            return done
        if time.monotonic() > deadline:
            pending = [j for j in jobids if j not in done]
            raise AssertionError(f"{len(pending)} of {len(jobids)} jobs still pending after {timeout}s")
        time.sleep(0.1)


def db_url_of(srv: Server) -> str:
    return srv.db_url or f"sqlite:///{srv.data_dir / 'overcast.db'}"


class Db:
    """Direct access to a server's database (what another node, or a dead one, would have written)."""

    def __init__(self, url: str) -> None:
        # As the server connects: READ COMMITTED on MariaDB, BEGIN IMMEDIATE on SQLite.
        self.database = Database(url)
        self.engine = self.database.engine
        self.session = self.database.writer

    def close(self) -> None:
        self.engine.dispose()


@pytest.fixture
def db_of() -> Iterator[Callable[[Server], Db]]:
    opened: list[Db] = []

    def open_(srv: Server) -> Db:
        db = Db(db_url_of(srv))
        opened.append(db)
        return db

    yield open_
    for db in opened:
        db.close()


def new_account(api: CloudStack, *, domainid: str | None = None, accounttype: int = 0) -> dict[str, Any]:
    name = f"acct-{uuid.uuid4().hex[:8]}"
    params: dict[str, Any] = dict(username=name, password="secret-pass", email=f"{name}@example.com",
                                  firstname="Job", lastname="Test", accounttype=accounttype)
    if domainid:
        params["domainid"] = domainid
    return api.createAccount(**params)["account"]  # type: ignore[no-any-return]


def tenant_api(api: CloudStack, srv: Server, account: dict[str, Any]) -> CloudStack:
    keys = api.registerUserKeys(id=account["user"][0]["id"])["userkeys"]
    return CloudStack(endpoint=srv.url, key=keys["apikey"], secret=keys["secretkey"], fetch_result=False,
                      timeout=30)


def error_of(exc: CloudStackApiException) -> dict[str, Any]:
    return exc.error  # type: ignore[no-any-return]


# -- the first reply and queryAsyncJobResult ----------------------------------------------------


def test_first_reply_is_only_the_job_id(server: Server, make_tenant: Any) -> None:
    api = api_for(server)
    tenant = make_tenant()
    resp = raw(api, "disableAccount", id=tenant.id, lock="true")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert list(body) == ["disableaccountresponse"]
    assert list(body["disableaccountresponse"]) == ["jobid"]
    assert UUID_RE.match(body["disableaccountresponse"]["jobid"])
    wait_job(api, body["disableaccountresponse"]["jobid"])


def test_query_result_of_a_succeeded_job(server: Server, admin: CloudStack, make_tenant: Any) -> None:
    api = api_for(server)
    tenant = make_tenant()
    me = admin.listAccounts(name="admin")["account"][0]
    admin_user = admin.listUsers(username="admin")["user"][0]
    jobid = submit(api, "disableAccount", id=tenant.id, lock="false")
    job = wait_job(api, jobid)

    assert job["jobid"] == jobid
    assert job["jobstatus"] == 1 and type(job["jobstatus"]) is int
    assert job["jobprocstatus"] == 0 and type(job["jobprocstatus"]) is int
    assert job["jobresultcode"] == 0 and type(job["jobresultcode"]) is int
    assert job["jobresulttype"] == "object"
    assert isinstance(job["jobresult"], dict)
    assert job["jobresult"]["account"]["id"] == tenant.id
    assert job["jobresult"]["account"]["state"] == "disabled"
    assert isinstance(job["cmd"], str) and job["cmd"]
    assert job["jobinstancetype"] == "Account"
    assert job["jobinstanceid"] == tenant.id
    assert job["accountid"] == me["id"]
    assert job["account"] == "admin"
    assert job["domainid"] == me["domainid"]
    assert job["domainpath"] == "ROOT"
    assert job["userid"] == admin_user["id"]
    assert DATE_RE.match(job["created"]), job["created"]
    assert DATE_RE.match(job["completed"]), job["completed"]
    assert job["completed"] >= job["created"]
    for key in ("managementserverid", "managementservername"):
        if key in job:
            assert isinstance(job[key], str)
    # the account really changed
    assert admin.listAccounts(id=tenant.id)["account"][0]["state"] == "disabled"

    # cs polls the job the way CloudStack clients do and hands back jobresult
    other = make_tenant()
    result = admin.disableAccount(id=other.id, lock="true")
    assert result["account"]["state"] == "locked"


def test_delete_style_job_result(server: Server, admin: CloudStack) -> None:
    api = api_for(server)
    account = new_account(api)
    job = wait_job(api, submit(api, "deleteAccount", id=account["id"]))
    assert job["jobstatus"] == 1
    assert job["jobresultcode"] == 0
    assert job["jobresult"]["success"] is True
    assert job["jobinstancetype"] == "Account" and job["jobinstanceid"] == account["id"]
    names = {a["name"] for a in admin.listAccounts(listall=True).get("account", [])}
    assert account["name"] not in names


def test_failed_job(server: Server, admin: CloudStack, make_domain: Any) -> None:
    api = api_for(server)
    domain = make_domain()
    new_account(api, domainid=domain["id"])
    jobid = submit(api, "deleteDomain", id=domain["id"])
    job = wait_job(api, jobid)
    assert job["jobstatus"] == 2
    assert job["jobresultcode"] == 536
    assert job["jobresulttype"] == "object"
    assert job["jobresult"]["errorcode"] == 536
    assert isinstance(job["jobresult"]["errortext"], str)
    assert "account" in job["jobresult"]["errortext"]
    assert DATE_RE.match(job["completed"])
    assert job["jobinstancetype"] == "Domain" and job["jobinstanceid"] == domain["id"]
    # the domain is untouched
    assert admin.listDomains(id=domain["id"])["domain"][0]["id"] == domain["id"]
    # cs sees a failed job as CloudStack reports one
    with pytest.raises(CloudStackApiException) as info:
        admin.deleteDomain(id=domain["id"])
    assert error_of(info.value)["errorcode"] == 536


def test_unknown_job_id(server: Server) -> None:
    api = api_for(server)
    resp = raw(api, "queryAsyncJobResult", jobid=str(uuid.uuid4()))
    assert resp.status_code == 431
    assert resp.json()["queryasyncjobresultresponse"]["errorcode"] == 431


# -- customjobid -------------------------------------------------------------------------------


def test_custom_job_id(server: Server, make_tenant: Any) -> None:
    api = api_for(server)
    tenant = make_tenant()
    custom = str(uuid.uuid4())
    jobid = submit(api, "disableAccount", id=tenant.id, lock="true", customjobid=custom)
    assert jobid == custom
    assert wait_job(api, custom)["jobid"] == custom

    resp = raw(api, "disableAccount", id=tenant.id, lock="false", customjobid=custom)
    assert resp.status_code == 431
    err = resp.json()["disableaccountresponse"]
    assert err["errorcode"] == 431
    assert custom in err["errortext"]
    # the duplicate was not queued: the account is still locked
    assert query(api, custom)["jobresult"]["account"]["state"] == "locked"
    assert api.listAccounts(id=tenant.id)["account"][0]["state"] == "locked"


# -- pending jobs and ordering: an API-only node queues, a worker node on the same database runs --


def test_pending_jobs_then_submission_order(server_factory: Any, db_of: Any) -> None:
    api_node = server_factory(env={"OVERCAST_JOB_WORKERS": "0"})
    api = api_for(api_node)
    target = new_account(api)
    bystander = new_account(api)
    # Alternate lock/disable, then delete: any reordering shows in the events, in the final state, or
    # as a failure (nothing can be disabled once deleted).
    plan = [("disableAccount", {"lock": "true"}), ("disableAccount", {"lock": "false"}),
            ("disableAccount", {"lock": "true"}), ("disableAccount", {"lock": "false"}),
            ("disableAccount", {"lock": "true"}), ("disableAccount", {"lock": "false"}),
            ("disableAccount", {"lock": "true"}), ("deleteAccount", {})]
    jobids = []
    side = []
    for i, (command, params) in enumerate(plan):
        jobids.append(submit(api, command, id=target["id"], **params))
        if i % 2 == 0:  # jobs on another resource, interleaved, must not be held up by the first
            side.append(submit(api, "disableUser", id=bystander["user"][0]["id"]))
    time.sleep(0.5)

    # Nothing runs on an API-only node: a pending job has no result yet.
    job = query(api, jobids[0])
    assert job["jobstatus"] == 0
    assert job["jobprocstatus"] == 0
    assert job["jobresultcode"] == 0
    assert "jobresult" not in job
    assert "jobresulttype" not in job
    assert "completed" not in job
    assert DATE_RE.match(job["created"])
    assert job["cmd"] and job["jobinstanceid"] == target["id"] and job["jobinstancetype"] == "Account"
    assert job["accountid"] and job["userid"] and job["domainid"]
    assert all(query(api, j)["jobstatus"] == 0 for j in jobids + side)
    listed = {j["jobid"]: j for j in api.listAsyncJobs()["asyncjobs"]}
    assert listed[jobids[0]]["jobstatus"] == 0 and "jobresult" not in listed[jobids[0]]
    assert api.listAccounts(id=target["id"])["account"][0]["state"] == "enabled"

    worker = server_factory(db_url=api_node.db_url, data_dir=api_node.data_dir,
                            api_key=api_node.api_key, secret_key=api_node.secret_key,
                            env={"OVERCAST_NODE_NAME": f"worker-{uuid.uuid4().hex[:6]}",
                                 "OVERCAST_JOB_WORKERS": "4"})
    wapi = api_for(worker)
    done = wait_jobs(wapi, jobids + side, timeout=60)
    assert [done[j]["jobstatus"] for j in jobids] == [1] * len(jobids), [done[j] for j in jobids]
    assert all(done[j]["jobstatus"] == 1 for j in side)
    completed = [done[j]["completed"] for j in jobids]
    assert completed == sorted(completed)
    states = [done[j]["jobresult"].get("account", {}).get("state") for j in jobids[:-1]]
    assert states == ["locked", "disabled"] * 3 + ["locked"]
    assert done[jobids[-1]]["jobresult"]["success"] is True

    # The Completed events of the target account, in the order they were written.
    db = db_of(api_node)
    with db.session() as s:
        acct = s.scalar(select(Account).where(Account.uuid == target["id"]))
        assert acct is not None and acct.removed is not None
        types = list(s.scalars(select(Event.event_type).where(
            Event.resource_uuid == target["id"], Event.state == "Completed",
            Event.event_type != "ACCOUNT.CREATE").order_by(Event.id)))
    assert types == ["ACCOUNT.LOCK", "ACCOUNT.DISABLE"] * 3 + ["ACCOUNT.LOCK", "ACCOUNT.DELETE"]


# -- listAsyncJobs -------------------------------------------------------------------------------


def test_list_async_jobs_and_scoping(server: Server, admin: CloudStack, make_domain: Any) -> None:
    api = api_for(server)
    # Two domain admins, each in its own domain, each disabling an account there.
    tenants = []
    for _ in range(2):
        dom = make_domain()
        dadmin = new_account(api, domainid=dom["id"], accounttype=2)
        victim = new_account(api, domainid=dom["id"])
        tapi = tenant_api(api, server, dadmin)
        jobid = submit(tapi, "disableAccount", id=victim["id"], lock="false")
        assert wait_job(tapi, jobid)["jobstatus"] == 1
        tenants.append((tapi, dadmin, jobid))
    own_job = submit(api, "disableUser", id=new_account(api)["user"][0]["id"])
    wait_job(api, own_job)

    resp = raw(api, "listAsyncJobs")
    assert resp.status_code == 200
    listed = resp.json()["listasyncjobsresponse"]
    assert isinstance(listed["count"], int)
    assert {j["jobid"] for j in listed["asyncjobs"]} >= {own_job}
    item = next(j for j in listed["asyncjobs"] if j["jobid"] == own_job)
    assert item["jobstatus"] == 1 and item["cmd"] and item["jobinstancetype"] == "User"
    assert item["jobresult"]["user"]["state"] == "disabled"
    # an admin sees everything with listall
    everything = {j["jobid"] for j in admin.listAsyncJobs(listall=True)["asyncjobs"]}
    assert {own_job, tenants[0][2], tenants[1][2]} <= everything

    for i, (tapi, dadmin, jobid) in enumerate(tenants):
        other_job = tenants[1 - i][2]
        mine = {j["jobid"]: j for j in tapi.listAsyncJobs(listall=True)["asyncjobs"]}
        assert jobid in mine
        assert other_job not in mine and own_job not in mine
        assert {j["accountid"] for j in mine.values()} == {dadmin["id"]}
        # nor can it read another tenant's job
        resp = raw(tapi, "queryAsyncJobResult", jobid=other_job)
        assert resp.status_code in (431, 531), resp.text
        assert "jobstatus" not in resp.json()["queryasyncjobresultresponse"]

    # a plain user with no jobs sees none
    user_api = tenant_api(api, server, new_account(api))
    assert user_api.listAsyncJobs().get("asyncjobs", []) == []
    # filters
    by_resource = api.listAsyncJobs(listall=True, resourceid=item["jobinstanceid"])["asyncjobs"]
    assert [j["jobid"] for j in by_resource] == [own_job]
    assert own_job in {j["jobid"] for j in api.listAsyncJobs(keyword="disableUser")["asyncjobs"]}


# -- a job claimed by a node that died -----------------------------------------------------------


def orphan_job(s: Session, *, node_id: str | None, command: str, values: dict[str, str], instance_type: str,
               instance_uuid: str, attempts: int = 1) -> AsyncJob:
    job = AsyncJob(user_id=ADMIN_USER_ID, account_id=ADMIN_ACCOUNT_ID, domain_id=ROOT_DOMAIN_ID,
                   command=command, params=json.dumps({"values": values, "maps": {}}),
                   instance_type=instance_type, instance_uuid=instance_uuid,
                   sync_key=f"{instance_type}:{instance_uuid}", claimed_by=node_id, attempts=attempts)
    s.add(job)
    s.flush()
    return job


def test_job_of_a_dead_node_is_requeued_and_completed(server: Server, db_of: Any) -> None:
    # The dead node's last heartbeat is far older than the server's node timeout: its job is taken
    # over at the server's next scan (every heartbeat).
    api = api_for(server)
    victim = new_account(api)
    untouched = new_account(api)
    db = db_of(server)
    dead_id, live_id = f"dead-{uuid.uuid4().hex}", f"live-{uuid.uuid4().hex}"
    with db.session.begin() as s:
        s.add(ManagementNode(id=dead_id, name="ghost", started=utcnow() - timedelta(hours=2),
                             last_heartbeat=utcnow() - timedelta(hours=1)))
        # a node that is alive (its heartbeat is fresh for the whole test) keeps its job
        s.add(ManagementNode(id=live_id, name="busy", last_heartbeat=utcnow() + timedelta(hours=1)))
        s.flush()
        job = orphan_job(s, node_id=dead_id, command="disableAccount",
                         values={"id": victim["id"], "lock": "true"}, instance_type="Account",
                         instance_uuid=victim["id"])
        live = orphan_job(s, node_id=live_id, command="disableAccount",
                          values={"id": untouched["id"], "lock": "true"}, instance_type="Account",
                          instance_uuid=untouched["id"])
        jobid, live_jobid = job.uuid, live.uuid

    try:
        check_dead_node_recovery(api, db, jobid, live_jobid, dead_id, live_id, victim, untouched)
    finally:
        with db.session.begin() as s:  # leave the shared server as it was
            s.execute(AsyncJob.__table__.delete().where(AsyncJob.uuid == live_jobid))
            s.execute(ManagementNode.__table__.delete().where(ManagementNode.id == live_id))


def check_dead_node_recovery(api: CloudStack, db: Db, jobid: str, live_jobid: str, dead_id: str, live_id: str,
                             victim: dict[str, Any], untouched: dict[str, Any]) -> None:
    done = wait_job(api, jobid, timeout=30)
    assert done["jobstatus"] == 1, done
    assert done["jobresult"]["account"]["state"] == "locked"
    assert api.listAccounts(id=victim["id"])["account"][0]["state"] == "locked"
    with db.session() as s:
        row = s.scalar(select(AsyncJob).where(AsyncJob.uuid == jobid))
        assert row is not None and row.attempts == 2 and row.claimed_by != dead_id
        assert s.get(ManagementNode, dead_id) is None  # nothing left to recover: forgotten
        live_row = s.scalar(select(AsyncJob).where(AsyncJob.uuid == live_jobid))
        assert live_row is not None and live_row.status == 0 and live_row.claimed_by == live_id
        assert s.get(ManagementNode, live_id) is not None
    assert api.listAccounts(id=untouched["id"])["account"][0]["state"] == "enabled"


class InProcess:
    """A database with the schema and the seed, and Services for it (no HTTP server)."""

    def __init__(self, backend: str, data_dir: Path, node_name: str = "", *, same_db_as: InProcess | None = None,
                 ) -> None:
        from overcast.access.bootstrap import bootstrap
        from overcast.api.commands import load_all
        from overcast.api.dispatch import Dispatcher
        from overcast.config.server import load_settings
        from overcast.db.migrate import upgrade
        from overcast.services import Services

        if same_db_as is not None:  # another node on the same database
            data_dir, url = same_db_as.data_dir, same_db_as.url
        else:
            url = new_database(backend)
        self.data_dir, self.url, self.owns_db = data_dir, url, same_db_as is None
        load_all()
        self.services = Services.build(load_settings(data_dir=data_dir, db=url, node_name=node_name or None))
        upgrade(self.services.db.engine)
        with self.services.db.writer.begin() as s:
            bootstrap(s)
        self.dispatcher = Dispatcher(self.services)
        self.session = self.services.db.writer

    def account(self, name: str) -> Account:
        with self.session.begin() as s:
            acct = Account(name=name, domain_id=ROOT_DOMAIN_ID, account_type=0, role_id=4)
            s.add(acct)
            s.flush()
            s.add(User(account_id=acct.id, username=name, password_hash=None))
        return acct

    def close(self) -> None:
        self.services.close()


@pytest.fixture
def in_process(backend: str, tmp_path: Path) -> Iterator[Callable[..., InProcess]]:
    made: list[InProcess] = []

    def make(node_name: str = "", same_db_as: InProcess | None = None) -> InProcess:
        env = InProcess(backend, tmp_path / f"ip{len(made)}", node_name, same_db_as=same_db_as)
        made.append(env)
        return env

    yield make
    for env in made:
        env.close()
    for env in made:
        if env.owns_db:
            drop_database(env.url)


def test_interrupted_non_idempotent_job_is_failed(in_process: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from overcast.api.commands.accounts import DisableAccount
    from overcast.jobs.queue import JobHooks

    env = in_process()
    acct = env.account(f"victim-{uuid.uuid4().hex[:6]}")
    recovered: list[str] = []

    def recover(self: DisableAccount, ctx: Any) -> None:
        recovered.append(self.target(ctx).uuid)

    monkeypatch.setattr(DisableAccount, "recover", recover, raising=False)
    ran: list[int] = []
    env.services.jobs.hooks = JobHooks(run=ran.append, is_idempotent=lambda command: False,
                                       abandon=env.dispatcher.abandon_job)
    with env.session.begin() as s:
        s.add(ManagementNode(id="dead-node", name="ghost", last_heartbeat=utcnow() - timedelta(hours=1)))
        s.flush()
        job = orphan_job(s, node_id="dead-node", command="disableAccount",
                         values={"id": acct.uuid, "lock": "true"}, instance_type="Account",
                         instance_uuid=acct.uuid)
        job_id = job.id

    assert env.services.jobs.recover_dead_nodes() == 1
    assert ran == []  # not run again
    assert recovered == [acct.uuid]
    with env.session() as s:
        row = s.get(AsyncJob, job_id)
        assert row is not None
        assert row.status == 2
        assert row.result_code == 530
        assert row.completed is not None
        result = json.loads(row.result or "{}")
        assert result["errorcode"] == 530
        assert "interrupted" in result["errortext"] and "disableAccount" in result["errortext"]
        assert "dead-node" in result["errortext"]
        assert s.get(Account, acct.id).state == "enabled"  # type: ignore[union-attr]
        assert s.get(ManagementNode, "dead-node") is None
        errors = list(s.scalars(select(Event).where(Event.level == "ERROR", Event.resource_uuid == acct.uuid)))
        assert len(errors) == 1 and "interrupted" in errors[0].description
    # a second scan finds nothing to do
    assert env.services.jobs.recover_dead_nodes() == 0


def test_recovery_rules(in_process: Any) -> None:
    from overcast.jobs.queue import MAX_ATTEMPTS, JobHooks

    env = in_process()
    accts = [env.account(f"r{i}-{uuid.uuid4().hex[:6]}") for i in range(5)]
    env.services.jobs.hooks = JobHooks(run=lambda job_id: None, is_idempotent=lambda command: True,
                                       abandon=env.dispatcher.abandon_job)
    with env.session.begin() as s:
        s.add_all([
            ManagementNode(id="silent", name="silent", last_heartbeat=utcnow() - timedelta(hours=1)),
            ManagementNode(id="stopped", name="stopped", last_heartbeat=utcnow(), stopped=utcnow()),
            ManagementNode(id="alive", name="alive", last_heartbeat=utcnow()),
        ])
        s.flush()
        values = [{"id": a.uuid, "lock": "true"} for a in accts]
        requeue = orphan_job(s, node_id="silent", command="disableAccount", values=values[0],
                             instance_type="Account", instance_uuid=accts[0].uuid).id
        of_stopped = orphan_job(s, node_id="stopped", command="disableAccount", values=values[1],
                                instance_type="Account", instance_uuid=accts[1].uuid).id
        exhausted = orphan_job(s, node_id="silent", command="disableAccount", values=values[2],
                               instance_type="Account", instance_uuid=accts[2].uuid, attempts=MAX_ATTEMPTS).id
        of_alive = orphan_job(s, node_id="alive", command="disableAccount", values=values[3],
                              instance_type="Account", instance_uuid=accts[3].uuid).id
        # claimed by a node whose row is gone (it was declared dead, claimed this, then died)
        of_vanished = orphan_job(s, node_id="vanished", command="disableAccount",
                                 values={"id": accts[4].uuid, "lock": "true"}, instance_type="Account",
                                 instance_uuid=accts[4].uuid).id

    assert env.services.jobs.recover_dead_nodes() == 4
    with env.session() as s:
        for job_id in (requeue, of_stopped, of_vanished):
            row = s.get(AsyncJob, job_id)
            assert row is not None and row.status == 0 and row.claimed_by is None
        row = s.get(AsyncJob, exhausted)
        assert row is not None and row.status == 2 and "interrupted" in (row.result or "")
        row = s.get(AsyncJob, of_alive)
        assert row is not None and row.status == 0 and row.claimed_by == "alive"
        assert {n.id for n in s.scalars(select(ManagementNode))} == {"alive"}
    # the re-queued jobs are claimable again, oldest first
    assert env.services.jobs.claim() == requeue
    assert env.services.jobs.claim() == of_stopped
    assert env.services.jobs.claim() == of_vanished
    assert env.services.jobs.claim() is None


def test_a_node_taken_for_dead_joins_again(in_process: Any) -> None:
    """A node that stalled past the timeout finds its row gone (or marked stopped) at its next beat."""
    from overcast.jobs.queue import JobHooks

    env = in_process()
    jobs = env.services.jobs
    jobs.hooks = JobHooks(run=lambda job_id: None, is_idempotent=lambda command: True,
                          abandon=env.dispatcher.abandon_job)
    node_id = env.services.node_id
    with env.session.begin() as s:
        s.add(ManagementNode(id=node_id, name="stalled", last_heartbeat=utcnow() - timedelta(hours=1)))
    jobs.beat()
    with env.session() as s:
        row = s.get(ManagementNode, node_id)
        assert row is not None and row.stopped is None and row.last_heartbeat >= utcnow() - timedelta(minutes=1)
    for taken_for_dead in ("removed", "stopped"):
        with env.session.begin() as s:
            if taken_for_dead == "removed":
                s.execute(ManagementNode.__table__.delete().where(ManagementNode.id == node_id))
            else:
                s.get(ManagementNode, node_id).stopped = utcnow()
        jobs.beat()
        with env.session() as s:
            row = s.get(ManagementNode, node_id)
            assert row is not None and row.stopped is None, taken_for_dead


def test_restarted_node_takes_over_its_jobs_at_once(in_process: Any) -> None:
    from overcast.jobs.queue import JobHooks

    env = in_process(node_name="node-x")
    acct = env.account(f"x-{uuid.uuid4().hex[:6]}")
    other = env.account(f"y-{uuid.uuid4().hex[:6]}")
    with env.session.begin() as s:
        # the previous incarnation of node-x, and another node; both heart-beat just now
        s.add(ManagementNode(id="old-x", name="node-x", last_heartbeat=utcnow()))
        s.add(ManagementNode(id="peer", name="node-y", last_heartbeat=utcnow()))
        s.flush()
        mine = orphan_job(s, node_id="old-x", command="disableAccount",
                          values={"id": acct.uuid, "lock": "true"}, instance_type="Account",
                          instance_uuid=acct.uuid).id
        peers = orphan_job(s, node_id="peer", command="disableAccount",
                           values={"id": other.uuid, "lock": "true"}, instance_type="Account",
                           instance_uuid=other.uuid).id
    env.services.jobs.start(JobHooks(run=lambda job_id: None, is_idempotent=lambda c: True,
                                     abandon=env.dispatcher.abandon_job), workers=0)
    try:
        with env.session() as s:
            row = s.get(AsyncJob, mine)
            assert row is not None and row.status == 0 and row.claimed_by is None
            row = s.get(AsyncJob, peers)
            assert row is not None and row.claimed_by == "peer"
            nodes = {n.id: n for n in s.scalars(select(ManagementNode))}
            assert "old-x" not in nodes
            assert env.services.node_id in nodes and nodes[env.services.node_id].name == "node-x"
    finally:
        env.services.jobs.stop()


@pytest.mark.parametrize("idempotent", [True, False], ids=["requeue", "abandon"])
def test_two_nodes_recovering_at_once_take_a_job_over_once(idempotent: bool, backend: str,
                                                           in_process: Any) -> None:
    """Two live nodes notice the same dead node at the same moment: the job is taken over once."""
    from overcast.jobs.queue import JobHooks

    if backend == "sqlite":
        pytest.skip("SQLite runs one writer at a time: two recoveries can't interleave")
    node1 = in_process(node_name="n1")
    node2 = in_process(node_name="n2", same_db_as=node1)
    acct = node1.account(f"z-{uuid.uuid4().hex[:6]}")
    with node1.session.begin() as s:
        s.add(ManagementNode(id="dead", name="dead", last_heartbeat=utcnow() - timedelta(hours=1)))
        s.flush()
        job_id = orphan_job(s, node_id="dead", command="disableAccount",
                            values={"id": acct.uuid, "lock": "true"}, instance_type="Account",
                            instance_uuid=acct.uuid).id
    abandoned: list[int] = []

    def abandon(env: InProcess) -> Callable[..., None]:
        def run(s: Session, job: AsyncJob, reason: str) -> None:
            abandoned.append(job.id)
            env.dispatcher.abandon_job(s, job, reason)
        return run

    # node2 stops in the middle of its recovery (inside its transaction) until node1 is done or stuck
    inside, go = threading.Event(), threading.Event()

    def slow(command: str) -> bool:
        inside.set()
        go.wait(20)
        return idempotent

    node1.services.jobs.hooks = JobHooks(run=lambda job_id: None, is_idempotent=lambda c: idempotent,
                                         abandon=abandon(node1))
    node2.services.jobs.hooks = JobHooks(run=lambda job_id: None, is_idempotent=slow, abandon=abandon(node2))
    results: dict[str, Any] = {}

    def first() -> None:
        results["n1"] = node1.services.jobs.recover_dead_nodes()
        results["claim"] = node1.services.jobs.claim()

    t2 = threading.Thread(target=lambda: results.__setitem__("n2", node2.services.jobs.recover_dead_nodes()))
    t2.start()
    try:
        assert inside.wait(20)
        t1 = threading.Thread(target=first)
        t1.start()
        t1.join(3)  # node1 may wait for node2's lock on the job: then node2 must win
    finally:
        go.set()
    t2.join(30)
    t1.join(30)
    assert not t1.is_alive() and not t2.is_alive()
    assert results["n1"] + results["n2"] == 1, results
    with node1.session() as s:
        row = s.get(AsyncJob, job_id)
        assert row is not None
        errors = s.scalar(select(func.count()).select_from(Event).where(
            Event.level == "ERROR", Event.resource_uuid == acct.uuid))
        if idempotent:
            # re-queued once, then claimed by node1: nobody took the claim away again
            assert results["claim"] == job_id
            assert row.status == 0 and row.claimed_by == node1.services.node_id
            assert abandoned == [] and errors == 0
        else:
            assert row.status == 2
            assert abandoned == [job_id] and errors == 1


# -- crash recovery ------------------------------------------------------------------------------


def in_parallel(fn: Callable[[Any], Any], items: list[Any], threads: int = 10) -> list[Any]:
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(fn, items))


class RowLocks:
    """Hold the target rows of the jobs locked from outside the server, so that its workers claim jobs
    and then block inside their transactions: when the server is killed, those jobs are truly in
    flight. PostgreSQL and MariaDB lock the rows (before the jobs are submitted; submitting does not
    touch them); SQLite has no row locks, so the whole database is write-locked once the jobs are in.
    """

    def __init__(self, db: Db, accounts: list[str], users: list[str]) -> None:
        self.db, self.accounts, self.users = db, accounts, users
        self.conn: Any = None

    def before_submit(self) -> None:
        dialect = self.db.engine.dialect.name
        if dialect == "sqlite":
            return
        with self.db.session() as s:
            account_ids = list(s.scalars(select(Account.id).where(Account.uuid.in_(self.accounts))))
            user_ids = list(s.scalars(select(User.id).where(
                User.uuid.in_(self.users) | User.account_id.in_(account_ids))))
        self.conn = self.db.engine.connect()
        # One row at a time by primary key: a scan would lock more rows than it returns (MariaDB).
        mode = "FOR NO KEY UPDATE" if dialect == "postgresql" else "FOR UPDATE"
        user_table = '"user"' if dialect == "postgresql" else "`user`"
        for table, ids in (("account", account_ids), (user_table, user_ids)):
            for row_id in ids:
                self.conn.exec_driver_sql(f"SELECT id FROM {table} WHERE id = {int(row_id)} {mode}").all()

    def after_submit(self) -> None:
        if self.conn is None:  # SQLite: take the write lock (BEGIN IMMEDIATE)
            self.conn = self.db.engine.execution_options(sqlite_immediate=True).connect()
            self.conn.begin()

    def release(self) -> None:
        if self.conn is not None:
            self.conn.rollback()
            self.conn.close()
            self.conn = None


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("mode", ["restart-same-name", "other-node-after-timeout", "api-only-node"])
def test_jobs_survive_kill_9(mode: str, backend: str, server_factory: Any, db_of: Any) -> None:
    """50 jobs in flight, kill -9, then a node on the same database: every job ends, exactly once.

    restart-same-name: the killed worker node comes back under its name and takes its jobs over at
    start. other-node-after-timeout: another node takes them over once the dead node's heartbeat is
    older than the node timeout. api-only-node: the jobs were accepted by an API-only node that is
    killed; a worker node started afterwards runs them.
    """
    name = f"crash-{uuid.uuid4().hex[:6]}"
    # A restart under the same name must not wait for the node timeout: make it far too long to matter.
    first_env = {"OVERCAST_NODE_NAME": name,
                 "OVERCAST_NODE_TIMEOUT": "600" if mode == "restart-same-name" else "3"}
    if mode == "api-only-node":
        first_env["OVERCAST_JOB_WORKERS"] = "0"
    elif backend == "sqlite":
        first_env["OVERCAST_JOB_WORKERS"] = "1"  # busy with the backlog below, oldest job first
    first = server_factory(env=first_env)
    api = api_for(first)
    db = db_of(first)

    t0 = time.monotonic()
    accounts = in_parallel(lambda _: new_account(api_for(first)), list(range(50)))
    t1 = time.monotonic()
    doomed, others = accounts[:40], accounts[40:]
    work = [("deleteAccount", {"id": a["id"]}) for a in doomed]
    work += [("disableUser", {"id": a["user"][0]["id"]}) for a in others]
    work = work[::2] + work[1::2]  # mix the two kinds
    locks = RowLocks(db, [a["id"] for a in doomed], [a["user"][0]["id"] for a in others])
    clients = [api_for(first) for _ in range(10)]
    backlog: list[str] = []
    if backend == "sqlite" and mode != "api-only-node":
        # SQLite runs one writer at a time, so the workers keep pace with any number of submitters:
        # give the one worker a backlog (older jobs on one user, run one at a time) to be busy with
        # while the jobs are submitted. What is left of it is cancelled after the kill.
        ballast = new_account(api)["user"][0]["id"]
        backlog = [str(uuid.uuid4()) for _ in range(20000)]  # seconds of work for one worker, even unloaded
        params = json.dumps({"values": {"id": ballast}, "maps": {}})
        with db.session.begin() as s:
            s.execute(insert(AsyncJob), [
                dict(uuid=u, user_id=ADMIN_USER_ID, account_id=ADMIN_ACCOUNT_ID, domain_id=ROOT_DOMAIN_ID,
                     command="disableUser", params=params, instance_type="User", instance_uuid=ballast,
                     sync_key=f"User:{ballast}") for u in backlog])
    try:
        if mode != "api-only-node":
            locks.before_submit()
        jobids = in_parallel(lambda iw: submit(clients[iw[0] % 10], iw[1][0], **iw[1][1]), list(enumerate(work)))
        assert len(set(jobids)) == 50
        if mode != "api-only-node":
            locks.after_submit()
            if backend != "sqlite":  # the workers are now stuck inside their jobs' transactions
                def stuck() -> bool:
                    with db.session() as s:
                        return bool(s.scalar(select(func.count()).select_from(AsyncJob).where(
                            AsyncJob.status == 0, AsyncJob.claimed_by.is_not(None))) >= 4)
                wait_until(stuck, 20, "workers to claim jobs")
        first.kill()
    finally:
        locks.release()
    backlog_in_flight: list[str] = []
    if backlog:  # cancel what is left of the backlog, but for a job the worker was running
        with db.session.begin() as s:
            backlog_in_flight = list(s.scalars(select(AsyncJob.uuid).where(
                AsyncJob.uuid.in_(backlog), AsyncJob.status == 0, AsyncJob.claimed_by.is_not(None))))
            s.execute(delete(AsyncJob).where(AsyncJob.uuid.in_(backlog), AsyncJob.status == 0,
                                             AsyncJob.claimed_by.is_(None)))

    with db.session() as s:
        at_kill = s.execute(select(AsyncJob.uuid, AsyncJob.status, AsyncJob.claimed_by)
                            .where(AsyncJob.uuid.in_(jobids))).all()
    pending = [u for u, st, _ in at_kill if st == 0]
    in_flight = [u for u, st, by in at_kill if st == 0 and by is not None]
    if mode == "api-only-node":
        assert len(pending) == 50 and not in_flight
    else:
        assert len(pending) == 50
        if backend != "sqlite":
            assert len(in_flight) >= 4

    if mode == "restart-same-name":
        second = server_factory(db_url=first.db_url, data_dir=first.data_dir, env=first_env,
                                api_key=first.api_key, secret_key=first.secret_key)
    else:
        second = server_factory(db_url=first.db_url, data_dir=first.data_dir,
                                api_key=first.api_key, secret_key=first.secret_key,
                                env={"OVERCAST_NODE_NAME": f"{name}-b", "OVERCAST_NODE_TIMEOUT": "3"})
    api2 = api_for(second)
    t2 = time.monotonic()
    done = wait_jobs(api2, jobids, timeout=60)
    t3 = time.monotonic()
    assert {j["jobstatus"] for j in done.values()} <= {1, 2}
    failed = {j: d for j, d in done.items() if d["jobstatus"] != 1}
    assert not failed, f"idempotent jobs failed after recovery: {failed}"

    # resources are consistent: each delete took effect once and completely
    listed = {a["id"] for a in api2.listAccounts(listall=True).get("account", [])}
    assert not listed & {a["id"] for a in doomed}
    assert {a["id"] for a in others} <= listed
    listed_users = {u["id"]: u for u in api2.listUsers(listall=True).get("user", [])}
    assert not set(listed_users) & {a["user"][0]["id"] for a in doomed}
    assert all(listed_users[a["user"][0]["id"]]["state"] == "disabled" for a in others)

    def queue_empty() -> bool:  # a recovered job of the backlog too
        with db.session() as s:
            return not s.scalar(select(func.count()).select_from(AsyncJob).where(AsyncJob.status == 0))

    wait_until(queue_empty, 30, "every job to end")
    with db.session() as s:
        half_deleted = s.scalar(select(func.count()).select_from(User).join(Account, Account.id == User.account_id)
                                .where(Account.removed.is_not(None), User.removed.is_(None)))
        assert half_deleted == 0
        attempts = dict(s.execute(select(AsyncJob.uuid, AsyncJob.attempts).where(AsyncJob.uuid.in_(jobids))).all())
        for a in doomed:
            acct = s.scalar(select(Account).where(Account.uuid == a["id"]))
            assert acct is not None and acct.removed is not None
            deletes = s.scalar(select(func.count()).select_from(Event).where(
                Event.resource_uuid == a["id"], Event.event_type == "ACCOUNT.DELETE", Event.state == "Completed"))
            assert deletes == 1
    # the jobs cut short ran a second time; the others once
    assert {attempts[u] for u in in_flight} <= {2}
    assert {attempts[u] for u in jobids if u not in in_flight} == {1}
    with db.session() as s:
        assert set(s.scalars(select(AsyncJob.status).where(AsyncJob.uuid.in_(backlog_in_flight)))) <= {1}
    in_flight += backlog_in_flight
    print(f"\nCRASH {backend} {mode}: pending={len(pending)} in_flight={len(in_flight)} accounts={t1 - t0:.1f}s"
          f" submit+kill+restart={t2 - t1:.1f}s recovery={t3 - t2:.1f}s")
