"""Security groups: create, list, rules in and out (CloudStack's validation), delete, VMs in the basic
zone, and tenant isolation."""

from __future__ import annotations

from typing import Any

import pytest
from cs import CloudStack

from conftest import Sandbox, Tenant, unique
from network_helpers import deploy, error_of, events, expunge


@pytest.fixture(scope="module")
def user(make_sandbox_tenant: Any) -> Tenant:
    return make_sandbox_tenant()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def other(make_sandbox_tenant: Any) -> Tenant:
    return make_sandbox_tenant()  # type: ignore[no-any-return]


def group(api: CloudStack, **params: Any) -> dict[str, Any]:
    params.setdefault("name", unique("sg"))
    return api.createSecurityGroup(**params)["securitygroup"]  # type: ignore[no-any-return]


def test_create_and_list(user: Tenant) -> None:
    api = user.api
    sg = group(api, description="web servers")
    assert (sg["description"], sg["account"], sg["domainid"]) == ("web servers", user.name, user.domain_id)
    assert sg["ingressrule"] == [] and sg["egressrule"] == [] and sg["virtualmachinecount"] == 0
    err = error_of(lambda: api.createSecurityGroup(name=sg["name"]))
    assert err["errorcode"] == 431
    assert err["errortext"] == f"Unable to create security group, a group with name {sg['name']} already exists."
    err = error_of(lambda: api.createSecurityGroup(name=sg["name"].upper()))
    assert err["errorcode"] == 431
    err = error_of(lambda: api.createSecurityGroup())
    assert err["errortext"] == "Unable to execute API command createsecuritygroup due to missing parameter name"
    assert [g["id"] for g in api.listSecurityGroups(securitygroupname=sg["name"])["securitygroup"]] == [sg["id"]]
    assert api.listSecurityGroups(id=sg["id"])["securitygroup"][0]["name"] == sg["name"]
    assert [g["id"] for g in api.listSecurityGroups(keyword=sg["name"])["securitygroup"]] == [sg["id"]]
    assert any(sg["id"] in e["description"] or sg["name"] in e["description"] for e in events(api, "SG.CREATE"))


def test_ingress_and_egress_rules(user: Tenant, make_sandbox_tenant: Any) -> None:
    api = user.api
    sg = group(api)
    got = api.authorizeSecurityGroupIngress(securitygroupid=sg["id"], protocol="TCP", startport=22, endport=22,
                                            cidrlist="0.0.0.0/0,10.0.0.0/8")["securitygroup"]
    assert got["id"] == sg["id"] and got["egressrule"] == []
    ssh = got["ingressrule"]
    assert sorted(r["cidr"] for r in ssh) == ["0.0.0.0/0", "10.0.0.0/8"]
    assert all((r["protocol"], r["startport"], r["endport"]) == ("tcp", 22, 22) for r in ssh)
    assert all("icmptype" not in r for r in ssh)
    # the same rule again: refused; with one new CIDR: only the new one is added
    err = error_of(lambda: api.authorizeSecurityGroupIngress(securitygroupid=sg["id"], protocol="tcp", startport=22,
                                                             endport=22, cidrlist="0.0.0.0/0"))
    assert err["errorcode"] == 537 and "already exists" in err["errortext"]
    more = api.authorizeSecurityGroupIngress(securitygroupid=sg["id"], protocol="tcp", startport=22, endport=22,
                                             cidrlist="0.0.0.0/0,192.168.0.0/16")["securitygroup"]["ingressrule"]
    assert [r["cidr"] for r in more] == ["192.168.0.0/16"]
    ping = api.authorizeSecurityGroupIngress(securitygroupid=sg["id"], protocol="icmp", icmptype=-1, icmpcode=-1,
                                             cidrlist="0.0.0.0/0")["securitygroup"]["ingressrule"][0]
    assert (ping["protocol"], ping["icmptype"], ping["icmpcode"]) == ("icmp", -1, -1) and "startport" not in ping
    gre = api.authorizeSecurityGroupIngress(securitygroupid=sg["id"], protocol="47",
                                            cidrlist="10.1.0.0/16")["securitygroup"]["ingressrule"][0]
    assert gre["protocol"] == "gre"  # a protocol number is stored by its name
    # a rule allowing another account's group, by account and group name
    peer = make_sandbox_tenant()
    peer_group = group(peer.api)
    allowed = api.authorizeSecurityGroupIngress(
        securitygroupid=sg["id"], protocol="udp", startport=53, endport=53,
        usersecuritygrouplist=[{"account": peer.name, "group": peer_group["name"]}])["securitygroup"]["ingressrule"]
    assert [(r["securitygroupname"], r["account"], r.get("cidr")) for r in allowed] == [
        (peer_group["name"], peer.name, None)]
    out = api.authorizeSecurityGroupEgress(securitygroupid=sg["id"], protocol="all",
                                           cidrlist="0.0.0.0/0")["securitygroup"]
    assert out["ingressrule"] == [] and [(r["protocol"], r["cidr"]) for r in out["egressrule"]] == [("all", "0.0.0.0/0")]
    assert out["egressrule"][0]["startport"] == 0 and out["egressrule"][0]["endport"] == 0
    listed = api.listSecurityGroups(id=sg["id"])["securitygroup"][0]
    assert len(listed["ingressrule"]) == 6 and len(listed["egressrule"]) == 1
    # by name (of the caller's account); "default" is made on first use
    by_name = api.authorizeSecurityGroupIngress(securitygroupname="default", protocol="tcp", startport=80,
                                                endport=80, cidrlist="0.0.0.0/0")["securitygroup"]
    assert by_name["name"] == "default" and by_name["ingressrule"][0]["startport"] == 80
    # revoke
    assert api.revokeSecurityGroupIngress(id=ssh[0]["ruleid"]) == {"success": True}
    assert ssh[0]["ruleid"] not in {r["ruleid"] for r in api.listSecurityGroups(id=sg["id"])["securitygroup"][0]["ingressrule"]}
    err = error_of(lambda: api.revokeSecurityGroupIngress(id=out["egressrule"][0]["ruleid"]))
    assert err["errorcode"] == 431 and "ingress rule" in err["errortext"]
    assert api.revokeSecurityGroupEgress(id=out["egressrule"][0]["ruleid"]) == {"success": True}
    err = error_of(lambda: api.revokeSecurityGroupEgress(id=out["egressrule"][0]["ruleid"]))
    assert err["errorcode"] == 431 and "id" in err["errortext"]
    types = {e["type"] for e in api.listEvents(pagesize=500, page=1)["event"] if e["state"] == "Completed"}
    assert {"SG.CREATE", "SG.AUTH.INGRESS", "SG.AUTH.EGRESS", "SG.REVOKE.INGRESS", "SG.REVOKE.EGRESS"} <= types


