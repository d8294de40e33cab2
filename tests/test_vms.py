"""The VM lifecycle on the simulator, through the `cs` client against a sandbox server."""

from __future__ import annotations

import base64
import ipaddress
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from cs import CloudStack, CloudStackApiException
from sqlalchemy import create_engine, text

from conftest import Sandbox, Tenant, client, unique
from overcast.access.signing import sign
from servers import Server


def db_rows(server: Server, sql: str, **params: Any) -> list[Any]:
    engine = create_engine(server.db_url or f"sqlite:///{server.data_dir / 'overcast.db'}")
    with engine.connect() as c:
        rows = list(c.execute(text(sql), params))
    engine.dispose()
    return rows


def deploy(api: CloudStack, sandbox: Sandbox, **params: Any) -> dict[str, Any]:
    params.setdefault("zoneid", sandbox.advanced_zone)
    params.setdefault("templateid", sandbox.template)
    params.setdefault("serviceofferingid", sandbox.small)
    return api.deployVirtualMachine(**params)["virtualmachine"]  # type: ignore[no-any-return]


def error_of(call: Any) -> dict[str, Any]:
    with pytest.raises(CloudStackApiException) as err:
        call()
    return err.value.error  # type: ignore[no-any-return]


def capacity_consistent(server: Server) -> None:
    """Every host's reserved CPU and memory equals what its running VMs use."""
    hosts = db_rows(server, "SELECT id, cpu_used, mem_used FROM host")
    for host_id, cpu_used, mem_used in hosts:
        want = db_rows(server, "SELECT COALESCE(SUM(cpu * speed), 0), COALESCE(SUM(memory), 0) FROM vm_instance "
                               "WHERE host_id = :h AND removed IS NULL", h=host_id)[0]
        assert (cpu_used, mem_used) == (want[0], want[1] * 1024 * 1024), f"host {host_id}"


@pytest.fixture(scope="module")
def user(make_sandbox_tenant: Any) -> Tenant:
    return make_sandbox_tenant()  # type: ignore[no-any-return]


def test_deploy_answers_id_and_jobid_then_runs(user: Tenant, sandbox: Sandbox, sandbox_server: Server) -> None:
    raw_api = client(sandbox_server, *_keys(user), fetch_result=False)
    raw = raw_api.deployVirtualMachine(zoneid=sandbox.advanced_zone, templateid=sandbox.template,
                                       serviceofferingid=sandbox.small, name=unique("web"))
    assert set(raw) == {"id", "jobid"}
    vm = _wait(raw_api, raw["jobid"])
    assert vm["id"] == raw["id"] and vm["state"] == "Running"
    nic = vm["nic"][0]
    assert nic["isdefault"] and nic["type"] == "Isolated"
    assert ipaddress.ip_address(nic["ipaddress"]) in ipaddress.ip_network("10.1.1.0/24")
    assert "hostid" not in vm and "instancename" not in vm  # admin-only fields
    capacity_consistent(sandbox_server)


def _keys(t: Tenant) -> tuple[str, str]:
    return t.api.key, t.api.secret


def _wait(api: CloudStack, jobid: str) -> dict[str, Any]:
    import time

    for _ in range(200):
        job = api.queryAsyncJobResult(jobid=jobid)
        if job["jobstatus"] != 0:
            assert job["jobstatus"] == 1, job
            return job["jobresult"]["virtualmachine"]  # type: ignore[no-any-return]
        time.sleep(0.05)
    raise AssertionError("job did not finish")


