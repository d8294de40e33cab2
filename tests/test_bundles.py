"""Bundles through the `cs` client against a sandbox server: create, list, update (versions), delete,
deploy (by id or name, with overrides, async like deployVirtualMachine), the version each VM records,
sharing with the domain or the public, and isolation."""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest
from cs import CloudStack, CloudStackApiException

from conftest import Sandbox, Tenant, client, unique
from servers import Server


def b64(text: str | bytes) -> str:
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


def error_of(call: Any) -> dict[str, Any]:
    with pytest.raises(CloudStackApiException) as err:
        call()
    return err.value.error  # type: ignore[no-any-return]


def bundles_of(api: CloudStack, **params: Any) -> list[dict[str, Any]]:
    return api.listBundles(**params).get("bundle", [])  # type: ignore[no-any-return]


def vm_of(api: CloudStack, vm_id: str) -> dict[str, Any]:
    return api.listVirtualMachines(id=vm_id, listall=True)["virtualmachine"][0]  # type: ignore[no-any-return]


class World:
    def __init__(self, admin: CloudStack, make_tenant: Any) -> None:
        self.domain = admin.createDomain(name=unique("bdom"))["domain"]
        self.other_domain = admin.createDomain(name=unique("bdom"))["domain"]
        self.owner: Tenant = make_tenant(domainid=self.domain["id"])
        self.peer: Tenant = make_tenant(domainid=self.domain["id"])
        self.outsider: Tenant = make_tenant(domainid=self.other_domain["id"])
        self.domain_admin: Tenant = make_tenant(accounttype=2, domainid=self.domain["id"])


@pytest.fixture(scope="module")
def world(sandbox_admin: CloudStack, make_sandbox_tenant: Any) -> World:
    return World(sandbox_admin, make_sandbox_tenant)


def create(api: CloudStack, sandbox: Sandbox, **params: Any) -> dict[str, Any]:
    params.setdefault("name", unique("foo"))
    params.setdefault("zoneid", sandbox.advanced_zone)
    params.setdefault("templateid", sandbox.template)
    params.setdefault("serviceofferingid", sandbox.small)
    return api.createBundle(**params)["bundle"]  # type: ignore[no-any-return]


