"""Affinity groups (placement by the planner) and instance groups through `cs`."""

from __future__ import annotations

from typing import Any

import pytest
from cs import CloudStack

from conftest import Sandbox, Tenant, unique
from servers import Server
from test_response_shapes import check_object
from test_vms import db_rows, deploy, error_of

from overcast.api.responses.affinity import AffinityGroupResponse, InstanceGroupResponse

ANTI, AFFINE = "host anti-affinity", "host affinity"


@pytest.fixture(scope="module")
def user(make_sandbox_tenant: Any) -> Tenant:
    return make_sandbox_tenant()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def other(make_sandbox_tenant: Any) -> Tenant:
    return make_sandbox_tenant()  # type: ignore[no-any-return]


def group(api: CloudStack, group_type: str, **params: Any) -> dict[str, Any]:
    return api.createAffinityGroup(name=params.pop("name", unique("ag")), type=group_type,  # type: ignore[no-any-return]
                                   **params)["affinitygroup"]


def host_of(admin: CloudStack, vm_id: str) -> str:
    return admin.listVirtualMachines(id=vm_id, listall=True)["virtualmachine"][0]["hostid"]  # type: ignore[no-any-return]


def usable_hosts(server: Server, zone_uuid: str) -> int:
    """Hosts of the zone the planner may place a VM on (what it filters on)."""
    return int(db_rows(server, "SELECT COUNT(*) FROM host h JOIN cluster c ON c.id = h.cluster_id JOIN pod p ON "
                               "p.id = h.pod_id JOIN zone z ON z.id = h.zone_id WHERE z.uuid = :z AND h.removed IS "
                               "NULL AND h.host_type = 'Routing' AND h.status = 'Up' AND h.resource_state = 'Enabled' "
                               "AND c.allocation_state = 'Enabled' AND p.allocation_state = 'Enabled' AND "
                               "c.removed IS NULL AND h.ha_host = :f", z=zone_uuid, f=False)[0][0])


def test_group_types_and_lifecycle(user: Tenant) -> None:
    api = user.api
    types = api.listAffinityGroupTypes()
    assert types["count"] == 2 and {t["type"] for t in types["affinityGroupType"]} == {ANTI, AFFINE}
    name = unique("web")
    created = group(api, ANTI, name=name, description="spread the web tier")
    check_object(created, {f.name: f for f in AffinityGroupResponse.all_fields()}, "createAffinityGroup")
    assert (created["name"], created["type"], created["account"]) == (name, ANTI, user.name)
    assert created["description"] == "spread the web tier" and created["domainid"] == user.domain_id
    listed = api.listAffinityGroups(name=name)["affinitygroup"]
    assert [g["id"] for g in listed] == [created["id"]]
    assert created["id"] in {g["id"] for g in api.listAffinityGroups(type=ANTI)["affinitygroup"]}
    assert api.listAffinityGroups(name=name, type=AFFINE).get("count", 0) == 0
    err = error_of(lambda: group(api, ANTI, name=name))
    assert err["errorcode"] == 431 and err["errortext"] == (
        f"Unable to create affinity group, a group with name {name} already exists.")
    err = error_of(lambda: group(api, "rack anti-affinity"))
    assert err["errorcode"] == 431 and err["errortext"].startswith(
        "Unable to create affinity group, invalid affinity group type: rack anti-affinity.")
    err = error_of(lambda: api.createAffinityGroup(name=unique("t")))
    assert err["errorcode"] == 431 and err["errortext"].endswith("due to missing parameter type")
    err = error_of(lambda: api.deleteAffinityGroup())
    assert err["errorcode"] == 431 and "Either the affinity group Id or group name" in err["errortext"]
    err = error_of(lambda: api.deleteAffinityGroup(name=unique("none")))
    assert err["errorcode"] == 431 and "Unable to find affinity group" in err["errortext"]
    assert api.deleteAffinityGroup(name=name)["success"] is True
    assert api.listAffinityGroups(name=name).get("count", 0) == 0
    other_group = group(api, AFFINE)
    assert api.deleteAffinityGroup(id=other_group["id"])["success"] is True
    for kind in ("AG.CREATE", "AG.DELETE"):
        assert any(e["resourceid"] == other_group["id"] for e in api.listEvents(type=kind)["event"]), kind


