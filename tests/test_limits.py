"""Resource limits and counts: listing, changing (with CloudStack's rules), recounting, and atomic
enforcement under concurrent deploys (CVE-2025-69233)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from cs import CloudStack, CloudStackApiException

from conftest import Sandbox, Tenant, unique
from servers import Server
from test_response_shapes import check_object
from test_vms import db_rows, deploy, error_of

from overcast.api.responses.limits import ResourceCountResponse, ResourceLimitResponse

TYPES = ["user_vm", "public_ip", "volume", "snapshot", "template", "project", "network", "vpc", "cpu", "memory",
         "primary_storage", "secondary_storage"]


def account_count(server: Server, account_id: str, rtype: str) -> int:
    rows = db_rows(server, "SELECT rc.count FROM resource_count rc JOIN account a ON a.id = rc.account_id "
                           "WHERE a.uuid = :a AND rc.resource_type = :t", a=account_id, t=rtype)
    return int(rows[0][0]) if rows else 0


def domain_count(server: Server, domain_id: str, rtype: str) -> int:
    rows = db_rows(server, "SELECT rc.count FROM resource_count rc JOIN domain d ON d.id = rc.domain_id "
                           "WHERE d.uuid = :d AND rc.resource_type = :t AND rc.account_id IS NULL", d=domain_id, t=rtype)
    return int(rows[0][0]) if rows else 0


def try_deploy(api: CloudStack, sandbox: Sandbox, name: str) -> dict[str, Any]:
    try:
        return {"vm": deploy(api, sandbox, name=name)}
    except CloudStackApiException as exc:
        return {"error": exc.error}


@pytest.fixture(scope="module")
def user(make_sandbox_tenant: Any) -> Tenant:
    return make_sandbox_tenant()  # type: ignore[no-any-return]


def test_list_limits_of_an_account(user: Tenant, sandbox_admin: CloudStack) -> None:
    limits = user.api.listResourceLimits()["resourcelimit"]
    assert [lim["resourcetypename"] for lim in limits] == TYPES
    assert [lim["resourcetype"] for lim in limits] == [str(i) for i in range(12)]
    fields = {f.name: f for f in ResourceLimitResponse.all_fields()}
    for lim in limits:
        check_object(lim, fields, "listResourceLimits")
        assert lim["account"] == user.name and lim["domainid"] == user.domain_id
    by_name = {lim["resourcetypename"]: lim["max"] for lim in limits}
    assert (by_name["user_vm"], by_name["cpu"], by_name["primary_storage"]) == (20, 40, 200)
    only = user.api.listResourceLimits(resourcetype=8)["resourcelimit"]
    assert [(lim["resourcetypename"], lim["max"]) for lim in only] == [("cpu", 40)]
    assert user.api.listResourceLimits(resourcetypename="memory")["resourcelimit"][0]["resourcetype"] == "9"
    page = user.api.listResourceLimits(page=2, pagesize=5)
    assert page["count"] == 12 and [lim["resourcetypename"] for lim in page["resourcelimit"]] == TYPES[5:10]
    err = error_of(lambda: user.api.listResourceLimits(resourcetype=42))
    assert err["errorcode"] == 431 and "resourcetype" in err["errortext"]
    err = error_of(lambda: user.api.listResourceLimits(resourcetypename="gpu_cores"))
    assert err["errorcode"] == 431 and "resourcetypename" in err["errortext"]
    # Admins list an account's limits by account and domain, and a domain's (unlimited by default).
    theirs = sandbox_admin.listResourceLimits(account=user.name, domainid=user.domain_id, resourcetype=0)
    assert theirs["resourcelimit"][0]["account"] == user.name
    root = sandbox_admin.listResourceLimits(domainid=user.domain_id)["resourcelimit"]
    assert len(root) == 12 and all(lim["max"] == -1 and "account" not in lim for lim in root)
    # The root admin itself is never limited.
    assert {lim["max"] for lim in sandbox_admin.listResourceLimits()["resourcelimit"]} == {-1}


def test_update_limit_rules(make_sandbox_tenant: Any, sandbox_admin: CloudStack, sandbox_server: Server) -> None:
    dom = sandbox_admin.createDomain(name=unique("dom"))["domain"]
    sub = sandbox_admin.createDomain(name=unique("sub"), parentdomainid=dom["id"])["domain"]
    tenant = make_sandbox_tenant(domainid=sub["id"])
    dadmin = make_sandbox_tenant(accounttype=2, domainid=dom["id"])
    # Users may not change limits at all.
    assert error_of(lambda: tenant.api.updateResourceLimit(resourcetype=0, max=100))["errorcode"] == 401
    updated = sandbox_admin.updateResourceLimit(resourcetype=0, max=7, account=tenant.name,
                                                domainid=sub["id"])["resourcelimit"]
    check_object(updated, {f.name: f for f in ResourceLimitResponse.all_fields()}, "updateResourceLimit")
    assert (updated["account"], updated["resourcetypename"], updated["max"]) == (tenant.name, "user_vm", 7)
    assert tenant.api.listResourceLimits(resourcetype=0)["resourcelimit"][0]["max"] == 7
    # Storage limits are given in GiB and listed in GiB.
    assert sandbox_admin.updateResourceLimit(resourcetype=10, max=50, account=tenant.name,
                                             domainid=sub["id"])["resourcelimit"]["max"] == 50
    # max defaults to -1 (unlimited); below -1 is refused.
    assert sandbox_admin.updateResourceLimit(resourcetype=2, account=tenant.name,
                                             domainid=sub["id"])["resourcelimit"]["max"] == -1
    err = error_of(lambda: sandbox_admin.updateResourceLimit(resourcetype=0, max=-5, account=tenant.name,
                                                             domainid=sub["id"]))
    assert err["errorcode"] == 431 and "'-1' for an infinite limit" in err["errortext"]
    err = error_of(lambda: sandbox_admin.updateResourceLimit(resourcetype=99, max=1, domainid=sub["id"]))
    assert err["errorcode"] == 431 and "resourcetype" in err["errortext"]
    err = error_of(lambda: sandbox_admin.updateResourceLimit(resourcetype=0, max=1))
    assert err["errorcode"] == 431 and "AccountId or domainId have to be specified" in err["errortext"]
    err = error_of(lambda: sandbox_admin.updateResourceLimit(resourcetype=0, max=1, account=tenant.name))
    assert err["errorcode"] == 431 and "domainId" in err["errortext"]
    err = error_of(lambda: sandbox_admin.updateResourceLimit(resourcetype=0, max=1, account="nobody",
                                                             domainid=sub["id"]))
    assert err["errorcode"] == 431 and "nobody" in err["errortext"]
    root_id = sandbox_admin.listDomains(level=0)["domain"][0]["id"]
    err = error_of(lambda: sandbox_admin.updateResourceLimit(resourcetype=0, max=1, domainid=root_id))
    assert err["errorcode"] == 531 and "ROOT domain" in err["errortext"]
    err = error_of(lambda: sandbox_admin.updateResourceLimit(resourcetype=0, max=1, account="admin",
                                                             domainid=root_id))
    assert err["errorcode"] == 431 and "Only -1 limit is supported for Root Admin accounts" in err["errortext"]
    err = error_of(lambda: sandbox_admin.updateResourceLimit(resourcetype=0, max=1, domainid=dom["id"], tag="ssd"))
    assert err["errorcode"] == 431 and "tag" in err["errortext"]
    # A domain's limit may not exceed its parent's.
    sandbox_admin.updateResourceLimit(resourcetype=0, max=10, domainid=dom["id"])
    err = error_of(lambda: sandbox_admin.updateResourceLimit(resourcetype=0, max=11, domainid=sub["id"]))
    assert err["errorcode"] == 431 and "please specify a value less than or equal to 10" in err["errortext"]
    assert sandbox_admin.updateResourceLimit(resourcetype=0, max=10, domainid=sub["id"])["resourcelimit"]["max"] == 10
    # A domain admin works below its domain, never on its own account or domain.
    assert dadmin.api.updateResourceLimit(resourcetype=0, max=5, account=tenant.name,
                                          domainid=sub["id"])["resourcelimit"]["max"] == 5
    assert dadmin.api.updateResourceLimit(resourcetype=0, max=9, domainid=sub["id"])["resourcelimit"]["max"] == 9
    err = error_of(lambda: dadmin.api.updateResourceLimit(resourcetype=0, max=100, account=dadmin.name,
                                                          domainid=dom["id"]))
    assert err["errorcode"] == 531 and "their own account" in err["errortext"]
    err = error_of(lambda: dadmin.api.updateResourceLimit(resourcetype=0, max=100, domainid=dom["id"]))
    assert err["errorcode"] == 531
    outsider = make_sandbox_tenant()
    err = error_of(lambda: dadmin.api.updateResourceLimit(resourcetype=0, max=100, account=outsider.name,
                                                          domainid=outsider.domain_id))
    assert err["errorcode"] == 531
    # Domain admins get the account defaults (only root admins are unlimited).
    assert dadmin.api.listResourceLimits(resourcetype=0)["resourcelimit"][0]["max"] == 20
    updates = sandbox_admin.listEvents(type="RESOURCE.LIMIT.UPDATE", listall=True)["event"]
    assert any(e["resourceid"] == sub["id"] and e["resourcetype"] == "Domain" for e in updates)


def test_account_limit_holds_under_concurrent_deploys(make_sandbox_tenant: Any, sandbox: Sandbox,
                                                      sandbox_admin: CloudStack, sandbox_server: Server) -> None:
    tenant = make_sandbox_tenant()
    sandbox_admin.updateResourceLimit(resourcetype=0, max=3, account=tenant.name, domainid=tenant.domain_id)
    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(lambda i: try_deploy(tenant.api, sandbox, f"race{i}"), range(10)))
    won = [r["vm"] for r in results if "vm" in r]
    lost = [r["error"] for r in results if "error" in r]
    assert len(won) == 3 and all(v["state"] == "Running" for v in won)
    assert len(lost) == 7 and all(e["errorcode"] == 532 and "user_vm" in e["errortext"] for e in lost)
    assert account_count(sandbox_server, tenant.id, "user_vm") == 3
    running = db_rows(sandbox_server, "SELECT COUNT(*) FROM vm_instance v JOIN account a ON a.id = v.account_id "
                                      "WHERE a.uuid = :a AND v.removed IS NULL AND v.state = 'Running'", a=tenant.id)
    assert running == [(3,)]


def test_domain_limit_holds_under_concurrent_deploys(make_sandbox_tenant: Any, sandbox: Sandbox,
                                                     sandbox_admin: CloudStack, sandbox_server: Server) -> None:
    dom = sandbox_admin.createDomain(name=unique("capped"))["domain"]
    first, second = make_sandbox_tenant(domainid=dom["id"]), make_sandbox_tenant(domainid=dom["id"])
    sandbox_admin.updateResourceLimit(resourcetype=0, max=2, domainid=dom["id"])
    jobs = [(t, f"d{i}") for i in range(5) for t in (first, second)]
    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(lambda job: try_deploy(job[0].api, sandbox, job[1]), jobs))
    won = [r["vm"] for r in results if "vm" in r]
    lost = [r["error"] for r in results if "error" in r]
    assert len(won) == 2 and all(v["state"] == "Running" for v in won), lost
    assert len(lost) == 8 and all(e["errorcode"] == 532 and dom["id"] in e["errortext"] for e in lost), lost
    assert domain_count(sandbox_server, dom["id"], "user_vm") == 2
    assert account_count(sandbox_server, first.id, "user_vm") + account_count(sandbox_server, second.id, "user_vm") == 2


def test_update_resource_count_recomputes_from_rows(make_sandbox_tenant: Any, sandbox: Sandbox,
                                                    sandbox_admin: CloudStack, sandbox_server: Server) -> None:
    dom = sandbox_admin.createDomain(name=unique("recount"))["domain"]
    tenant = make_sandbox_tenant(domainid=dom["id"])
    vms = [deploy(tenant.api, sandbox, name=f"rc{i}", startvm=i == 0) for i in range(2)]
    tenant.api.destroyVirtualMachine(id=vms[1]["id"])  # a destroyed VM holds no VM counts
    want = {"user_vm": 1, "cpu": vms[0]["cpunumber"], "memory": vms[0]["memory"], "volume": 2}
    for rtype, n in want.items():
        assert account_count(sandbox_server, tenant.id, rtype) == n, rtype
    storage = account_count(sandbox_server, tenant.id, "primary_storage")
    # Counts gone wrong (a crash, a bug, a manual fix in the database) are put right from the real rows.
    engine_url = sandbox_server.db_url or f"sqlite:///{sandbox_server.data_dir / 'overcast.db'}"
    from sqlalchemy import create_engine, text

    engine = create_engine(engine_url)
    with engine.begin() as c:
        c.execute(text("UPDATE resource_count SET count = 99 WHERE account_id = (SELECT id FROM account WHERE "
                       "uuid = :a) OR domain_id = (SELECT id FROM domain WHERE uuid = :d)"), {"a": tenant.id,
                                                                                            "d": dom["id"]})
    engine.dispose()
    assert error_of(lambda: tenant.api.updateResourceCount(domainid=dom["id"]))["errorcode"] == 401
    counts = sandbox_admin.updateResourceCount(domainid=dom["id"], account=tenant.name)
    assert counts["count"] == 12
    fields = {f.name: f for f in ResourceCountResponse.all_fields()}
    got = {}
    for c in counts["resourcecount"]:
        check_object(c, fields, "updateResourceCount")
        assert c["account"] == tenant.name and c["domainid"] == dom["id"]
        got[c["resourcetypename"]] = c["resourcecount"]
    assert {k: got[k] for k in want} == want
    assert got["primary_storage"] == storage and got["vpc"] == 0 and got["snapshot"] == 0
    for rtype, n in want.items():
        assert account_count(sandbox_server, tenant.id, rtype) == n, rtype
    # The domain's counts are the sum of its accounts'.
    only_vms = sandbox_admin.updateResourceCount(domainid=dom["id"], resourcetype=0)["resourcecount"]
    assert [(c["resourcetypename"], c["resourcecount"]) for c in only_vms] == [("user_vm", 1)]
    assert "account" not in only_vms[0]
    assert domain_count(sandbox_server, dom["id"], "user_vm") == 1
    whole = {c["resourcetypename"]: c["resourcecount"] for c in
             sandbox_admin.updateResourceCount(domainid=dom["id"])["resourcecount"]}
    assert {k: whole[k] for k in want} == want
    assert domain_count(sandbox_server, dom["id"], "memory") == want["memory"]
    # After the recount, limits work from the true values.
    sandbox_admin.updateResourceLimit(resourcetype=0, max=2, account=tenant.name, domainid=dom["id"])
    deploy(tenant.api, sandbox, name="rc-after", startvm=False)
    err = error_of(lambda: deploy(tenant.api, sandbox, name="rc-over", startvm=False))
    assert err["errorcode"] == 532
    err = error_of(lambda: sandbox_admin.updateResourceCount(domainid=dom["id"], resourcetype=12))
    assert err["errorcode"] == 431
    err = error_of(lambda: sandbox_admin.updateResourceCount(account=tenant.name))
    assert err["errorcode"] == 431 and err["errortext"].endswith("due to missing parameter domainid")


def test_domain_admin_recounts_only_below_itself(make_sandbox_tenant: Any, sandbox_admin: CloudStack) -> None:
    dom = sandbox_admin.createDomain(name=unique("da"))["domain"]
    dadmin = make_sandbox_tenant(accounttype=2, domainid=dom["id"])
    outsider = make_sandbox_tenant()
    assert dadmin.api.updateResourceCount(domainid=dom["id"], resourcetype=0)["count"] == 1
    err = error_of(lambda: dadmin.api.updateResourceCount(domainid=outsider.domain_id, account=outsider.name))
    assert err["errorcode"] == 531
    assert error_of(lambda: dadmin.api.listResourceLimits(account=outsider.name,
                                                          domainid=outsider.domain_id))["errorcode"] == 531