def test_create_deploy_update_versions_delete(world: World, sandbox: Sandbox) -> None:
    api = world.owner.api
    api.createSSHKeyPair(name="dispatch")
    name = unique("foo")
    data = b64("role=foo\n")
    b = create(api, sandbox, name=name, userdata=data, keypairs="dispatch", description="job runners",
               tags=[{"key": "role", "value": "foo"}], details=[{"cpuOvercommit": "1"}])
    assert b["name"] == name and b["version"] == 1 and b["latestversion"] == 1 and b["visibility"] == "Private"
    assert b["zoneid"] == sandbox.advanced_zone and b["templateid"] == sandbox.template
    assert b["serviceofferingid"] == sandbox.small and b["userdata"] == data and b["keypairs"] == ["dispatch"]
    assert b["tags"] == [{"key": "role", "value": "foo"}] and b["details"] == {"cpuOvercommit": "1"}
    assert b["account"] == world.owner.name and b["domainid"] == world.domain["id"]
    err = error_of(lambda: create(api, sandbox, name=name))
    assert err["errorcode"] == 431 and "already exists" in err["errortext"]

    assert [x["id"] for x in bundles_of(api, name=name)] == [b["id"]]
    assert [x["id"] for x in bundles_of(api, keyword="foo-")] == [x["id"] for x in bundles_of(api)]
    assert [x["id"] for x in bundles_of(api, tags=[{"key": "role", "value": "foo"}])] == [b["id"]]
    assert bundles_of(api, tags=[{"key": "role", "value": "bar"}]) == []

    vm1 = api.deployBundle(bundle=name, name=unique("w"))["virtualmachine"]
    assert vm1["state"] == "Running" and vm1["serviceofferingid"] == sandbox.small
    assert (vm1["bundleid"], vm1["bundlename"], vm1["bundleversion"]) == (b["id"], name, 1)
    assert vm1["keypairs"] == "dispatch" and vm1["details"]["cpuOvercommit"] == "1"
    assert {"key": "role", "value": "foo"} in [{"key": t["key"], "value": t["value"]} for t in vm1["tags"]]
    assert api.getVirtualMachineUserData(virtualmachineid=vm1["id"])["virtualmachineuserdata"]["userdata"] == data

    b2 = api.updateBundle(id=b["id"], serviceofferingid=sandbox.medium, unset="details")["bundle"]
    assert b2["version"] == 2 and b2["serviceofferingid"] == sandbox.medium and b2["details"] == {}
    assert b2["userdata"] == data  # what the update did not name is carried over
    vm2 = api.deployBundle(bundleid=b["id"], name=unique("w"))["virtualmachine"]
    assert vm2["serviceofferingid"] == sandbox.medium and vm2["bundleversion"] == 2
    # Overrides: any deployVirtualMachine parameter; the version is still recorded.
    vm3 = api.deployBundle(bundleid=b["id"], name=unique("w"), serviceofferingid=sandbox.small, startvm=False,
                           userdata=b64("override"))["virtualmachine"]
    assert vm3["serviceofferingid"] == sandbox.small and vm3["state"] == "Stopped" and vm3["bundleversion"] == 2
    assert api.getVirtualMachineUserData(virtualmachineid=vm3["id"])["virtualmachineuserdata"]["userdata"] == \
        b64("override")

    # VMs keep their version; old versions stay readable.
    assert vm_of(api, vm1["id"])["bundleversion"] == 1
    old = bundles_of(api, id=b["id"], version=1)[0]
    assert old["version"] == 1 and old["latestversion"] == 2 and old["serviceofferingid"] == sandbox.small
    assert old["details"] == {"cpuOvercommit": "1"}
    assert bundles_of(api, id=b["id"], version=9) == []
    assert error_of(lambda: api.listBundles(version=1))["errorcode"] == 431  # a version of which bundle?
    assert {v["id"] for v in api.listVirtualMachines(bundleid=b["id"])["virtualmachine"]} == \
        {vm1["id"], vm2["id"], vm3["id"]}
    assert [v["id"] for v in api.listVirtualMachines(bundleid=b["id"], bundleversion=1)["virtualmachine"]] == \
        [vm1["id"]]

    assert api.deleteBundle(id=b["id"])["success"] is True
    assert bundles_of(api, id=b["id"]) == []
    assert error_of(lambda: api.deployBundle(bundleid=b["id"]))["errorcode"] == 431
    assert error_of(lambda: api.deployBundle(bundle=name))["errorcode"] == 431
    assert vm_of(api, vm1["id"])["bundlename"] == name  # a VM still knows where it came from
    again = create(api, sandbox, name=name)  # the name is free again
    assert again["id"] != b["id"]


def test_deploy_bundle_is_async_like_deploy_virtual_machine(world: World, sandbox: Sandbox,
                                                            sandbox_server: Server) -> None:
    b = create(world.owner.api, sandbox)
    raw = client(sandbox_server, world.owner.api.key, world.owner.api.secret, fetch_result=False)
    handle = raw.deployBundle(bundleid=b["id"], name=unique("a"))
    assert set(handle) == {"id", "jobid"}
    for _ in range(300):
        job = raw.queryAsyncJobResult(jobid=handle["jobid"])
        if job["jobstatus"] != 0:
            break
        time.sleep(0.05)
    assert job["jobstatus"] == 1, job
    assert job["jobresulttype"] == "object"
    vm = job["jobresult"]["virtualmachine"]
    assert vm["id"] == handle["id"] and vm["bundleid"] == b["id"] and vm["state"] == "Running"
    apis = {a["name"]: a for a in raw.listApis()["api"]}
    assert apis["deployBundle"]["isasync"] is True
    assert {"bundleid", "bundle", "zoneid", "serviceofferingid", "userdata"} <= {
        p["name"] for p in apis["deployBundle"]["params"]}
    assert {"createBundle", "listBundles", "updateBundle", "deleteBundle"} <= set(apis)


