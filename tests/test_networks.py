"""Guest networks on the sandbox: isolated networks per account (created on first deploy or by
createNetwork) with a source NAT address, shared networks (admins), the basic zone's shared network,
tenant isolation, bad input, and concurrent deploys into one shared network."""

from __future__ import annotations

import ipaddress
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from cs import CloudStack

from conftest import Sandbox, Tenant, unique
from network_helpers import (
    BASIC_RANGE,
    ISOLATED_NO_SNAT,
    ISOLATED_SNAT,
    L2,
    NO_SUCH_UUID,
    PUBLIC_RANGE,
    SHARED,
    SHARED_SG,
    db_rows,
    deploy,
    error_of,
    events,
    expunge,
    in_range,
    isolated,
    offering,
)
from servers import Server


@pytest.fixture(scope="module")
def user(make_sandbox_tenant: Any) -> Tenant:
    return make_sandbox_tenant()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def other(make_sandbox_tenant: Any) -> Tenant:
    return make_sandbox_tenant()  # type: ignore[no-any-return]


def basic_network(api: CloudStack, sandbox: Sandbox) -> dict[str, Any]:
    nets = api.listNetworks(zoneid=sandbox.basic_zone)["network"]
    assert len(nets) == 1
    return nets[0]  # type: ignore[no-any-return]


def network_count(server: Server, account_id: str) -> int:
    rows = db_rows(server, "SELECT rc.count FROM resource_count rc JOIN account a ON a.id = rc.account_id "
                           "WHERE a.uuid = :a AND rc.resource_type = 'network'", a=account_id)
    return int(rows[0][0]) if rows else 0


def test_create_isolated_network_then_deploy_into_it(user: Tenant, sandbox: Sandbox,
                                                    sandbox_server: Server) -> None:
    api = user.api
    name = unique("iso")
    net = isolated(api, sandbox, name=name, displaytext="My network", gateway="10.20.0.1", netmask="255.255.255.0",
                   networkdomain="web.example")
    assert (net["name"], net["displaytext"], net["type"], net["acltype"]) == (name, "My network", "Isolated", "Account")
    assert (net["cidr"], net["gateway"], net["netmask"]) == ("10.20.0.0/24", "10.20.0.1", "255.255.255.0")
    assert net["state"] == "Allocated" and net["account"] == user.name and net["networkdomain"] == "web.example"
    assert net["networkofferingname"] == ISOLATED_SNAT and net["zoneid"] == sandbox.advanced_zone
    assert net["canusefordeploy"] is True and net["related"] == net["id"] and net["traffictype"] == "Guest"
    assert {"SourceNat", "Dhcp", "Dns", "Firewall"} <= {s["name"] for s in net["service"]}
    assert "vlan" not in net and "broadcasturi" not in net  # root admins only
    assert network_count(sandbox_server, user.id) >= 1

    vm = deploy(api, sandbox, networkids=net["id"])
    nic = vm["nic"][0]
    assert nic["networkid"] == net["id"] and nic["isdefault"]
    assert ipaddress.ip_address(nic["ipaddress"]) in ipaddress.ip_network("10.20.0.0/24")
    assert nic["ipaddress"] != "10.20.0.1"
    listed = api.listNetworks(id=net["id"])["network"][0]
    assert listed["state"] == "Implemented"
    snat = api.listPublicIpAddresses(associatednetworkid=net["id"], issourcenat=True)["publicipaddress"]
    assert len(snat) == 1 and in_range(snat[0]["ipaddress"], PUBLIC_RANGE)
    assert snat[0]["account"] == user.name and snat[0]["state"] == "Allocated"
    # The admin sees the VLAN the network was implemented on.
    admin_view = sandbox_admin_view(sandbox_server, net["id"])
    assert admin_view["vlan"].isdigit() and 100 <= int(admin_view["vlan"]) <= 200
    assert admin_view["broadcasturi"] == f"vlan://{admin_view['vlan']}"
    created = [e for e in events(api, "NETWORK.CREATE") if e["state"] == "Completed"]
    assert any(net["id"] in e["description"] for e in created)


def sandbox_admin_view(server: Server, net_id: str) -> dict[str, Any]:
    from conftest import client

    admin = client(server, server.api_key, server.secret_key)
    return admin.listNetworks(id=net_id, listall=True)["network"][0]  # type: ignore[no-any-return]


