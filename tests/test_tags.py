"""Resource tags through `cs`: create, list, filter, delete, ownership and isolation, bad input."""

from __future__ import annotations

from typing import Any

import pytest
from cs import CloudStack

from conftest import Sandbox, Tenant, unique
from servers import Server
from test_response_shapes import check_object
from test_vms import db_rows, deploy, error_of

from overcast.api.responses.common import ResourceTagResponse


@pytest.fixture(scope="module")
def user(make_sandbox_tenant: Any) -> Tenant:
    return make_sandbox_tenant()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def other(make_sandbox_tenant: Any) -> Tenant:
    return make_sandbox_tenant()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def vm(user: Tenant, sandbox: Sandbox) -> dict[str, Any]:
    return deploy(user.api, sandbox, name=unique("tagged"), startvm=False)


def tags_of(api: CloudStack, **params: Any) -> list[dict[str, Any]]:
    return api.listTags(**params).get("tag", [])  # type: ignore[no-any-return]


def test_tag_lifecycle_on_a_vm(user: Tenant, vm: dict[str, Any]) -> None:
    api = user.api
    assert api.createTags(resourcetype="UserVm", resourceids=vm["id"],
                          tags=[{"key": "env", "value": "prod"}, {"key": "tier", "value": "web"}])["success"] is True
    tags = tags_of(api, resourceid=vm["id"])
    assert {(t["key"], t["value"]) for t in tags} == {("env", "prod"), ("tier", "web")}
    fields = {f.name: f for f in ResourceTagResponse.all_fields()}
    for t in tags:
        check_object(t, fields, "listTags")
        assert t["resourcetype"] == "UserVm" and t["resourceid"] == vm["id"]
        assert t["account"] == user.name and t["domainid"] == user.domain_id
    # The VM carries its tags, and the tag filter of listVirtualMachines finds it.
    listed = api.listVirtualMachines(id=vm["id"])["virtualmachine"][0]
    assert {t["key"] for t in listed["tags"]} == {"env", "tier"}
    found = api.listVirtualMachines(tags=[{"key": "env", "value": "prod"}, {"key": "tier"}])["virtualmachine"]
    assert [v["id"] for v in found] == [vm["id"]]
    assert api.listVirtualMachines(tags=[{"key": "env", "value": "dev"}]).get("count", 0) == 0
    # Filters of listTags; the resource type is matched case-insensitively, as CloudStack does.
    assert [t["key"] for t in tags_of(api, key="tier")] == ["tier"]
    assert [t["key"] for t in tags_of(api, resourcetype="uservm", value="prod")] == ["env"]
    assert tags_of(api, resourcetype="Volume", resourceid=vm["id"]) == []
    # deleteTags by key (any value), then key and value; a value that doesn't match deletes nothing.
    assert api.deleteTags(resourcetype="UserVm", resourceids=vm["id"], tags=[{"key": "tier"}])["success"] is True
    err = error_of(lambda: api.deleteTags(resourcetype="UserVm", resourceids=vm["id"],
                                          tags=[{"key": "env", "value": "dev"}]))
    assert err["errorcode"] == 431 and "Failed to delete tags" in err["errortext"]
    api.deleteTags(resourcetype="UserVm", resourceids=vm["id"], tags=[{"key": "ENV", "value": "prod"}])
    assert tags_of(api, resourceid=vm["id"]) == []
    # Without tags, deleteTags removes them all.
    api.createTags(resourcetype="UserVm", resourceids=vm["id"], tags=[{"key": "a", "value": "1"}, {"key": "b", "value": "2"}])
    api.deleteTags(resourcetype="UserVm", resourceids=vm["id"])
    assert tags_of(api, resourceid=vm["id"]) == []