def test_missing_parts_and_bad_input(world: World, sandbox: Sandbox) -> None:
    api = world.owner.api
    bare = api.createBundle(name=unique("bare"), templateid=sandbox.template)["bundle"]
    err = error_of(lambda: api.deployBundle(bundleid=bare["id"]))
    assert err["errorcode"] == 431 and "zoneid" in err["errortext"]
    vm = api.deployBundle(bundleid=bare["id"], zoneid=sandbox.advanced_zone, serviceofferingid=sandbox.small,
                          startvm=False)["virtualmachine"]
    assert vm["templateid"] == sandbox.template
    err = error_of(lambda: api.deployBundle(bundleid=bare["id"], bundle=bare["name"]))
    assert err["errorcode"] == 431 and "bundle" in err["errortext"]
    assert error_of(lambda: api.deployBundle())["errorcode"] == 431
    err = error_of(lambda: create(api, sandbox, userdata="not base64!!"))
    assert err["errortext"] == "User data is not base64 encoded (parameter userdata)"
    err = error_of(lambda: create(api, sandbox, keypairs="nosuchkey"))
    assert "nosuchkey" in err["errortext"]
    err = error_of(lambda: create(api, sandbox, visibility="Public"))
    assert err["errorcode"] == 531 and "visibility" in err["errortext"]
    err = error_of(lambda: api.updateBundle(id=bare["id"], unset="bogus"))
    assert "unset" in err["errortext"]
    theirs = world.outsider.api.deployVirtualMachine(zoneid=sandbox.advanced_zone, templateid=sandbox.template,
                                                     serviceofferingid=sandbox.small, startvm=False)["virtualmachine"]
    err = error_of(lambda: create(api, sandbox, networkids=theirs["nic"][0]["networkid"]))
    assert err["errorcode"] == 531


def test_user_data_in_bundles(world: World, sandbox: Sandbox, sandbox_server: Server) -> None:
    api = world.owner.api
    post = client(sandbox_server, api.key, api.secret, method="post")
    big = b64(b"x" * 6000)  # 8000 characters: only POST may send it
    err = error_of(lambda: create(api, sandbox, userdata=big))
    assert "GET" in err["errortext"]
    b = create(post, sandbox, userdata=big)
    vm = api.deployBundle(bundleid=b["id"], startvm=False)["virtualmachine"]  # deployed by GET
    assert api.getVirtualMachineUserData(virtualmachineid=vm["id"])["virtualmachineuserdata"]["userdata"] == big

    ud = api.registerUserData(name=unique("bud"), userdata=b64("{{ ds.meta_data.queue }}"),
                              params="queue")["userdata"]
    b = create(api, sandbox, userdataid=ud["id"], userdatadetails=[{"queue": "fast"}])
    assert b["userdataid"] == ud["id"] and b["userdatadetails"] == {"queue": "fast"}
    vm = api.deployBundle(bundleid=b["id"], startvm=False)["virtualmachine"]
    assert vm["userdataid"] == ud["id"] and '"queue": "fast"' in vm["userdatadetails"]
    vm = api.deployBundle(bundleid=b["id"], startvm=False, userdatadetails=[{"queue": "slow"}])["virtualmachine"]
    assert '"queue": "slow"' in vm["userdatadetails"]
    err = error_of(lambda: create(api, sandbox, userdataid=ud["id"], userdatadetails=[{"nope": "1"}]))
    assert "nope" in err["errortext"]
    err = error_of(lambda: create(api, sandbox, userdataid=ud["id"], userdata=b64("x")))
    assert "userdataid" in err["errortext"]
    # registered user data that a bundle deploys is in use, like one a VM or a template uses
    lone = api.registerUserData(name=unique("lone"), userdata=b64("#cloud-config\n"))["userdata"]
    holder = create(api, sandbox, userdataid=lone["id"])
    err = error_of(lambda: api.deleteUserData(id=lone["id"]))
    assert err["errorcode"] == 536 and holder["name"] in err["errortext"]
    api.updateBundle(id=holder["id"], unset="userdataid")  # a new version without it frees it
    assert api.deleteUserData(id=lone["id"])["success"] is True