def test_first_deploy_creates_the_default_network(make_sandbox_tenant: Any, sandbox: Sandbox) -> None:
    fresh = make_sandbox_tenant()
    assert fresh.api.listNetworks(zoneid=sandbox.advanced_zone) == {}
    vm = deploy(fresh.api, sandbox)
    nets = fresh.api.listNetworks(zoneid=sandbox.advanced_zone)["network"]
    assert [n["id"] for n in nets] == [vm["nic"][0]["networkid"]]
    assert nets[0]["name"] == f"{fresh.name}-network" and nets[0]["isdefault"] is True
    # a second deploy reuses it
    vm2 = deploy(fresh.api, sandbox)
    assert vm2["nic"][0]["networkid"] == nets[0]["id"]


def test_deploy_into_the_basic_zones_shared_network(user: Tenant, sandbox: Sandbox,
                                                    sandbox_admin: CloudStack) -> None:
    shared = basic_network(user.api, sandbox)
    assert (shared["type"], shared["acltype"], shared["broadcastdomaintype"]) == ("Shared", "Domain", "Native")
    assert shared["networkofferingname"] == SHARED_SG and "account" not in shared
    vm = deploy(user.api, sandbox, zoneid=sandbox.basic_zone, networkids=shared["id"])
    nic = vm["nic"][0]
    assert nic["networkid"] == shared["id"] and nic["type"] == "Shared" and in_range(nic["ipaddress"], BASIC_RANGE)
    assert [g["name"] for g in vm["securitygroup"]] == ["default"]
    expunge(sandbox_admin, [vm["id"]])


def test_listing_scopes_and_filters(user: Tenant, other: Tenant, sandbox: Sandbox, sandbox_admin: CloudStack) -> None:
    mine = isolated(user.api, sandbox)
    theirs = isolated(other.api, sandbox)
    shared = basic_network(user.api, sandbox)
    ids = {n["id"] for n in user.api.listNetworks()["network"]}
    assert mine["id"] in ids and shared["id"] in ids and theirs["id"] not in ids
    assert theirs["id"] not in {n["id"] for n in user.api.listNetworks(listall=True)["network"]}
    assert user.api.listNetworks(id=theirs["id"]) == {}
    every = {n["id"] for n in sandbox_admin.listNetworks(listall=True, pagesize=500, page=1)["network"]}
    assert {mine["id"], theirs["id"], shared["id"]} <= every
    assert theirs["id"] not in {n["id"] for n in sandbox_admin.listNetworks()["network"]}  # without listall: own
    by_account = sandbox_admin.listNetworks(account=other.name, domainid=other.domain_id)["network"]
    assert theirs["id"] in {n["id"] for n in by_account} and shared["id"] not in {n["id"] for n in by_account}
    iso = {n["id"] for n in user.api.listNetworks(type="isolated")["network"]}
    assert mine["id"] in iso and shared["id"] not in iso
    shared_only = {n["id"] for n in user.api.listNetworks(type="Shared")["network"]}
    assert shared["id"] in shared_only and mine["id"] not in shared_only
    assert shared["id"] not in {n["id"] for n in user.api.listNetworks(zoneid=sandbox.advanced_zone)["network"]}
    assert mine["id"] in {n["id"] for n in user.api.listNetworks(canusefordeploy=True)["network"]}
    assert user.api.listNetworks(canusefordeploy=False) == {}
    by_offering = user.api.listNetworks(networkofferingid=offering(user.api, ISOLATED_SNAT))["network"]
    assert mine["id"] in {n["id"] for n in by_offering} and shared["id"] not in {n["id"] for n in by_offering}
    assert [n["id"] for n in user.api.listNetworks(keyword=mine["name"])["network"]] == [mine["id"]]
    assert [n["id"] for n in user.api.listNetworks(name=mine["name"])["network"]] == [mine["id"]]
    sg = {n["id"] for n in user.api.listNetworks(supportedservices="SecurityGroup")["network"]}
    assert sg == {shared["id"]}
    assert user.api.listNetworks(traffictype="Public") == {}
    user.api.createTags(resourceids=mine["id"], resourcetype="Network", tags=[{"key": "tier", "value": "web"}])
    tagged = user.api.listNetworks(tags=[{"key": "tier", "value": "web"}])["network"]
    assert [n["id"] for n in tagged] == [mine["id"]] and tagged[0]["tags"][0]["key"] == "tier"


