"""A VM's NICs: list, add (Running or Stopped), remove, change the default, change an address; unique
addresses and MACs; tenant isolation."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from cs import CloudStack

from conftest import Sandbox, Tenant
from network_helpers import db_rows, deploy, error_of, expunge, isolated
from servers import Server


@pytest.fixture(scope="module")
def user(make_sandbox_tenant: Any) -> Tenant:
    return make_sandbox_tenant()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def other(make_sandbox_tenant: Any) -> Tenant:
    return make_sandbox_tenant()  # type: ignore[no-any-return]


def nics(api: CloudStack, vm_id: str, **params: Any) -> list[dict[str, Any]]:
    return api.listNics(virtualmachineid=vm_id, **params).get("nic", [])  # type: ignore[no-any-return]


def test_add_list_default_remove(user: Tenant, sandbox: Sandbox, sandbox_admin: CloudStack) -> None:
    api = user.api
    vm = deploy(api, sandbox)
    first = vm["nic"][0]
    second_net = isolated(api, sandbox, gateway="10.40.0.1", netmask="255.255.255.0")
    listed = nics(api, vm["id"])
    assert [n["id"] for n in listed] == [first["id"]]
    assert listed[0]["isdefault"] is True and listed[0]["deviceid"] == "0" and listed[0]["virtualmachineid"] == vm["id"]
    assert isinstance(listed[0]["vlanid"], int)
    err = error_of(lambda: api.listNics())
    assert err["errortext"] == "Unable to execute API command listnics due to missing parameter virtualmachineid"

    got = api.addNicToVirtualMachine(virtualmachineid=vm["id"], networkid=second_net["id"])["virtualmachine"]
    assert len(got["nic"]) == 2
    added = next(n for n in got["nic"] if n["networkid"] == second_net["id"])
    assert added["isdefault"] is False and added["deviceid"] == "1"
    assert ipaddress.ip_address(added["ipaddress"]) in ipaddress.ip_network("10.40.0.0/24")
    assert api.listNetworks(id=second_net["id"])["network"][0]["state"] == "Implemented"  # the VM runs
    assert [n["id"] for n in nics(api, vm["id"], networkid=second_net["id"])] == [added["id"]]
    assert [n["id"] for n in nics(api, vm["id"], nicid=first["id"])] == [first["id"]]
    err = error_of(lambda: api.addNicToVirtualMachine(virtualmachineid=vm["id"], networkid=second_net["id"]))
    assert err["errorcode"] == 431 and "A NIC already exists" in err["errortext"]

    err = error_of(lambda: api.updateDefaultNicForVirtualMachine(virtualmachineid=vm["id"], nicid=first["id"]))
    assert err["errorcode"] == 431 and "already the default" in err["errortext"]
    err = error_of(lambda: api.removeNicFromVirtualMachine(virtualmachineid=vm["id"], nicid=first["id"]))
    assert err["errorcode"] == 431 and "nic is default" in err["errortext"]
    changed = api.updateDefaultNicForVirtualMachine(virtualmachineid=vm["id"], nicid=added["id"])["virtualmachine"]
    assert {n["id"]: n["isdefault"] for n in changed["nic"]} == {first["id"]: False, added["id"]: True}
    after = api.removeNicFromVirtualMachine(virtualmachineid=vm["id"], nicid=first["id"])["virtualmachine"]
    assert [n["id"] for n in after["nic"]] == [added["id"]]
    assert [n["id"] for n in nics(api, vm["id"])] == [added["id"]]
    err = error_of(lambda: api.removeNicFromVirtualMachine(virtualmachineid=vm["id"], nicid=first["id"]))
    assert err["errorcode"] == 431 and "nicid" in err["errortext"]
    types = {e["type"] for e in api.listEvents(pagesize=500, page=1)["event"] if e["state"] == "Completed"}
    assert {"NIC.CREATE", "NIC.UPDATE", "NIC.DELETE"} <= types
    expunge(sandbox_admin, [vm["id"]])


def test_requested_address_and_mac(user: Tenant, sandbox: Sandbox, sandbox_admin: CloudStack,
                                   sandbox_server: Server) -> None:
    api = user.api
    net = isolated(api, sandbox, gateway="10.41.0.1", netmask="255.255.255.0")
    vm = deploy(api, sandbox, startvm=False)
    got = api.addNicToVirtualMachine(virtualmachineid=vm["id"], networkid=net["id"], ipaddress="10.41.0.77",
                                     macaddress="02:AB:CD:00:00:01")["virtualmachine"]
    nic = next(n for n in got["nic"] if n["networkid"] == net["id"])
    assert (nic["ipaddress"], nic["macaddress"]) == ("10.41.0.77", "02:ab:cd:00:00:01")
    assert api.listNetworks(id=net["id"])["network"][0]["state"] == "Allocated"  # the VM is stopped
    vm2 = deploy(api, sandbox, startvm=False)
    for extra, word in ((dict(ipaddress="10.41.0.77"), "already in use"),
                        (dict(ipaddress="10.99.0.5"), "not in the range"),
                        (dict(ipaddress="bogus"), "ipaddress"),
                        (dict(macaddress="02:ab:cd:00:00:01"), "macaddress"),
                        (dict(macaddress="zz:zz"), "macaddress"),
                        (dict(macaddress="01:00:00:00:00:01"), "macaddress")):
        err = error_of(lambda extra=extra: api.addNicToVirtualMachine(virtualmachineid=vm2["id"], networkid=net["id"],
                                                                      **extra))
        assert err["errorcode"] == 431 and word in err["errortext"], (extra, err)
    assert len(nics(api, vm2["id"])) == 1  # nothing was left behind
    # another address for a stopped VM's NIC
    moved = api.updateVmNicIp(nicid=nic["id"], ipaddress="10.41.0.78")["virtualmachine"]
    assert next(n for n in moved["nic"] if n["id"] == nic["id"])["ipaddress"] == "10.41.0.78"
    other_nic = api.addNicToVirtualMachine(virtualmachineid=vm2["id"], networkid=net["id"])["virtualmachine"]
    taken = next(n for n in other_nic["nic"] if n["networkid"] == net["id"])["ipaddress"]
    err = error_of(lambda: api.updateVmNicIp(nicid=nic["id"], ipaddress=taken))
    assert err["errorcode"] == 431 and "already in use" in err["errortext"]
    auto = api.updateVmNicIp(nicid=nic["id"])["virtualmachine"]
    assert next(n for n in auto["nic"] if n["id"] == nic["id"])["ipaddress"] not in ("10.41.0.78", taken)
    api.startVirtualMachine(id=vm["id"])
    err = error_of(lambda: api.updateVmNicIp(nicid=nic["id"], ipaddress="10.41.0.90"))
    assert err["errorcode"] == 431 and "not Stopped" in err["errortext"]
    dupes = db_rows(sandbox_server, "SELECT n.ip_address FROM nic n JOIN network w ON w.id = n.network_id WHERE "
                                    "w.uuid = :w AND n.ip_address IS NOT NULL GROUP BY n.ip_address HAVING COUNT(*) > 1",
                    w=net["id"])
    assert dupes == []
    expunge(sandbox_admin, [vm["id"], vm2["id"]])


def test_no_new_nics_in_the_basic_zone(user: Tenant, sandbox: Sandbox, sandbox_admin: CloudStack) -> None:
    vm = deploy(user.api, sandbox, zoneid=sandbox.basic_zone)
    shared = user.api.listNetworks(zoneid=sandbox.basic_zone)["network"][0]
    err = error_of(lambda: user.api.addNicToVirtualMachine(virtualmachineid=vm["id"], networkid=shared["id"]))
    assert err["errorcode"] == 431 and "Basic" in err["errortext"]
    net = isolated(user.api, sandbox)
    err = error_of(lambda: user.api.addNicToVirtualMachine(virtualmachineid=vm["id"], networkid=net["id"]))
    assert err["errorcode"] == 431
    expunge(sandbox_admin, [vm["id"]])


def test_tenants_cannot_touch_each_others_nics(user: Tenant, other: Tenant, sandbox: Sandbox,
                                               sandbox_admin: CloudStack) -> None:
    vm = deploy(user.api, sandbox, startvm=False)
    mine = isolated(user.api, sandbox)
    theirs_vm = deploy(other.api, sandbox, startvm=False)
    nic = vm["nic"][0]
    for call in (lambda: other.api.listNics(virtualmachineid=vm["id"]),
                 lambda: other.api.addNicToVirtualMachine(virtualmachineid=vm["id"], networkid=mine["id"]),
                 lambda: other.api.addNicToVirtualMachine(virtualmachineid=theirs_vm["id"], networkid=mine["id"]),
                 lambda: other.api.removeNicFromVirtualMachine(virtualmachineid=vm["id"], nicid=nic["id"]),
                 lambda: other.api.updateDefaultNicForVirtualMachine(virtualmachineid=vm["id"], nicid=nic["id"]),
                 lambda: other.api.updateVmNicIp(nicid=nic["id"])):
        assert error_of(call)["errorcode"] == 531
    # a NIC of another VM is not this VM's
    err = error_of(lambda: other.api.removeNicFromVirtualMachine(virtualmachineid=theirs_vm["id"], nicid=nic["id"]))
    assert err["errorcode"] == 531
    expunge(sandbox_admin, [vm["id"], theirs_vm["id"]])