def test_lifecycle_and_state_machine(user: Tenant, sandbox: Sandbox, sandbox_server: Server,
                                     sandbox_admin: CloudStack) -> None:
    vm = deploy(user.api, sandbox, name=unique("life"))
    api = user.api
    assert api.stopVirtualMachine(id=vm["id"])["virtualmachine"]["state"] == "Stopped"
    err = error_of(lambda: api.rebootVirtualMachine(id=vm["id"]))
    assert err["errorcode"] == 431 and "state Stopped" in err["errortext"]
    assert api.startVirtualMachine(id=vm["id"])["virtualmachine"]["state"] == "Running"
    assert api.rebootVirtualMachine(id=vm["id"])["virtualmachine"]["state"] == "Running"
    destroyed = api.destroyVirtualMachine(id=vm["id"])["virtualmachine"]
    assert destroyed["state"] == "Destroyed"
    # Users don't see destroyed VMs by default, nor may they recover or expunge them.
    assert vm["id"] not in {v["id"] for v in api.listVirtualMachines().get("virtualmachine", [])}
    assert error_of(lambda: api.recoverVirtualMachine(id=vm["id"]))["errorcode"] == 531
    assert sandbox_admin.recoverVirtualMachine(id=vm["id"])["virtualmachine"]["state"] == "Stopped"
    sandbox_admin.destroyVirtualMachine(id=vm["id"], expunge=True)
    assert db_rows(sandbox_server, "SELECT removed IS NOT NULL FROM vm_instance WHERE uuid = :u", u=vm["id"])[0][0]
    nics = db_rows(sandbox_server, "SELECT ip_address FROM nic n JOIN vm_instance v ON v.id = n.vm_id WHERE v.uuid = :u",
                   u=vm["id"])
    assert nics == [(None,)]  # the address went back
    capacity_consistent(sandbox_server)


def test_start_vm_false_stays_stopped_without_a_host(user: Tenant, sandbox: Sandbox, sandbox_admin: CloudStack) -> None:
    vm = deploy(user.api, sandbox, startvm=False, name=unique("cold"))
    assert vm["state"] == "Stopped"
    listed = sandbox_admin.listVirtualMachines(id=vm["id"], listall=True)["virtualmachine"][0]
    assert "hostid" not in listed


def test_user_data_limits_and_read_back(user: Tenant, sandbox: Sandbox, sandbox_server: Server) -> None:
    data = base64.b64encode(b"#cloud-config\nhostname: x\n").decode()
    vm = deploy(user.api, sandbox, userdata=data, name=unique("ud"))
    got = user.api.getVirtualMachineUserData(virtualmachineid=vm["id"])["virtualmachineuserdata"]
    assert got == {"virtualmachineid": vm["id"], "userdata": data}
    big = base64.b64encode(b"x" * 3500).decode()  # 4668 characters: over the GET limit
    err = error_of(lambda: deploy(user.api, sandbox, userdata=big))
    assert err["errorcode"] == 431 and "GET" in err["errortext"]
    post = client(sandbox_server, *_keys(user), method="post")
    vm2 = deploy(post, sandbox, userdata=big, name=unique("udpost"))
    assert user.api.getVirtualMachineUserData(virtualmachineid=vm2["id"])["virtualmachineuserdata"]["userdata"] == big
    err = error_of(lambda: deploy(user.api, sandbox, userdata="not base64!!"))
    assert err["errorcode"] == 431 and "userdata" in err["errortext"]


def test_validation_errors_name_the_parameter(user: Tenant, sandbox: Sandbox) -> None:
    err = error_of(lambda: user.api.deployVirtualMachine(zoneid=sandbox.advanced_zone, templateid=sandbox.template))
    assert err["errortext"] == ("Unable to execute API command deployvirtualmachine due to missing parameter "
                                "serviceofferingid")
    err = error_of(lambda: deploy(user.api, sandbox, name="bad_name!"))
    assert err["errorcode"] == 431 and "name" in err["errortext"]
    name = unique("dup")
    deploy(user.api, sandbox, name=name, startvm=False)
    err = error_of(lambda: deploy(user.api, sandbox, name=name))
    assert err["errorcode"] == 431 and name in err["errortext"]