def test_tenants_cannot_use_or_change_each_others_networks(user: Tenant, other: Tenant, sandbox: Sandbox) -> None:
    net = isolated(user.api, sandbox)
    err = error_of(lambda: deploy(other.api, sandbox, networkids=net["id"]))
    assert err["errorcode"] == 531
    for call in (lambda: other.api.deleteNetwork(id=net["id"]),
                 lambda: other.api.updateNetwork(id=net["id"], name="pwned"),
                 lambda: other.api.restartNetwork(id=net["id"]),
                 lambda: other.api.associateIpAddress(networkid=net["id"])):
        assert error_of(call)["errorcode"] == 531
    assert user.api.listNetworks(id=net["id"])["network"][0]["name"] == net["name"]


def test_delete_waits_for_vms_then_releases_addresses_and_count(make_sandbox_tenant: Any, sandbox: Sandbox,
                                                                sandbox_admin: CloudStack,
                                                                sandbox_server: Server) -> None:
    owner = make_sandbox_tenant()
    net = isolated(owner.api, sandbox)
    assert network_count(sandbox_server, owner.id) == 1
    vm = deploy(owner.api, sandbox, networkids=net["id"])
    extra = owner.api.associateIpAddress(networkid=net["id"])["ipaddress"]
    addresses = [ip["ipaddress"] for ip in owner.api.listPublicIpAddresses(associatednetworkid=net["id"])["publicipaddress"]]
    assert len(addresses) == 2 and extra["ipaddress"] in addresses
    err = error_of(lambda: owner.api.deleteNetwork(id=net["id"]))
    assert err["errorcode"] == 536
    assert err["errortext"] == (f"Can't delete the network, not all user vms are expunged. Vm {vm['name']} is in"
                                " Running state")
    owner.api.destroyVirtualMachine(id=vm["id"])
    err = error_of(lambda: owner.api.deleteNetwork(id=net["id"]))  # destroyed is not expunged
    assert err["errorcode"] == 536 and "Destroyed" in err["errortext"]
    expunge(sandbox_admin, [vm["id"]])
    assert owner.api.deleteNetwork(id=net["id"]) == {"success": True}
    assert owner.api.listNetworks(id=net["id"]) == {}
    assert owner.api.listPublicIpAddresses() == {}
    states = db_rows(sandbox_server, "SELECT state, account_id FROM public_ip WHERE address IN :a".replace(
        ":a", "(" + ",".join(f"'{a}'" for a in addresses) + ")"))
    assert sorted(states) == [("Free", None), ("Free", None)]
    assert network_count(sandbox_server, owner.id) == 0
    ip_count = db_rows(sandbox_server, "SELECT rc.count FROM resource_count rc JOIN account a ON a.id = "
                                       "rc.account_id WHERE a.uuid = :a AND rc.resource_type = 'public_ip'", a=owner.id)
    assert ip_count == [(0,)]
    types = {e["type"] for e in owner.api.listEvents(pagesize=500, page=1)["event"] if e["state"] == "Completed"}
    assert {"NETWORK.CREATE", "NETWORK.DELETE", "NET.IPASSIGN", "NET.IPRELEASE"} <= types
    # a deleted network is gone for every command
    err = error_of(lambda: owner.api.updateNetwork(id=net["id"], name="x"))
    assert err["errorcode"] == 431 and "parameter id " in err["errortext"]


