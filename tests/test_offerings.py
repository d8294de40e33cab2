"""Offerings and catalogues through the `cs` client: service, disk and network offerings, OS types,
hypervisors; domain and zone visibility; admin-only commands."""

from __future__ import annotations

from typing import Any

import pytest
from cs import CloudStack, CloudStackApiException

from conftest import Sandbox, Tenant, client, unique
from servers import Server


def error_of(call: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(CloudStackApiException) as err:
        call(*args, **kwargs)
    return err.value.error  # type: ignore[no-any-return]


def names(result: dict[str, Any], key: str) -> list[str]:
    return [item["name"] for item in result.get(key, [])]


@pytest.fixture(scope="module")
def doms(sandbox_admin: CloudStack) -> dict[str, dict[str, Any]]:
    a = sandbox_admin.createDomain(name=unique("doma"))["domain"]
    sub = sandbox_admin.createDomain(name=unique("suba"), parentdomainid=a["id"])["domain"]
    b = sandbox_admin.createDomain(name=unique("domb"))["domain"]
    return {"a": a, "sub": sub, "b": b}


@pytest.fixture(scope="module")
def people(make_sandbox_tenant: Any, doms: dict[str, dict[str, Any]]) -> dict[str, Tenant]:
    return {
        "dadmin": make_sandbox_tenant(accounttype=2, domainid=doms["a"]["id"]),
        "a": make_sandbox_tenant(domainid=doms["a"]["id"]),
        "sub": make_sandbox_tenant(domainid=doms["sub"]["id"]),
        "b": make_sandbox_tenant(domainid=doms["b"]["id"]),
        "root": make_sandbox_tenant(),
    }


# -- the sandbox catalogue the clients look up --------------------------------------------------


def test_new_user_sees_the_sandbox_offerings(make_sandbox_tenant: Any) -> None:
    user = make_sandbox_tenant()
    offerings = user.api.listServiceOfferings()["serviceoffering"]
    by_name = {o["name"]: o for o in offerings}
    assert {"Small Instance", "Medium Instance"} <= set(by_name)
    small = by_name["Small Instance"]
    assert (small["cpunumber"], small["cpuspeed"], small["memory"]) == (1, 500, 512)
    assert small["iscustomized"] is False and small["issystem"] is False and small["storagetype"] == "shared"
    assert small["cacheMode"] == "none" and small["rootdisksize"] == 0
    assert names(user.api.listServiceOfferings(name="Medium Instance"), "serviceoffering") == ["Medium Instance"]
    disks = names(user.api.listDiskOfferings(), "diskoffering")
    assert {"Small", "Medium", "Large", "Custom"} <= set(disks)
    assert "Small Instance" not in disks  # a service offering's own root disk offering is not listed


# -- service offerings --------------------------------------------------------------------------


def test_service_offering_crud(sandbox_admin: CloudStack, people: dict[str, Tenant]) -> None:
    name = unique("so")
    so = sandbox_admin.createServiceOffering(name=name, displaytext="two by two", cpunumber=2, cpuspeed=1000,
                                             memory=2048, offerha=True, hosttags="fast", tags="ssd",
                                             storagetype="shared", limitcpuuse=True, rootdisksize=20,
                                             provisioningtype="sparse", isvolatile=True)["serviceoffering"]
    assert (so["cpunumber"], so["cpuspeed"], so["memory"]) == (2, 1000, 2048)
    assert so["offerha"] and so["limitcpuuse"] and so["isvolatile"] and not so["iscustomized"]
    assert so["hosttags"] == "fast" and so["storagetags"] == "ssd" and so["rootdisksize"] == 20
    assert so["provisioningtype"] == "sparse" and so["state"] == "Active"
    user = people["b"].api
    assert name in names(user.listServiceOfferings(), "serviceoffering")
    up = sandbox_admin.updateServiceOffering(id=so["id"], name=name + "-x", displaytext="renamed")["serviceoffering"]
    assert up["name"] == name + "-x" and up["displaytext"] == "renamed" and up["cpunumber"] == 2
    listed = user.listServiceOfferings(id=so["id"])["serviceoffering"][0]
    assert listed["name"] == name + "-x"
    assert sandbox_admin.deleteServiceOffering(id=so["id"])["success"] is True
    assert user.listServiceOfferings(id=so["id"]) == {}
    err = error_of(sandbox_admin.deleteServiceOffering, id=so["id"])
    assert err["errorcode"] == 431 and "id" in err["errortext"]


def test_custom_offering_and_deploy(sandbox_admin: CloudStack, people: dict[str, Tenant], sandbox: Sandbox) -> None:
    name = unique("custom")
    so = sandbox_admin.createServiceOffering(name=name, displaytext=name, customized=True, mincpunumber=1,
                                             maxcpunumber=4, minmemory=256, maxmemory=4096,
                                             cpuspeed=1000)["serviceoffering"]
    assert so["iscustomized"] is True and "cpunumber" not in so and "memory" not in so
    assert so["serviceofferingdetails"] == {"mincpunumber": "1", "maxcpunumber": "4", "minmemory": "256",
                                            "maxmemory": "4096"}
    user = people["root"].api
    # cpunumber / memory filters: offerings that support the shape
    assert name in names(user.listServiceOfferings(cpunumber=2, memory=1024), "serviceoffering")
    assert name not in names(user.listServiceOfferings(cpunumber=8), "serviceoffering")
    assert "Small Instance" in names(user.listServiceOfferings(cpunumber=1), "serviceoffering")
    assert "Small Instance" not in names(user.listServiceOfferings(cpunumber=2), "serviceoffering")
    vm = user.deployVirtualMachine(zoneid=sandbox.advanced_zone, templateid=sandbox.template, serviceofferingid=so["id"],
                                   details={"cpuNumber": 2, "memory": 1024})["virtualmachine"]
    assert (vm["cpunumber"], vm["cpuspeed"], vm["memory"]) == (2, 1000, 1024)
    err = error_of(user.deployVirtualMachine, zoneid=sandbox.advanced_zone, templateid=sandbox.template,
                   serviceofferingid=so["id"], details={"cpuNumber": 8, "memory": 1024})
    assert err["errorcode"] == 431
    # a running VM may change to its own custom offering, not to a smaller fixed one
    changeable = names(user.listServiceOfferings(virtualmachineid=vm["id"]), "serviceoffering")
    assert name in changeable and "Medium Instance" not in changeable
    user.destroyVirtualMachine(id=vm["id"])


def test_virtualmachineid_lists_what_a_vm_can_change_to(people: dict[str, Tenant], sandbox: Sandbox) -> None:
    user = people["root"].api
    vm = user.deployVirtualMachine(zoneid=sandbox.advanced_zone, templateid=sandbox.template,
                                   serviceofferingid=sandbox.medium)["virtualmachine"]
    running = names(user.listServiceOfferings(virtualmachineid=vm["id"]), "serviceoffering")
    assert "Medium Instance" not in running and "Small Instance" not in running  # smaller than a running VM
    user.stopVirtualMachine(id=vm["id"])
    stopped = names(user.listServiceOfferings(virtualmachineid=vm["id"]), "serviceoffering")
    assert "Small Instance" in stopped and "Medium Instance" not in stopped
    other = people["b"].api
    err = error_of(other.listServiceOfferings, virtualmachineid=vm["id"])
    assert err["errorcode"] == 531
    user.destroyVirtualMachine(id=vm["id"])


def test_service_offering_bad_input(sandbox_admin: CloudStack) -> None:
    create = sandbox_admin.createServiceOffering
    err = error_of(create, name="x", displaytext="x", customized=True, cpunumber=2)
    assert (err["errorcode"], err["cserrorcode"]) == (431, 4350)
    assert "custom compute offering" in err["errortext"]
    err = error_of(create, name="x", displaytext="x", cpunumber=1, cpuspeed=500, memory=16)
    assert err["errorcode"] == 431 and "memory" in err["errortext"]
    err = error_of(create, name="x", displaytext="x", cpunumber=0, cpuspeed=500, memory=512)
    assert err["errorcode"] == 431 and "cpu number" in err["errortext"]
    err = error_of(create, name="x", displaytext="x", cpunumber=1, cpuspeed=500, memory=512, storagetype="nvme")
    assert err["errorcode"] == 431 and "storagetype" in err["errortext"]
    err = error_of(create, name="x", displaytext="x", customized=True, mincpunumber=1)
    assert err["errorcode"] == 431 and "min/max" in err["errortext"]
    err = error_of(create, displaytext="x", cpunumber=1, cpuspeed=500, memory=512)
    assert (err["errorcode"], err["cserrorcode"]) == (431, 9999) and "name" in err["errortext"]
    err = error_of(create, name="x", displaytext="x", cpunumber="two", cpuspeed=500, memory=512)
    assert err["errorcode"] == 431 and "cpunumber" in err["errortext"]
    err = error_of(create, name="x", displaytext="x", cpunumber=1, cpuspeed=500, memory=512,
                   deploymentplanner="Nope")
    assert err["errorcode"] == 431 and "deploymentplanner" in err["errortext"]


def test_domain_restricted_offerings(sandbox_admin: CloudStack, people: dict[str, Tenant],
                                     doms: dict[str, dict[str, Any]]) -> None:
    name = unique("doma-only")
    so = sandbox_admin.createServiceOffering(name=name, displaytext=name, cpunumber=1, cpuspeed=500, memory=512,
                                             domainid=doms["a"]["id"])["serviceoffering"]
    assert so["domainid"] == doms["a"]["id"] and so["domain"] == doms["a"]["name"]
    assert name in names(people["a"].api.listServiceOfferings(), "serviceoffering")
    assert name in names(people["sub"].api.listServiceOfferings(), "serviceoffering")  # subdomains inherit
    assert name not in names(people["b"].api.listServiceOfferings(), "serviceoffering")
    assert name not in names(people["root"].api.listServiceOfferings(), "serviceoffering")
    assert name in names(sandbox_admin.listServiceOfferings(), "serviceoffering")
    assert names(sandbox_admin.listServiceOfferings(domainid=doms["a"]["id"]), "serviceoffering") == [name]
    disk = sandbox_admin.createDiskOffering(name=name, displaytext=name, disksize=1,
                                            domainid=doms["b"]["id"])["diskoffering"]
    assert name in names(people["b"].api.listDiskOfferings(), "diskoffering")
    assert name not in names(people["a"].api.listDiskOfferings(), "diskoffering")
    # and back to public
    sandbox_admin.updateServiceOffering(id=so["id"], domainid="public")
    assert name in names(people["b"].api.listServiceOfferings(), "serviceoffering")
    sandbox_admin.updateDiskOffering(id=disk["id"], domainid=doms["a"]["id"])
    assert name in names(people["a"].api.listDiskOfferings(), "diskoffering")
    assert name not in names(people["b"].api.listDiskOfferings(), "diskoffering")


def test_domain_admin_offerings(people: dict[str, Tenant], doms: dict[str, dict[str, Any]]) -> None:
    da = people["dadmin"].api
    err = error_of(da.createServiceOffering, name="x", displaytext="x", cpunumber=1, cpuspeed=500, memory=512)
    assert err["errorcode"] == 431 and "public" in err["errortext"]
    err = error_of(da.createServiceOffering, name="x", displaytext="x", cpunumber=1, cpuspeed=500, memory=512,
                   domainid=doms["b"]["id"])
    assert err["errorcode"] == 431
    name = unique("da-so")
    so = da.createServiceOffering(name=name, displaytext=name, cpunumber=1, cpuspeed=500, memory=512,
                                  domainid=doms["sub"]["id"])["serviceoffering"]
    assert name in names(people["sub"].api.listServiceOfferings(), "serviceoffering")
    assert name not in names(people["a"].api.listServiceOfferings(), "serviceoffering")  # a is above sub
    err = error_of(da.createServiceOffering, name="x", displaytext="x", cpunumber=1, cpuspeed=500, memory=512,
                   domainid=doms["a"]["id"], issystem=True)
    assert err["errorcode"] == 531 and "issystem" in err["errortext"]
    small = next(o for o in da.listServiceOfferings()["serviceoffering"] if o["name"] == "Small Instance")
    err = error_of(da.updateServiceOffering, id=small["id"], name="mine")
    assert err["errorcode"] == 431 and "public" in err["errortext"]
    assert da.updateServiceOffering(id=so["id"], displaytext="ok")["serviceoffering"]["displaytext"] == "ok"
    assert da.deleteServiceOffering(id=so["id"])["success"] is True


def test_users_cannot_manage_offerings(people: dict[str, Tenant]) -> None:
    user = people["a"].api
    for call, params in ((user.createServiceOffering, {"name": "x", "displaytext": "x"}),
                         (user.createDiskOffering, {"name": "x", "displaytext": "x", "disksize": 1}),
                         (user.createNetworkOffering, {"name": "x", "displaytext": "x", "guestiptype": "L2",
                                                       "traffictype": "Guest"}),
                         (user.listHypervisorCapabilities, {}),
                         (user.addGuestOs, {"oscategoryid": "x", "osdisplayname": "x"})):
        err = error_of(call, **params)
        assert err["errorcode"] == 401, call
    err = error_of(user.listServiceOfferings, issystem=True)
    assert err["errorcode"] == 431 and "system" in err["errortext"]


def test_system_and_zone_offerings(sandbox_admin: CloudStack, sandbox: Sandbox, people: dict[str, Tenant]) -> None:
    name = unique("sys")
    sys_off = sandbox_admin.createServiceOffering(name=name, displaytext=name, cpunumber=1, cpuspeed=500, memory=256,
                                                  issystem=True, systemvmtype="domainrouter")["serviceoffering"]
    assert sys_off["issystem"] is True and sys_off["systemvmtype"] == "domainrouter"
    assert name not in names(sandbox_admin.listServiceOfferings(), "serviceoffering")
    system = {o["name"]: o for o in sandbox_admin.listServiceOfferings(issystem=True)["serviceoffering"]}
    assert name in system
    router = system["System Offering For Software Router"]
    assert router["systemvmtype"] == "domainrouter" and router["issystem"] is True
    assert {"System Offering For Console Proxy", "System Offering For Secondary Storage VM"} <= set(system)
    err = error_of(sandbox_admin.deleteServiceOffering, id=router["id"])
    assert err["errorcode"] == 431 and "system offerings" in err["errortext"]
    err = error_of(people["b"].api.listServiceOfferings, issystem=True)
    assert err["errorcode"] == 431
    assert "System Offering For Software Router" not in names(people["b"].api.listServiceOfferings(),
                                                              "serviceoffering")
    offerings = sandbox_admin.listNetworkOfferings()["networkoffering"]
    assert {o["serviceofferingid"] for o in offerings} == {router["id"]}
    err = error_of(sandbox_admin.createServiceOffering, name="x", displaytext="x", cpunumber=1, cpuspeed=500,
                   memory=256, issystem=True, systemvmtype="toaster")
    assert err["errorcode"] == 431 and "systemvmtype" in err["errortext"]
    zname = unique("basic-only")
    sandbox_admin.createServiceOffering(name=zname, displaytext=zname, cpunumber=1, cpuspeed=500, memory=256,
                                        zoneid=sandbox.basic_zone)
    user = people["b"].api
    assert zname in names(user.listServiceOfferings(zoneid=sandbox.basic_zone), "serviceoffering")
    assert zname not in names(user.listServiceOfferings(zoneid=sandbox.advanced_zone), "serviceoffering")
    assert "Small Instance" in names(user.listServiceOfferings(zoneid=sandbox.advanced_zone), "serviceoffering")


# -- disk offerings -------------------------------------------------------------------------------


def test_disk_offering_crud(sandbox_admin: CloudStack, people: dict[str, Tenant]) -> None:
    name = unique("disk")
    d = sandbox_admin.createDiskOffering(name=name, displaytext="ten", disksize=10, tags="ssd", miniops=100,
                                         maxiops=500, provisioningtype="fat", cachemode="writeback")["diskoffering"]
    assert d["disksize"] == 10 and d["iscustomized"] is False and d["tags"] == "ssd"
    assert (d["miniops"], d["maxiops"], d["provisioningtype"], d["cacheMode"]) == (100, 500, "fat", "writeback")
    custom = sandbox_admin.createDiskOffering(name=name + "-c", displaytext="custom", customized=True)["diskoffering"]
    assert custom["iscustomized"] is True and custom["disksize"] == 0
    user = people["b"].api
    assert {name, name + "-c"} <= set(names(user.listDiskOfferings(), "diskoffering"))
    up = sandbox_admin.updateDiskOffering(id=d["id"], name=name + "-x", displayoffering=False)["diskoffering"]
    assert up["name"] == name + "-x" and up["displayoffering"] is False
    assert name + "-x" not in names(user.listDiskOfferings(), "diskoffering")  # hidden from users
    assert name + "-x" in names(sandbox_admin.listDiskOfferings(), "diskoffering")
    assert sandbox_admin.deleteDiskOffering(id=d["id"])["success"] is True
    assert name + "-x" not in names(sandbox_admin.listDiskOfferings(), "diskoffering")


def test_disk_offering_bad_input(sandbox_admin: CloudStack) -> None:
    create = sandbox_admin.createDiskOffering
    err = error_of(create, name="x", displaytext="x")
    assert (err["errorcode"], err["cserrorcode"]) == (431, 4350) and "Disksize" in err["errortext"]
    err = error_of(create, name="x", displaytext="x", customized=True, disksize=5)
    assert err["errorcode"] == 431 and "customized" in err["errortext"]
    err = error_of(create, name="x", displaytext="x", disksize=0)
    assert err["errorcode"] == 431 and "1 GB" in err["errortext"]
    err = error_of(create, name="x", displaytext="x", disksize=5, miniops=500, maxiops=100)
    assert err["errorcode"] == 431 and "IOPS" in err["errortext"]
    err = error_of(create, name="x", displaytext="x", disksize=5, provisioningtype="thick")
    assert err["errorcode"] == 431 and "provisioningtype" in err["errortext"]
    err = error_of(create, name="x", disksize=5)
    assert (err["errorcode"], err["cserrorcode"]) == (431, 9999) and "displaytext" in err["errortext"]


# -- network offerings ----------------------------------------------------------------------------


DEFAULT_NETWORK_OFFERINGS = {"DefaultIsolatedNetworkOfferingWithSourceNatService", "DefaultIsolatedNetworkOffering",
                             "DefaultSharedNetworkOfferingWithSGService", "DefaultSharedNetworkOffering",
                             "DefaultL2NetworkOffering", "DefaultL2NetworkOfferingVlan"}


def test_list_network_offerings(people: dict[str, Tenant]) -> None:
    user = people["b"].api
    listed = user.listNetworkOfferings()["networkoffering"]
    assert DEFAULT_NETWORK_OFFERINGS <= {o["name"] for o in listed}
    snat = next(o for o in listed if o["name"] == "DefaultIsolatedNetworkOfferingWithSourceNatService")
    assert snat["guestiptype"] == "Isolated" and snat["availability"] == "Required" and snat["isdefault"] is True
    assert snat["state"] == "Enabled" and snat["traffictype"] == "Guest"
    assert {s["name"] for s in snat["service"]} >= {"SourceNat", "Dhcp", "Dns", "Firewall"}
    assert snat["service"][0]["provider"] == [{"name": "VirtualRouter"}]
    isolated = set(names(user.listNetworkOfferings(guestiptype="Isolated"), "networkoffering"))
    assert {"DefaultIsolatedNetworkOfferingWithSourceNatService", "DefaultIsolatedNetworkOffering"} <= isolated
    assert not isolated & {"DefaultSharedNetworkOffering", "DefaultL2NetworkOffering"}
    with_snat = set(names(user.listNetworkOfferings(supportedservices="SourceNat"), "networkoffering"))
    assert "DefaultIsolatedNetworkOfferingWithSourceNatService" in with_snat
    assert "DefaultIsolatedNetworkOffering" not in with_snat
    sg = set(names(user.listNetworkOfferings(supportedservices="SecurityGroup,Dhcp"), "networkoffering"))
    assert "DefaultSharedNetworkOfferingWithSGService" in sg and "DefaultSharedNetworkOffering" not in sg
    assert user.listNetworkOfferings(forvpc=True, isdefault=True).get("networkoffering") is None
    assert DEFAULT_NETWORK_OFFERINGS <= set(names(user.listNetworkOfferings(state="Enabled", isdefault=True),
                                                  "networkoffering"))
    err = error_of(user.listNetworkOfferings, supportedservices="Teleport")
    assert err["errorcode"] == 431 and "supportedservices" in err["errortext"]


def test_network_offering_lifecycle(sandbox_admin: CloudStack, people: dict[str, Tenant]) -> None:
    name = unique("netoff")
    no = sandbox_admin.createNetworkOffering(
        name=name, displaytext=name, guestiptype="Isolated", traffictype="Guest",
        supportedservices="Dhcp,Dns,SourceNat,StaticNat",
        serviceproviderlist=[{"service": "Dhcp", "provider": "VirtualRouter"}], networkrate=200)["networkoffering"]
    assert no["state"] == "Disabled" and no["isdefault"] is False and no["networkrate"] == 200
    assert {s["name"] for s in no["service"]} == {"Dhcp", "Dns", "SourceNat", "StaticNat"}
    user = people["b"].api
    assert name in names(user.listNetworkOfferings(state="Disabled"), "networkoffering")
    assert name not in names(user.listNetworkOfferings(state="Enabled"), "networkoffering")
    up = sandbox_admin.updateNetworkOffering(id=no["id"], state="Enabled", displaytext="on")["networkoffering"]
    assert up["state"] == "Enabled" and up["displaytext"] == "on"
    assert name in names(user.listNetworkOfferings(state="Enabled"), "networkoffering")
    assert sandbox_admin.deleteNetworkOffering(id=no["id"])["success"] is True
    assert name not in names(sandbox_admin.listNetworkOfferings(), "networkoffering")
    default = sandbox_admin.listNetworkOfferings(name="DefaultL2NetworkOffering")["networkoffering"][0]
    err = error_of(sandbox_admin.deleteNetworkOffering, id=default["id"])
    assert err["errorcode"] == 431 and "Default" in err["errortext"]


def test_network_offering_bad_input(sandbox_admin: CloudStack) -> None:
    create = sandbox_admin.createNetworkOffering
    base = {"name": "x", "displaytext": "x", "traffictype": "Guest"}
    err = error_of(create, guestiptype="Bridged", **base)
    assert err["errorcode"] == 431 and "guestiptype" in err["errortext"]
    err = error_of(create, guestiptype="Isolated", supportedservices="Dhcp,Teleport", **base)
    assert err["errorcode"] == 431 and "Teleport" in err["errortext"]
    err = error_of(create, guestiptype="L2", supportedservices="SourceNat", **base)
    assert err["errorcode"] == 431 and "L2" in err["errortext"]
    err = error_of(create, guestiptype="Shared", availability="Required", **base)
    assert err["errorcode"] == 431 and "availability" in err["errortext"]
    err = error_of(create, name="x", displaytext="x", traffictype="Public", guestiptype="Isolated")
    assert err["errorcode"] == 431 and "traffictype" in err["errortext"]
    err = error_of(create, guestiptype="Isolated", supportedservices="Dhcp",
                   serviceproviderlist=[{"service": "Dhcp", "provider": "Nobody"}], **base)
    assert err["errorcode"] == 431 and "Nobody" in err["errortext"]
    err = error_of(create, name="x", displaytext="x", guestiptype="Isolated")
    assert (err["errorcode"], err["cserrorcode"]) == (431, 9999) and "traffictype" in err["errortext"]


# -- OS types -------------------------------------------------------------------------------------


def test_os_types_and_categories(sandbox_admin: CloudStack, people: dict[str, Tenant]) -> None:
    user = people["b"].api
    centos = user.listOsTypes(description="CentOS 7")["ostype"]
    assert [o["description"] for o in centos] == ["CentOS 7"]
    assert centos[0]["oscategoryname"] == "CentOS" and centos[0]["isuserdefined"] is False
    cats = user.listOsCategories()["oscategory"]
    assert {"CentOS", "Ubuntu", "Windows"} <= {c["name"] for c in cats}
    windows = next(c for c in cats if c["name"] == "Windows")
    win = user.listOsTypes(oscategoryid=windows["id"])["ostype"]
    assert win and all(o["oscategoryid"] == windows["id"] for o in win)
    assert user.listOsTypes(id=centos[0]["id"])["count"] == 1
    name = unique("MyOS")
    added = sandbox_admin.addGuestOs(oscategoryid=windows["id"], osdisplayname=name)["ostype"]
    assert added["description"] == name and added["isuserdefined"] is True
    assert user.listOsTypes(description=name)["count"] == 1
    err = error_of(sandbox_admin.addGuestOs, oscategoryid=windows["id"], osdisplayname=name)
    assert err["errorcode"] == 431 and "already exists" in err["errortext"]
    renamed = sandbox_admin.updateGuestOs(id=added["id"], osdisplayname=name + "-2")["ostype"]
    assert renamed["description"] == name + "-2"
    err = error_of(sandbox_admin.updateGuestOs, id=centos[0]["id"], osdisplayname="mine")
    assert err["errorcode"] == 431 and "system defined" in err["errortext"]
    err = error_of(sandbox_admin.removeGuestOs, id=centos[0]["id"])
    assert err["errorcode"] == 431
    assert sandbox_admin.removeGuestOs(id=added["id"])["success"] is True
    assert user.listOsTypes(description=name).get("count", 0) == 0


# -- hypervisors ----------------------------------------------------------------------------------


def test_hypervisors(sandbox_admin: CloudStack, sandbox: Sandbox, people: dict[str, Tenant],
                     admin: CloudStack) -> None:
    user = people["b"].api
    assert names(user.listHypervisors(), "hypervisor") == ["Simulator"]
    assert names(user.listHypervisors(zoneid=sandbox.basic_zone), "hypervisor") == ["Simulator"]
    # a cloud without clusters (the session's plain server) answers with every hypervisor it has a driver for
    assert "Simulator" in names(admin.listHypervisors(), "hypervisor")
    caps = sandbox_admin.listHypervisorCapabilities(hypervisor="Simulator")["hypervisorCapabilities"]
    assert caps[0]["hypervisor"] == "Simulator" and caps[0]["hypervisorversion"] == "default"
    up = sandbox_admin.updateHypervisorCapabilities(id=caps[0]["id"], maxguestslimit=500,
                                                    securitygroupenabled=False)["hypervisorCapabilities"]
    assert up["maxguestslimit"] == 500 and up["securitygroupenabled"] is False
    err = error_of(sandbox_admin.updateHypervisorCapabilities, id=caps[0]["id"], maxguestslimit=-5)
    assert err["errorcode"] == 431 and "maxguestslimit" in err["errortext"]


def test_offering_lists_match_declarations(sandbox_server: Server, sandbox_admin: CloudStack) -> None:
    """Every emitted key is a declared field of the declared JSON type (see test_response_shapes)."""
    from test_response_shapes import check_object

    from overcast.api.declare import registry

    api = client(sandbox_server, sandbox_server.api_key, sandbox_server.secret_key)
    for command in ("listServiceOfferings", "listDiskOfferings", "listNetworkOfferings", "listOsTypes",
                    "listOsCategories", "listHypervisors", "listHypervisorCapabilities"):
        cls = registry.get(command)
        assert cls is not None
        result = getattr(api, command)()
        items = result.get(cls.response.object_name, [])
        assert items, command
        fields = {f.name: f for f in cls.response.all_fields()}
        for item in items:
            check_object(item, fields, command)
    assert sandbox_admin  # the same server


def test_deploy_honours_offering_scope(sandbox_admin: CloudStack, sandbox: Sandbox, people: dict[str, Tenant],
                                       doms: dict[str, dict[str, Any]]) -> None:
    name = unique("scoped")
    so = sandbox_admin.createServiceOffering(name=name, displaytext=name, cpunumber=1, cpuspeed=500, memory=256,
                                             domainid=doms["a"]["id"], zoneid=sandbox.advanced_zone)["serviceoffering"]
    deploy = {"templateid": sandbox.template, "serviceofferingid": so["id"]}
    err = error_of(people["b"].api.deployVirtualMachine, zoneid=sandbox.advanced_zone, **deploy)
    assert err["errorcode"] == 531 and "serviceofferingid" in err["errortext"]
    err = error_of(people["sub"].api.deployVirtualMachine, zoneid=sandbox.basic_zone, **deploy)
    assert err["errorcode"] == 431 and "zone" in err["errortext"]
    vm = people["sub"].api.deployVirtualMachine(zoneid=sandbox.advanced_zone, **deploy)["virtualmachine"]
    assert vm["serviceofferingid"] == so["id"]
    people["sub"].api.destroyVirtualMachine(id=vm["id"])
    disk = sandbox_admin.createDiskOffering(name=name, displaytext=name, disksize=1,
                                            domainid=doms["a"]["id"])["diskoffering"]
    err = error_of(people["b"].api.deployVirtualMachine, zoneid=sandbox.advanced_zone, templateid=sandbox.template,
                   serviceofferingid=sandbox.small, diskofferingid=disk["id"])
    assert err["errorcode"] == 531 and "diskofferingid" in err["errortext"]