@pytest.mark.parametrize("params, code, text", [
    (dict(protocol="tcp", startport=22, cidrlist="0.0.0.0/0"), 431,
     "Invalid port range specified, startPort = 22, endPort = None"),
    (dict(protocol="tcp", startport=30, endport=20, cidrlist="0.0.0.0/0"), 431, "Invalid port range 30:20"),
    (dict(protocol="udp", startport=1, endport=70000, cidrlist="0.0.0.0/0"), 431, "Invalid port numbers 1:70000"),
    (dict(protocol="sctp", cidrlist="0.0.0.0/0"), 431, "Invalid protocol sctp"),
    (dict(protocol="256", cidrlist="0.0.0.0/0"), 431, "Invalid protocol 256"),
    (dict(protocol="all", startport=1, endport=2, cidrlist="0.0.0.0/0"), 431,
     "Cannot specify startPort or endPort without specifying protocol"),
    (dict(protocol="icmp", icmptype=8, cidrlist="0.0.0.0/0"), 431,
     "Invalid ICMP type/code specified, icmpType = 8, icmpCode = None"),
    (dict(protocol="icmp", icmptype=-1, icmpcode=3, cidrlist="0.0.0.0/0"), 431, "Invalid icmp code"),
    (dict(protocol="tcp", startport=22, endport=22, cidrlist="10.0.0.300/8"), 431, "Invalid cidr 10.0.0.300/8"),
    (dict(protocol="tcp", startport=22, endport=22), 431, "At least one cidr or at least one security group"),
    (dict(protocol="tcp", startport=22, endport=22, usersecuritygrouplist=[{"account": "nobody-here", "group": "x"}]),
     431, "Nonexistent account: nobody-here"),
    (dict(protocol="tcp", startport="abc", endport=22, cidrlist="0.0.0.0/0"), 431, "startport"),
])
def test_rule_validation(user: Tenant, params: dict[str, Any], code: int, text: str) -> None:
    sg = user.api.listSecurityGroups(securitygroupname="default").get("securitygroup") or [group(user.api, name="default")]
    err = error_of(lambda: user.api.authorizeSecurityGroupIngress(securitygroupid=sg[0]["id"], **params))
    assert err["errorcode"] == code and text in err["errortext"], err


def test_group_parameters(user: Tenant) -> None:
    api = user.api
    err = error_of(lambda: api.authorizeSecurityGroupIngress(protocol="all", cidrlist="0.0.0.0/0"))
    assert err["errorcode"] == 431 and "securitygroupid" in err["errortext"]
    sg = group(api)
    err = error_of(lambda: api.authorizeSecurityGroupIngress(securitygroupid=sg["id"], securitygroupname=sg["name"],
                                                             protocol="all", cidrlist="0.0.0.0/0"))
    assert err["errorcode"] == 431 and "mutually exclusive" in err["errortext"]
    err = error_of(lambda: api.authorizeSecurityGroupEgress(securitygroupname="no-such-group", protocol="all",
                                                            cidrlist="0.0.0.0/0"))
    assert err["errorcode"] == 431 and "securitygroupname" in err["errortext"]