def test_update_and_restart(user: Tenant, sandbox: Sandbox, sandbox_admin: CloudStack) -> None:
    api = user.api
    net = isolated(api, sandbox)
    err = error_of(lambda: api.restartNetwork(id=net["id"]))
    assert err["errorcode"] == 431 and "Correct states are: Implemented, Setup" in err["errortext"]
    updated = api.updateNetwork(id=net["id"], name="renamed", displaytext="Renamed", networkdomain="r.example")["network"]
    assert (updated["name"], updated["displaytext"], updated["networkdomain"]) == ("renamed", "Renamed", "r.example")
    err = error_of(lambda: api.updateNetwork(id=net["id"], networkdomain="-bad-"))
    assert err["errorcode"] == 431 and "networkdomain" in err["errortext"]
    vm = deploy(api, sandbox, networkids=net["id"])
    assert api.restartNetwork(id=net["id"]) == {"success": True}
    assert api.restartNetwork(id=net["id"], cleanup=True) == {"success": True}
    assert api.listNetworks(id=net["id"])["network"][0]["state"] == "Implemented"
    # Another offering of the same guest type: without source NAT, the source NAT address goes back.
    assert api.listPublicIpAddresses(associatednetworkid=net["id"], issourcenat=True)["count"] == 1
    changed = api.updateNetwork(id=net["id"], networkofferingid=offering(api, ISOLATED_NO_SNAT))["network"]
    assert changed["networkofferingname"] == ISOLATED_NO_SNAT and changed["state"] == "Implemented"
    assert "SourceNat" not in {s["name"] for s in changed["service"]}
    assert api.listPublicIpAddresses(associatednetworkid=net["id"]) == {}
    err = error_of(lambda: api.updateNetwork(id=net["id"], networkofferingid=offering(api, SHARED)))
    assert err["errorcode"] == 431 and "guest types differ" in err["errortext"]
    # and back: a source NAT address again
    api.updateNetwork(id=net["id"], networkofferingid=offering(api, ISOLATED_SNAT))
    assert api.listPublicIpAddresses(associatednetworkid=net["id"], issourcenat=True)["count"] == 1
    types = {e["type"] for e in events(api, "NETWORK.UPDATE") + events(api, "NETWORK.RESTART")
             if e["state"] == "Completed"}
    assert types == {"NETWORK.UPDATE", "NETWORK.RESTART"}
    expunge(sandbox_admin, [vm["id"]])


def test_bad_input_names_the_parameter(user: Tenant, sandbox: Sandbox) -> None:
    api = user.api
    off = offering(api, ISOLATED_SNAT)
    err = error_of(lambda: api.createNetwork(networkofferingid=off, zoneid=sandbox.advanced_zone))
    assert err["errortext"] == "Unable to execute API command createnetwork due to missing parameter name"
    err = error_of(lambda: api.createNetwork(name="x", networkofferingid=NO_SUCH_UUID, zoneid=sandbox.advanced_zone))
    assert err["errorcode"] == 431 and "networkofferingid" in err["errortext"]
    cases = [
        (dict(gateway="10.9.0.1"), "netmask"),
        (dict(gateway="10.9.0.1", netmask="255.255.0.255"), "netmask"),
        (dict(gateway="10.9.0.300", netmask="255.255.255.0"), "gateway"),
        (dict(gateway="8.8.8.1", netmask="255.255.255.0"), "private"),
        (dict(gateway="10.9.0.1", netmask="255.255.255.252"), "netmask"),
        (dict(startip="10.1.1.5"), "startip"),
        (dict(networkdomain="bad_domain!"), "networkdomain"),
    ]
    for extra, word in cases:
        err = error_of(lambda extra=extra: api.createNetwork(name="x", networkofferingid=off,
                                                             zoneid=sandbox.advanced_zone, **extra))
        assert err["errorcode"] == 431 and word in err["errortext"], (extra, err)
    err = error_of(lambda: api.createNetwork(name="x", networkofferingid=off, zoneid=sandbox.basic_zone))
    assert err["errorcode"] == 431 and "basic zone" in err["errortext"]
    err = error_of(lambda: api.createNetwork(name="x", networkofferingid=offering(api, L2), zoneid=sandbox.advanced_zone))
    assert err["errorcode"] == 431 and "networkofferingid" in err["errortext"]
    err = error_of(lambda: api.createNetwork(name="x", networkofferingid=offering(api, SHARED),
                                             zoneid=sandbox.advanced_zone, vlan="300", gateway="10.30.0.1",
                                             netmask="255.255.255.0", startip="10.30.0.10"))
    assert err["errorcode"] == 531 and "Shared" in err["errortext"]
    err = error_of(lambda: api.deleteNetwork(id="not-a-uuid"))
    assert err["errorcode"] == 431 and "id" in err["errortext"]
    err = error_of(lambda: api.deleteNetwork(id="-1"))
    assert err["errorcode"] == 431 and "parameter id " in err["errortext"]
    err = error_of(lambda: api.listNetworks(zoneid="-1"))
    assert err["errorcode"] == 431 and "parameter zoneid " in err["errortext"]


