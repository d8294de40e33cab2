"""User data through the `cs` client against a sandbox server: the validation rules and limits (GET 4 KB,
POST 1 MB, vm.userdata.max.length), reading it back, registered user data with variables, the template
override policies, and resetUserDataForVirtualMachine."""

from __future__ import annotations

import base64
import email
import json
from collections.abc import Iterator
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


def deploy(api: CloudStack, sandbox: Sandbox, **params: Any) -> dict[str, Any]:
    params.setdefault("zoneid", sandbox.advanced_zone)
    params.setdefault("templateid", sandbox.template)
    params.setdefault("serviceofferingid", sandbox.small)
    params.setdefault("startvm", False)
    params.setdefault("name", unique("ud"))
    return api.deployVirtualMachine(**params)["virtualmachine"]  # type: ignore[no-any-return]


def stored(api: CloudStack, vm_id: str) -> str | None:
    return api.getVirtualMachineUserData(virtualmachineid=vm_id)["virtualmachineuserdata"].get("userdata")


@pytest.fixture(scope="module")
def user(make_sandbox_tenant: Any) -> Tenant:
    return make_sandbox_tenant()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def post(user: Tenant, sandbox_server: Server) -> CloudStack:
    return client(sandbox_server, user.api.key, user.api.secret, method="post")


@pytest.fixture
def max_length(sandbox_admin: CloudStack) -> Iterator[Any]:
    """Set vm.userdata.max.length for one test, then put the default back."""
    def set_to(value: int) -> None:
        sandbox_admin.updateConfiguration(name="vm.userdata.max.length", value=str(value))

    yield set_to
    set_to(32768)


def test_get_limit_is_4096_encoded_characters(user: Tenant, sandbox: Sandbox) -> None:
    exact = b64(b"a" * 3072)  # 4096 characters
    vm = deploy(user.api, sandbox, userdata=exact)
    assert stored(user.api, vm["id"]) == exact
    over = b64(b"a" * 3075)  # 4100 characters
    err = error_of(lambda: deploy(user.api, sandbox, userdata=over))
    assert err["errorcode"] == 431 and err["cserrorcode"] == 4350
    assert "too long for http GET" in err["errortext"] and "userdata" in err["errortext"]


def test_post_takes_up_to_one_mebibyte_when_the_setting_allows(user: Tenant, post: CloudStack, sandbox: Sandbox,
                                                               max_length: Any) -> None:
    data = b64(bytes(range(256)) * 3072)  # 786432 bytes: exactly 1048576 characters of base64
    assert len(data) == 1048576
    err = error_of(lambda: deploy(post, sandbox, userdata=data))
    assert err["errorcode"] == 431
    assert "exceeded configurable max length: 32768" in err["errortext"] and "userdata" in err["errortext"]
    max_length(1048576)
    vm = deploy(post, sandbox, userdata=data)  # a LONGTEXT column on MariaDB: TEXT holds 64 KiB only
    assert stored(post, vm["id"]) == data
    listed = post.listVirtualMachines(id=vm["id"], userdata=True)["virtualmachine"][0]
    assert listed["userdata"] == data
    assert "userdata" not in post.listVirtualMachines(id=vm["id"])["virtualmachine"][0]
    err = error_of(lambda: deploy(post, sandbox, userdata=data + "QUJD"))
    assert err["errorcode"] == 431 and "userdata" in err["errortext"]


def test_encoding_rules(user: Tenant, sandbox: Sandbox) -> None:
    err = error_of(lambda: deploy(user.api, sandbox, userdata="not base64!!"))
    assert err["errortext"] == "User data is not base64 encoded (parameter userdata)"
    err = error_of(lambda: deploy(user.api, sandbox, userdata="===="))
    assert err["errorcode"] == 431 and "too short" in err["errortext"] and "userdata" in err["errortext"]
    # Unpadded input is stored re-padded; URL-encoded base64 is decoded first.
    vm = deploy(user.api, sandbox, userdata="aGk")
    assert stored(user.api, vm["id"]) == "aGk="
    vm = deploy(user.api, sandbox, userdata="aGk%3D")
    assert stored(user.api, vm["id"]) == "aGk="


def test_update_virtual_machine_user_data_is_validated(user: Tenant, sandbox: Sandbox) -> None:
    vm = deploy(user.api, sandbox, userdata=b64("one"))
    user.api.updateVirtualMachine(id=vm["id"], userdata=b64("two"))
    assert stored(user.api, vm["id"]) == b64("two")
    err = error_of(lambda: user.api.updateVirtualMachine(id=vm["id"], userdata=b64(b"a" * 3075)))
    assert err["errorcode"] == 431 and "GET" in err["errortext"]
    assert stored(user.api, vm["id"]) == b64("two")


