"""SSH key pairs through `cs`: create, register, list, delete, reset a VM's keys; isolation and errors."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cs import CloudStack

from conftest import Sandbox, Tenant, unique
from servers import Server
from test_response_shapes import check_object
from test_vms import deploy, error_of

from overcast.access.signing import sign
from overcast.api.responses.sshkeys import CreatedKeyPairResponse, SSHKeyPairResponse

FINGERPRINT = re.compile(r"^([0-9a-f]{2}:){15}[0-9a-f]{2}$")
#: CloudStack's own test vector (SSHKeysHelperTest): this key has fingerprint f6:96:3f:...
CS_RSA_KEY = ("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC2D2Cs0XAEqm+ajJpumIPrMpKp0CWtIW+8ZY2/MJCWhge1eY18u9I3PPnkMVJsT"
              "OaN0wQojjw4AkKgKjNZXA9wyUq56UyN/stmipu8zifWPgxQGDRkuzzZ6bukef8q2Awjpo8hv5/0SRPJxQLEafESnUP+Uu/LUwk5VVC"
              "7PHzywJRUGFuzDl/uT72+6hqpL2YpC6aTl4/P2eDvUQhCdL9dBmUSFX8ftT53W1jhsaQl7mPElVgSCtWz3IyRkogobMPrpJW/IPKE"
              "iojKIuvNoNv4CDR6ybeVjHOJMb9wi62rXo+CzUsW0Y4jPOX/OykAm5vrNOhQhw0aaBcv5XVv8BRX test@testkey")


def md5_fingerprint(public_key: str) -> str:
    blob = base64.b64decode(public_key.split()[1])
    return ":".join(f"{b:02x}" for b in hashlib.md5(blob, usedforsecurity=False).digest())


def ed25519_public_key() -> str:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode() + " me@host"


@pytest.fixture(scope="module")
def user(make_sandbox_tenant: Any) -> Tenant:
    return make_sandbox_tenant()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def other(make_sandbox_tenant: Any) -> Tenant:
    return make_sandbox_tenant()  # type: ignore[no-any-return]


def keys_of(api: CloudStack, **params: Any) -> list[dict[str, Any]]:
    return api.listSSHKeyPairs(**params).get("sshkeypair", [])  # type: ignore[no-any-return]


def test_create_list_delete(user: Tenant) -> None:
    api = user.api
    name = unique("key")
    created = api.createSSHKeyPair(name=name)["keypair"]
    check_object(created, {f.name: f for f in CreatedKeyPairResponse.all_fields()}, "createSSHKeyPair")
    assert created["name"] == name and created["account"] == user.name and created["domainid"] == user.domain_id
    assert created["privatekey"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert FINGERPRINT.match(created["fingerprint"])
    # The fingerprint is CloudStack's: MD5 of the public key derived from the private key handed out.
    private = serialization.load_pem_private_key(created["privatekey"].encode(), password=None)
    public = private.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                               serialization.PublicFormat.OpenSSH).decode()
    assert created["fingerprint"] == md5_fingerprint(public)
    listed = keys_of(api, name=name)
    assert len(listed) == 1 and "privatekey" not in listed[0]
    check_object(listed[0], {f.name: f for f in SSHKeyPairResponse.all_fields()}, "listSSHKeyPairs")
    assert listed[0]["id"] == created["id"] and listed[0]["fingerprint"] == created["fingerprint"]
    assert [k["name"] for k in keys_of(api, fingerprint=created["fingerprint"])] == [name]
    assert [k["name"] for k in keys_of(api, id=created["id"])] == [name]
    assert [k["name"] for k in keys_of(api, keyword=name[-8:])] == [name]
    err = error_of(lambda: api.createSSHKeyPair(name=name))
    assert err["errorcode"] == 431 and err["errortext"] == f"A key pair with name '{name}' already exists."
    err = error_of(lambda: api.createSSHKeyPair(name=name.upper()))
    assert err["errorcode"] == 431
    # deleteSSHKeyPair answers success as a boolean, as CloudStack does.
    assert api.deleteSSHKeyPair(name=name) == {"success": True}
    assert keys_of(api, name=name) == []
    err = error_of(lambda: api.deleteSSHKeyPair(name=name))
    assert err["errorcode"] == 431 and err["errortext"] == (
        f"A key pair with name '{name}' does not exist for account {user.name} in specified domain id")
    for kind in ("SSHKEYPAIR.CREATE", "SSHKEYPAIR.DELETE"):
        assert any(e["description"].endswith(name) for e in api.listEvents(type=kind).get("event", [])), kind


def test_register_validates_the_public_key(user: Tenant) -> None:
    api = user.api
    name = unique("reg")
    registered = api.registerSSHKeyPair(name=name, publickey=CS_RSA_KEY)["keypair"]
    assert registered["fingerprint"] == "f6:96:3f:f4:78:f7:80:11:6c:f8:e3:2b:40:20:f1:14"
    assert "privatekey" not in registered
    ed = ed25519_public_key()
    # Key material may come base64-encoded as a whole, as CloudStack accepts it.
    ed_pair = api.registerSSHKeyPair(name=unique("ed"), publickey=base64.b64encode(ed.encode()).decode())["keypair"]
    assert ed_pair["fingerprint"] == md5_fingerprint(ed)
    for bad in ("not-a-key", "ssh-rsa", "ssh-rsa AAAA", "ssh-rsa !!!notbase64", "ssh-unknown AAAAB3NzaC1yc2E",
                # a valid blob, but of another type than the prefix says
                "ssh-ed25519 " + CS_RSA_KEY.split()[1]):
        err = error_of(lambda bad=bad: api.registerSSHKeyPair(name=unique("bad"), publickey=bad))
        assert err["errorcode"] == 431 and err["errortext"] == "Public key is invalid", bad
    err = error_of(lambda: api.registerSSHKeyPair(name=name, publickey=ed))
    assert err["errorcode"] == 431 and err["errortext"] == f"A key pair with name '{name}' already exists for this account."
    err = error_of(lambda: api.registerSSHKeyPair(name=unique("again"), publickey=CS_RSA_KEY))
    assert err["errorcode"] == 431 and "already exists for this account" in err["errortext"]
    err = error_of(lambda: api.registerSSHKeyPair(name=unique("nokey")))
    assert err["errorcode"] == 431 and err["errortext"].endswith("due to missing parameter publickey")
    err = error_of(lambda: api.createSSHKeyPair(name="  "))
    assert err["errorcode"] == 431 and "key name can't be empty" in err["errortext"]
    assert any(e["resourceid"] == registered["id"] for e in api.listEvents(type="REGISTER.SSH.KEYPAIR")["event"])


def test_keys_are_private_to_their_account(user: Tenant, other: Tenant, sandbox: Sandbox,
                                           sandbox_admin: CloudStack) -> None:
    name = unique("mine")
    user.api.createSSHKeyPair(name=name)
    assert keys_of(other.api, listall=True) == []
    assert keys_of(other.api, name=name) == []
    # Another account's key name means nothing in mine: deleting or deploying with it finds no key.
    err = error_of(lambda: other.api.deleteSSHKeyPair(name=name))
    assert err["errorcode"] == 431 and other.name in err["errortext"]
    err = error_of(lambda: deploy(other.api, sandbox, keypair=name))
    assert err["errorcode"] == 431 and name in err["errortext"]
    # Naming the owner explicitly is refused.
    err = error_of(lambda: other.api.deleteSSHKeyPair(name=name, account=user.name, domainid=user.domain_id))
    assert err["errorcode"] == 531
    err = error_of(lambda: other.api.createSSHKeyPair(name=unique("x"), account=user.name, domainid=user.domain_id))
    assert err["errorcode"] == 531
    assert keys_of(user.api, name=name)
    # An admin may create a key for the user, and sees every key with listall.
    admin_made = unique("byadmin")
    made = sandbox_admin.createSSHKeyPair(name=admin_made, account=user.name, domainid=user.domain_id)["keypair"]
    assert made["account"] == user.name
    assert admin_made in {k["name"] for k in keys_of(user.api)}
    assert {name, admin_made} <= {k["name"] for k in keys_of(sandbox_admin, listall=True)}


def test_reset_keys_of_a_stopped_vm(user: Tenant, other: Tenant, sandbox: Sandbox, sandbox_server: Server) -> None:
    api = user.api
    first, second, third = unique("k1"), unique("k2"), unique("k3")
    for n in (first, second, third):
        api.createSSHKeyPair(name=n)
    vm = deploy(api, sandbox, name=unique("sshvm"), keypair=first)
    assert vm["keypairs"] == first and vm["state"] == "Running"
    err = error_of(lambda: api.resetSSHKeyForVirtualMachine(id=vm["id"], keypair=second))
    assert err["errorcode"] == 431 and "should be stopped to do SSH Key reset" in err["errortext"]
    api.stopVirtualMachine(id=vm["id"])
    reset = api.resetSSHKeyForVirtualMachine(id=vm["id"], keypairs=[second, third])["virtualmachine"]
    assert reset["keypairs"] == f"{second},{third}"
    assert api.listVirtualMachines(id=vm["id"])["virtualmachine"][0]["keypairs"] == f"{second},{third}"
    err = error_of(lambda: api.resetSSHKeyForVirtualMachine(id=vm["id"], keypairs=[second, "nosuchkey"]))
    assert err["errorcode"] == 431 and "Not all specified keypairs exist" in err["errortext"]
    err = error_of(lambda: api.resetSSHKeyForVirtualMachine(id=vm["id"]))
    assert err["errorcode"] == 431 and err["errortext"] == "'keypair' or 'keypairs' must be specified"
    # Another tenant can't reset my VM's keys, not even with keys of its own.
    own = unique("theirs")
    other.api.createSSHKeyPair(name=own)
    assert error_of(lambda: other.api.resetSSHKeyForVirtualMachine(id=vm["id"], keypair=own))["errorcode"] == 531
    # The answer comes under CloudStack's odd response key.
    pairs = [("apiKey", api.key), ("response", "json"), ("command", "resetSSHKeyForVirtualMachine"),
             ("id", vm["id"]), ("keypair", first)]
    r = httpx.get(sandbox_server.url, params=[*pairs, ("signature", sign(pairs, api.secret))])
    assert r.status_code == 200 and set(r.json()) == {"resetSSHKeyforvirtualmachineresponse"}
    assert "jobid" in r.json()["resetSSHKeyforvirtualmachineresponse"]