def test_offerings_need_providers_with_elements(user: Tenant, sandbox: Sandbox, sandbox_admin: CloudStack) -> None:
    off = sandbox_admin.createNetworkOffering(
        name=unique("tungsten"), displaytext="no element", traffictype="GUEST", guestiptype="Isolated",
        supportedservices="Dhcp,Dns,UserData", enable=True,
        serviceproviderlist=[{"service": "Dhcp", "provider": "VirtualRouter"},
                             {"service": "Dns", "provider": "VirtualRouter"},
                             {"service": "UserData", "provider": "Tungsten"}])["networkoffering"]
    err = error_of(lambda: isolated(user.api, sandbox, networkofferingid=off["id"]))
    assert err["errorcode"] == 431 and "Tungsten" in err["errortext"] and "networkofferingid" in err["errortext"]


def test_network_limit(make_sandbox_tenant: Any, sandbox: Sandbox, sandbox_admin: CloudStack) -> None:
    owner = make_sandbox_tenant()
    sandbox_admin.updateResourceLimit(account=owner.name, domainid=owner.domain_id, resourcetype=6, max=1)
    isolated(owner.api, sandbox)
    err = error_of(lambda: isolated(owner.api, sandbox))
    assert err["errorcode"] == 532 and "network" in err["errortext"]


def test_shared_networks_for_a_domain(sandbox: Sandbox, sandbox_admin: CloudStack,
                                      make_sandbox_tenant: Any) -> None:
    admin = sandbox_admin
    dom = admin.createDomain(name=unique("netdom"))["domain"]
    sub = admin.createDomain(name=unique("netsub"), parentdomainid=dom["id"])["domain"]
    inside, below, outside = (make_sandbox_tenant(domainid=dom["id"]), make_sandbox_tenant(domainid=sub["id"]),
                              make_sandbox_tenant())
    shared_off = offering(admin, SHARED)
    vlan = "300"
    params = dict(name=unique("shared"), networkofferingid=shared_off, zoneid=sandbox.advanced_zone, vlan=vlan,
                  gateway="10.30.0.1", netmask="255.255.255.0", startip="10.30.0.10", endip="10.30.0.20",
                  domainid=dom["id"], acltype="Domain")
    net = admin.createNetwork(**params)["network"]
    assert (net["type"], net["acltype"], net["vlan"], net["subdomainaccess"]) == ("Shared", "Domain", vlan, True)
    assert net["domainid"] == dom["id"] and net["state"] == "Setup" and "account" not in net
    for t in (inside, below):
        assert net["id"] in {n["id"] for n in t.api.listNetworks()["network"]}
        vm = deploy(t.api, sandbox, networkids=net["id"])
        ip = ipaddress.ip_address(vm["nic"][0]["ipaddress"])
        assert ipaddress.ip_address("10.30.0.10") <= ip <= ipaddress.ip_address("10.30.0.20")
        admin.destroyVirtualMachine(id=vm["id"], expunge=True)
    assert net["id"] not in {n["id"] for n in outside.api.listNetworks(listall=True).get("network", [])}
    assert error_of(lambda: deploy(outside.api, sandbox, networkids=net["id"]))["errorcode"] == 531
    assert error_of(lambda: inside.api.deleteNetwork(id=net["id"]))["errorcode"] == 531
    # the same VLAN twice, missing addresses, missing VLAN
    err = error_of(lambda: admin.createNetwork(**{**params, "name": unique("dup"), "gateway": "10.31.0.1",
                                                  "startip": "10.31.0.10", "endip": "10.31.0.20"}))
    assert err["errorcode"] == 431 and "vlan" in err["errortext"]
    err = error_of(lambda: admin.createNetwork(name="x", networkofferingid=shared_off, zoneid=sandbox.advanced_zone,
                                               vlan="1999"))
    assert err["errorcode"] == 431 and "gateway, netmask, startip" in err["errortext"]
    err = error_of(lambda: admin.createNetwork(name="x", networkofferingid=shared_off, zoneid=sandbox.advanced_zone,
                                               gateway="10.32.0.1", netmask="255.255.255.0", startip="10.32.0.5"))
    assert err["errorcode"] == 431 and "vlan" in err["errortext"]
    err = error_of(lambda: admin.createNetwork(name="x", networkofferingid=shared_off, zoneid=sandbox.advanced_zone,
                                               vlan="1998", gateway="10.33.0.1", netmask="255.255.255.0",
                                               startip="10.33.0.20", endip="10.33.0.10"))
    assert err["errorcode"] == 431 and "endip" in err["errortext"]
    err = error_of(lambda: admin.createNetwork(name="x", networkofferingid=offering(admin, SHARED_SG),
                                               zoneid=sandbox.advanced_zone, vlan="1997", gateway="10.34.0.1",
                                               netmask="255.255.255.0", startip="10.34.0.5"))
    assert err["errorcode"] == 431 and "security group" in err["errortext"]
    err = error_of(lambda: admin.createNetwork(name="x", networkofferingid=offering(admin, SHARED_SG),
                                               zoneid=sandbox.basic_zone))
    assert err["errortext"] == "Can't have more than one Guest network in zone with network type Basic"
    # an account's shared network: only that account sees it
    acct_net = admin.createNetwork(**{**params, "name": unique("acctnet"), "vlan": str(int(vlan) + 1),
                                      "gateway": "10.35.0.1", "startip": "10.35.0.10", "endip": "10.35.0.20",
                                      "acltype": "Account", "account": inside.name, "domainid": dom["id"]})["network"]
    assert acct_net["acltype"] == "Account" and acct_net["account"] == inside.name
    assert acct_net["id"] in {n["id"] for n in inside.api.listNetworks()["network"]}
    assert acct_net["id"] not in {n["id"] for n in below.api.listNetworks()["network"]}
    assert admin.deleteNetwork(id=acct_net["id"]) == {"success": True}
    assert admin.deleteNetwork(id=net["id"]) == {"success": True}
    assert inside.api.listNetworks(id=net["id"]) == {}