def test_tenants_cannot_touch_each_others_vms(user: Tenant, make_sandbox_tenant: Any, sandbox: Sandbox) -> None:
    vm = deploy(user.api, sandbox, name=unique("mine"))
    other = make_sandbox_tenant()
    assert other.api.listVirtualMachines(listall=True).get("virtualmachine", []) == []
    for call in (lambda: other.api.stopVirtualMachine(id=vm["id"]),
                 lambda: other.api.destroyVirtualMachine(id=vm["id"]),
                 lambda: other.api.getVirtualMachineUserData(virtualmachineid=vm["id"]),
                 lambda: other.api.updateVirtualMachine(id=vm["id"], displayname="pwned")):
        assert error_of(call)["errorcode"] == 531


def test_update_change_offering_and_list_filters(user: Tenant, sandbox: Sandbox) -> None:
    api = user.api
    name = unique("upd")
    vm = deploy(api, sandbox, name=name, group="web", displayname="Web")
    assert vm["group"] == "web" and vm["displayname"] == "Web"
    updated = api.updateVirtualMachine(id=vm["id"], displayname="Web 2", haenable=True,
                                       details={"foo": "bar"})["virtualmachine"]
    assert updated["displayname"] == "Web 2" and updated["haenable"] is True and updated["details"] == {"foo": "bar"}
    err = error_of(lambda: api.changeServiceForVirtualMachine(id=vm["id"], serviceofferingid=sandbox.medium))
    assert err["errorcode"] == 431 and "Stopped" in err["errortext"]
    api.stopVirtualMachine(id=vm["id"])
    changed = api.changeServiceForVirtualMachine(id=vm["id"], serviceofferingid=sandbox.medium)["virtualmachine"]
    assert (changed["cpuspeed"], changed["memory"]) == (1000, 1024)
    by_name = api.listVirtualMachines(name=name)["virtualmachine"]
    assert [v["id"] for v in by_name] == [vm["id"]]
    assert api.listVirtualMachines(state="Stopped", keyword=name)["count"] == 1
    minimal = api.listVirtualMachines(id=vm["id"], details="min")["virtualmachine"][0]
    assert "nic" not in minimal and minimal["id"] == vm["id"]
    assert api.listVirtualMachines(ids=vm["id"], zoneid=sandbox.basic_zone).get("count", 0) == 0


def test_restore_gives_a_new_root_volume(user: Tenant, sandbox: Sandbox, sandbox_server: Server) -> None:
    vm = deploy(user.api, sandbox, name=unique("rst"))
    before = db_rows(sandbox_server, "SELECT vo.uuid FROM volume vo JOIN vm_instance v ON v.id = vo.vm_id "
                                     "WHERE v.uuid = :u AND vo.volume_type = 'ROOT' AND vo.removed IS NULL", u=vm["id"])
    restored = user.api.restoreVirtualMachine(virtualmachineid=vm["id"])["virtualmachine"]
    assert restored["state"] == "Running"
    # a public template (owned by the system) may be named explicitly too
    assert user.api.restoreVirtualMachine(virtualmachineid=vm["id"],
                                          templateid=sandbox.template)["virtualmachine"]["templateid"] == sandbox.template
    after = db_rows(sandbox_server, "SELECT vo.uuid FROM volume vo JOIN vm_instance v ON v.id = vo.vm_id "
                                    "WHERE v.uuid = :u AND vo.volume_type = 'ROOT' AND vo.removed IS NULL", u=vm["id"])
    assert len(after) == 1 and after != before


def test_restore_uses_cloudstacks_response_key(user: Tenant, sandbox: Sandbox, sandbox_server: Server) -> None:
    vm = deploy(user.api, sandbox, name=unique("rkey"), startvm=False)
    pairs = [("apiKey", user.api.key), ("response", "json"), ("command", "restoreVirtualMachine"),
             ("virtualmachineid", vm["id"])]
    r = httpx.get(sandbox_server.url, params=[*pairs, ("signature", sign(pairs, user.api.secret))])
    assert r.status_code == 200 and set(r.json()) == {"restorevmresponse"}