def test_delete(user: Tenant, make_sandbox_tenant: Any, sandbox: Sandbox, sandbox_admin: CloudStack) -> None:
    api = user.api
    err = error_of(lambda: api.deleteSecurityGroup())
    assert err["errortext"] == "Either id or name parameter is required by deleteSecurityGroup command"
    default = api.listSecurityGroups(securitygroupname="default").get("securitygroup")
    if not default:
        api.authorizeSecurityGroupEgress(securitygroupname="default", protocol="all", cidrlist="10.9.9.0/24")
        default = api.listSecurityGroups(securitygroupname="default")["securitygroup"]
    err = error_of(lambda: api.deleteSecurityGroup(id=default[0]["id"]))
    assert err["errorcode"] == 431 and err["errortext"] == "The network default group cannot be deleted"
    by_name = group(api)
    assert api.deleteSecurityGroup(name=by_name["name"]) == {"success": True}
    assert api.listSecurityGroups(id=by_name["id"]) == {}
    err = error_of(lambda: api.deleteSecurityGroup(name=by_name["name"]))
    assert err["errorcode"] == 431 and "name" in err["errortext"]
    used = group(api)
    vm = deploy(api, sandbox, zoneid=sandbox.basic_zone, securitygroupids=used["id"])
    assert [g["id"] for g in vm["securitygroup"]] == [used["id"]]
    listed = api.listSecurityGroups(virtualmachineid=vm["id"])["securitygroup"]
    assert [g["id"] for g in listed] == [used["id"]]
    assert listed[0]["virtualmachinecount"] == 1 and listed[0]["virtualmachineids"] == [vm["id"]]
    err = error_of(lambda: api.deleteSecurityGroup(id=used["id"]))
    assert err["errorcode"] == 536 and "in use by virtual machines" in err["errortext"]
    # rules reach the group's VMs' network providers (authorize works with VMs in the group)
    api.authorizeSecurityGroupIngress(securitygroupid=used["id"], protocol="tcp", startport=443, endport=443,
                                      cidrlist="0.0.0.0/0")
    expunge(sandbox_admin, [vm["id"]])
    assert api.deleteSecurityGroup(id=used["id"]) == {"success": True}
    # a group other rules allow can't go
    allowed = group(api)
    peer = make_sandbox_tenant()
    peer_group = group(peer.api)
    peer.api.authorizeSecurityGroupIngress(securitygroupid=peer_group["id"], protocol="all",
                                           usersecuritygrouplist=[{"account": user.name, "group": allowed["name"]}])
    err = error_of(lambda: api.deleteSecurityGroup(id=allowed["id"]))
    assert err["errorcode"] == 536 and "security rules that allow this group" in err["errortext"]
    assert any(e["state"] == "Completed" for e in events(api, "SG.DELETE"))


def test_tenants_cannot_touch_each_others_groups(user: Tenant, other: Tenant, sandbox: Sandbox) -> None:
    sg = group(user.api)
    rule = user.api.authorizeSecurityGroupIngress(securitygroupid=sg["id"], protocol="tcp", startport=8080,
                                                  endport=8080, cidrlist="0.0.0.0/0")["securitygroup"]["ingressrule"][0]
    assert other.api.listSecurityGroups(id=sg["id"]) == {}
    assert sg["id"] not in {g["id"] for g in other.api.listSecurityGroups(listall=True).get("securitygroup", [])}
    for call in (lambda: other.api.deleteSecurityGroup(id=sg["id"]),
                 lambda: other.api.authorizeSecurityGroupIngress(securitygroupid=sg["id"], protocol="all",
                                                                 cidrlist="0.0.0.0/0"),
                 lambda: other.api.revokeSecurityGroupIngress(id=rule["ruleid"]),
                 lambda: other.api.deleteSecurityGroup(name=sg["name"], account=user.name, domainid=user.domain_id),
                 lambda: deploy(other.api, sandbox, zoneid=sandbox.basic_zone, securitygroupids=sg["id"])):
        assert error_of(call)["errorcode"] == 531
    assert user.api.listSecurityGroups(id=sg["id"])["securitygroup"][0]["ingressrule"][0]["ruleid"] == rule["ruleid"]


def test_admin_acts_for_an_account(user: Tenant, sandbox_admin: CloudStack) -> None:
    name = unique("adm")
    sg = sandbox_admin.createSecurityGroup(name=name, account=user.name, domainid=user.domain_id)["securitygroup"]
    assert sg["account"] == user.name
    got = sandbox_admin.authorizeSecurityGroupIngress(securitygroupname=name, account=user.name,
                                                      domainid=user.domain_id, protocol="tcp", startport=1,
                                                      endport=1024, cidrlist="10.0.0.0/8")["securitygroup"]
    assert got["id"] == sg["id"]
    listed = sandbox_admin.listSecurityGroups(listall=True, securitygroupname=name)["securitygroup"]
    assert [g["id"] for g in listed] == [sg["id"]]
    assert sandbox_admin.deleteSecurityGroup(name=name, account=user.name, domainid=user.domain_id) == {"success": True}