def test_anti_affinity_spreads_and_affinity_packs(user: Tenant, sandbox: Sandbox, sandbox_admin: CloudStack) -> None:
    api = user.api
    spread = group(api, ANTI)
    a = deploy(api, sandbox, name=unique("anti"), affinitygroupids=spread["id"])
    b = deploy(api, sandbox, name=unique("anti"), affinitygroupnames=spread["name"])
    assert a["affinitygroup"][0]["id"] == spread["id"] and b["affinitygroup"][0]["name"] == spread["name"]
    assert host_of(sandbox_admin, a["id"]) != host_of(sandbox_admin, b["id"])
    members = api.listAffinityGroups(id=spread["id"])["affinitygroup"][0]["virtualmachineIds"]
    assert sorted(members) == sorted([a["id"], b["id"]])
    assert [g["id"] for g in api.listAffinityGroups(virtualmachineid=a["id"])["affinitygroup"]] == [spread["id"]]
    pack = group(api, AFFINE)
    vms = [deploy(api, sandbox, name=unique("aff"), affinitygroupids=pack["id"]) for _ in range(3)]
    assert len({host_of(sandbox_admin, v["id"]) for v in vms}) == 1


def test_simultaneous_deploys_of_one_anti_affinity_group_get_distinct_hosts(
        make_sandbox_tenant: Any, sandbox: Sandbox, sandbox_admin: CloudStack, sandbox_server: Server) -> None:
    """Placement locks the group: VMs planned at the same moment still see each other's hosts."""
    from concurrent.futures import ThreadPoolExecutor

    tenant = make_sandbox_tenant()
    spread = group(tenant.api, ANTI)
    count = min(usable_hosts(sandbox_server, sandbox.advanced_zone), 4)
    assert count > 1
    with ThreadPoolExecutor(count) as pool:
        placed = list(pool.map(lambda i: deploy(tenant.api, sandbox, name=f"together{i}",
                                                affinitygroupids=spread["id"]), range(count)))
    assert len({host_of(sandbox_admin, v["id"]) for v in placed}) == count


def test_impossible_anti_affinity_is_insufficient_capacity(make_sandbox_tenant: Any, sandbox: Sandbox,
                                                           sandbox_admin: CloudStack, sandbox_server: Server) -> None:
    tenant = make_sandbox_tenant()
    spread = group(tenant.api, ANTI)
    hosts = usable_hosts(sandbox_server, sandbox.advanced_zone)
    assert 1 < hosts < 20
    placed = [deploy(tenant.api, sandbox, name=f"spread{i}", affinitygroupids=spread["id"]) for i in range(hosts)]
    assert len({host_of(sandbox_admin, v["id"]) for v in placed}) == hosts
    err = error_of(lambda: deploy(tenant.api, sandbox, name="onetoomany", affinitygroupids=spread["id"]))
    assert err["errorcode"] == 533
    # The failed VM gave its counts back.
    count = db_rows(sandbox_server, "SELECT rc.count FROM resource_count rc JOIN account a ON a.id = rc.account_id "
                                    "WHERE a.uuid = :a AND rc.resource_type = 'user_vm'", a=tenant.id)
    assert count == [(hosts,)]


def test_update_vm_affinity_groups(user: Tenant, sandbox: Sandbox) -> None:
    api = user.api
    first, second = group(api, ANTI), group(api, AFFINE)
    vm = deploy(api, sandbox, name=unique("agvm"), affinitygroupids=first["id"])
    err = error_of(lambda: api.updateVMAffinityGroup(id=vm["id"], affinitygroupids=second["id"]))
    assert err["errorcode"] == 431 and "make sure the virtual machine is stopped" in err["errortext"]
    api.stopVirtualMachine(id=vm["id"])
    updated = api.updateVMAffinityGroup(id=vm["id"], affinitygroupids=second["id"])["virtualmachine"]
    assert [g["id"] for g in updated["affinitygroup"]] == [second["id"]]
    both = api.updateVMAffinityGroup(id=vm["id"], affinitygroupnames=[first["name"], second["name"]])["virtualmachine"]
    assert {g["id"] for g in both["affinitygroup"]} == {first["id"], second["id"]}
    err = error_of(lambda: api.updateVMAffinityGroup(id=vm["id"], affinitygroupids=first["id"],
                                                     affinitygroupnames=second["name"]))
    assert err["errorcode"] == 431 and "mutually exclusive" in err["errortext"]
    err = error_of(lambda: api.updateVMAffinityGroup(id=vm["id"], affinitygroupnames="nosuchgroup"))
    assert err["errorcode"] == 431 and "nosuchgroup" in err["errortext"]
    cleared = api.updateVMAffinityGroup(id=vm["id"])["virtualmachine"]
    assert cleared.get("affinitygroup", []) == []
    assert api.startVirtualMachine(id=vm["id"])["virtualmachine"]["state"] == "Running"
    assert any(e["resourceid"] == vm["id"] for e in api.listEvents(type="VM.AG.UPDATE")["event"])
    # Deleting a group takes its VMs out of it.
    api.stopVirtualMachine(id=vm["id"])
    api.updateVMAffinityGroup(id=vm["id"], affinitygroupids=first["id"])
    api.deleteAffinityGroup(id=first["id"])
    assert api.listVirtualMachines(id=vm["id"])["virtualmachine"][0].get("affinitygroup", []) == []