def test_migrate_and_assign_as_admin(user: Tenant, make_sandbox_tenant: Any, sandbox: Sandbox,
                                     sandbox_admin: CloudStack, sandbox_server: Server) -> None:
    vm = deploy(user.api, sandbox, name=unique("mig"))
    source = db_rows(sandbox_server, "SELECT h.uuid, h.cluster_id FROM host h JOIN vm_instance v ON v.host_id = h.id "
                                     "WHERE v.uuid = :u", u=vm["id"])[0]
    target = db_rows(sandbox_server, "SELECT uuid FROM host WHERE cluster_id = :c AND uuid != :h", c=source[1],
                     h=source[0])[0][0]
    moved = sandbox_admin.migrateVirtualMachine(virtualmachineid=vm["id"], hostid=target)["virtualmachine"]
    assert moved["hostid"] == target and moved["state"] == "Running"
    assert error_of(lambda: user.api.migrateVirtualMachine(virtualmachineid=vm["id"], hostid=source[0]))["errorcode"] == 401
    capacity_consistent(sandbox_server)
    other = make_sandbox_tenant()
    sandbox_admin.stopVirtualMachine(id=vm["id"])
    assigned = sandbox_admin.assignVirtualMachine(virtualmachineid=vm["id"], account=other.name,
                                                  domainid=other.domain_id)["virtualmachine"]
    assert assigned["account"] == other.name
    assert [v["id"] for v in other.api.listVirtualMachines()["virtualmachine"]] == [vm["id"]]
    assert other.api.startVirtualMachine(id=vm["id"])["virtualmachine"]["nic"][0]["networkname"].startswith(other.name)


def test_concurrent_deploys_get_distinct_addresses(make_sandbox_tenant: Any, sandbox: Sandbox,
                                                   sandbox_server: Server) -> None:
    tenant = make_sandbox_tenant()
    with ThreadPoolExecutor(max_workers=20) as pool:
        vms = list(pool.map(lambda i: deploy(tenant.api, sandbox, name=f"c{i}"), range(20)))
    assert all(v["state"] == "Running" for v in vms)
    ips = [v["nic"][0]["ipaddress"] for v in vms]
    macs = [v["nic"][0]["macaddress"] for v in vms]
    assert len(set(ips)) == 20 and len(set(macs)) == 20
    count = db_rows(sandbox_server, "SELECT rc.count FROM resource_count rc JOIN account a ON a.id = rc.account_id "
                                    "WHERE a.uuid = :a AND rc.resource_type = 'user_vm'", a=tenant.id)
    assert count == [(20,)]
    capacity_consistent(sandbox_server)
    # The default limit for user accounts is 20 VMs: the 21st is refused, atomically.
    err = error_of(lambda: deploy(tenant.api, sandbox))
    assert err["errorcode"] == 532 and "user_vm" in err["errortext"]
    assert db_rows(sandbox_server, "SELECT rc.count FROM resource_count rc JOIN account a ON a.id = rc.account_id "
                                   "WHERE a.uuid = :a AND rc.resource_type = 'user_vm'", a=tenant.id) == [(20,)]


@pytest.mark.slow
def test_destroyed_vms_are_expunged_after_the_delay(server_factory: Any) -> None:
    srv = server_factory(extra_args=["--sandbox"])
    sb = Sandbox(srv)
    admin = client(srv, srv.api_key, srv.secret_key)
    admin.updateConfiguration(name="expunge.delay", value="1")
    admin.updateConfiguration(name="expunge.interval", value="1")
    vm = deploy(admin, sb, name="gone")
    admin.destroyVirtualMachine(id=vm["id"])
    import time

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if db_rows(srv, "SELECT removed IS NOT NULL FROM vm_instance WHERE uuid = :u", u=vm["id"])[0][0]:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("the destroyed VM was not expunged")
    assert admin.listVirtualMachines(id=vm["id"], listall=True).get("count", 0) == 0
    events = admin.listEvents(type="VM.EXPUNGE", listall=True).get("event", [])
    assert any(e["resourceid"] == vm["id"] for e in events)
