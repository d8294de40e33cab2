"""Public IP addresses: associate (the first of a network becomes its source NAT), list, disassociate,
limits, tenant isolation, the (empty) forwarding rule lists libcloud reads, and concurrent associates."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from cs import CloudStack

from conftest import Sandbox, Tenant
from network_helpers import PUBLIC_RANGE, db_rows, deploy, error_of, events, in_range, isolated
from overcast.access.signing import sign
from servers import Server


@pytest.fixture(scope="module")
def user(make_sandbox_tenant: Any) -> Tenant:
    return make_sandbox_tenant()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def other(make_sandbox_tenant: Any) -> Tenant:
    return make_sandbox_tenant()  # type: ignore[no-any-return]


def ip_count(server: Server, account_id: str) -> int:
    rows = db_rows(server, "SELECT rc.count FROM resource_count rc JOIN account a ON a.id = rc.account_id "
                           "WHERE a.uuid = :a AND rc.resource_type = 'public_ip'", a=account_id)
    return int(rows[0][0]) if rows else 0


def test_associate_list_disassociate(user: Tenant, sandbox: Sandbox, sandbox_server: Server) -> None:
    api = user.api
    net = isolated(api, sandbox)
    first = api.associateIpAddress(networkid=net["id"])["ipaddress"]
    # a network without a source NAT address gets its first address as source NAT (CloudStack's rule)
    assert first["issourcenat"] is True and first["associatednetworkid"] == net["id"]
    assert first["state"] == "Allocated" and in_range(first["ipaddress"], PUBLIC_RANGE)
    assert first["account"] == user.name and first["zoneid"] == sandbox.advanced_zone
    assert first["forvirtualnetwork"] is True and first["isstaticnat"] is False and first["issystem"] is False
    assert "vlanid" not in first and "vlanname" not in first  # root admins only
    second = api.associateIpAddress(networkid=net["id"])["ipaddress"]
    assert second["issourcenat"] is False and second["ipaddress"] != first["ipaddress"]
    # deploying into the network keeps the source NAT address it has
    vm = deploy(api, sandbox, networkids=net["id"])
    snat = api.listPublicIpAddresses(associatednetworkid=net["id"], issourcenat=True)["publicipaddress"]
    assert [ip["id"] for ip in snat] == [first["id"]]
    listed = {ip["id"]: ip for ip in api.listPublicIpAddresses()["publicipaddress"]}
    assert {first["id"], second["id"]} <= set(listed)
    assert listed[second["id"]]["associatednetworkname"] == net["name"]
    assert [ip["id"] for ip in api.listPublicIpAddresses(ipaddress=second["ipaddress"])["publicipaddress"]] == [second["id"]]
    assert api.listPublicIpAddresses(id=second["id"])["count"] == 1
    assert api.listPublicIpAddresses(issourcenat=False, associatednetworkid=net["id"])["publicipaddress"][0]["id"] == second["id"]
    assert api.listPublicIpAddresses(isstaticnat=True) == {}
    assert api.listPublicIpAddresses(forvirtualnetwork=False) == {}
    assert api.listPublicIpAddresses(zoneid=sandbox.basic_zone) == {}
    free = api.listPublicIpAddresses(allocatedonly=False, state="Free", pagesize=5, page=1)
    assert free["count"] > 0 and all(ip["state"] == "Free" and "account" not in ip for ip in free["publicipaddress"])
    count = ip_count(sandbox_server, user.id)
    err = error_of(lambda: api.disassociateIpAddress(id=first["id"]))
    assert err["errorcode"] == 431 and "source nat" in err["errortext"]
    assert api.disassociateIpAddress(id=second["id"]) == {"success": True}
    assert api.listPublicIpAddresses(id=second["id"]) == {}
    assert ip_count(sandbox_server, user.id) == count - 1
    err = error_of(lambda: api.disassociateIpAddress(id=second["id"]))
    assert err["errorcode"] == 431
    assert {e["state"] for e in events(api, "NET.IPRELEASE")} >= {"Completed"}
    assert {e["state"] for e in events(api, "NET.IPASSIGN")} >= {"Completed"}
    api.stopVirtualMachine(id=vm["id"])


def test_associate_by_zone_and_by_address(make_sandbox_tenant: Any, sandbox: Sandbox) -> None:
    owner = make_sandbox_tenant()
    api = owner.api
    err = error_of(lambda: api.associateIpAddress())
    assert err["errorcode"] == 431 and "zoneid" in err["errortext"] and "networkid" in err["errortext"]
    err = error_of(lambda: api.associateIpAddress(zoneid=sandbox.advanced_zone))
    assert err["errorcode"] == 431 and "doesn't have virtual networks" in err["errortext"]
    net = isolated(api, sandbox)
    ip = api.associateIpAddress(zoneid=sandbox.advanced_zone)["ipaddress"]
    assert ip["associatednetworkid"] == net["id"]
    wanted = api.listPublicIpAddresses(allocatedonly=False, state="Free", pagesize=1, page=1)["publicipaddress"][0]
    got = api.associateIpAddress(networkid=net["id"], ipaddress=wanted["ipaddress"])["ipaddress"]
    assert (got["id"], got["ipaddress"]) == (wanted["id"], wanted["ipaddress"])
    err = error_of(lambda: api.associateIpAddress(networkid=net["id"], ipaddress=wanted["ipaddress"]))
    assert err["errorcode"] == 431 and "already in use" in err["errortext"]
    err = error_of(lambda: api.associateIpAddress(networkid=net["id"], ipaddress="10.0.0.1"))
    assert err["errorcode"] == 431 and "ipaddress" in err["errortext"]
    err = error_of(lambda: api.associateIpAddress(networkid=net["id"], ipaddress="not-an-ip"))
    assert err["errorcode"] == 431 and "ipaddress" in err["errortext"]
    isolated(api, sandbox)
    err = error_of(lambda: api.associateIpAddress(zoneid=sandbox.advanced_zone))
    assert err["errorcode"] == 431 and "more than one isolated network" in err["errortext"]
    err = error_of(lambda: api.associateIpAddress(zoneid=sandbox.basic_zone))
    assert err["errorcode"] == 431
    shared = api.listNetworks(zoneid=sandbox.basic_zone)["network"][0]
    err = error_of(lambda: api.associateIpAddress(networkid=shared["id"]))
    assert err["errorcode"] == 431 and "networkid" in err["errortext"]


def test_admin_view_and_associate_for_a_user(user: Tenant, sandbox: Sandbox, sandbox_admin: CloudStack) -> None:
    net = isolated(user.api, sandbox)
    snat = sandbox_admin.associateIpAddress(networkid=net["id"])["ipaddress"]
    ip = sandbox_admin.associateIpAddress(networkid=net["id"])["ipaddress"]
    assert snat["issourcenat"] and not ip["issourcenat"]
    assert ip["account"] == user.name  # the network's owner, as CloudStack does
    assert ip["vlanid"] and ip["vlanname"] == "vlan://50"
    listed = sandbox_admin.listPublicIpAddresses(id=ip["id"], listall=True)["publicipaddress"][0]
    assert listed["vlanid"] == ip["vlanid"]
    by_vlan = sandbox_admin.listPublicIpAddresses(vlanid=ip["vlanid"], listall=True, pagesize=500, page=1)
    assert ip["id"] in {i["id"] for i in by_vlan["publicipaddress"]}
    mine = sandbox_admin.listPublicIpAddresses(account=user.name, domainid=user.domain_id)["publicipaddress"]
    assert ip["id"] in {i["id"] for i in mine}
    assert ip["id"] not in {i["id"] for i in sandbox_admin.listPublicIpAddresses().get("publicipaddress", [])}
    assert user.api.disassociateIpAddress(id=ip["id"]) == {"success": True}


def test_tenants_cannot_see_or_release_each_others_addresses(user: Tenant, other: Tenant, sandbox: Sandbox) -> None:
    net = isolated(user.api, sandbox)
    ip = user.api.associateIpAddress(networkid=net["id"])["ipaddress"]
    assert other.api.listPublicIpAddresses(listall=True).get("publicipaddress", []) == [] or ip["id"] not in {
        i["id"] for i in other.api.listPublicIpAddresses(listall=True)["publicipaddress"]}
    assert other.api.listPublicIpAddresses(id=ip["id"]) == {}
    assert error_of(lambda: other.api.disassociateIpAddress(id=ip["id"]))["errorcode"] == 531
    assert error_of(lambda: other.api.associateIpAddress(networkid=net["id"]))["errorcode"] == 531
    assert error_of(lambda: other.api.listPortForwardingRules(ipaddressid=ip["id"]))["errorcode"] == 531
    free = other.api.listPublicIpAddresses(allocatedonly=False, state="Free", pagesize=1, page=1)["publicipaddress"][0]
    err = error_of(lambda: other.api.disassociateIpAddress(id=free["id"]))
    assert err["errorcode"] == 431 and "not associated" in err["errortext"]


def test_forwarding_rule_lists_are_empty(user: Tenant, sandbox: Sandbox, sandbox_server: Server) -> None:
    net = isolated(user.api, sandbox)
    ip = user.api.associateIpAddress(networkid=net["id"])["ipaddress"]
    for command in ("listPortForwardingRules", "listIpForwardingRules"):
        pairs = [("apiKey", user.api.key), ("response", "json"), ("command", command), ("ipaddressid", ip["id"])]
        r = httpx.get(sandbox_server.url, params=[*pairs, ("signature", sign(pairs, user.api.secret))])
        assert r.status_code == 200 and r.json() == {f"{command.lower()}response": {}}
    assert user.api.listPortForwardingRules(networkid=net["id"]) == {}
    err = error_of(lambda: user.api.listIpForwardingRules(ipaddressid="00000000-0000-4000-8000-000000000000"))
    assert err["errorcode"] == 431 and "ipaddressid" in err["errortext"]


@pytest.fixture
def libcloud_user(user: Tenant, sandbox_server: Server) -> Iterator[Any]:
    from libcloud.compute.providers import get_driver
    from libcloud.compute.types import Provider

    cls = get_driver(Provider.CLOUDSTACK)
    driver = cls(user.api.key, user.api.secret, host="127.0.0.1", port=sandbox_server.port, path="/client/api",
                 secure=False)
    driver.connection.poll_interval = 0.05
    yield driver
    conn = getattr(driver.connection, "connection", None)
    if conn is not None:
        conn.session.close()


def test_libcloud_list_nodes_reads_addresses_and_rules(libcloud_user: Any, user: Tenant, sandbox: Sandbox) -> None:
    vm = deploy(user.api, sandbox)
    nodes = {n.id: n for n in libcloud_user.list_nodes()}
    assert vm["id"] in nodes and nodes[vm["id"]].private_ips == [vm["nic"][0]["ipaddress"]]
    assert libcloud_user.ex_list_public_ips()
    user.api.stopVirtualMachine(id=vm["id"])


def test_concurrent_associates_get_distinct_addresses(make_sandbox_tenant: Any, sandbox: Sandbox,
                                                      sandbox_server: Server) -> None:
    owner = make_sandbox_tenant()
    net = isolated(owner.api, sandbox)
    with ThreadPoolExecutor(max_workers=20) as pool:
        ips = list(pool.map(lambda _: owner.api.associateIpAddress(networkid=net["id"])["ipaddress"], range(20)))
    try:
        addresses = [ip["ipaddress"] for ip in ips]
        assert len(set(addresses)) == 20 and all(in_range(a, PUBLIC_RANGE) for a in addresses)
        assert sum(1 for ip in ips if ip["issourcenat"]) == 1  # exactly one source NAT, although they raced
        assert ip_count(sandbox_server, owner.id) == 20
        rows = db_rows(sandbox_server, "SELECT p.address FROM public_ip p JOIN account a ON a.id = p.account_id "
                                       "WHERE a.uuid = :a", a=owner.id)
        assert sorted(r[0] for r in rows) == sorted(addresses)
        # the account's limit is 20: the 21st is refused, and nothing moved
        err = error_of(lambda: owner.api.associateIpAddress(networkid=net["id"]))
        assert err["errorcode"] == 532 and "public_ip" in err["errortext"]
        assert ip_count(sandbox_server, owner.id) == 20
    finally:
        for ip in ips:
            if not ip["issourcenat"]:
                owner.api.disassociateIpAddress(id=ip["id"])
    assert ip_count(sandbox_server, owner.id) == 1