def test_tenants_cannot_use_each_others_affinity_groups(user: Tenant, other: Tenant, sandbox: Sandbox) -> None:
    mine = group(user.api, ANTI)
    vm = deploy(user.api, sandbox, name=unique("priv"), startvm=False)
    assert other.api.listAffinityGroups(listall=True).get("count", 0) == 0
    assert other.api.listAffinityGroups(id=mine["id"]).get("count", 0) == 0
    assert error_of(lambda: other.api.deleteAffinityGroup(id=mine["id"]))["errorcode"] == 531
    err = error_of(lambda: other.api.deleteAffinityGroup(name=mine["name"]))
    assert err["errorcode"] == 431  # by name, only the caller's own groups are looked at
    assert error_of(lambda: deploy(other.api, sandbox, affinitygroupids=mine["id"]))["errorcode"] == 531
    err = error_of(lambda: deploy(other.api, sandbox, affinitygroupnames=mine["name"]))
    assert err["errorcode"] == 431
    theirs = group(other.api, ANTI)
    assert error_of(lambda: other.api.updateVMAffinityGroup(id=vm["id"], affinitygroupids=theirs["id"]))["errorcode"] == 531
    assert error_of(lambda: user.api.updateVMAffinityGroup(id=vm["id"], affinitygroupids=theirs["id"]))["errorcode"] == 531
    assert error_of(lambda: other.api.listAffinityGroups(virtualmachineid=vm["id"]))["errorcode"] == 531
    assert user.api.listAffinityGroups(id=mine["id"])["count"] == 1


def test_instance_groups(user: Tenant, other: Tenant, sandbox: Sandbox) -> None:
    api = user.api
    name = unique("grp")
    created = api.createInstanceGroup(name=name)["instancegroup"]
    check_object(created, {f.name: f for f in InstanceGroupResponse.all_fields()}, "createInstanceGroup")
    assert created["name"] == name and created["account"] == user.name
    err = error_of(lambda: api.createInstanceGroup(name=name))
    assert err["errorcode"] == 431 and err["errortext"] == (
        f"Unable to create vm group, a group with name {name} already exists for account {user.name}")
    # Deploying with group=<name> joins the existing group.
    vm = deploy(api, sandbox, name=unique("grouped"), group=name, startvm=False)
    assert vm["groupid"] == created["id"]
    assert [v["id"] for v in api.listVirtualMachines(groupid=created["id"])["virtualmachine"]] == [vm["id"]]
    renamed = unique("renamed")
    assert api.updateInstanceGroup(id=created["id"], name=renamed)["instancegroup"]["name"] == renamed
    assert api.listVirtualMachines(id=vm["id"])["virtualmachine"][0]["group"] == renamed
    clash = api.createInstanceGroup(name=unique("clash"))["instancegroup"]
    err = error_of(lambda: api.updateInstanceGroup(id=clash["id"], name=renamed))
    assert err["errorcode"] == 431 and "already exists" in err["errortext"]
    assert [g["id"] for g in api.listInstanceGroups(name=renamed)["instancegroup"]] == [created["id"]]
    # Isolation.
    assert other.api.listInstanceGroups(listall=True).get("count", 0) == 0
    assert error_of(lambda: other.api.updateInstanceGroup(id=created["id"], name="x"))["errorcode"] == 531
    assert error_of(lambda: other.api.deleteInstanceGroup(id=created["id"]))["errorcode"] == 531
    # Deleting the group leaves its VMs without one.
    assert api.deleteInstanceGroup(id=created["id"])["success"] is True
    assert "groupid" not in api.listVirtualMachines(id=vm["id"])["virtualmachine"][0]
    assert api.listInstanceGroups(id=created["id"]).get("count", 0) == 0
    err = error_of(lambda: api.deleteInstanceGroup(id=created["id"]))
    assert err["errorcode"] == 431