def test_registered_user_data_and_variables(user: Tenant, sandbox: Sandbox, make_sandbox_tenant: Any) -> None:
    content = b64("#cloud-config\nhostname: {{ ds.meta_data.role }}-{{ ds.meta_data.site }}\n")
    name = unique("ud")
    ud = user.api.registerUserData(name=name, userdata=content, params="role, site")["userdata"]
    assert ud["name"] == name and ud["userdata"] == content and ud["params"] == "role,site"
    assert ud["account"] == user.name and ud["domainid"] == user.domain_id
    listed = user.api.listUserData(id=ud["id"])["userdata"]
    assert [u["id"] for u in listed] == [ud["id"]]
    assert user.api.listUserData(name=name)["userdata"][0]["id"] == ud["id"]
    err = error_of(lambda: user.api.registerUserData(name=name, userdata=b64("other")))
    assert err["errortext"] == f"A userdata with name {name} already exists for this account."
    err = error_of(lambda: user.api.registerUserData(name=unique("ud"), userdata=content))
    assert err["errortext"] == f"Userdata {name} with same content already exists for this account."
    err = error_of(lambda: user.api.registerUserData(name=unique("ud"), userdata="%%%"))
    assert "not base64" in err["errortext"]
    err = error_of(lambda: user.api.registerUserData(name=unique("ud"), userdata=b64("x"), params="instance-id"))
    assert "params" in err["errortext"]

    vm = deploy(user.api, sandbox, userdataid=ud["id"], userdatadetails=[{"role": "web", "site": "ams"}])
    assert vm["userdataid"] == ud["id"] and vm["userdataname"] == name
    assert json.loads(vm["userdatadetails"]) == {"role": "web", "site": "ams"}
    assert stored(user.api, vm["id"]) == content
    found = user.api.listVirtualMachines(userdataid=ud["id"])["virtualmachine"]
    assert [v["id"] for v in found] == [vm["id"]]

    err = error_of(lambda: deploy(user.api, sandbox, userdataid=ud["id"], userdatadetails=[{"role": "web"}]))
    assert err["errorcode"] == 431 and "site" in err["errortext"] and "userdatadetails" in err["errortext"]
    err = error_of(lambda: deploy(user.api, sandbox, userdataid=ud["id"],
                                  userdatadetails=[{"role": "a", "site": "b", "extra": "c"}]))
    assert "extra" in err["errortext"]
    err = error_of(lambda: deploy(user.api, sandbox, userdataid=ud["id"], userdata=b64("x"),
                                  userdatadetails=[{"role": "a", "site": "b"}]))
    assert "userdataid" in err["errortext"]
    err = error_of(lambda: deploy(user.api, sandbox, userdata=b64("x"), userdatadetails=[{"role": "a"}]))
    assert "userdatadetails" in err["errortext"]

    # In use by a VM: not deletable. Another tenant can neither list, use nor delete it.
    err = error_of(lambda: user.api.deleteUserData(id=ud["id"]))
    assert err["errorcode"] == 536 and "used by" in err["errortext"]
    other = make_sandbox_tenant()
    assert other.api.listUserData(id=ud["id"]).get("userdata", []) == []
    err = error_of(lambda: deploy(other.api, sandbox, userdataid=ud["id"],
                                  userdatadetails=[{"role": "a", "site": "b"}]))
    assert err["errorcode"] == 531
    assert error_of(lambda: other.api.deleteUserData(id=ud["id"]))["errorcode"] == 531

    spare = user.api.registerUserData(name=unique("ud"), userdata=b64("spare"))["userdata"]
    assert user.api.deleteUserData(id=spare["id"])["success"] is True
    assert user.api.listUserData(id=spare["id"]).get("userdata", []) == []


@pytest.fixture(scope="module")
def template(user: Tenant, sandbox: Sandbox, sandbox_admin: CloudStack) -> dict[str, Any]:
    os_id = sandbox_admin.listOsTypes(description="CentOS 7")["ostype"][0]["id"]
    name = unique("udtmpl")
    return user.api.registerTemplate(  # type: ignore[no-any-return]
        name=name, displaytext=name, ostypeid=os_id, format="QCOW2", hypervisor="Simulator",
        url=f"http://images.example.com/{name}.qcow2", zoneid=sandbox.advanced_zone)["template"][0]