def test_tags_on_other_resource_types(user: Tenant, vm: dict[str, Any], sandbox_server: Server,
                                      sandbox_admin: CloudStack) -> None:
    api = user.api
    volume = db_rows(sandbox_server, "SELECT vo.uuid FROM volume vo JOIN vm_instance v ON v.id = vo.vm_id "
                                     "WHERE v.uuid = :u AND vo.volume_type = 'ROOT'", u=vm["id"])[0][0]
    network = sandbox_admin.listVirtualMachines(id=vm["id"], listall=True)["virtualmachine"][0]["nic"][0]["networkid"]
    for rtype, rid in (("Volume", volume), ("Network", network), ("Account", user.id)):
        api.createTags(resourcetype=rtype, resourceids=rid, tags=[{"key": "owner", "value": "team-a"}],
                       customer="acme")
        tag = tags_of(api, resourcetype=rtype, resourceid=rid)
        assert len(tag) == 1 and tag[0]["resourcetype"] == rtype and tag[0]["customer"] == "acme"
    assert {t["resourcetype"] for t in tags_of(api, key="owner", customer="acme")} == {"Volume", "Network", "Account"}
    # A volume id is not a VM id: the type decides the table.
    err = error_of(lambda: api.createTags(resourcetype="UserVm", resourceids=volume, tags=[{"key": "k", "value": "v"}]))
    assert err["errorcode"] == 431 and err["errortext"] == f"Unable to find resource by uuid {volume} and type UserVm"


def test_bad_input_names_the_problem(user: Tenant, vm: dict[str, Any]) -> None:
    api = user.api
    one = [{"key": "k", "value": "v"}]
    err = error_of(lambda: api.createTags(resourcetype="Bogus", resourceids=vm["id"], tags=one))
    assert err["errorcode"] == 431 and err["errortext"] == "Invalid resource type Bogus"
    err = error_of(lambda: api.createTags(resourcetype="Zone", resourceids=vm["id"], tags=one))
    assert err["errorcode"] == 431 and err["errortext"] == "The resource type Zone doesn't support resource tags"
    err = error_of(lambda: api.createTags(resourcetype="UserVm", resourceids=vm["id"]))
    assert err["errorcode"] == 431 and err["errortext"].endswith("due to missing parameter tags")
    err = error_of(lambda: api.createTags(resourcetype="UserVm", tags=one))
    assert err["errorcode"] == 431 and err["errortext"].endswith("due to missing parameter resourceids")
    err = error_of(lambda: api.createTags(resourcetype="UserVm", resourceids=vm["id"], tags=[{"key": "k", "value": ""}]))
    assert err["errorcode"] == 431 and err["errortext"] == "Value for the key k is either null or empty"
    err = error_of(lambda: api.createTags(resourcetype="UserVm", resourceids=vm["id"], tags=[{"value": "v"}]))
    assert err["errorcode"] == 431 and "tags[0].key" in err["errortext"]
    err = error_of(lambda: api.createTags(resourcetype="UserVm", resourceids=vm["id"],
                                          tags=[{"key": "k" * 256, "value": "v"}]))
    assert err["errorcode"] == 431 and "param: tags" in err["errortext"]
    err = error_of(lambda: api.createTags(resourcetype="UserVm", resourceids="not-a-uuid", tags=one))
    assert err["errorcode"] == 431 and "not-a-uuid" in err["errortext"]
    api.createTags(resourcetype="UserVm", resourceids=vm["id"], tags=[{"key": "dup", "value": "1"}])
    err = error_of(lambda: api.createTags(resourcetype="UserVm", resourceids=vm["id"], tags=[{"key": "DUP", "value": "2"}]))
    assert err["errorcode"] == 431 and "already on UserVm" in err["errortext"]
    # All or nothing: the second resource failing leaves the first untagged.
    err = error_of(lambda: api.createTags(resourcetype="UserVm", resourceids=f"{vm['id']},{unique('x')}",
                                          tags=[{"key": "atomic", "value": "1"}]))
    assert err["errorcode"] == 431
    assert tags_of(api, resourceid=vm["id"], key="atomic") == []
    err = error_of(lambda: api.listTags(resourcetype="Bogus"))
    assert err["errorcode"] == 431 and err["errortext"] == "Invalid resource type Bogus"
    err = error_of(lambda: api.listVirtualMachines(tags=[{"value": "v"}]))
    assert err["errorcode"] == 431 and "tags[0].key" in err["errortext"]
    api.deleteTags(resourcetype="UserVm", resourceids=vm["id"])