def test_concurrent_deploys_into_one_shared_network_get_distinct_addresses(
        make_sandbox_tenant: Any, sandbox: Sandbox, sandbox_admin: CloudStack, sandbox_server: Server) -> None:
    tenants = [make_sandbox_tenant(), make_sandbox_tenant()]
    shared = basic_network(tenants[0].api, sandbox)

    def one(i: int) -> dict[str, Any]:
        return deploy(tenants[i % 2].api, sandbox, zoneid=sandbox.basic_zone, name=f"sh{i}")

    with ThreadPoolExecutor(max_workers=20) as pool:
        vms = list(pool.map(one, range(20)))
    try:
        assert all(v["state"] == "Running" for v in vms)
        ips = [v["nic"][0]["ipaddress"] for v in vms]
        assert len(set(ips)) == 20 and all(in_range(ip, BASIC_RANGE) for ip in ips)
        assert {v["nic"][0]["networkid"] for v in vms} == {shared["id"]}
        assert len({v["nic"][0]["macaddress"] for v in vms}) == 20
        dupes = db_rows(sandbox_server, "SELECT n.ip_address, COUNT(*) FROM nic n JOIN network w ON w.id = n.network_id "
                                        "WHERE w.uuid = :w AND n.ip_address IS NOT NULL GROUP BY n.ip_address "
                                        "HAVING COUNT(*) > 1", w=shared["id"])
        assert dupes == []
        # each account got exactly one default security group, although its deploys raced to create it
        for t in tenants:
            assert [g["name"] for g in t.api.listSecurityGroups()["securitygroup"]] == ["default"]
    finally:
        expunge(sandbox_admin, [v["id"] for v in vms])


def test_emitted_fields_match_the_declarations(user: Tenant, sandbox: Sandbox, sandbox_admin: CloudStack) -> None:
    """Every key of every network, address, security group and NIC object is declared, with its type."""
    from overcast.api.declare import registry
    from test_response_shapes import check_object

    net = isolated(user.api, sandbox)
    vm = deploy(user.api, sandbox, networkids=net["id"])
    user.api.associateIpAddress(networkid=net["id"])
    sg = user.api.createSecurityGroup(name=unique("shape"))["securitygroup"]
    user.api.authorizeSecurityGroupIngress(securitygroupid=sg["id"], protocol="icmp", icmptype=8, icmpcode=0,
                                           cidrlist="0.0.0.0/0")
    user.api.authorizeSecurityGroupEgress(securitygroupid=sg["id"], protocol="tcp", startport=1, endport=2,
                                          cidrlist="0.0.0.0/0")
    for api in (user.api, sandbox_admin):
        for command, params in (("listNetworks", {"listall": True}), ("listPublicIpAddresses", {"listall": True}),
                                ("listSecurityGroups", {"listall": True}),
                                ("listNics", {"virtualmachineid": vm["id"]})):
            cls = registry.get(command)
            assert cls is not None
            items = getattr(api, command)(**params)[cls.response.object_name]
            fields = {f.name: f for f in cls.response.all_fields()}
            for item in items:
                check_object(item, fields, command)
    expunge(sandbox_admin, [vm["id"]])
