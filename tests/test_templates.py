"""Templates and ISOs through the `cs` client on a sandbox server: registration, every templatefilter and
isofilter against a matrix of owners, sharing, zones, deploys, limits, bad input."""

from __future__ import annotations

from typing import Any

import pytest
from cs import CloudStack, CloudStackApiException
from sqlalchemy import create_engine, text

from conftest import Sandbox, Tenant, unique
from servers import Server

SIM_TEMPLATE = "CentOS 5.6 (64-bit) no GUI (Simulator)"


def error_of(call: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(CloudStackApiException) as err:
        call(*args, **kwargs)
    return err.value.error  # type: ignore[no-any-return]


def db_exec(server: Server, sql: str, **params: Any) -> list[Any]:
    engine = create_engine(server.db_url or f"sqlite:///{server.data_dir / 'overcast.db'}")
    with engine.begin() as c:
        result = c.execute(text(sql), params)
        rows = list(result) if result.returns_rows else []
    engine.dispose()
    return rows


@pytest.fixture(scope="module")
def os_id(sandbox_admin: CloudStack) -> str:
    return str(sandbox_admin.listOsTypes(description="CentOS 7")["ostype"][0]["id"])


def register(api: CloudStack, os_id: str, zone: str | None, name: str, **params: Any) -> dict[str, Any]:
    params.setdefault("format", "QCOW2")
    params.setdefault("hypervisor", "Simulator")
    params.setdefault("url", f"http://images.example.com/{name}.qcow2")
    if zone is not None and "zoneids" not in params:
        params["zoneid"] = zone
    result = api.registerTemplate(name=name, displaytext=name, ostypeid=os_id, **params)
    return result["template"][0]  # type: ignore[no-any-return]


class World:
    """Owners in two domains and the templates each registered (names carry a per-module prefix)."""

    def __init__(self, admin: CloudStack, make_tenant: Any, sandbox: Sandbox, os_id: str) -> None:
        self.prefix = unique("w")
        self.dom_a = admin.createDomain(name=unique("tpl-a"))["domain"]
        self.dom_b = admin.createDomain(name=unique("tpl-b"))["domain"]
        self.root = admin
        self.dadmin: Tenant = make_tenant(accounttype=2, domainid=self.dom_a["id"])
        self.a1: Tenant = make_tenant(domainid=self.dom_a["id"])
        self.a2: Tenant = make_tenant(domainid=self.dom_a["id"])
        self.b: Tenant = make_tenant(domainid=self.dom_b["id"])
        zone = sandbox.advanced_zone
        p = self.prefix
        self.ids = {
            "rf": register(admin, os_id, zone, f"{p}-rf", ispublic=True, isfeatured=True)["id"],
            "rc": register(admin, os_id, zone, f"{p}-rc", ispublic=True)["id"],
            "rp": register(admin, os_id, zone, f"{p}-rp", ispublic=False)["id"],
            "dap": register(self.dadmin.api, os_id, zone, f"{p}-dap", ispublic=False)["id"],
            "a1p": register(self.a1.api, os_id, zone, f"{p}-a1p", ispublic=False)["id"],
            "a1pub": register(self.a1.api, os_id, zone, f"{p}-a1pub", ispublic=True)["id"],
            "bp": register(self.b.api, os_id, zone, f"{p}-bp", ispublic=False)["id"],
        }
        self.a1.api.updateTemplatePermissions(id=self.ids["a1p"], accounts=self.a2.name, op="add")

    def seen(self, api: CloudStack, flt: str, **params: Any) -> set[str]:
        """Short names of this world's templates (and "builtin") that ``flt`` lists for ``api``."""
        out = set()
        for t in api.listTemplates(templatefilter=flt, **params).get("template", []):
            if t["name"] == SIM_TEMPLATE:
                out.add("builtin")
            elif t["name"].startswith(self.prefix + "-"):
                out.add(t["name"][len(self.prefix) + 1:])
        return out


@pytest.fixture(scope="module")
def world(sandbox_admin: CloudStack, make_sandbox_tenant: Any, sandbox: Sandbox, os_id: str) -> World:
    return World(sandbox_admin, make_sandbox_tenant, sandbox, os_id)


# -- what the clients look up -------------------------------------------------------------------


def test_builtin_template_is_executable_for_a_new_user(make_sandbox_tenant: Any, sandbox: Sandbox) -> None:
    user = make_sandbox_tenant()
    rows = [t for t in user.api.listTemplates(templatefilter="executable")["template"] if t["name"] == SIM_TEMPLATE]
    assert {t["zoneid"] for t in rows} == {sandbox.advanced_zone, sandbox.basic_zone}  # one row per zone
    t = rows[0]
    assert t["id"] == sandbox.template and t["isready"] is True and t["ispublic"] is True and t["isfeatured"]
    assert t["crossZones"] is True and t["hypervisor"] == "Simulator" and t["templatetype"] == "BUILTIN"
    assert t["size"] == 2 * 1024**3 and t["ostypename"] == "CentOS 5.6 (64-bit)"
    assert "status" not in t and "url" not in t  # only the owner and admins see them
    one = user.api.listTemplates(templatefilter="executable", zoneid=sandbox.basic_zone, id=sandbox.template)
    assert one["count"] == 1 and one["template"][0]["zonename"] == "Sandbox-simulator-basic"
    by_name = user.api.listTemplates(templatefilter="featured", name=SIM_TEMPLATE)
    assert by_name["count"] == 2


# -- the filter matrix --------------------------------------------------------------------------


def test_featured_and_community(world: World) -> None:
    for who in (world.root, world.dadmin.api, world.a1.api, world.a2.api, world.b.api):
        assert world.seen(who, "featured") == {"builtin", "rf"}
        assert world.seen(who, "community") == {"rc", "a1pub"}


def test_self_and_selfexecutable(world: World) -> None:
    expected = {world.root: {"rf", "rc", "rp"}, world.dadmin.api: {"dap"}, world.a1.api: {"a1p", "a1pub"},
                world.a2.api: set(), world.b.api: {"bp"}}
    for who, want in expected.items():
        assert world.seen(who, "self") == want
        assert world.seen(who, "selfexecutable") == want


def test_shared_filters(world: World) -> None:
    for flt in ("sharedexecutable", "shared"):
        assert world.seen(world.a2.api, flt) == {"a1p"}
        for who in (world.root, world.a1.api, world.b.api, world.dadmin.api):
            assert world.seen(who, flt) == set()


def test_executable(world: World) -> None:
    public = {"builtin", "rf", "rc", "a1pub"}
    assert world.seen(world.a2.api, "executable") == public | {"a1p"}
    assert world.seen(world.a1.api, "executable") == public | {"a1p"}
    assert world.seen(world.b.api, "executable") == public | {"bp"}
    assert world.seen(world.dadmin.api, "executable") == public | {"dap"}
    assert world.seen(world.root, "executable") == public | {"rp"}


def test_all_is_for_admins(world: World) -> None:
    mine = {"rf", "rc", "rp", "dap", "a1p", "a1pub", "bp"}
    assert world.seen(world.root, "all") == mine | {"builtin"}
    # a domain admin: public templates and those of its domain's accounts
    assert world.seen(world.dadmin.api, "all") == {"builtin", "rf", "rc", "a1pub", "dap", "a1p"}
    for user in (world.a1, world.b):
        err = error_of(user.api.listTemplates, templatefilter="all")
        assert (err["errorcode"], err["cserrorcode"]) == (431, 4350)
        assert err["errortext"] == "Filter all can be specified by admin only"
    err = error_of(world.b.api.listTemplates, templatefilter="mine")
    assert err["errorcode"] == 431 and "templatefilter" in err["errortext"]
    err = error_of(world.b.api.listTemplates)
    assert (err["errorcode"], err["cserrorcode"]) == (431, 9999) and "templatefilter" in err["errortext"]


def test_admin_lists_for_an_account(world: World) -> None:
    acct = {"account": world.a1.name, "domainid": world.dom_a["id"]}
    assert world.seen(world.root, "self", **acct) == {"a1p", "a1pub"}
    assert world.seen(world.dadmin.api, "self", **acct) == {"a1p", "a1pub"}
    err = error_of(world.dadmin.api.listTemplates, templatefilter="self", account=world.b.name,
                   domainid=world.dom_b["id"])
    assert err["errorcode"] == 531


def test_by_id_follows_access(world: World) -> None:
    # a shared template is visible by id to the account it is shared with, not to others
    assert world.a2.api.listTemplates(templatefilter="self", id=world.ids["a1p"])["count"] == 1
    err = error_of(world.b.api.listTemplates, templatefilter="executable", id=world.ids["a1p"])
    assert err["errorcode"] == 531
    # a domain admin reaches its domain's templates, not another domain's
    assert world.dadmin.api.listTemplates(templatefilter="all", id=world.ids["a1p"])["count"] == 1
    assert error_of(world.dadmin.api.listTemplates, templatefilter="all", id=world.ids["bp"])["errorcode"] == 531


def test_status_and_url_for_owner_and_admin(world: World) -> None:
    tid = world.ids["a1pub"]
    own = world.a1.api.listTemplates(templatefilter="self", id=tid)["template"][0]
    assert own["status"] == "Download Complete" and own["url"].endswith(".qcow2") and own["isready"] is True
    other = world.b.api.listTemplates(templatefilter="community", id=tid)["template"][0]
    assert "status" not in other and "url" not in other
    admin_view = world.root.listTemplates(templatefilter="all", id=tid)["template"][0]
    assert admin_view["status"] == "Download Complete"
    assert "size" not in own and "physicalsize" not in own  # unknown until downloaded: omitted when 0


def test_template_permissions(world: World) -> None:
    perms = world.a1.api.listTemplatePermissions(id=world.ids["a1p"])["templatepermission"]
    assert perms["id"] == world.ids["a1p"] and perms["ispublic"] is False
    assert perms["domainid"] == world.dom_a["id"] and set(perms["account"]) == {world.a1.name, world.a2.name}
    assert world.a2.api.listTemplatePermissions(id=world.ids["a1p"])["templatepermission"]["id"]
    err = error_of(world.b.api.listTemplatePermissions, id=world.ids["a1p"])
    assert err["errorcode"] == 531
    # sharing is within the owner's domain
    err = error_of(world.a1.api.updateTemplatePermissions, id=world.ids["a1p"], accounts=world.b.name, op="add")
    assert err["errorcode"] == 431 and "account not found" in err["errortext"]
    err = error_of(world.a1.api.updateTemplatePermissions, id=world.ids["a1p"], accounts=world.a2.name, op="share")
    assert err["errorcode"] == 431 and "'share'" in err["errortext"]
    err = error_of(world.a1.api.updateTemplatePermissions, id=world.ids["a1p"], op="add")
    assert err["errorcode"] == 431 and "accounts" in err["errortext"]
    err = error_of(world.a2.api.updateTemplatePermissions, id=world.ids["a1p"], ispublic=True)
    assert err["errorcode"] == 531
    err = error_of(world.a1.api.updateTemplatePermissions, id=world.ids["a1p"], isfeatured=True)
    assert err["errorcode"] == 531 and "isfeatured" in err["errortext"]


def test_publish_feature_share_and_reset(world: World, sandbox: Sandbox, os_id: str) -> None:
    name = f"{world.prefix}-flip"
    tid = register(world.a1.api, os_id, sandbox.advanced_zone, name)["id"]
    assert "flip" not in world.seen(world.b.api, "community")
    world.a1.api.updateTemplatePermissions(id=tid, ispublic=True)
    assert "flip" in world.seen(world.b.api, "community")
    world.root.updateTemplatePermissions(id=tid, isfeatured=True)
    assert "flip" in world.seen(world.b.api, "featured") and "flip" not in world.seen(world.b.api, "community")
    world.a1.api.updateTemplatePermissions(id=tid, accounts=world.a2.name, op="add")
    world.a1.api.updateTemplatePermissions(id=tid, op="reset")  # private again, shared with nobody
    for flt in ("featured", "community", "executable", "sharedexecutable"):
        assert "flip" not in world.seen(world.b.api, flt)
        assert "flip" not in world.seen(world.a2.api, flt)
    world.a1.api.updateTemplatePermissions(id=tid, accounts=world.a2.name, op="add")
    assert "flip" in world.seen(world.a2.api, "sharedexecutable")
    world.a1.api.updateTemplatePermissions(id=tid, accounts=world.a2.name, op="remove")
    assert "flip" not in world.seen(world.a2.api, "sharedexecutable")


# -- registration ---------------------------------------------------------------------------------


def test_register_response_and_fields(world: World, sandbox: Sandbox, os_id: str) -> None:
    name = f"{world.prefix}-fields"
    result = world.b.api.registerTemplate(
        name=name, displaytext="Fields", url="https://images.example.com/f.raw", format="raw", hypervisor="simulator",
        ostypeid=os_id, zoneids=f"{sandbox.advanced_zone},{sandbox.basic_zone}", passwordenabled=True,
        sshkeyenabled=True, isextractable=True, isfeatured=True, bits=32, templatetag="web",
        checksum="{SHA-256}" + "ab" * 32, details={"rootDiskController": "scsi"})
    assert result["count"] == 2
    rows = result["template"]
    assert {r["zoneid"] for r in rows} == {sandbox.advanced_zone, sandbox.basic_zone}
    t = rows[0]
    assert t["format"] == "RAW" and t["hypervisor"] == "Simulator" and t["templatetype"] == "USER"
    assert t["passwordenabled"] and t["sshkeyenabled"] and t["isextractable"] and t["bits"] == 32
    assert t["isfeatured"] is False  # only root admins feature templates; CloudStack drops it silently
    assert t["checksum"] == "ab" * 32 and t["templatetag"] == "web"
    assert t["details"] == {"rootDiskController": "scsi"} and t["crossZones"] is False
    assert t["account"] == world.b.name and t["domainid"] == world.dom_b["id"] and t["ostypeid"] == os_id
    assert t["status"] == "Download Complete" and t["isready"] is True
    assert t["downloaddetails"][0]["downloadState"] == "DOWNLOADED"
    assert world.b.api.listTemplates(templatefilter="self", id=t["id"])["count"] == 2
    assert world.b.api.listTemplates(templatefilter="self", id=t["id"], zoneid=sandbox.basic_zone)["count"] == 1


def test_register_for_another_account(world: World, sandbox: Sandbox, os_id: str) -> None:
    owned = register(world.dadmin.api, os_id, sandbox.advanced_zone, unique("for-a1"), account=world.a1.name,
                     domainid=world.dom_a["id"])
    assert owned["account"] == world.a1.name and owned["domainid"] == world.dom_a["id"]
    assert world.a1.api.listTemplates(templatefilter="self", id=owned["id"])["count"] == 1
    err = error_of(register, world.dadmin.api, os_id, sandbox.advanced_zone, unique("x"), account=world.b.name,
                   domainid=world.dom_b["id"])
    assert err["errorcode"] == 531
    err = error_of(register, world.a2.api, os_id, sandbox.advanced_zone, unique("x"), account=world.a1.name,
                   domainid=world.dom_a["id"])
    assert err["errorcode"] == 531


def test_all_zones_template(world: World, sandbox: Sandbox, os_id: str) -> None:
    t = world.root.registerTemplate(name=f"{world.prefix}-everywhere", displaytext="x", format="VHD",
                                    hypervisor="Simulator", ostypeid=os_id, zoneid="-1",
                                    url="http://images.example.com/e.vhd")
    assert t["count"] == 2 and all(r["crossZones"] for r in t["template"])
    assert {r["zoneid"] for r in t["template"]} == {sandbox.advanced_zone, sandbox.basic_zone}
    t2 = world.root.registerTemplate(name=f"{world.prefix}-everywhere2", displaytext="x", format="VHD",
                                     hypervisor="Simulator", ostypeid=os_id, zoneids="-1",
                                     url="http://images.example.com/e.vhd")
    assert t2["count"] == 2 and t2["template"][0]["crossZones"] is True
    err = error_of(world.b.api.registerTemplate, name="x", displaytext="x", format="VHD", hypervisor="Simulator",
                   ostypeid=os_id, zoneid="-1", url="http://images.example.com/e.vhd")
    assert (err["errorcode"], err["cserrorcode"]) == (431, 4350)
    assert err["errortext"] == ("Template registered for 'All zones' can only be owned a Root Admin account. Please"
                                " select specific zone(s).")


def test_register_bad_input(world: World, sandbox: Sandbox, os_id: str) -> None:
    api = world.b.api
    base = {"name": "bad", "displaytext": "bad", "format": "QCOW2", "hypervisor": "Simulator", "ostypeid": os_id,
            "zoneid": sandbox.advanced_zone, "url": "http://images.example.com/x.qcow2"}

    def bad(**changes: Any) -> dict[str, Any]:
        params = {**base, **changes}
        return error_of(api.registerTemplate, **{k: v for k, v in params.items() if v is not None})

    err = bad(url="file:///etc/passwd")
    assert (err["errorcode"], err["cserrorcode"]) == (431, 4350) and "File://" in err["errortext"]
    err = bad(url="ftp://images.example.com/x.qcow2")
    assert err["errorcode"] == 431 and "url" in err["errortext"]
    err = bad(format="QCOW3")
    assert err["errorcode"] == 431 and "Image format: QCOW3 is incorrect" in err["errortext"]
    err = bad(format="ISO")
    assert err["errorcode"] == 431 and "registerIso" in err["errortext"]
    err = bad(hypervisor="Bochs")
    assert err["errorcode"] == 431 and "Hypervisor Type: Bochs is invalid" in err["errortext"]
    err = bad(ostypeid=None)
    assert (err["errorcode"], err["cserrorcode"]) == (431, 9999) and err["errortext"] == "Please provide a guest OS type"
    err = bad(ostypeid="not-a-uuid")
    assert err["errorcode"] == 431 and "ostypeid" in err["errortext"]
    err = bad(zoneid=None)
    assert err["errorcode"] == 431 and "zoneid" in err["errortext"]
    err = bad(zoneids=sandbox.basic_zone)
    assert err["errorcode"] == 431 and "zoneids" in err["errortext"]
    err = bad(zoneid=None, zoneids=f"-1,{sandbox.basic_zone}")
    assert err["errorcode"] == 431 and "-1" in err["errortext"]
    err = bad(checksum="{SHA256}" + "a" * 64)
    assert err["errorcode"] == 431 and "checksum" in err["errortext"]
    err = bad(checksum="{SHA-256}abcd")
    assert err["errorcode"] == 431 and "checksum" in err["errortext"]
    err = bad(directdownload=True)
    assert err["errorcode"] == 431 and "directdownload" in err["errortext"]
    err = bad(templatetype="SYSTEM")
    assert err["errorcode"] == 431 and "SYSTEM" in err["errortext"]
    err = bad(name=None)
    assert (err["errorcode"], err["cserrorcode"]) == (431, 9999) and "name" in err["errortext"]
    err = bad(url=None)
    assert err["errorcode"] == 431 and "url" in err["errortext"]
    err = bad(name=SIM_TEMPLATE + "x", displaytext="SystemVM Template (simulator)")
    assert err["errorcode"] == 431 and "reserved" in err["errortext"]


def test_template_limit(world: World, sandbox: Sandbox, make_sandbox_tenant: Any, os_id: str) -> None:
    user = make_sandbox_tenant()
    world.root.updateResourceLimit(resourcetype=4, max=2, account=user.name, domainid=user.domain_id)
    first = register(user.api, os_id, sandbox.advanced_zone, unique("lim"))
    iso = user.api.registerIso(name=unique("lim-iso"), displaytext="x", url="http://images.example.com/x.iso",
                               zoneid=sandbox.advanced_zone, ostypeid=os_id)["iso"][0]
    err = error_of(register, user.api, os_id, sandbox.advanced_zone, unique("lim"))
    assert (err["errorcode"], err["cserrorcode"]) == (532, 4280) and "'template'" in err["errortext"]
    user.api.deleteIso(id=iso["id"])
    second = register(user.api, os_id, sandbox.advanced_zone, unique("lim"))
    assert second["id"] != first["id"]


def test_counts_agree_with_a_recount(world: World, sandbox: Sandbox, sandbox_server: Server,
                                     make_sandbox_tenant: Any, os_id: str) -> None:
    """What registering, creating and deleting templates counted is what updateResourceCount recounts."""
    user = make_sandbox_tenant()
    api = user.api
    kept = register(api, os_id, sandbox.advanced_zone, unique("cnt"), zoneids=f"{sandbox.advanced_zone},"
                    f"{sandbox.basic_zone}")
    gone = register(api, os_id, sandbox.advanced_zone, unique("cnt"))
    api.deleteTemplate(id=gone["id"])
    vm = api.deployVirtualMachine(zoneid=sandbox.advanced_zone, templateid=sandbox.template,
                                  serviceofferingid=sandbox.small)["virtualmachine"]
    api.stopVirtualMachine(id=vm["id"])
    root = api.listVolumes(virtualmachineid=vm["id"], type="ROOT")["volume"][0]
    made = api.createTemplate(name=unique("cnt"), displaytext="x", ostypeid=os_id, volumeid=root["id"])["template"]
    assert made["size"] > 0 and kept["id"]
    account_id = db_exec(sandbox_server, "SELECT id FROM account WHERE uuid = :u", u=user.id)[0][0]
    stored = dict(db_exec(sandbox_server, "SELECT resource_type, count FROM resource_count WHERE account_id = :a",
                          a=account_id))
    assert stored["template"] == 2 and stored["secondary_storage"] == made["size"]
    recounted = {r["resourcetypename"]: r["resourcecount"]
                 for r in world.root.updateResourceCount(domainid=user.domain_id, account=user.name)["resourcecount"]}
    assert recounted["template"] == 2 and recounted["secondary_storage"] == made["size"]


def test_non_admin_refusals(world: World, sandbox: Sandbox) -> None:
    api = world.b.api
    err = error_of(api.prepareTemplate, templateid=sandbox.template, zoneid=sandbox.advanced_zone)
    assert err["errorcode"] == 401
    err = error_of(api.updateTemplate, id=sandbox.template, name="mine")
    assert err["errorcode"] == 531
    err = error_of(api.deleteTemplate, id=world.ids["rf"])
    assert err["errorcode"] == 531
    err = error_of(api.copyTemplate, id=world.ids["a1pub"], destzoneid=sandbox.basic_zone)
    assert err["errorcode"] == 531
    err = error_of(api.updateTemplatePermissions, id=world.ids["a1pub"], ispublic=False)
    assert err["errorcode"] == 531


# -- lifecycle: deploy, update, copy, extract, prepare, delete -------------------------------------


def test_deploy_update_copy_delete(world: World, sandbox: Sandbox, os_id: str, sandbox_server: Server) -> None:
    api = world.b.api
    t = register(api, os_id, sandbox.advanced_zone, f"{world.prefix}-life", passwordenabled=True)
    vm = api.deployVirtualMachine(zoneid=sandbox.advanced_zone, templateid=t["id"],
                                  serviceofferingid=sandbox.small)["virtualmachine"]
    assert vm["state"] == "Running" and vm["templateid"] == t["id"] and vm["password"]
    err = error_of(api.deployVirtualMachine, zoneid=sandbox.basic_zone, templateid=t["id"],
                   serviceofferingid=sandbox.small)
    assert err["errorcode"] == 431 and "not ready in zone" in err["errortext"]
    up = api.updateTemplate(id=t["id"], name=f"{world.prefix}-life2", displaytext="v2", ostypeid=os_id,
                            isdynamicallyscalable=True, details={"keyboard": "us"})["template"]
    assert up["name"] == f"{world.prefix}-life2" and up["displaytext"] == "v2" and up["isdynamicallyscalable"]
    assert up["details"] == {"keyboard": "us"}
    assert api.updateTemplate(id=t["id"], cleanupdetails=True)["template"]["details"] == {}
    copied = api.copyTemplate(id=t["id"], destzoneid=sandbox.basic_zone)["template"]
    assert copied["zoneid"] == sandbox.basic_zone and copied["isready"] is True
    assert api.listTemplates(templatefilter="self", id=t["id"])["count"] == 2
    err = error_of(api.copyTemplate, id=t["id"], destzoneid=sandbox.basic_zone, sourcezoneid=sandbox.basic_zone)
    assert err["errorcode"] == 431 and "different source and destination" in err["errortext"]
    err = error_of(api.copyTemplate, id=t["id"])
    assert err["errorcode"] == 431 and "destzoneid" in err["errortext"]
    prepared = world.root.prepareTemplate(templateid=t["id"], zoneid=sandbox.advanced_zone)["template"]
    assert prepared["id"] == t["id"]
    pools = db_exec(sandbox_server, "SELECT COUNT(*) FROM template_pool_ref r JOIN vm_template t ON t.id ="
                    " r.template_id WHERE t.uuid = :u", u=t["id"])[0][0]
    assert pools >= 2
    # in use: refused unless forced; a zone the VM is not in can go
    err = error_of(api.deleteTemplate, id=t["id"])
    assert (err["errorcode"], err["cserrorcode"]) == (431, 4350) and "are using it" in err["errortext"]
    assert api.deleteTemplate(id=t["id"], zoneid=sandbox.basic_zone)["success"] is True
    assert [r["zoneid"] for r in api.listTemplates(templatefilter="self", id=t["id"])["template"]] == \
        [sandbox.advanced_zone]
    assert api.deleteTemplate(id=t["id"], forced=True)["success"] is True
    assert api.listTemplates(templatefilter="self", name=f"{world.prefix}-life2") == {}
    removed = api.listTemplates(templatefilter="self", id=t["id"], showremoved=True)["template"]
    assert removed and removed[0]["removed"]
    err = error_of(api.deleteTemplate, id=t["id"])
    assert err["errorcode"] == 431 and "id" in err["errortext"]
    api.destroyVirtualMachine(id=vm["id"])


def test_extract(world: World, sandbox: Sandbox, os_id: str) -> None:
    api = world.b.api
    t = register(api, os_id, sandbox.advanced_zone, unique("ext"), isextractable=True)
    ext = api.extractTemplate(id=t["id"], mode="HTTP_DOWNLOAD")["template"]
    assert ext["id"] == t["id"] and ext["extractMode"] == "HTTP_DOWNLOAD" and ext["state"] == "DOWNLOAD_URL_CREATED"
    assert ext["zoneid"] == sandbox.advanced_zone and ext["url"].endswith(f"{t['id']}.qcow2")
    err = error_of(api.extractTemplate, id=t["id"], mode="SCP")
    assert err["errorcode"] == 431 and "mode" in err["errortext"]
    plain = register(api, os_id, sandbox.advanced_zone, unique("noext"))
    err = error_of(api.extractTemplate, id=plain["id"], mode="HTTP_DOWNLOAD")
    assert err["errorcode"] == 431 and "not extractable" in err["errortext"]
    err = error_of(api.extractTemplate, id=t["id"], mode="HTTP_DOWNLOAD", zoneid=sandbox.basic_zone)
    assert err["errorcode"] == 431 and "not available in zone" in err["errortext"]


def test_create_template_from_a_volume(world: World, sandbox: Sandbox, os_id: str) -> None:
    api = world.b.api
    vm = api.deployVirtualMachine(zoneid=sandbox.advanced_zone, templateid=sandbox.template,
                                  serviceofferingid=sandbox.small)["virtualmachine"]
    root = api.listVolumes(virtualmachineid=vm["id"], type="ROOT")["volume"][0]
    err = error_of(api.createTemplate, name="x", displaytext="x", ostypeid=os_id, volumeid=root["id"])
    assert err["errorcode"] == 431 and "stop the VM" in err["errortext"]
    api.stopVirtualMachine(id=vm["id"])
    name = unique("fromvol")
    t = api.createTemplate(name=name, displaytext=name, ostypeid=os_id, volumeid=root["id"])["template"]
    assert t["name"] == name and t["isready"] is True and t["ispublic"] is False
    assert t["sourcetemplateid"] == sandbox.template and t["zoneid"] == sandbox.advanced_zone
    assert t["size"] == root["size"] and t["hypervisor"] == "Simulator"
    assert name in {x["name"] for x in api.listTemplates(templatefilter="selfexecutable")["template"]}
    vm2 = api.deployVirtualMachine(zoneid=sandbox.advanced_zone, templateid=t["id"],
                                   serviceofferingid=sandbox.small)["virtualmachine"]
    assert vm2["templateid"] == t["id"] and vm2["state"] == "Running"
    err = error_of(api.createTemplate, name="x", displaytext="x", ostypeid=os_id)
    assert err["errorcode"] == 431 and "volumeId" in err["errortext"]
    err = error_of(api.createTemplate, name="x", displaytext="x", volumeid=root["id"])
    assert (err["errorcode"], err["cserrorcode"]) == (431, 9999) and "ostypeid" in err["errortext"]
    other = world.a1.api
    err = error_of(other.createTemplate, name="x", displaytext="x", ostypeid=os_id, volumeid=root["id"])
    assert err["errorcode"] == 531
    snap = api.createSnapshot(volumeid=root["id"])["snapshot"]
    from_snap = api.createTemplate(name=name + "-s", displaytext="from a snapshot", ostypeid=os_id,
                                   snapshotid=snap["id"])["template"]
    assert from_snap["isready"] is True and from_snap["zoneid"] == sandbox.advanced_zone
    assert from_snap["sourcetemplateid"] == sandbox.template
    err = error_of(api.createTemplate, name="x", displaytext="x", ostypeid=os_id, snapshotid=snap["id"],
                   volumeid=root["id"])
    assert err["errorcode"] == 431 and "only one" in err["errortext"]
    for v in (vm, vm2):
        api.destroyVirtualMachine(id=v["id"])


# -- ISOs -----------------------------------------------------------------------------------------


def test_iso_lifecycle(world: World, sandbox: Sandbox, os_id: str) -> None:
    api = world.b.api
    name = f"{world.prefix}-iso"
    reg = api.registerIso(name=name, displaytext=name, url="http://images.example.com/boot.iso",
                          zoneid=sandbox.advanced_zone, ostypeid=os_id)
    assert reg["count"] == 1
    iso = reg["iso"][0]
    assert iso["status"] == "Successfully Installed" and iso["isready"] and iso["bootable"] is True
    assert "format" not in iso and "templatetype" not in iso
    assert name in {i["name"] for i in api.listIsos()["iso"]}  # default isofilter: selfexecutable
    assert name in {i["name"] for i in api.listIsos(isofilter="self", bootable=True)["iso"]}
    assert name not in {i["name"] for i in api.listIsos(isofilter="self", bootable=False).get("iso", [])}
    assert name not in {i["name"] for i in world.a1.api.listIsos(isofilter="executable").get("iso", [])}
    err = error_of(api.listTemplates, templatefilter="self", id=iso["id"])
    assert err["errorcode"] == 431 and "ISO" in err["errortext"]
    err = error_of(api.listIsos, isofilter="self", id=world.ids["bp"])
    assert err["errorcode"] == 431 and "not an ISO" in err["errortext"]
    # public ISOs: community for others; the status is the owner's and admins'
    api.updateIsoPermissions(id=iso["id"], ispublic=True)
    seen = world.a1.api.listIsos(isofilter="community", ispublic=True)["iso"]
    mine = next(i for i in seen if i["id"] == iso["id"])
    assert "status" not in mine
    assert world.dadmin.api.listIsos(isofilter="community", id=iso["id"])["iso"][0]["status"] == \
        "Successfully Installed"
    perms = api.listIsoPermissions(id=iso["id"])["isopermission"]
    assert perms["ispublic"] is True and perms["account"] == []
    up = api.updateIso(id=iso["id"], displaytext="boot v2", bootable=True)["iso"]
    assert up["displaytext"] == "boot v2"
    # on VMs
    vm = api.deployVirtualMachine(zoneid=sandbox.advanced_zone, templateid=sandbox.template,
                                  serviceofferingid=sandbox.small)["virtualmachine"]
    attached = api.attachIso(id=iso["id"], virtualmachineid=vm["id"])["virtualmachine"]
    assert attached["isoid"] == iso["id"] and attached["isoname"] == name
    err = error_of(api.deleteIso, id=iso["id"])
    assert err["errorcode"] == 431 and "used by other vms" in err["errortext"]
    other = api.registerIso(name=unique("iso2"), displaytext="x", url="http://images.example.com/2.iso",
                            zoneid=sandbox.advanced_zone, bootable=False)["iso"][0]
    assert other["bootable"] is False and "ostypeid" not in other
    err = error_of(api.attachIso, id=other["id"], virtualmachineid=vm["id"])
    assert err["errorcode"] == 431 and "detach" in err["errortext"]
    assert api.attachIso(id=other["id"], virtualmachineid=vm["id"], forced=True)["virtualmachine"]["isoid"] == \
        other["id"]
    detached = api.detachIso(virtualmachineid=vm["id"])["virtualmachine"]
    assert "isoid" not in detached
    err = error_of(api.detachIso, virtualmachineid=vm["id"])
    assert err["errorcode"] == 431 and "no ISO attached" in err["errortext"]
    err = error_of(world.a1.api.attachIso, id=iso["id"], virtualmachineid=vm["id"])
    assert err["errorcode"] == 531
    err = error_of(api.attachIso, id=world.ids["bp"], virtualmachineid=vm["id"])
    assert err["errorcode"] == 431
    # deploy from the ISO: the disk offering is the root disk
    err = error_of(api.deployVirtualMachine, zoneid=sandbox.advanced_zone, templateid=iso["id"],
                   serviceofferingid=sandbox.small)
    assert err["errorcode"] == 431 and "diskofferingid" in err["errortext"]
    err = error_of(api.deployVirtualMachine, zoneid=sandbox.advanced_zone, templateid=other["id"],
                   serviceofferingid=sandbox.small, diskofferingid=sandbox.disk_small)
    assert err["errorcode"] == 431 and "bootable" in err["errortext"]
    from_iso = api.deployVirtualMachine(zoneid=sandbox.advanced_zone, templateid=iso["id"],
                                        serviceofferingid=sandbox.small,
                                        diskofferingid=sandbox.disk_small)["virtualmachine"]
    assert from_iso["state"] == "Running" and from_iso["templateid"] == "-1" and from_iso["isoid"] == iso["id"]
    volumes = api.listVolumes(virtualmachineid=from_iso["id"])["volume"]
    assert [(v["type"], v["size"]) for v in volumes] == [("ROOT", 5 * 1024**3)]
    # copy and delete
    copied = api.copyIso(id=other["id"], destzoneid=sandbox.basic_zone)["iso"]
    assert copied["zoneid"] == sandbox.basic_zone
    assert api.listIsos(isofilter="self", id=other["id"])["count"] == 2
    assert api.deleteIso(id=other["id"], zoneid=sandbox.basic_zone)["success"] is True
    assert api.listIsos(isofilter="self", id=other["id"])["count"] == 1
    assert api.deleteIso(id=other["id"])["success"] is True
    assert api.listIsos(isofilter="self", name=other["name"]) == {}
    for v in (vm, from_iso):
        api.destroyVirtualMachine(id=v["id"])


def test_others_public_iso_and_template(world: World, sandbox: Sandbox, os_id: str) -> None:
    iso = world.a1.api.registerIso(name=unique("pub-iso"), displaytext="x", url="http://images.example.com/p.iso",
                                   zoneid=sandbox.advanced_zone, ostypeid=os_id, ispublic=True)["iso"][0]
    vm = world.b.api.deployVirtualMachine(zoneid=sandbox.advanced_zone, templateid=sandbox.template,
                                          serviceofferingid=sandbox.small)["virtualmachine"]
    assert world.b.api.attachIso(id=iso["id"], virtualmachineid=vm["id"])["virtualmachine"]["isoid"] == iso["id"]
    world.b.api.detachIso(virtualmachineid=vm["id"])
    private = world.a1.api.registerIso(name=unique("priv-iso"), displaytext="x", zoneid=sandbox.advanced_zone,
                                       url="http://images.example.com/q.iso", ostypeid=os_id)["iso"][0]
    err = error_of(world.b.api.attachIso, id=private["id"], virtualmachineid=vm["id"])
    assert err["errorcode"] == 531
    world.b.api.destroyVirtualMachine(id=vm["id"])
    tmpl = register(world.a1.api, os_id, sandbox.advanced_zone, unique("pub-ext"), ispublic=True, isextractable=True)
    assert world.b.api.extractTemplate(id=tmpl["id"], mode="HTTP_DOWNLOAD")["template"]["id"] == tmpl["id"]
    err = error_of(world.b.api.extractTemplate, id=world.ids["a1p"], mode="HTTP_DOWNLOAD")
    assert err["errorcode"] == 531
    err = error_of(world.b.api.deleteTemplate, id=tmpl["id"])
    assert err["errorcode"] == 531


def test_iso_bad_input(world: World, sandbox: Sandbox, os_id: str) -> None:
    api = world.b.api
    err = error_of(api.registerIso, name="x", displaytext="x", url="http://images.example.com/x.iso",
                   zoneid=sandbox.advanced_zone)
    assert (err["errorcode"], err["cserrorcode"]) == (431, 4350) and err["errortext"] == "Please pass a valid GuestOS Id"
    err = error_of(api.registerIso, name="x", displaytext="x", url="file:///x.iso", zoneid=sandbox.advanced_zone,
                   ostypeid=os_id)
    assert err["errorcode"] == 431 and "File://" in err["errortext"]
    err = error_of(api.registerIso, name="x", displaytext="x", url="http://images.example.com/x.iso", ostypeid=os_id)
    assert (err["errorcode"], err["cserrorcode"]) == (431, 9999) and "zoneid" in err["errortext"]
    err = error_of(api.registerIso, name="x", displaytext="x", url="http://images.example.com/x.iso", zoneid="-1",
                   ostypeid=os_id)
    assert err["errorcode"] == 431 and "All zones" in err["errortext"]
    err = error_of(api.listIsos, isofilter="all")
    assert err["errorcode"] == 431 and "admin only" in err["errortext"]
    err = error_of(api.extractIso, id=world.ids["bp"], mode="HTTP_DOWNLOAD")
    assert err["errorcode"] == 431 and "valid iso" in err["errortext"]
    err = error_of(api.updateTemplate, id=sandbox.template)
    assert err["errorcode"] == 531


def test_template_lists_match_declarations(world: World, sandbox_server: Server) -> None:
    from test_response_shapes import check_object

    from overcast.api.declare import registry

    for command, params in (("listTemplates", {"templatefilter": "all"}), ("listIsos", {"isofilter": "all"})):
        cls = registry.get(command)
        assert cls is not None
        items = getattr(world.root, command)(**params).get(cls.response.object_name, [])
        assert items, command
        fields = {f.name: f for f in cls.response.all_fields()}
        for item in items:
            check_object(item, fields, command)