def test_tenants_cannot_see_or_touch_each_others_tags(user: Tenant, other: Tenant, vm: dict[str, Any],
                                                      sandbox: Sandbox, sandbox_admin: CloudStack) -> None:
    user.api.createTags(resourcetype="UserVm", resourceids=vm["id"], tags=[{"key": "secret", "value": "s"}])
    assert tags_of(other.api, listall=True) == []
    assert tags_of(other.api, resourceid=vm["id"]) == []
    one = [{"key": "pwned", "value": "1"}]
    assert error_of(lambda: other.api.createTags(resourcetype="UserVm", resourceids=vm["id"], tags=one))["errorcode"] == 531
    assert error_of(lambda: other.api.deleteTags(resourcetype="UserVm", resourceids=vm["id"]))["errorcode"] == 531
    assert error_of(lambda: other.api.createTags(resourcetype="Account", resourceids=user.id, tags=one))["errorcode"] == 531
    # Public templates belong to the system: users may not tag them.
    err = error_of(lambda: user.api.createTags(resourcetype="Template", resourceids=sandbox.template, tags=one))
    assert err["errorcode"] == 531
    # The tag filter of listVirtualMachines does not reach into another account.
    assert other.api.listVirtualMachines(listall=True, tags=[{"key": "secret"}]).get("count", 0) == 0
    # An admin tagging the user's VM makes a tag the user owns and sees.
    sandbox_admin.createTags(resourcetype="UserVm", resourceids=vm["id"], tags=[{"key": "byadmin", "value": "1"}])
    mine = {t["key"]: t for t in tags_of(user.api, resourceid=vm["id"])}
    assert mine["byadmin"]["account"] == user.name
    assert {t["key"] for t in tags_of(sandbox_admin, listall=True, resourceid=vm["id"])} == {"secret", "byadmin"}
    user.api.deleteTags(resourcetype="UserVm", resourceids=vm["id"])


def test_expunging_a_vm_deletes_its_tags_and_events_are_recorded(user: Tenant, sandbox: Sandbox,
                                                                 sandbox_admin: CloudStack,
                                                                 sandbox_server: Server) -> None:
    doomed = deploy(user.api, sandbox, name=unique("doomed"), startvm=False)
    user.api.createTags(resourcetype="UserVm", resourceids=doomed["id"], tags=[{"key": "gone", "value": "soon"}])
    sandbox_admin.destroyVirtualMachine(id=doomed["id"], expunge=True)
    assert db_rows(sandbox_server, "SELECT COUNT(*) FROM resource_tags WHERE resource_uuid = :u", u=doomed["id"]) == [(0,)]
    events = user.api.listEvents(type="CREATE_TAGS").get("event", [])
    assert any(e["resourceid"] == doomed["id"] and e["state"] == "Completed" for e in events)


def test_tags_go_with_deleted_accounts_users_and_templates(sandbox_admin: CloudStack, make_sandbox_tenant: Any,
                                                            sandbox: Sandbox, sandbox_server: Server) -> None:
    from test_templates import register

    owner = make_sandbox_tenant()
    extra = sandbox_admin.createUser(account=owner.name, domainid=owner.domain_id, username=unique("u"),
                                     password="secret-pass", email="x@example.com", firstname="A",
                                     lastname="B")["user"]
    os_id = sandbox_admin.listOsTypes()["ostype"][0]["id"]
    template = register(owner.api, os_id, sandbox.advanced_zone, unique("tagged-tmpl"))
    for rtype, rid in (("Account", owner.id), ("User", extra["id"]), ("Template", template["id"])):
        sandbox_admin.createTags(resourcetype=rtype, resourceids=rid, tags=[{"key": "team", "value": "blue"}])

    def tagged() -> set[str]:
        rows = db_rows(sandbox_server, "SELECT resource_uuid FROM resource_tags WHERE resource_uuid IN (:a, :u, :t)",
                       a=owner.id, u=extra["id"], t=template["id"])
        return {r[0] for r in rows}

    assert tagged() == {owner.id, extra["id"], template["id"]}
    owner.api.deleteTemplate(id=template["id"])
    sandbox_admin.deleteUser(id=extra["id"])
    assert tagged() == {owner.id}
    sandbox_admin.deleteAccount(id=owner.id)
    assert tagged() == set()