def test_template_override_policies(user: Tenant, sandbox: Sandbox, template: dict[str, Any],
                                    make_sandbox_tenant: Any) -> None:
    base = b64("#cloud-config\npackages: [nginx]\n")
    linked = user.api.registerUserData(name=unique("tud"), userdata=base, params="role")["userdata"]
    mine = b64("#!/bin/sh\necho hello\n")

    t = user.api.linkUserDataToTemplate(templateid=template["id"], userdataid=linked["id"])["template"]
    assert t["userdataid"] == linked["id"] and t["userdatapolicy"] == "ALLOWOVERRIDE" and t["userdataparams"] == "role"
    listed = user.api.listTemplates(templatefilter="self", id=template["id"])["template"][0]
    assert listed["userdataname"] == linked["name"]
    # ALLOWOVERRIDE: the template's user data unless the deployment gives its own.
    vm = deploy(user.api, sandbox, templateid=template["id"], userdatadetails=[{"role": "db"}])
    assert stored(user.api, vm["id"]) == base and vm["userdataid"] == linked["id"]
    assert vm["userdatapolicy"] == "ALLOWOVERRIDE"
    vm = deploy(user.api, sandbox, templateid=template["id"], userdata=mine)
    assert stored(user.api, vm["id"]) == mine
    err = error_of(lambda: deploy(user.api, sandbox, templateid=template["id"]))
    assert "role" in err["errortext"]  # the template's user data declares a variable

    # APPEND: one multipart MIME document, the template's part first.
    user.api.linkUserDataToTemplate(templateid=template["id"], userdataid=linked["id"], userdatapolicy="APPEND")
    vm = deploy(user.api, sandbox, templateid=template["id"], userdata=mine, userdatadetails=[{"role": "db"}])
    doc = email.message_from_bytes(base64.b64decode(stored(user.api, vm["id"]) or ""))
    assert doc.is_multipart()
    parts = [(p.get_content_type(), p.get_payload(decode=True).decode()) for p in doc.get_payload()]
    assert parts == [("text/cloud-config", "#cloud-config\npackages: [nginx]\n"),
                     ("text/x-shellscript", "#!/bin/sh\necho hello\n")]

    # DENYOVERRIDE: any user data given is refused; none given: the template's.
    user.api.linkUserDataToTemplate(templateid=template["id"], userdataid=linked["id"], userdatapolicy="DENYOVERRIDE")
    err = error_of(lambda: deploy(user.api, sandbox, templateid=template["id"], userdata=mine))
    assert err["errorcode"] == 431 and "deny" in err["errortext"]
    vm = deploy(user.api, sandbox, templateid=template["id"], userdatadetails=[{"role": "db"}])
    assert stored(user.api, vm["id"]) == base

    # Linked: not deletable. Unlinked: the template is plain again.
    err = error_of(lambda: user.api.deleteUserData(id=linked["id"]))
    assert err["errorcode"] == 536 and "template" in err["errortext"]
    t = user.api.linkUserDataToTemplate(templateid=template["id"])["template"]
    assert "userdataid" not in t
    vm = deploy(user.api, sandbox, templateid=template["id"])
    assert stored(user.api, vm["id"]) is None

    err = error_of(lambda: user.api.linkUserDataToTemplate(templateid=template["id"], userdataid=linked["id"],
                                                           userdatapolicy="SOMETIMES"))
    assert err["errorcode"] == 431 and "userdatapolicy" in err["errortext"]
    other = make_sandbox_tenant()
    err = error_of(lambda: other.api.linkUserDataToTemplate(templateid=template["id"], userdataid=linked["id"]))
    assert err["errorcode"] == 531


def test_reset_user_data_needs_a_stopped_vm(user: Tenant, sandbox: Sandbox, make_sandbox_tenant: Any) -> None:
    vm = deploy(user.api, sandbox, startvm=True, userdata=b64("first"))
    err = error_of(lambda: user.api.resetUserDataForVirtualMachine(id=vm["id"], userdata=b64("second")))
    assert err["errorcode"] == 431 and "stopped" in err["errortext"]
    user.api.stopVirtualMachine(id=vm["id"])
    out = user.api.resetUserDataForVirtualMachine(id=vm["id"], userdata=b64("second"))["virtualmachine"]
    assert out["id"] == vm["id"] and stored(user.api, vm["id"]) == b64("second")
    ud = user.api.registerUserData(name=unique("rud"), userdata=b64("third {{ ds.meta_data.x }}"),
                                   params="x")["userdata"]
    out = user.api.resetUserDataForVirtualMachine(id=vm["id"], userdataid=ud["id"],
                                                  userdatadetails=[{"x": "1"}])["virtualmachine"]
    assert out["userdataid"] == ud["id"] and json.loads(out["userdatadetails"]) == {"x": "1"}
    assert stored(user.api, vm["id"]) == ud["userdata"]
    err = error_of(lambda: user.api.resetUserDataForVirtualMachine(id=vm["id"], userdata="!!"))
    assert "not base64" in err["errortext"]
    assert stored(user.api, vm["id"]) == ud["userdata"]
    other = make_sandbox_tenant()
    assert error_of(lambda: other.api.resetUserDataForVirtualMachine(id=vm["id"], userdata=b64("x")))["errorcode"] == 531
    assert error_of(lambda: other.api.getVirtualMachineUserData(virtualmachineid=vm["id"]))["errorcode"] == 531