def test_sharing_with_the_domain_and_the_public(world: World, sandbox: Sandbox, sandbox_admin: CloudStack) -> None:
    owner, peer, outsider = world.owner.api, world.peer.api, world.outsider.api
    secret = b64("token=s3cret\n")
    name = unique("shared")
    b = create(owner, sandbox, name=name, userdata=secret)

    # Private: nobody else lists or deploys it, by id or by name.
    for api in (peer, outsider):
        assert bundles_of(api, id=b["id"]) == [] and bundles_of(api, listall=True, name=name) == []
        assert error_of(lambda api=api: api.deployBundle(bundleid=b["id"]))["errorcode"] == 531
        assert error_of(lambda api=api: api.deployBundle(bundle=name))["errorcode"] == 431

    # Shared with the domain: its accounts list and deploy it (the VM is theirs), but can't change it
    # nor read its user data from the bundle.
    owner.updateBundle(id=b["id"], visibility="Domain")
    seen = bundles_of(peer, id=b["id"])
    assert [x["id"] for x in seen] == [b["id"]] and "userdata" not in seen[0]
    vm = peer.deployBundle(bundle=name, startvm=False)["virtualmachine"]
    assert vm["account"] == world.peer.name and vm["bundleid"] == b["id"] and vm["bundleversion"] == 2
    assert peer.getVirtualMachineUserData(virtualmachineid=vm["id"])["virtualmachineuserdata"]["userdata"] == secret
    assert error_of(lambda: peer.updateBundle(id=b["id"], name="mine"))["errorcode"] == 531
    assert error_of(lambda: peer.deleteBundle(id=b["id"]))["errorcode"] == 531
    assert bundles_of(outsider, id=b["id"]) == []
    assert error_of(lambda: outsider.deployBundle(bundleid=b["id"]))["errorcode"] == 531
    # The owner still sees only its own VMs; the peer's VM is the peer's.
    assert vm["id"] not in {v["id"] for v in owner.listVirtualMachines(bundleid=b["id"]).get("virtualmachine", [])}
    # A domain admin above the owner may change it and sees the user data.
    managed = bundles_of(world.domain_admin.api, id=b["id"], listall=True)
    assert managed[0]["userdata"] == secret

    # Public: only an admin may publish; then every account lists and deploys it.
    assert error_of(lambda: owner.updateBundle(id=b["id"], visibility="Public"))["errorcode"] == 531
    sandbox_admin.updateBundle(id=b["id"], visibility="Public")
    assert [x["id"] for x in bundles_of(outsider, visibility="Public", name=name)] == [b["id"]]
    vm = outsider.deployBundle(bundleid=b["id"], startvm=False)["virtualmachine"]
    assert vm["account"] == world.outsider.name and vm["bundleversion"] == 3
    assert error_of(lambda: outsider.deleteBundle(id=b["id"]))["errorcode"] == 531

    # Account/domain filters list owned bundles only; a tenant can't name another account.
    assert error_of(lambda: outsider.listBundles(account=world.owner.name, domainid=world.domain["id"]))["errorcode"] \
        == 531
    listed = sandbox_admin.listBundles(account=world.owner.name, domainid=world.domain["id"])["bundle"]
    assert b["id"] in {x["id"] for x in listed}


def test_a_deleted_accounts_bundles_go_with_it(world: World, sandbox: Sandbox, sandbox_admin: CloudStack,
                                              make_sandbox_tenant: Any) -> None:
    leaving = make_sandbox_tenant(domainid=world.domain["id"])
    b = create(leaving.api, sandbox, visibility="Domain")
    assert [x["id"] for x in bundles_of(world.peer.api, id=b["id"])] == [b["id"]]
    sandbox_admin.deleteAccount(id=leaving.id)
    assert bundles_of(world.peer.api, id=b["id"]) == []
    assert error_of(lambda: world.peer.api.deployBundle(bundleid=b["id"]))["errorcode"] == 431


def test_answers_match_their_declarations(world: World, sandbox: Sandbox) -> None:
    """Every key listBundles and deployBundle emit is declared, with the declared JSON type."""
    from overcast.api.declare import registry
    from test_response_shapes import check_object

    api = world.owner.api
    ud = api.registerUserData(name=unique("shape"), userdata=b64("shape {{ ds.meta_data.k }}"), params="k")["userdata"]
    key = api.createSSHKeyPair(name=unique("k"))["keypair"]["name"]
    group = api.createAffinityGroup(name=unique("ag"), type="host anti-affinity")["affinitygroup"]
    b = create(api, sandbox, diskofferingid=sandbox.disk_custom, size=3, rootdisksize=9, keypairs=key,
               userdataid=ud["id"], userdatadetails=[{"k": "v"}], affinitygroupids=group["id"],
               tags=[{"key": "a", "value": "b"}], details=[{"x": "y"}])
    assert b["affinitygroupids"] == [group["id"]] and b["diskofferingid"] == sandbox.disk_custom and b["size"] == 3
    vm = api.deployBundle(bundleid=b["id"], startvm=False)["virtualmachine"]
    assert [g["id"] for g in vm["affinitygroup"]] == [group["id"]] and vm["keypairs"] == key
    volumes = api.listVolumes(virtualmachineid=vm["id"])["volume"]
    assert sorted(v["size"] for v in volumes) == [3 * 1024**3, 9 * 1024**3]
    for command, item in (("listBundles", bundles_of(api, id=b["id"])[0]),
                          ("listVirtualMachines", vm_of(api, vm["id"]))):
        cls = registry.get(command)
        assert cls is not None
        check_object(item, {f.name: f for f in cls.response.all_fields()}, command)
    assert vm["bundleversion"] == 1 and vm["rootdeviceid"] == 0
