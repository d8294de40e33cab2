"""Tenant isolation: no caller sees or touches what it may not, through any implemented command.

Everything runs against a real server of the module's own (started with the simulator sandbox, for the
VM, storage and network commands). The world, built once per backend::

    ROOT ── admin (root admin), rda (domain admin *in ROOT*: CVE-2025-47713 / CVE-2025-47849), t0
     ├── D1 ── u1 (+ u1b, a second user of u1's account), cu1 (custom role), da1, da1b (domain admins), t1
     │    └── D1a ── u1a, da1a (domain admin), ra1a (resource admin: more privileged than a domain admin), t1a
     └── D2 ── u2, da2 (domain admin), t2

u1, u2, da1 and the root admin each run a VM with user data; u2 (the usual victim) also owns a data volume,
snapshots, a snapshot policy, a VM snapshot, a private template and ISO, an SSH key pair, affinity and
instance groups, tags, an isolated network with a second public IP, and a security group with a rule; the
root admin owns a private template; da1 made a service and a disk offering for D1 only. Every name given to
those is unique, so "out of reach" can be checked as "this string never appears" in any answer.

The rule under test (``overcast.access.acl``), as CloudStack's with its CVE fixes:

* a root admin reaches everything;
* a domain (or resource) admin reaches the accounts of its domain subtree whose role type is not more
  privileged than its own: the same type is allowed (CloudStack allows a domain admin to manage another
  domain admin below it), a higher type never (so never a root admin, whatever domain the caller is in);
* a user reaches its own account only; of its account's users it may change, and see the keys of, only
  itself (CVE-2016-6813).

Cross-tenant errors are CloudStack's: 531/4365 (PermissionDenied), 431 (unknown or unreachable entity)
or 401 (the role denies the command); never 200, never 500, and the error text names nothing the caller
could not already see.

A few async calls can only be checked when their job runs (the target is named by name, or is a plain id
list), as in CloudStack: for those (``checked_in_job``) the job must fail CloudStack-style and nothing change.

``COVERAGE`` maps every API command some non-root role may call to the test that proves its isolation;
commands offered to the root admin only are all covered by ``test_root_only_commands_refuse_everyone_else``.
``test_every_command_is_covered`` fails when ``listApis`` returns a command without either.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from cs import CloudStack, CloudStackApiException

RANK = {"User": 0, "DomainAdmin": 1, "ResourceAdmin": 2, "Admin": 3}
PASSWORD = "secret-pass"
ROLE_DENIED = "The given command '{}' either does not exist, is not available for user."

#: Commands a non-root-admin caller sent (recorded by ``Api``), and the tests that ran.
EXERCISED: set[str] = set()
RAN: set[str] = set()


# -- the world ---------------------------------------------------------------------------------------------


class Api:
    """A ``cs`` client that records which commands it sends (for ``test_every_command_is_covered``)."""

    def __init__(self, inner: CloudStack) -> None:
        self.inner = inner

    def __getattr__(self, command: str) -> Any:
        if command.startswith("_"):
            raise AttributeError(command)
        EXERCISED.add(command)
        return getattr(self.inner, command)


@dataclass
class Actor:
    label: str
    api: Api
    account: dict[str, Any]
    user: dict[str, Any]
    apikey: str
    secretkey: str

    @property
    def id(self) -> str:
        return str(self.account["id"])

    @property
    def name(self) -> str:
        return str(self.account["name"])

    @property
    def domain_id(self) -> str:
        return str(self.account["domainid"])

    @property
    def domainpath(self) -> str:
        return str(self.account["domainpath"])

    @property
    def roletype(self) -> str:
        return str(self.account["roletype"])

    @property
    def user_id(self) -> str:
        return str(self.user["id"])

    @property
    def username(self) -> str:
        return str(self.user["username"])


@dataclass
class World:
    server: Any
    admin: CloudStack
    admin_user: dict[str, Any]
    admin_account: dict[str, Any]
    system_user: dict[str, Any]
    root: dict[str, Any]
    domains: dict[str, dict[str, Any]]
    actors: dict[str, Actor]
    #: Accounts that are never callers here (job targets, positive-control targets).
    others: dict[str, Actor]
    role: dict[str, Any]
    private_role: dict[str, Any]
    #: The sandbox's zones, template and offerings: {"basic", "advanced", "template", "small", "medium"}.
    catalog: dict[str, str] = field(default_factory=dict)
    jobs: dict[str, str] = field(default_factory=dict)
    #: VMs by owner label ("admin" for the root admin's), and the user data each was given.
    vms: dict[str, dict[str, Any]] = field(default_factory=dict)
    user_data: dict[str, str] = field(default_factory=dict)
    #: Storage and images by owner label: {"vol", "root", "snap", "policy", "vmsnap", "template", "iso"}.
    res: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    #: Names given to private resources, by owner label: out of reach, they must never show.
    private_names: dict[str, set[str]] = field(default_factory=dict)
    #: u2's account resources: {"keypair", "affinitygroup", "instancegroup", "tag"}.
    acct_res: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: u2's networking: {"network", "nic", "ip", "sg", "rule"}.
    net_res: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Offerings a domain admin of D1 made for D1: {"service", "disk"}; their names are D1's subtree's.
    d1_offerings: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __getitem__(self, label: str) -> Actor:
        return self.actors.get(label) or self.others[label]

    @property
    def everyone(self) -> list[Actor]:
        return [*self.actors.values(), *self.others.values()]

    def users_of(self, account_id: str) -> list[Actor]:
        return [a for a in self.everyone if a.id == account_id]

    def owner(self, label: str) -> dict[str, Any]:
        """The account (root admin's view) owning ``label``'s resources."""
        return self.admin_account if label == "admin" else self[label].account

    def make_domain(self, parent: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"name": f"dom-{uuid.uuid4().hex[:8]}"}
        if parent:
            params["parentdomainid"] = parent
        return self.admin.createDomain(**params)["domain"]  # type: ignore[no-any-return]

    def make_actor(self, label: str, *, accounttype: int | None = None, domainid: str | None = None,
                   roleid: str | None = None) -> Actor:
        """A new account with its own keys (an accounttype or a roleid), as the root admin creates it."""
        name = f"acct-{uuid.uuid4().hex[:8]}"
        params: dict[str, Any] = {"username": name, "password": PASSWORD, "email": f"{name}@example.com",
                                      "firstname": "Test", "lastname": "User", "domainid": domainid}
        if roleid:
            params["roleid"] = roleid
        else:
            params["accounttype"] = accounttype
        account = self.admin.createAccount(**params)["account"]
        user = account["user"][0]
        keys = self.admin.registerUserKeys(id=user["id"])["userkeys"]
        return Actor(label, make_client(self.server, keys["apikey"], keys["secretkey"]), account, user,
                     keys["apikey"], keys["secretkey"])


def make_client(server: Any, key: str, secret: str) -> Api:
    return Api(CloudStack(endpoint=server.url, key=key, secret=secret, fetch_result=True, timeout=30,
                          poll_interval=0.05))


def wait_job(admin: CloudStack, jobid: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job = admin.queryAsyncJobResult(jobid=jobid, fetch_result=False)
        if job["jobstatus"] != 0:
            return job  # type: ignore[no-any-return]
        time.sleep(0.05)
    raise AssertionError(f"job {jobid} did not finish")


def sandbox_catalog(admin: CloudStack) -> dict[str, str]:
    """Ids of the sandbox's zones, template, offerings, an OS type and a storage pool."""
    zones = {z["networktype"]: z["id"] for z in admin.listZones()["zone"]}
    templates = admin.listTemplates(templatefilter="featured")["template"]
    offerings = {o["name"]: o["id"] for o in admin.listServiceOfferings()["serviceoffering"]}
    disks = {o["name"]: o["id"] for o in admin.listDiskOfferings()["diskoffering"]}
    return {
        "basic": zones["Basic"], "advanced": zones["Advanced"],
        "template": next(t["id"] for t in templates if t["name"].startswith("CentOS")),
        "small": offerings["Small Instance"], "medium": offerings["Medium Instance"], "disk": disks["Small"],
        "ostype": admin.listOsTypes()["ostype"][0]["id"],
        "pool": admin.listStoragePools()["storagepool"][0]["id"],
    }


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture(scope="module")
def world(server_factory: Any) -> World:
    """A server of its own, with the simulator sandbox (zones, hosts, a template) for the VM commands."""
    server = server_factory(extra_args=["--sandbox"])
    admin = CloudStack(endpoint=server.url, key=server.api_key, secret=server.secret_key, fetch_result=True,
                       timeout=30, poll_interval=0.05)
    root = admin.listDomains()["domain"][0]
    assert root["name"] == "ROOT"
    admin_user = admin.listUsers(username="admin", domainid=root["id"])["user"][0]
    system_user = admin.listUsers(username="system", domainid=root["id"])["user"][0]
    admin_account = admin.listAccounts(name="admin", domainid=root["id"])["account"][0]
    assert admin_user["apikey"] and admin_user["secretkey"]
    tag = uuid.uuid4().hex[:8]
    role = admin.createRole(name=f"isolation-{tag}", type="User",
                            description="User minus listEvents, plus listManagementServers")["role"]
    admin.createRolePermission(roleid=role["id"], rule="listEvents", permission="deny")
    admin.createRolePermission(roleid=role["id"], rule="listManagementServers", permission="allow")
    # Granting a root-only command through a rule must not bypass the service's own check.
    admin.createRolePermission(roleid=role["id"], rule="createRole", permission="allow")
    private_role = admin.createRole(name=f"private-{tag}", type="User", ispublic=False)["role"]
    w = World(server, admin, admin_user, admin_account, system_user, root, {}, {}, {}, role, private_role)
    d1 = w.make_domain()
    d1a = w.make_domain(parent=d1["id"])
    d2 = w.make_domain()
    w.domains.update({"D1": d1, "D1a": d1a, "D2": d2})
    for label, kwargs in {
        "rda": {"accounttype": 2},
        "u1": {"accounttype": 0, "domainid": d1["id"]},
        "cu1": {"roleid": role["id"], "domainid": d1["id"]},
        "da1": {"accounttype": 2, "domainid": d1["id"]},
        "da1b": {"accounttype": 2, "domainid": d1["id"]},
        "u1a": {"accounttype": 0, "domainid": d1a["id"]},
        "da1a": {"accounttype": 2, "domainid": d1a["id"]},
        "ra1a": {"accounttype": 3, "domainid": d1a["id"]},
        "u2": {"accounttype": 0, "domainid": d2["id"]},
        "da2": {"accounttype": 2, "domainid": d2["id"]},
    }.items():
        w.actors[label] = w.make_actor(label, **kwargs)
    for label, kwargs in {"t0": {"accounttype": 0}, "t1": {"accounttype": 0, "domainid": d1["id"]},
                          "t1a": {"accounttype": 0, "domainid": d1a["id"]},
                          "t2": {"accounttype": 0, "domainid": d2["id"]}}.items():
        w.others[label] = w.make_actor(label, **kwargs)
    u1 = w.actors["u1"]
    second = admin.createUser(account=u1.name, domainid=d1["id"], username=f"{u1.name}-b", password=PASSWORD,
                              email=f"{u1.name}-b@example.com", firstname="Second", lastname="User")["user"]
    keys = admin.registerUserKeys(id=second["id"])["userkeys"]
    w.actors["u1b"] = Actor("u1b", make_client(server, keys["apikey"], keys["secretkey"]), u1.account, second,
                            keys["apikey"], keys["secretkey"])
    # Jobs with results that carry user keys: the root admin's, D1's and D2's domain admins'.
    w.jobs["admin"] = admin.disableUser(id=w["t0"].user_id, fetch_result=False)["jobid"]
    w.jobs["da1"] = w["da1"].api.disableUser(id=w["t1"].user_id, fetch_result=False)["jobid"]
    w.jobs["da2"] = w["da2"].api.disableUser(id=w["t2"].user_id, fetch_result=False)["jobid"]
    # VMs, each deployed by its owner, with user data only the owner's reach may read; u2's in the
    # advanced zone, so it has an isolated network of its own.
    w.catalog = sandbox_catalog(admin)
    for label, zone in (("u1", "basic"), ("u2", "advanced"), ("da1", "basic"), ("admin", "basic")):
        api = admin if label == "admin" else w[label].api
        w.user_data[label] = b64(f"user-data-of-{label}-{uuid.uuid4().hex}")
        deployed = api.deployVirtualMachine(zoneid=w.catalog[zone], templateid=w.catalog["template"],
                                            serviceofferingid=w.catalog["small"], userdata=w.user_data[label],
                                            fetch_result=False)
        w.jobs[f"vm-{label}"] = deployed["jobid"]
    for jobid in w.jobs.values():
        assert wait_job(admin, jobid)["jobstatus"] == 1
    for label in ("u1", "u2", "da1", "admin"):
        vm_id = wait_job(admin, w.jobs[f"vm-{label}"])["jobresult"]["virtualmachine"]["id"]
        w.vms[label] = admin.listVirtualMachines(id=vm_id, listall=True)["virtualmachine"][0]
        assert w.vms[label]["state"] == "Running"
    # Storage and images: u2's full set, and the root admin's (a private template, its root volume).
    for label in ("u2", "admin"):
        api = admin if label == "admin" else w[label].api
        names = w.private_names.setdefault(label, set())
        zone = w.vms[label]["zoneid"]

        def named(kind: str, label: str = label, names: set[str] = names) -> str:
            name = f"{kind}-{label}-{uuid.uuid4().hex[:8]}"
            names.add(name)
            return name

        r: dict[str, dict[str, Any]] = {
            "root": api.listVolumes(virtualmachineid=w.vms[label]["id"], type="ROOT", listall=True)["volume"][0],
            "template": api.registerTemplate(name=named("tmpl"), displaytext="private", url="http://example.com/t.vhd",
                                             format="VHD", hypervisor="Simulator", zoneid=zone,
                                             ostypeid=w.catalog["ostype"], ispublic=False)["template"][0],
        }
        if label != "admin":
            r["vol"] = api.createVolume(zoneid=zone, diskofferingid=w.catalog["disk"], name=named("vol"))["volume"]
            r["vol"] = api.attachVolume(id=r["vol"]["id"], virtualmachineid=w.vms[label]["id"])["volume"]
            r["snap"] = api.createSnapshot(volumeid=r["vol"]["id"], name=named("snap"))["snapshot"]
            r["policy"] = api.createSnapshotPolicy(volumeid=r["vol"]["id"], intervaltype="DAILY", schedule="00:01",
                                                   maxsnaps=2, timezone="UTC")["snapshotpolicy"]
            r["vmsnap"] = api.createVMSnapshot(virtualmachineid=w.vms[label]["id"], name=named("vmsnap"))["vmsnapshot"]
            r["iso"] = api.registerIso(name=named("iso"), displaytext="private", url="http://example.com/i.iso",
                                       zoneid=zone, ostypeid=w.catalog["ostype"], ispublic=False)["iso"][0]
        w.res[label] = r
    # u2's account resources, each with a name (or key, value, private key) only u2's reach may see.
    u2, names = w["u2"], w.private_names["u2"]
    tag = uuid.uuid4().hex[:8]
    key = u2.api.createSSHKeyPair(name=f"key-u2-{tag}")["keypair"]
    ag = u2.api.createAffinityGroup(name=f"ag-u2-{tag}", type="host anti-affinity")["affinitygroup"]
    grp = u2.api.createInstanceGroup(name=f"grp-u2-{tag}")["instancegroup"]
    u2.api.createTags(resourcetype="UserVm", resourceids=w.vms["u2"]["id"],
                      tags=[{"key": f"tagkey-u2-{tag}", "value": f"tagvalue-u2-{tag}"}])
    w.acct_res = {"keypair": key, "affinitygroup": ag, "instancegroup": grp,
                  "tag": {"key": f"tagkey-u2-{tag}", "value": f"tagvalue-u2-{tag}"}}
    names |= {key["name"], key["privatekey"], key["fingerprint"], ag["name"], grp["name"], f"tagkey-u2-{tag}",
              f"tagvalue-u2-{tag}"}
    # u2's networking: its isolated network (advanced zone), the VM's nic, a second public IP, a security group
    # with a rule.
    vm2 = w.vms["u2"]
    nic = u2.api.listNics(virtualmachineid=vm2["id"])["nic"][0]
    sg = u2.api.createSecurityGroup(name=f"sg-u2-{tag}", description="u2's")["securitygroup"]
    rule = u2.api.authorizeSecurityGroupIngress(securitygroupid=sg["id"], protocol="tcp", startport=22, endport=22,
                                                cidrlist="10.9.8.0/24")["securitygroup"]["ingressrule"][0]
    ip = u2.api.associateIpAddress(networkid=nic["networkid"])["ipaddress"]
    w.net_res = {"network": u2.api.listNetworks(id=nic["networkid"])["network"][0], "nic": nic, "ip": ip,
                 "sg": sg, "rule": rule}
    names |= {sg["name"]}
    # Offerings restricted to D1, made by D1's domain admin.
    da1 = w["da1"]
    w.d1_offerings = {
        "service": da1.api.createServiceOffering(name=f"so-d1-{tag}", displaytext="D1 only", cpunumber=1,
                                                 cpuspeed=100, memory=128, domainid=d1["id"])["serviceoffering"],
        "disk": da1.api.createDiskOffering(name=f"do-d1-{tag}", displaytext="D1 only", disksize=1,
                                           domainid=d1["id"])["diskoffering"],
    }
    return w


@pytest.fixture(autouse=True)
def _record_test(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    RAN.add(request.node.originalname)


# -- the model: who may reach what ---------------------------------------------------------------------------


def in_tree(path: str, ancestor: str) -> bool:
    return path == ancestor or path.startswith(ancestor + "/")


def reaches(actor: Actor, account: dict[str, Any]) -> bool:
    """The caller may see and manage this account (as seen by the root admin)."""
    if account["id"] == actor.id or actor.roletype == "Admin":
        return True
    if actor.roletype == "User":
        return False
    return in_tree(account["domainpath"], actor.domainpath) and RANK[account["roletype"]] <= RANK[actor.roletype]


def sees_keys(actor: Actor, user_id: str, account: dict[str, Any]) -> bool:
    if user_id == actor.user_id:
        return True
    return actor.roletype != "User" and reaches(actor, account)


def sees_domain(actor: Actor, path: str) -> bool:
    if actor.roletype == "User":
        return path == actor.domainpath
    return in_tree(path, actor.domainpath)


def sees_d1_offerings(world: World, actor: Actor) -> bool:
    """Offerings for a domain are for its subtree (and the admins above it, with isrecursive)."""
    d1 = world.domains["D1"]["path"]
    return in_tree(actor.domainpath, d1) or (actor.roletype != "User" and in_tree(d1, actor.domainpath))


def forbidden(world: World, actor: Actor) -> set[str]:
    """Strings that must never reach this caller: names of accounts and domains out of its reach, and
    every API key or secret key it may not read."""
    out = {world.admin_user["apikey"], world.admin_user["secretkey"]}
    for other in world.everyone:
        if not reaches(actor, other.account):
            out |= {other.name, other.username, other.user.get("email")}
        if not sees_keys(actor, other.user_id, other.account):
            out |= {other.apikey, other.secretkey}
    for label, data in world.user_data.items():
        if not reaches(actor, world.owner(label)):
            out.add(data)
    for label, names in world.private_names.items():
        if not reaches(actor, world.owner(label)):
            out |= names
    for d in world.domains.values():
        path = d["path"]
        if not sees_domain(actor, path) and not in_tree(actor.domainpath, path):
            out.add(d["name"])
    if world.d1_offerings and not sees_d1_offerings(world, actor):
        out |= {o["name"] for o in world.d1_offerings.values()}
    out.discard(None)
    return {s for s in out if s}


def scrub(payload: Any) -> Any:
    """The ``username`` of an event or a VM names whoever acted (an admin above the caller, say), as in
    CloudStack: the one place another account's user name may show, so it is left out of the checks."""
    if isinstance(payload, dict):
        is_event = "type" in payload and "level" in payload and "description" in payload
        is_vm = "templateid" in payload and "serviceofferingid" in payload
        return {k: scrub(v) for k, v in payload.items() if not ((is_event or is_vm) and k == "username")}
    if isinstance(payload, list):
        return [scrub(v) for v in payload]
    return payload


def assert_no_leak(world: World, actor: Actor, payload: Any, given: dict[str, Any] | None = None) -> None:
    text = json.dumps(scrub(payload))
    supplied = " ".join(str(v) for v in (given or {}).values())
    leaked = sorted(s for s in forbidden(world, actor) if s in text and s not in supplied)
    assert not leaked, f"{actor.label} got {leaked} in {text[:2000]}"


# -- assertions on errors --------------------------------------------------------------------------------------


def checked_in_job(command: str, params: dict[str, Any]) -> bool:
    """Async calls whose target is only known when the job runs, as in CloudStack: disableAccount by
    account name, deleteDomain's own-domain and cleanup checks, the resources named by createTags and
    deleteTags (a plain list of ids of any type), the key pair named by resetSSHKeyForVirtualMachine (looked up
    in the VM owner's account), the address of disassociateIpAddress (free addresses have no owner), the image
    read or used by extractTemplate/extractIso/copyTemplate/copyIso/attachIso (public images are anyone's). Those may be queued, but the job must fail CloudStack-style;
    every other async call is refused before it is queued."""
    return (command == "disableAccount" and "account" in params) or command in (
        "deleteDomain", "createTags", "deleteTags", "resetSSHKeyForVirtualMachine", "disassociateIpAddress",
        "extractTemplate", "extractIso", "attachIso", "copyTemplate", "copyIso")


def call_error(api: Api, command: str, **params: Any) -> tuple[CloudStackApiException | None, dict[str, Any]]:
    """Call and return the error; fail if the call succeeded (async commands must fail before queueing,
    but for ``checked_in_job``: then the error is the failed job's result, and the exception None)."""
    try:
        result = getattr(api, command)(fetch_result=False, **params)
    except CloudStackApiException as exc:
        return exc, exc.error
    if checked_in_job(command, params) and "jobid" in result:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            job = api.queryAsyncJobResult(jobid=result["jobid"], fetch_result=False)
            if job["jobstatus"] != 0:
                assert job["jobstatus"] == 2, f"{command} {params}: the job succeeded: {job}"
                assert job["jobresultcode"] == job["jobresult"]["errorcode"], job
                return None, job["jobresult"]
            time.sleep(0.05)
    raise AssertionError(f"{command} {params} succeeded: {result}")


def check_error(exc: CloudStackApiException | None, err: dict[str, Any], codes: tuple[int, ...]) -> None:
    if exc is not None:
        assert str(exc.args[0]).startswith("HTTP "), f"not an HTTP error: {exc}"
        assert exc.response.status_code == err["errorcode"], err
    assert err["errorcode"] in codes, err
    if err["errorcode"] == 531:
        assert err["cserrorcode"] == 4365, err
    elif err["errorcode"] == 431:
        assert err["cserrorcode"] in (4350, 9999), err
    elif err["errorcode"] == 401:
        assert "cserrorcode" not in err, err
    assert isinstance(err.get("errortext"), str) and err["errortext"], err
    if exc is not None:
        assert isinstance(err.get("uuidList"), list), err


def denied(world: World, actor: Actor, command: str, codes: tuple[int, ...] = (531, 431), **params: Any) -> dict[str, Any]:
    """The call is refused, CloudStack-style, synchronously, and the error leaks nothing."""
    exc, err = call_error(actor.api, command, **params)
    check_error(exc, err, codes)
    assert_no_leak(world, actor, err, params)
    return err


def role_denied(world: World, actor: Actor, command: str, **params: Any) -> None:
    err = denied(world, actor, command, codes=(401,), **params)
    assert err["errortext"] == ROLE_DENIED.format(command)


def items(response: dict[str, Any], key: str) -> list[dict[str, Any]]:
    return response.get(key, [])  # type: ignore[no-any-return]


def hidden(world: World, actor: Actor, command: str, key: str, /, **params: Any) -> None:
    """A list call naming something out of reach: refused, or an empty list."""
    try:
        response = getattr(actor.api, command)(**params)
    except CloudStackApiException as exc:
        check_error(exc, exc.error, (531, 431))
        assert_no_leak(world, actor, exc.error, params)
        return
    assert not items(response, key), f"{actor.label} {command} {params} -> {response}"
    assert_no_leak(world, actor, response, params)


def admin_accounts(world: World) -> dict[str, dict[str, Any]]:
    return {a["id"]: a for a in world.admin.listAccounts(listall=True)["account"]}


# -- 1. users see only their own account -----------------------------------------------------------------------


USERS = ["u1", "u1b", "cu1", "u1a", "u2"]
ADMINS = ["da1", "da1b", "da1a", "ra1a", "da2", "rda"]


@pytest.mark.parametrize("label", USERS)
def test_user_lists_only_its_own_account(world: World, label: str) -> None:
    me = world[label]
    foreign = [world[x] for x in ("u2", "da1", "da2", "rda", "u1a", "t1") if world[x].id != me.id]
    for params in ({}, {"listall": True}, {"listall": True, "isrecursive": True}):
        accounts = me.api.listAccounts(**params)["account"]
        assert [a["id"] for a in accounts] == [me.id]
        users = me.api.listUsers(**params)["user"]
        assert {u["accountid"] for u in users} == {me.id}
        for u in users:
            assert ("apikey" in u) == (u["id"] == me.user_id), u
            assert "secretkey" not in u or u["id"] == me.user_id
        domains = me.api.listDomains(**params)["domain"]
        assert [d["id"] for d in domains] == [me.domain_id]
        assert_no_leak(world, me, [accounts, users, domains])
    own_users = {u["id"] for u in me.api.listUsers()["user"]}
    expected_users = {a.user_id for a in world.users_of(me.id)}
    assert own_users == expected_users
    for other in foreign:
        hidden(world, me, "listAccounts", "account", id=other.id)
        hidden(world, me, "listAccounts", "account", name=other.name, listall=True)
        hidden(world, me, "listUsers", "user", id=other.user_id)
        hidden(world, me, "listUsers", "user", username=other.username, listall=True)
        hidden(world, me, "listUsers", "user", account=other.name, domainid=other.domain_id)
        if other.domain_id != me.domain_id:  # its own domain lists its own account (checked above)
            hidden(world, me, "listAccounts", "account", domainid=other.domain_id, listall=True)
            hidden(world, me, "listUsers", "user", domainid=other.domain_id, listall=True)
            hidden(world, me, "listDomains", "domain", id=other.domain_id)
    for dom in (world.root, world.domains["D2"], world.domains["D1a"], world.domains["D1"]):
        if dom["id"] != me.domain_id:
            hidden(world, me, "listDomains", "domain", id=dom["id"])
            hidden(world, me, "listAccounts", "account", domainid=dom["id"])
            hidden(world, me, "listUsers", "user", domainid=dom["id"], isrecursive=True)
    # A same-domain account named with account=: refused, not listed.
    for other in foreign:
        if other.domain_id == me.domain_id:
            denied(world, me, "listUsers", account=other.name, domainid=other.domain_id)
            denied(world, me, "listUsers", account=other.name)


@pytest.mark.parametrize("label", ["u1", "u1b", "u1a", "u2"])
def test_user_sees_only_its_own_events_and_jobs(world: World, label: str) -> None:
    me = world[label]
    u2_events = world["u2"].api.listEvents()["event"]
    t1_events = world.admin.listEvents(account=world["t1"].name, domainid=world["t1"].domain_id)["event"]
    assert u2_events and t1_events
    for params in ({}, {"listall": True}, {"listall": True, "isrecursive": True}, {"domainid": me.domain_id,
                                                                                   "isrecursive": True}):
        events = me.api.listEvents(**params).get("event", [])
        assert events, "every tenant has at least its creation events"
        assert {(e["account"], e["domainid"]) for e in events} == {(me.name, me.domain_id)}
        jobs = me.api.listAsyncJobs(**params).get("asyncjobs", [])
        assert all(j["accountid"] == me.id for j in jobs), jobs
        assert_no_leak(world, me, [events, jobs])
    foreign_events = ([e for e in u2_events] if me.id != world["u2"].id else []) + t1_events
    for event in foreign_events:
        hidden(world, me, "listEvents", "event", id=event["id"], listall=True)
        hidden(world, me, "listEvents", "event", startid=event["id"], listall=True)
        hidden(world, me, "listEvents", "event", resourceid=event.get("resourceid", event["id"]), listall=True)
    for cmd, key in (("listEvents", "event"), ("listAsyncJobs", "asyncjobs")):
        hidden(world, me, cmd, key, domainid=world.root["id"], isrecursive=True)
        for other in (world["u2"], world["da1"], world["t1"], world["rda"]):
            if other.id == me.id:
                continue
            hidden(world, me, cmd, key, account=other.name, domainid=other.domain_id)
            if other.domain_id != me.domain_id:
                hidden(world, me, cmd, key, domainid=other.domain_id, listall=True)


def job_owner(world: World, job: str) -> dict[str, Any]:
    return world.owner(job.removeprefix("vm-"))


@pytest.mark.parametrize("label", ["u1", "u1b", "cu1", "u1a", "u2", "da1", "da1a", "ra1a", "da2", "rda"])
def test_job_of_another_tenant_is_not_returned(world: World, label: str) -> None:
    """queryAsyncJobResult and listAsyncJobs: a job is its owner account's, reachable like the account."""
    me = world[label]
    expected = set()
    for job, jobid in world.jobs.items():
        if reaches(me, job_owner(world, job)):
            expected.add(jobid)
            result = me.api.queryAsyncJobResult(jobid=jobid, fetch_result=False)
            assert result["jobid"] == jobid and result["jobstatus"] == 1
            assert_no_leak(world, me, result)
        else:
            err = denied(world, me, "queryAsyncJobResult", jobid=jobid)
            assert "jobresult" not in err and "jobstatus" not in err
    assert {"u1": 1, "u1b": 1, "u2": 1, "da1": 3, "rda": 5}.get(label, len(expected)) == len(expected)
    listed = {j["jobid"] for j in me.api.listAsyncJobs(listall=True).get("asyncjobs", [])}
    assert listed & set(world.jobs.values()) == expected
    denied(world, me, "queryAsyncJobResult", codes=(431,), jobid="00000000-0000-0000-0000-000000000000")


def test_domain_admin_reads_its_own_and_peer_jobs(world: World) -> None:
    da1, da1b = world["da1"], world["da1b"]
    job = da1.api.queryAsyncJobResult(jobid=world.jobs["da1"], fetch_result=False)
    assert job["jobresult"]["user"]["id"] == world["t1"].user_id
    # A peer domain admin of the same domain reaches da1's account, hence its jobs.
    assert da1b.api.queryAsyncJobResult(jobid=world.jobs["da1"], fetch_result=False)["jobid"] == world.jobs["da1"]
    denied(world, da1, "queryAsyncJobResult", jobid=world.jobs["da2"])
    denied(world, da1, "queryAsyncJobResult", jobid=world.jobs["admin"])


# -- 2. domain admins stay in their subtree --------------------------------------------------------------------


def test_domain_admin_lists_its_subtree_only(world: World) -> None:
    da1 = world["da1"]
    d1, d1a, d2 = world.domains["D1"], world.domains["D1a"], world.domains["D2"]
    expected = {world[x].id for x in ("u1", "cu1", "da1", "da1b", "t1", "u1a", "da1a", "t1a")}
    accounts = {a["id"]: a for a in da1.api.listAccounts(listall=True)["account"]}
    assert set(accounts) == expected
    assert world["ra1a"].id not in accounts, "a resource admin is more privileged than a domain admin"
    assert {a["id"] for a in da1.api.listAccounts(domainid=d1a["id"])["account"]} == {
        world[x].id for x in ("u1a", "da1a", "t1a")}
    assert {a["id"] for a in da1.api.listAccounts()["account"]} == {world[x].id for x in ("u1", "cu1", "da1",
                                                                                          "da1b", "t1")}
    users = da1.api.listUsers(listall=True)["user"]
    assert {u["accountid"] for u in users} == expected
    assert all(u.get("apikey") for u in users if u["id"] != world["t1"].user_id), "keys of reachable users"
    domains = {d["id"] for d in da1.api.listDomains(listall=True)["domain"]}
    assert domains == {d1["id"], d1a["id"]}
    assert [d["id"] for d in da1.api.listDomainChildren()["domain"]] == [d1a["id"]]
    assert [d["id"] for d in da1.api.listDomainChildren(id=d1["id"], isrecursive=True)["domain"]] == [d1a["id"]]
    for dom in (d2, world.root):
        hidden(world, da1, "listAccounts", "account", domainid=dom["id"])
        hidden(world, da1, "listAccounts", "account", domainid=dom["id"], isrecursive=True)
        hidden(world, da1, "listUsers", "user", domainid=dom["id"], listall=True)
        hidden(world, da1, "listDomains", "domain", id=dom["id"])
        hidden(world, da1, "listDomainChildren", "domain", id=dom["id"])
        hidden(world, da1, "listDomainChildren", "domain", id=dom["id"], isrecursive=True)
        hidden(world, da1, "listEvents", "event", domainid=dom["id"], isrecursive=True)
        hidden(world, da1, "listAsyncJobs", "asyncjobs", domainid=dom["id"], isrecursive=True)
    for other in (world["u2"], world["da2"], world["rda"], world["ra1a"]):
        hidden(world, da1, "listAccounts", "account", id=other.id)
        hidden(world, da1, "listUsers", "user", id=other.user_id)
        hidden(world, da1, "listUsers", "user", account=other.name, domainid=other.domain_id)
        hidden(world, da1, "listEvents", "event", account=other.name, domainid=other.domain_id)
        hidden(world, da1, "listAsyncJobs", "asyncjobs", account=other.name, domainid=other.domain_id)
    hidden(world, da1, "listAccounts", "account", id=world.admin_account["id"])
    hidden(world, da1, "listUsers", "user", id=world.admin_user["id"])
    # The child domain's admin does not see its parent domain.
    da1a = world["da1a"]
    assert {d["id"] for d in da1a.api.listDomains(listall=True)["domain"]} == {d1a["id"]}
    assert {a["id"] for a in da1a.api.listAccounts(listall=True)["account"]} == {
        world[x].id for x in ("u1a", "da1a", "t1a")}
    hidden(world, da1a, "listDomains", "domain", id=d1["id"])
    hidden(world, da1a, "listAccounts", "account", domainid=d1["id"])
    hidden(world, da1a, "listAccounts", "account", id=da1.id)


def _foreign_mutations(world: World, target: Actor) -> list[tuple[str, dict[str, Any]]]:
    """Every account/user/domain change aimed at ``target``'s account, user and domain."""
    uid, aid, did = target.user_id, target.id, target.domain_id
    return [
        ("createAccount", {"username": "intruder", "password": PASSWORD, "email": "i@example.com", "firstname": "I",
                               "lastname": "X", "accounttype": 0, "domainid": did}),
        ("createUser", {"account": target.name, "domainid": did, "username": "intruder", "password": PASSWORD,
                            "email": "i@example.com", "firstname": "I", "lastname": "X"}),
        ("updateAccount", {"id": aid, "newname": "hijacked"}),
        ("updateAccount", {"account": target.name, "domainid": did, "newname": "hijacked"}),
        ("disableAccount", {"id": aid, "lock": False}),
        ("disableAccount", {"account": target.name, "domainid": did, "lock": True}),
        ("lockAccount", {"account": target.name, "domainid": did}),
        ("enableAccount", {"id": aid}),
        ("enableAccount", {"account": target.name, "domainid": did}),
        ("deleteAccount", {"id": aid}),
        ("updateUser", {"id": uid, "firstname": "Hijacked"}),
        ("updateUser", {"id": uid, "password": "Hijacked-1"}),
        ("updateUser", {"id": uid, "userapikey": "hijacked-key", "usersecretkey": "hijacked-secret"}),
        ("disableUser", {"id": uid}),
        ("lockUser", {"id": uid}),
        ("enableUser", {"id": uid}),
        ("deleteUser", {"id": uid}),
        ("registerUserKeys", {"id": uid}),
        ("getUserKeys", {"id": uid}),
        ("getUser", {"userapikey": target.apikey}),
        ("createDomain", {"name": "intruder", "parentdomainid": did}),
        ("updateDomain", {"id": did, "name": "hijacked"}),
        ("updateDomain", {"id": did, "networkdomain": "hijacked.example"}),
        ("deleteDomain", {"id": did, "cleanup": True}),
        ("listConfigurations", {"accountid": aid}),
    ]


def assert_untouched(world: World, target: Actor) -> None:
    """``target`` is as it was: name, state, keys (its client still works), domain."""
    acct = world.admin.listAccounts(id=target.id)["account"][0]
    assert acct["name"] == target.name and acct["state"] == "enabled"
    user = world.admin.listUsers(id=target.user_id)["user"][0]
    assert (user["state"], user["firstname"]) == ("enabled", target.user["firstname"])
    assert (user["apikey"], user["secretkey"]) == (target.apikey, target.secretkey)
    assert target.api.listAccounts(id=target.id)["account"][0]["id"] == target.id
    dom = world.admin.listDomains(id=target.domain_id)["domain"][0]
    assert dom["id"] == target.domain_id
    if target.domain_id != world.root["id"]:
        assert dom["name"] == target.domainpath.rsplit("/", 1)[-1]
        assert "networkdomain" not in dom
    assert [a["id"] for a in world.admin.listAccounts(name="intruder", listall=True).get("account", [])] == []
    assert world.admin.listUsers(username="intruder", listall=True).get("user", []) == []


@pytest.mark.parametrize(("attacker", "victim"), [
    ("da1", "u2"), ("da1", "da2"), ("da1", "rda"), ("da1a", "u1"), ("da1a", "da1"), ("da2", "u1a"),
    ("ra1a", "u1"), ("da1", "ra1a"), ("da1b", "ra1a"),
])
def test_domain_admin_cannot_touch_outside_its_reach(world: World, attacker: str, victim: str) -> None:
    me, target = world[attacker], world[victim]
    for command, params in _foreign_mutations(world, target):
        if command in ("createAccount", "createDomain", "updateDomain", "deleteDomain") and in_tree(
                target.domainpath, me.domainpath):
            continue  # a more privileged victim inside the attacker's subtree: its domain is the attacker's
        denied(world, me, command, **params)
    assert_untouched(world, target)


@pytest.mark.parametrize("label", ["rda", "da1", "da1a", "ra1a", "da2"])
def test_no_one_below_root_reaches_the_root_admin(world: World, label: str) -> None:
    """CVE-2024-42062, CVE-2025-47713, CVE-2025-47849: keys, password, users of the root admin."""
    me = world[label]
    admin_user, admin_account = world.admin_user, world.admin_account
    login_ok = _admin_password_works(world)
    for command, params in [
        ("getUserKeys", {"id": admin_user["id"]}),
        ("registerUserKeys", {"id": admin_user["id"]}),
        ("getUser", {"userapikey": admin_user["apikey"]}),
        ("updateUser", {"id": admin_user["id"], "password": "Hijacked-1"}),
        ("updateUser", {"id": admin_user["id"], "password": "Hijacked-1", "currentpassword": "password"}),
        ("updateUser", {"id": admin_user["id"], "userapikey": "k" * 20, "usersecretkey": "s" * 20}),
        ("updateUser", {"id": admin_user["id"], "email": "attacker@example.com"}),
        ("disableUser", {"id": admin_user["id"]}),
        ("lockUser", {"id": admin_user["id"]}),
        ("enableUser", {"id": admin_user["id"]}),
        ("deleteUser", {"id": admin_user["id"]}),
        ("createUser", {"account": "admin", "domainid": world.root["id"], "username": "backdoor", "password": PASSWORD,
                            "email": "b@example.com", "firstname": "B", "lastname": "D"}),
        ("updateAccount", {"id": admin_account["id"], "newname": "hijacked"}),
        ("updateAccount", {"account": "admin", "domainid": world.root["id"], "networkdomain": "x.example"}),
        ("disableAccount", {"id": admin_account["id"], "lock": True}),
        ("disableAccount", {"account": "admin", "domainid": world.root["id"], "lock": False}),
        ("lockAccount", {"account": "admin", "domainid": world.root["id"]}),
        ("enableAccount", {"id": admin_account["id"]}),
        ("deleteAccount", {"id": admin_account["id"]}),
        ("listConfigurations", {"accountid": admin_account["id"]}),
        ("createAccount", {"username": "rootwannabe", "password": PASSWORD, "email": "r@example.com", "firstname": "R",
                               "lastname": "W", "accounttype": 1}),
        ("createAccount", {"username": "rootwannabe", "password": PASSWORD, "email": "r@example.com", "firstname": "R",
                               "lastname": "W", "roleid": _role_id(world, "Admin")}),
        ("getUserKeys", {"id": world.system_user["id"]}),
        ("registerUserKeys", {"id": world.system_user["id"]}),
        ("updateUser", {"id": world.system_user["id"], "password": "Hijacked-1"}),
    ]:
        denied(world, me, command, **params)
    accounts = admin_accounts(world)
    for params in ({}, {"listall": True}, {"id": admin_user["id"]}, {"username": "admin", "listall": True},
                   {"accounttype": 1, "listall": True}):
        for user in me.api.listUsers(**params).get("user", []):
            assert user["id"] != admin_user["id"], "the root admin's user is out of reach"
            assert accounts[user["accountid"]]["roletype"] != "Admin", user
            assert "apikey" not in user or sees_keys(me, user["id"], accounts[user["accountid"]])
    for account in me.api.listAccounts(listall=True, isrecursive=True)["account"]:
        assert account["roletype"] != "Admin", account["name"]
    listed = me.api.listUsers(listall=True)
    assert admin_user["apikey"] not in json.dumps(listed) and admin_user["secretkey"] not in json.dumps(listed)
    # Nothing changed: the admin's keys still sign, its account and user are as before.
    assert world.admin.listUsers(id=admin_user["id"])["user"][0]["apikey"] == admin_user["apikey"]
    acct = world.admin.listAccounts(id=admin_account["id"])["account"][0]
    assert (acct["name"], acct["state"], len(acct["user"])) == ("admin", "enabled", len(admin_account["user"]))
    assert world.admin.listUsers(username="backdoor", listall=True).get("user", []) == []
    if login_ok:
        assert _admin_password_works(world), "the admin's password changed"


def _admin_password_works(world: World) -> bool:
    http = _login(world, "admin", "password", world.root["id"])
    if http is None:
        return False
    http.close()
    return True


def _role_id(world: World, role_type: str) -> str:
    return next(r["id"] for r in world.admin.listRoles(type=role_type)["role"] if r["isdefault"])


def test_domain_admin_cannot_escalate_in_its_own_domain(world: World) -> None:
    da1, d1 = world["da1"], world.domains["D1"]
    base = {"password": PASSWORD, "email": "e@example.com", "firstname": "E", "lastname": "S", "domainid": d1["id"]}
    denied(world, da1, "createAccount", username="esc-admin", accounttype=1, **base)
    denied(world, da1, "createAccount", username="esc-resource", accounttype=3, **base)
    denied(world, da1, "createAccount", username="esc-role", roleid=_role_id(world, "Admin"), **base)
    denied(world, da1, "createAccount", username="esc-role2", roleid=_role_id(world, "ResourceAdmin"), **base)
    # It may not rename or delete its own domain either, nor the domain above it.
    denied(world, da1, "updateDomain", id=d1["id"], name="renamed")
    denied(world, da1, "deleteDomain", id=d1["id"], cleanup=True)
    denied(world, da1, "createDomain", name="sibling", parentdomainid=world.root["id"])
    denied(world, da1, "updateDomain", id=world.root["id"], networkdomain="x.example")
    denied(world, da1, "deleteDomain", id=world.root["id"])
    # Its own account can't be moved to a more privileged role type.
    denied(world, da1, "updateAccount", id=da1.id, roleid=_role_id(world, "Admin"))
    denied(world, da1, "updateAccount", id=da1.id, roleid=_role_id(world, "ResourceAdmin"))
    for esc in ("esc-admin", "esc-resource", "esc-role", "esc-role2"):
        assert world.admin.listUsers(username=esc, listall=True).get("user", []) == []
    assert world.admin.listAccounts(id=da1.id)["account"][0]["roletype"] == "DomainAdmin"


def test_domain_admin_manages_its_subtree(world: World) -> None:
    """The positive side: the same calls work inside the caller's reach (so the refusals are meaningful)."""
    da1, t1a, da1b = world["da1"], world["t1a"], world["da1b"]
    d1a = world.domains["D1a"]
    user = da1.api.createUser(account=t1a.name, domainid=d1a["id"], username=f"{t1a.name}-x", password=PASSWORD,
                              email="x@example.com", firstname="X", lastname="Y")["user"]
    keys = da1.api.registerUserKeys(id=user["id"])["userkeys"]
    assert da1.api.getUserKeys(id=user["id"])["userkeys"]["apikey"] == keys["apikey"]
    assert da1.api.getUser(userapikey=keys["apikey"])["user"]["id"] == user["id"]
    da1.api.updateUser(id=user["id"], firstname="Z")
    da1.api.lockUser(id=user["id"])
    da1.api.disableUser(id=user["id"])
    da1.api.enableUser(id=user["id"])
    da1.api.deleteUser(id=user["id"])
    da1.api.updateAccount(id=t1a.id, networkdomain="t1a.example")
    da1.api.lockAccount(account=t1a.name, domainid=d1a["id"])
    da1.api.disableAccount(id=t1a.id, lock=False)
    da1.api.enableAccount(id=t1a.id)
    # Another domain admin of the same domain: same role type, allowed (CloudStack's default).
    assert da1.api.getUserKeys(id=da1b.user_id)["userkeys"]["apikey"] == da1b.apikey
    da1.api.updateUser(id=da1b.user_id, lastname="Peer")
    # Child domains: create, rename, delete.
    child = da1.api.createDomain(name="child", parentdomainid=d1a["id"])["domain"]
    da1.api.updateDomain(id=child["id"], name="child2")
    extra = da1.api.createAccount(username=f"{t1a.name}-c", password=PASSWORD, email="c@example.com",
                                  firstname="C", lastname="D", accounttype=2, domainid=child["id"])["account"]
    da1.api.deleteDomain(id=child["id"], cleanup=True)
    assert extra["id"] not in admin_accounts(world)


def test_domain_admin_cannot_delete_a_more_privileged_account_with_its_domain(world: World) -> None:
    """deleteDomain cleanup=true removes every account below: not one the caller could not delete itself."""
    da1 = world["da1"]
    dx = world.make_domain(parent=world.domains["D1"]["id"])
    ra = world.make_actor("ra", accounttype=3, domainid=dx["id"])
    plain = world.make_actor("plain", accounttype=0, domainid=dx["id"])
    try:
        da1.api.deleteDomain(id=dx["id"], cleanup=True)
    except CloudStackApiException as exc:
        assert exc.error["errorcode"] == 531 and exc.error["cserrorcode"] == 4365, exc.error
        assert_no_leak(world, da1, exc.error)
    else:
        raise AssertionError("a domain admin deleted a resource admin account through deleteDomain")
    assert world.admin.listDomains(id=dx["id"])["domain"][0]["id"] == dx["id"]
    assert {a["id"] for a in world.admin.listAccounts(domainid=dx["id"])["account"]} == {ra.id, plain.id}
    world.admin.deleteDomain(id=dx["id"], cleanup=True)


# -- 3. users and the users of their own account -------------------------------------------------------------


def test_user_cannot_act_on_another_user_of_its_account(world: World) -> None:
    """CVE-2016-6813 and its kin: a user's keys, password and profile are its own, even within an account."""
    u1, u1b = world["u1"], world["u1b"]
    for me, other in ((u1, u1b), (u1b, u1)):
        denied(world, me, "registerUserKeys", id=other.user_id)
        denied(world, me, "getUserKeys", id=other.user_id)
        denied(world, me, "getUser", userapikey=other.apikey)
        denied(world, me, "updateUser", id=other.user_id, firstname="Hijacked")
        denied(world, me, "updateUser", id=other.user_id, password="Hijacked-1")
        denied(world, me, "updateUser", id=other.user_id, userapikey="k" * 20, usersecretkey="s" * 20)
        for cmd in ("disableUser", "enableUser", "lockUser", "deleteUser"):
            role_denied(world, me, cmd, id=other.user_id)
        users = {u["id"]: u for u in me.api.listUsers()["user"]}
        assert set(users) == {u1.user_id, u1b.user_id}, "a user lists its account's users"
        assert "apikey" not in users[other.user_id] and "secretkey" not in users[other.user_id]
        assert users[me.user_id]["apikey"] == me.apikey
        assert me.api.getUserKeys(id=me.user_id)["userkeys"] == {"apikey": me.apikey, "secretkey": me.secretkey}
        assert me.api.getUser(userapikey=me.apikey)["user"]["id"] == me.user_id
    for me in (u1, u1b):
        assert_untouched(world, me)


@pytest.mark.parametrize(("attacker", "victim"), [("u1", "u2"), ("u1", "da1"), ("u1", "u1a"), ("u2", "u1"),
                                                  ("cu1", "u1"), ("u1a", "da1a")])
def test_user_cannot_act_on_other_accounts(world: World, attacker: str, victim: str) -> None:
    me, target = world[attacker], world[victim]
    for command, params in _foreign_mutations(world, target):
        if command in ("registerUserKeys", "getUserKeys", "getUser", "updateUser"):
            denied(world, me, command, **params)
        else:
            role_denied(world, me, command, **params)
    for command, key in (("listUsers", "user"), ("listAccounts", "account")):
        hidden(world, me, command, key, id=target.user_id if key == "user" else target.id)
    assert_untouched(world, target)


def test_user_changes_only_itself(world: World) -> None:
    me = world.make_actor("t", accounttype=0, domainid=world.domains["D2"]["id"])
    me.api.updateUser(id=me.user_id, firstname="Self")
    keys = me.api.registerUserKeys(id=me.user_id)["userkeys"]
    assert keys["apikey"] != me.apikey
    fresh = make_client(world.server, keys["apikey"], keys["secretkey"])
    assert fresh.getUserKeys(id=me.user_id)["userkeys"] == keys
    with pytest.raises(CloudStackApiException) as info:
        me.api.listAccounts()
    assert info.value.error["errorcode"] == 401, "the old keys stop working"


# -- 4. roles ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("label", ["u1", "cu1", "da1", "rda", "ra1a"])
def test_only_root_admin_manages_roles(world: World, label: str) -> None:
    me = world[label]
    role, private = world.role, world.private_role
    perms = world.admin.listRolePermissions(roleid=role["id"])["rolepermission"]
    calls = [
        ("createRole", {"name": "mine", "type": "Admin"}),
        ("createRole", {"name": "mine", "roleid": role["id"]}),
        ("updateRole", {"id": role["id"], "name": "hijacked"}),
        ("updateRole", {"id": _role_id(world, "User"), "description": "hijacked"}),
        ("deleteRole", {"id": role["id"]}),
        ("deleteRole", {"id": private["id"]}),
        ("createRolePermission", {"roleid": role["id"], "rule": "*", "permission": "allow"}),
        ("createRolePermission", {"roleid": _role_id(world, "User"), "rule": "*", "permission": "allow"}),
        ("updateRolePermission", {"roleid": role["id"], "ruleid": perms[0]["id"], "permission": "allow"}),
        ("updateRolePermission", {"roleid": role["id"], "ruleorder": ",".join(p["id"] for p in reversed(perms))}),
        ("deleteRolePermission", {"id": perms[0]["id"]}),
        ("listRolePermissions", {"roleid": role["id"]}),
        ("listRolePermissions", {}),
    ]
    for command, params in calls:
        if label == "cu1" and command == "createRole":
            denied(world, me, command, codes=(531,), **params)  # allowed by a rule, refused by the service
        else:
            role_denied(world, me, command, **params)
    after = world.admin.listRolePermissions(roleid=role["id"])["rolepermission"]
    assert after == perms
    assert world.admin.listRoles(id=role["id"])["role"][0]["name"] == role["name"]
    assert world.admin.listRoles(name="mine").get("role", []) == []
    roles = me.api.listRoles()["role"]
    assert roles, "every caller lists the roles it could hold"
    assert all(RANK[r["type"]] <= RANK[me.roletype] for r in roles), roles
    assert all(r["ispublic"] for r in roles)
    assert private["id"] not in {r["id"] for r in roles}
    hidden(world, me, "listRoles", "role", id=private["id"])
    hidden(world, me, "listRoles", "role", id=_role_id(world, "Admin"))
    hidden(world, me, "listRoles", "role", type="Admin")


def test_role_rules_deny_and_grant(world: World) -> None:
    cu1, u1 = world["cu1"], world["u1"]
    role_denied(world, cu1, "listEvents")
    role_denied(world, cu1, "listEvents", listall=True)
    assert u1.api.listEvents()["event"], "the default User role may list events"
    # An allow rule grants a command outside the role type's defaults...
    servers = cu1.api.listManagementServers()["managementserver"]
    assert servers and all("id" in s for s in servers)
    role_denied(world, u1, "listManagementServers")
    apis = {a["name"] for a in cu1.api.listApis()["api"]}
    assert "listManagementServers" in apis and "listEvents" not in apis
    denied(world, cu1, "listApis", codes=(431,), name="listEvents")
    assert cu1.api.listApis(name="listManagementServers")["api"][0]["name"] == "listManagementServers"
    # ... and a role is the account's: the rules follow it, not the domain.
    assert {r["id"] for r in cu1.api.listRoles()["role"]} >= {world.role["id"]}


@pytest.mark.parametrize("label", USERS + ADMINS)
def test_listapis_offers_only_callable_commands(world: World, label: str) -> None:
    me = world[label]
    apis = {a["name"] for a in me.api.listApis()["api"]}
    root_only = {"createRole", "updateRole", "deleteRole", "createRolePermission", "updateRolePermission",
                 "deleteRolePermission", "listRolePermissions", "updateConfiguration", "resetConfiguration",
                 "listManagementServers"}
    admin_only = {"createAccount", "deleteAccount", "updateAccount", "disableAccount", "enableAccount",
                  "lockAccount", "createUser", "deleteUser", "disableUser", "enableUser", "lockUser",
                  "createDomain", "updateDomain", "deleteDomain", "listDomainChildren", "listConfigurations"}
    granted = {"listManagementServers", "createRole"} if label == "cu1" else set()
    assert not (apis & root_only) - granted
    if me.roletype == "User":
        assert not apis & admin_only
        denied(world, me, "listApis", codes=(431,), name="createAccount")
    else:
        assert admin_only <= apis
    assert {"listAccounts", "listUsers", "listDomains", "queryAsyncJobResult", "getUserKeys"} <= apis


# -- 5. configuration -----------------------------------------------------------------------------------------


def test_configuration_access(world: World) -> None:
    u1, da1, da2, rda = world["u1"], world["da1"], world["da2"], world["rda"]
    for me in (u1, world["u2"], world["cu1"]):
        role_denied(world, me, "listConfigurations")
        role_denied(world, me, "listConfigurations", accountid=me.id)
        role_denied(world, me, "updateConfiguration", name="expunge.delay", value="1", accountid=me.id)
        role_denied(world, me, "resetConfiguration", name="expunge.delay", accountid=me.id)
    for me in (da1, da2, rda, world["ra1a"]):
        assert me.api.listConfigurations(name="expunge.delay")["configuration"]
        role_denied(world, me, "updateConfiguration", name="expunge.delay", value="1")
        role_denied(world, me, "updateConfiguration", name="expunge.delay", value="1", accountid=me.id)
        role_denied(world, me, "resetConfiguration", name="expunge.delay")
    denied(world, da1, "listConfigurations", accountid=world["u2"].id)
    denied(world, da1, "listConfigurations", domainid=world.domains["D2"]["id"])
    denied(world, da1, "listConfigurations", domainid=world.root["id"])
    denied(world, da2, "listConfigurations", accountid=world["u1"].id)
    denied(world, world["da1a"], "listConfigurations", accountid=da1.id)

    def value(api: Any, **scope: Any) -> str:
        api = api.api if isinstance(api, Actor) else api
        [item] = [c for c in api.listConfigurations(name="expunge.delay", **scope)["configuration"]
                  if c["name"] == "expunge.delay"]
        return str(item["value"])

    admin = world.admin
    global_before = value(admin)
    admin.updateConfiguration(name="expunge.delay", value="4242", accountid=u1.id)
    try:
        assert value(admin, accountid=u1.id) == "4242"
        assert value(da1, accountid=u1.id) == "4242", "its domain admin sees the account's value"
        for other in (world["u1b"], world["u2"], world["cu1"], world["u1a"], da1):
            assert value(admin, accountid=other.id) == global_before or other.id == u1.id
        assert value(da2, accountid=world["u2"].id) == global_before
        assert value(da1, accountid=world["cu1"].id) == global_before
        assert value(admin) == global_before
        # updateConfiguration account-scoped by a domain admin (even on its own account) is root-only.
        role_denied(world, da1, "updateConfiguration", name="expunge.delay", value="1", accountid=u1.id)
        assert value(admin, accountid=u1.id) == "4242"
    finally:
        admin.resetConfiguration(name="expunge.delay", accountid=u1.id)
    assert value(admin, accountid=u1.id) == global_before


# -- 6. events: archive and delete ------------------------------------------------------------------------------


def _event_ids(api: Any, **params: Any) -> set[str]:
    return {e["id"] for e in api.listEvents(**params).get("event", [])}


@pytest.mark.parametrize("command", ["archiveEvents", "deleteEvents"])
def test_events_of_others_cannot_be_archived_or_deleted(world: World, command: str) -> None:
    admin = world.admin
    victims = {label: _event_ids(admin, account=world[label].name, domainid=world[label].domain_id)
               for label in ("u2", "da1", "t1", "u1b")}
    admin_events = _event_ids(admin, account="admin", domainid=world.root["id"], type="ROLE.CREATE")
    assert all(victims.values()) and admin_events
    for attacker, targets in (("u1", ("u2", "da1", "t1")), ("u2", ("u1b", "t1")), ("da2", ("da1", "t1")),
                              ("da1a", ("da1",))):
        me = world[attacker]
        for target in targets:
            denied(world, me, command, ids=",".join(sorted(victims[target])))
        # Bulk selections reach only the caller's own scope (checked below: the others' events remain).
        getattr(me.api, command)(type="ROLE.CREATE")
    rda = world["rda"]
    denied(world, rda, command, ids=",".join(sorted(admin_events)))
    getattr(rda.api, command)(type="ROLE.CREATE")
    for label, ids in victims.items():
        still = {e["id"]: e for e in admin.listEvents(account=world[label].name,
                                                       domainid=world[label].domain_id)["event"]}
        assert ids <= set(still), f"{command} removed events of {label}"
        assert not any(still[i]["archived"] for i in ids), f"{command} archived events of {label}"
    assert admin_events <= _event_ids(admin, account="admin", domainid=world.root["id"], type="ROLE.CREATE")


def test_user_archives_and_deletes_its_own_events(world: World) -> None:
    api = world.make_actor("t", accounttype=0, domainid=world.domains["D2"]["id"]).api
    mine = _event_ids(api)
    assert mine
    first = min(mine)
    api.archiveEvents(ids=first)
    assert first not in _event_ids(api) and first in _event_ids(api, archived=True)
    api.deleteEvents(ids=first)
    assert first not in _event_ids(api, archived=True)


# -- 7. login sessions --------------------------------------------------------------------------------------------


def _login(world: World, username: str, password: str, domainid: str) -> httpx.Client | None:
    EXERCISED.add("login")
    http = httpx.Client(base_url=world.server.url.rsplit("/client", 1)[0])
    r = http.post("/client/api", data={"command": "login", "username": username, "password": password,
                                       "domainid": domainid, "response": "json"})
    if r.status_code != 200:
        body = r.json()["loginresponse"]
        assert (r.status_code, body["errorcode"], body["cserrorcode"]) == (531, 531, 4290), body
        http.close()
        return None
    http.headers["X-Session-Key"] = r.json()["loginresponse"]["sessionkey"]
    return http


def _session_call(http: httpx.Client, command: str, **params: Any) -> httpx.Response:
    data = {"command": command, "response": "json", "sessionkey": http.headers["X-Session-Key"], **params}
    return http.get("/client/api", params=data)


def test_login_session_is_scoped_like_keys(world: World) -> None:
    u1, u2 = world["u1"], world["u2"]
    # The right password in the wrong domain is a failed login, not a login into that domain.
    assert _login(world, u1.username, PASSWORD, world.domains["D2"]["id"]) is None
    assert _login(world, u1.username, PASSWORD, world.root["id"]) is None
    assert _login(world, u1.username, PASSWORD, world.domains["D1a"]["id"]) is None
    http = _login(world, u1.username, PASSWORD, u1.domain_id)
    assert http is not None
    try:
        r = _session_call(http, "listAccounts", listall="true")
        assert r.status_code == 200
        assert [a["id"] for a in r.json()["listaccountsresponse"]["account"]] == [u1.id]
        r = _session_call(http, "listUsers", id=u2.user_id)
        assert r.status_code in (200, 431, 531) and "user" not in r.json()["listusersresponse"]
        r = _session_call(http, "getUserKeys", id=u2.user_id)
        assert r.status_code == 531 and r.json()["getuserkeysresponse"]["cserrorcode"] == 4365
        r = _session_call(http, "createAccount", username="x", password="x", email="x@x", firstname="x",
                          lastname="x", accounttype="0")
        assert r.status_code == 401
        EXERCISED.add("logout")
        assert http.get("/client/api", params={"command": "logout", "response": "json"}).status_code == 200
        r = _session_call(http, "listAccounts")
        assert r.status_code == 401, "the session ended with logout"
    finally:
        http.close()


# -- 8. every read, every caller: nothing out of reach -------------------------------------------------------


@pytest.mark.parametrize("label", USERS + ADMINS)
def test_every_read_is_scoped(world: World, label: str) -> None:
    me = world[label]
    accounts_by_id = admin_accounts(world)
    by_name = {(a["name"], a["domainid"]): a for a in accounts_by_id.values()}

    def reachable_id(account_id: str) -> bool:
        acct = accounts_by_id.get(account_id)
        return acct is not None and reaches(me, acct)

    world_users = {a.user_id: a for a in world.everyone}

    def check_keys(user: dict[str, Any], owner: dict[str, Any]) -> None:
        may = sees_keys(me, user["id"], owner)
        if "apikey" in user or "secretkey" in user:
            assert may, f"{me.label} sees the keys of {user['username']}"
        if user["id"] in world_users and may:
            assert user["apikey"] == world_users[user["id"]].apikey, user

    reads: list[tuple[str, dict[str, Any]]] = [
        ("listAccounts", {}), ("listAccounts", {"listall": True}), ("listUsers", {}),
        ("listUsers", {"listall": True}), ("listEvents", {"listall": True}), ("listEvents", {}),
        ("listAsyncJobs", {"listall": True}), ("listAsyncJobs", {}), ("listDomains", {"listall": True}),
        ("listDomains", {}), ("listRoles", {}), ("listCapabilities", {}), ("listEventTypes", {}),
        ("listApis", {}), ("listVirtualMachines", {}), ("listVirtualMachines", {"listall": True}),
        ("listZones", {}), ("listVolumes", {"listall": True}), ("listSnapshots", {"listall": True}),
        ("listVMSnapshot", {"listall": True}), ("listSnapshotPolicies", {"listall": True}),
        *(("listTemplates", {"templatefilter": f}) for f in TEMPLATE_FILTERS),
        *(("listIsos", {"isofilter": f}) for f in TEMPLATE_FILTERS),
        ("listTemplates", {"templatefilter": "self", "domainid": world.root["id"]}),  # CVE-2025-30675
        ("listSSHKeyPairs", {"listall": True}), ("listAffinityGroups", {"listall": True}),
        ("listInstanceGroups", {"listall": True}), ("listTags", {"listall": True}),
        ("listResourceLimits", {"listall": True}), ("listServiceOfferings", {}), ("listDiskOfferings", {}),
        ("listNetworkOfferings", {}), ("listHypervisors", {}), ("listOsCategories", {}),
        ("listAffinityGroupTypes", {}), ("listOsTypes", {}),
        ("listNetworks", {"listall": True}), ("listPublicIpAddresses", {"listall": True}),
        ("listSecurityGroups", {"listall": True}),
    ]
    if me.roletype != "User":
        reads += [("listDomainChildren", {"isrecursive": True}), ("listConfigurations", {})]
    for command, params in reads:
        if label == "cu1" and command == "listEvents":
            role_denied(world, me, command, **params)
            continue
        if "all" in (params.get("templatefilter"), params.get("isofilter")) and me.roletype == "User":
            denied(world, me, command, codes=(431,), **params)  # "Filter all can be specified by admin only"
            continue
        if params.get("domainid") == world.root["id"] and not sees_domain(me, "ROOT"):
            hidden(world, me, command, "template", **params)
            continue
        response = getattr(me.api, command)(**params)
        assert_no_leak(world, me, response)
        if command == "listAccounts":
            got = {a["id"] for a in response["account"]}
            assert all(reachable_id(i) for i in got), got
            if params:
                assert {a.id for a in world.everyone if reaches(me, a.account)} <= got
            for acct in response["account"]:
                for user in acct["user"]:
                    check_keys(user, acct)
        elif command == "listUsers":
            for user in response["user"]:
                assert reachable_id(user["accountid"]), user
                check_keys(user, accounts_by_id[user["accountid"]])
            if params:
                expected = {a.user_id for a in world.everyone if reaches(me, a.account)}
                assert expected <= {u["id"] for u in response["user"]}
        elif command == "listEvents":
            for event in response.get("event", []):
                owner = by_name.get((event["account"], event["domainid"]))
                if owner is not None:
                    assert reaches(me, owner), event
                else:  # a removed account: at least its domain
                    assert sees_domain(me, event["domainpath"]) and me.roletype != "User", event
        elif command == "listAsyncJobs":
            for job in response.get("asyncjobs", []):
                removed_owner = job["accountid"] not in accounts_by_id
                assert reachable_id(job["accountid"]) or (
                    removed_owner and me.roletype != "User" and sees_domain(me, job["domainpath"])), job
            mine = {jobid for job, jobid in world.jobs.items() if params and reaches(me, job_owner(world, job))}
            assert mine <= {j["jobid"] for j in response.get("asyncjobs", [])}
        elif command in ("listDomains", "listDomainChildren"):
            got = response["domain"] if command == "listDomains" else response.get("domain", [])
            assert all(sees_domain(me, d["path"]) for d in got), got
            if command == "listDomains" and params:
                assert {d["id"] for d in world.domains.values() if sees_domain(me, d["path"])} <= {
                    d["id"] for d in got}
        elif command == "listVirtualMachines":
            got = response.get("virtualmachine", [])
            for vm in got:
                owner = by_name.get((vm["account"], vm["domainid"]))
                assert owner is not None and reaches(me, owner), vm
                assert "password" not in vm, vm
            if params:
                expected = {vm["id"] for label, vm in world.vms.items() if reaches(me, world.owner(label))}
                assert expected <= {vm["id"] for vm in got}
        elif command in ("listVolumes", "listSnapshots", "listVMSnapshot", "listTemplates", "listIsos"):
            key = {"listVolumes": "volume", "listSnapshots": "snapshot", "listVMSnapshot": "vmSnapshot",
                   "listTemplates": "template", "listIsos": "iso"}[command]
            for item in response.get(key, []):
                if item.get("ispublic") or item.get("isfeatured"):
                    continue
                owner = by_name.get((item.get("account"), item.get("domainid")))
                assert owner is not None and reaches(me, owner), item
        elif command in ("listNetworks", "listPublicIpAddresses", "listSecurityGroups"):
            key = {"listNetworks": "network", "listPublicIpAddresses": "publicipaddress",
                   "listSecurityGroups": "securitygroup"}[command]
            for item in response.get(key, []):
                if item.get("acltype") == "Domain" or "account" not in item:
                    continue  # shared networks, free addresses: not an account's
                owner = by_name.get((item["account"], item.get("domainid")))
                assert owner is not None and reaches(me, owner), item
        elif command in ("listServiceOfferings", "listDiskOfferings"):
            key = "serviceoffering" if command == "listServiceOfferings" else "diskoffering"
            mine = world.d1_offerings["service" if key == "serviceoffering" else "disk"]["id"]
            listed = {o["id"] for o in response.get(key, [])}
            # Listed in D1's subtree; admins above it see them only with isrecursive (CloudStack's rule).
            assert (mine in listed) == in_tree(me.domainpath, world.domains["D1"]["path"]), (command, me.label)
        elif command == "listRoles":
            assert all(RANK[r["type"]] <= RANK[me.roletype] and r["ispublic"] for r in response["role"])


# -- 9. virtual machines -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("attacker", "victim"), [
    ("u1", "u2"), ("u2", "u1"), ("u1a", "u1"), ("cu1", "u1"), ("u1", "da1"), ("da1", "u2"), ("da2", "u1"),
    ("da1a", "da1"), ("ra1a", "u1"), ("rda", "admin"), ("da1", "admin"), ("u1", "admin"),
])
def test_vm_commands_stay_in_reach(world: World, attacker: str, victim: str) -> None:
    me, vm, owner, c = world[attacker], world.vms[victim], world.owner(victim), world.catalog
    vid = vm["id"]
    calls: list[tuple[str, dict[str, Any]]] = [
        ("startVirtualMachine", {"id": vid}),
        ("stopVirtualMachine", {"id": vid, "forced": True}),
        ("rebootVirtualMachine", {"id": vid, "forced": True}),
        ("destroyVirtualMachine", {"id": vid, "expunge": True}),
        ("expungeVirtualMachine", {"id": vid}),
        ("recoverVirtualMachine", {"id": vid}),
        ("updateVirtualMachine", {"id": vid, "displayname": "hijacked", "userdata": b64("hijacked")}),
        ("changeServiceForVirtualMachine", {"id": vid, "serviceofferingid": c["medium"]}),
        ("scaleVirtualMachine", {"id": vid, "serviceofferingid": c["medium"]}),
        ("resetPasswordForVirtualMachine", {"id": vid}),
        ("getVirtualMachineUserData", {"virtualmachineid": vid}),
        ("restoreVirtualMachine", {"virtualmachineid": vid}),
        ("deployVirtualMachine", {"zoneid": c["basic"], "templateid": c["template"], "serviceofferingid": c["small"],
                                      "account": owner["name"], "domainid": owner["domainid"]}),
        ("deployVirtualMachine", {"zoneid": c["basic"], "templateid": c["template"], "serviceofferingid": c["small"],
                                      "account": "no-such-account", "domainid": owner["domainid"]}),
    ]
    networks = {n["networkid"] for n in vm.get("nic", []) if vm["zoneid"] == c["advanced"]}
    assert networks or vm["zoneid"] != c["advanced"]
    for net in networks:  # an isolated network of another account can't be joined
        calls.append(("deployVirtualMachine", {"zoneid": c["advanced"], "templateid": c["template"],
                                                   "serviceofferingid": c["small"], "networkids": net}))
    before = {v["id"] for v in world.admin.listVirtualMachines(listall=True)["virtualmachine"]}
    for command, params in calls:
        if command == "deployVirtualMachine" and params.get("account") == "no-such-account" and \
                sees_domain(me, owner["domainpath"]):
            continue  # an unknown account in a domain the caller may use: an ordinary 431
        denied(world, me, command, **params)
    role_denied(world, me, "migrateVirtualMachine", virtualmachineid=vid, autoselect=True)
    mine_before = {v["id"] for v in me.api.listVirtualMachines(listall=True).get("virtualmachine", [])}
    if me.roletype == "User":
        role_denied(world, me, "assignVirtualMachine", virtualmachineid=vid, account=me.name, domainid=me.domain_id)
    else:
        # Taking the VM, or giving one of the caller's reach to the victim's account.
        denied(world, me, "assignVirtualMachine", virtualmachineid=vid, account=me.name, domainid=me.domain_id)
        for own in sorted(mine_before):
            denied(world, me, "assignVirtualMachine", virtualmachineid=own, account=owner["name"],
                   domainid=owner["domainid"])
    hidden(world, me, "listVirtualMachines", "virtualmachine", id=vid, listall=True)
    hidden(world, me, "listVirtualMachines", "virtualmachine", ids=vid, listall=True)
    hidden(world, me, "listVirtualMachines", "virtualmachine", account=owner["name"], domainid=owner["domainid"])
    if not sees_domain(me, owner["domainpath"]):
        hidden(world, me, "listVirtualMachines", "virtualmachine", domainid=owner["domainid"], isrecursive=True)
    mine = {v["id"] for v in me.api.listVirtualMachines(listall=True).get("virtualmachine", [])}
    assert vid not in mine
    # Nothing changed, nothing was created.
    after = world.admin.listVirtualMachines(id=vid, listall=True)["virtualmachine"][0]
    assert (after["state"], after["displayname"], after["serviceofferingid"]) == (
        "Running", vm["displayname"], vm["serviceofferingid"])
    data = world.admin.getVirtualMachineUserData(virtualmachineid=vid)["virtualmachineuserdata"]
    assert data["userdata"] == world.user_data[victim]
    assert {v["id"] for v in world.admin.listVirtualMachines(listall=True)["virtualmachine"]} == before
    assert after["account"] == owner["name"]


def test_vm_reach_inside_account_and_subtree(world: World) -> None:
    """The positive side: the account's other user and the domain admins above it reach the VM."""
    u1, u1b, da1, rda, t1a = world["u1"], world["u1b"], world["da1"], world["rda"], world["t1a"]
    vm, c = world.vms["u1"], world.catalog
    for me in (u1, u1b, da1, world["da1b"], rda):
        data = me.api.getVirtualMachineUserData(virtualmachineid=vm["id"])["virtualmachineuserdata"]
        assert data["userdata"] == world.user_data["u1"]
        assert vm["id"] in {v["id"] for v in me.api.listVirtualMachines(listall=True)["virtualmachine"]}
    assert [v["id"] for v in u1b.api.listVirtualMachines()["virtualmachine"]] == [vm["id"]]
    # A domain admin deploys for an account below it and runs the VM's lifecycle.
    mine = da1.api.deployVirtualMachine(zoneid=c["basic"], templateid=c["template"], serviceofferingid=c["small"],
                                        account=t1a.name, domainid=t1a.domain_id)["virtualmachine"]
    assert (mine["account"], mine["domainid"]) == (t1a.name, t1a.domain_id)
    assert [v["id"] for v in t1a.api.listVirtualMachines()["virtualmachine"]] == [mine["id"]]
    da1.api.stopVirtualMachine(id=mine["id"])
    da1.api.changeServiceForVirtualMachine(id=mine["id"], serviceofferingid=c["medium"])
    da1.api.updateVirtualMachine(id=mine["id"], displayname="managed")
    da1.api.startVirtualMachine(id=mine["id"])
    da1.api.rebootVirtualMachine(id=mine["id"])
    da1.api.destroyVirtualMachine(id=mine["id"], expunge=True)
    assert t1a.api.listVirtualMachines().get("virtualmachine", []) == []
    # It moves a VM between accounts of its reach, but not into another tenant's network.
    vm2 = da1.api.deployVirtualMachine(zoneid=c["advanced"], templateid=c["template"], serviceofferingid=c["small"],
                                       account=t1a.name, domainid=t1a.domain_id)["virtualmachine"]
    da1.api.stopVirtualMachine(id=vm2["id"])
    foreign_net = world.vms["u2"]["nic"][0]["networkid"]
    denied(world, da1, "assignVirtualMachine", virtualmachineid=vm2["id"], account=world["t1"].name,
           domainid=world["t1"].domain_id, networkids=foreign_net)
    moved = da1.api.assignVirtualMachine(virtualmachineid=vm2["id"], account=world["t1"].name,
                                         domainid=world["t1"].domain_id)["virtualmachine"]
    assert (moved["account"], moved["domainid"]) == (world["t1"].name, world["t1"].domain_id)
    da1.api.restoreVirtualMachine(virtualmachineid=vm2["id"])
    da1.api.destroyVirtualMachine(id=vm2["id"], expunge=True)


TEMPLATE_FILTERS = ("featured", "self", "selfexecutable", "sharedexecutable", "executable", "community", "all")


# -- 10. storage and images -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("attacker", "victim"), [
    ("u1", "u2"), ("cu1", "u2"), ("u1a", "u2"), ("da1", "u2"), ("da1a", "u2"), ("ra1a", "u2"),
    ("u1", "admin"), ("da1", "admin"), ("rda", "admin"),
])
def test_storage_and_images_stay_in_reach(world: World, attacker: str, victim: str) -> None:
    """Volumes, snapshots, snapshot policies, VM snapshots, templates and ISOs of another tenant."""
    me, r, owner, c = world[attacker], world.res[victim], world.owner(victim), world.catalog
    vm = world.vms[victim]
    own_vm = world.vms.get(attacker)
    tmpl, root = r["template"]["id"], r["root"]["id"]
    image = {"displaytext": "x", "ostypeid": c["ostype"]}
    calls: list[tuple[str, dict[str, Any]]] = [
        ("attachVolume", {"id": root, "virtualmachineid": (own_vm or vm)["id"]}),
        ("detachVolume", {"id": root}),
        ("deleteVolume", {"id": root}),
        ("destroyVolume", {"id": root}),
        ("recoverVolume", {"id": root}),
        ("resizeVolume", {"id": root, "size": 100}),
        ("migrateVolume", {"volumeid": root, "storageid": c["pool"]}),
        ("createSnapshot", {"volumeid": root}),
        ("createSnapshotPolicy", {"volumeid": root, "intervaltype": "DAILY", "schedule": "00:01", "maxsnaps": 1,
                                      "timezone": "UTC"}),
        ("createVolume", {"zoneid": vm["zoneid"], "diskofferingid": c["disk"], "name": "x", "virtualmachineid": vm["id"]}),
        ("createVolume", {"zoneid": vm["zoneid"], "diskofferingid": c["disk"], "name": "x", "account": owner["name"],
                              "domainid": owner["domainid"]}),
        ("createVMSnapshot", {"virtualmachineid": vm["id"]}),
        ("createTemplate", dict(name="x", volumeid=root, **image)),
        ("createTemplate", dict(name="x", snapshotid=r["snap"]["id"], **image) if "snap" in r else dict(
            name="x", volumeid=root, account=owner["name"], domainid=owner["domainid"], **image)),
        ("registerTemplate", dict(name="x", url="http://example.com/x.vhd", format="VHD", hypervisor="Simulator",
                                  zoneid=vm["zoneid"], account=owner["name"], domainid=owner["domainid"], **image)),
        ("registerIso", {"name": "x", "displaytext": "x", "url": "http://example.com/x.iso", "zoneid": vm["zoneid"],
                             "account": owner["name"], "domainid": owner["domainid"]}),
        ("updateTemplate", {"id": tmpl, "name": "hijacked"}),
        ("deleteTemplate", {"id": tmpl}),
        ("copyTemplate", {"id": tmpl, "destzoneid": c["basic"] if vm["zoneid"] != c["basic"] else c["advanced"]}),
        ("extractTemplate", {"id": tmpl, "mode": "HTTP_DOWNLOAD"}),
        ("extractVolume", {"id": root, "mode": "HTTP_DOWNLOAD", "zoneid": vm["zoneid"]}),
        ("getUploadParamsForTemplate", dict(name="x", format="QCOW2", hypervisor="Simulator", zoneid=vm["zoneid"],
                                            account=owner["name"], domainid=owner["domainid"], **image)),
        ("getUploadParamsForIso", {"name": "x", "format": "ISO", "zoneid": vm["zoneid"], "bootable": False,
                                   "account": owner["name"], "domainid": owner["domainid"]}),
        ("updateTemplatePermissions", {"id": tmpl, "ispublic": True}),
        ("updateTemplatePermissions", {"id": tmpl, "op": "add", "accounts": me.name}),
        ("listTemplatePermissions", {"id": tmpl}),
        ("deployVirtualMachine", {"zoneid": vm["zoneid"], "templateid": tmpl, "serviceofferingid": c["small"]}),
        ("detachIso", {"virtualmachineid": vm["id"]}),
    ]
    if own_vm is not None:
        calls.append(("restoreVirtualMachine", {"virtualmachineid": own_vm["id"], "templateid": tmpl}))
    if "vol" in r:
        vol, snap, policy, vmsnap, iso = (r[k]["id"] for k in ("vol", "snap", "policy", "vmsnap", "iso"))
        calls += [
            ("attachVolume", {"id": vol, "virtualmachineid": (own_vm or vm)["id"]}),
            ("deleteVolume", {"id": vol}),
            ("resizeVolume", {"id": vol, "size": 100}),
            ("createVolume", {"snapshotid": snap, "name": "x", "zoneid": vm["zoneid"]}),
            ("deleteSnapshot", {"id": snap}),
            ("revertSnapshot", {"id": snap}),
            ("createSnapshot", {"volumeid": vol, "policyid": policy}),
            ("updateSnapshotPolicy", {"id": policy, "fordisplay": False}),
            ("deleteSnapshotPolicies", {"id": policy}),
            ("deleteSnapshotPolicies", {"ids": policy}),
            ("deleteVMSnapshot", {"vmsnapshotid": vmsnap}),
            ("revertToVMSnapshot", {"vmsnapshotid": vmsnap}),
            ("updateIso", {"id": iso, "name": "hijacked"}),
            ("deleteIso", {"id": iso}),
            ("copyIso", {"id": iso, "destzoneid": c["basic"]}),
            ("extractIso", {"id": iso, "mode": "HTTP_DOWNLOAD"}),
            ("updateIsoPermissions", {"id": iso, "ispublic": True}),
            ("listIsoPermissions", {"id": iso}),
            ("attachIso", {"id": iso, "virtualmachineid": (own_vm or vm)["id"]}),
        ]
    for command, params in calls:
        denied(world, me, command, **params)
    lists = [("listVolumes", "volume", {"id": root, "listall": True}),
             ("listVolumes", "volume", {"virtualmachineid": vm["id"], "listall": True}),
             ("listVolumes", "volume", {"account": owner["name"], "domainid": owner["domainid"]}),
             ("listSnapshots", "snapshot", {"volumeid": root, "listall": True}),
             ("listVMSnapshot", "vmSnapshot", {"virtualmachineid": vm["id"], "listall": True}),
             ("listSnapshots", "snapshot", {"account": owner["name"], "domainid": owner["domainid"]}),
             *(("listTemplates", "template", {"templatefilter": f, "id": tmpl}) for f in TEMPLATE_FILTERS)]
    if "vol" in r:
        lists += [("listVolumes", "volume", {"id": r["vol"]["id"], "listall": True}),
                  ("listSnapshots", "snapshot", {"id": r["snap"]["id"], "listall": True}),
                  ("listSnapshotPolicies", "snapshotpolicy", {"volumeid": r["vol"]["id"], "listall": True}),
                  ("listSnapshotPolicies", "snapshotpolicy", {"id": r["policy"]["id"], "listall": True}),
                  ("listVMSnapshot", "vmSnapshot", {"vmsnapshotid": r["vmsnap"]["id"], "listall": True}),
                  *(("listIsos", "iso", {"isofilter": f, "id": r["iso"]["id"]}) for f in TEMPLATE_FILTERS)]
    for command, key, params in lists:
        hidden(world, me, command, key, **params)
    # Everything is as its owner left it.
    admin = world.admin
    assert admin.listVolumes(id=root, listall=True)["volume"][0]["state"] == r["root"]["state"]
    t = admin.listTemplates(templatefilter="all", id=tmpl)["template"][0]
    assert (t["name"], t["ispublic"]) == (r["template"]["name"], False)
    assert admin.listVirtualMachines(id=vm["id"], listall=True)["virtualmachine"][0]["state"] == "Running"
    if "vol" in r:
        assert admin.listVolumes(id=r["vol"]["id"], listall=True)["volume"][0]["name"] == r["vol"]["name"]
        assert admin.listSnapshots(id=r["snap"]["id"], listall=True)["snapshot"]
        assert admin.listSnapshotPolicies(id=r["policy"]["id"], listall=True)["snapshotpolicy"]
        assert admin.listVMSnapshot(vmsnapshotid=r["vmsnap"]["id"], listall=True)["vmSnapshot"]
        iso = admin.listIsos(isofilter="all", id=r["iso"]["id"])["iso"][0]
        assert (iso["name"], iso["ispublic"]) == (r["iso"]["name"], False)


def test_storage_and_images_reach_inside_the_subtree(world: World) -> None:
    """The positive side: the owner and its domain admins see the resources the others can't."""
    r = world.res["u2"]
    for me in (world["u2"], world["da2"], world["rda"]):
        assert r["vol"]["id"] in {v["id"] for v in me.api.listVolumes(listall=True)["volume"]}
        assert r["snap"]["id"] in {v["id"] for v in me.api.listSnapshots(listall=True)["snapshot"]}
        assert r["vmsnap"]["id"] in {v["id"] for v in me.api.listVMSnapshot(listall=True)["vmSnapshot"]}
        assert r["policy"]["id"] in {v["id"] for v in me.api.listSnapshotPolicies(
            volumeid=r["vol"]["id"], listall=True)["snapshotpolicy"]}
        listed = me.api.listTemplates(templatefilter="self" if me.label == "u2" else "all", id=r["template"]["id"])
        assert [t["id"] for t in listed.get("template", [])] == [r["template"]["id"]], me.label
        assert me.api.listTemplatePermissions(id=r["template"]["id"])["templatepermission"]


# -- 11. account resources: SSH key pairs, affinity and instance groups, tags, limits -------------------------


@pytest.mark.parametrize("attacker", ["u1", "cu1", "u1a", "da1", "da1a", "ra1a"])
def test_account_resources_stay_in_reach(world: World, attacker: str) -> None:
    me, victim, r, c = world[attacker], world["u2"], world.acct_res, world.catalog
    vm = world.vms["u2"]
    own_vm = world.vms.get(attacker)
    owner = {"account": victim.name, "domainid": victim.domain_id}
    key, ag, grp, tag = r["keypair"], r["affinitygroup"], r["instancegroup"], r["tag"]
    pub = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC3 isolation@test"
    calls: list[tuple[str, dict[str, Any]]] = [
        ("createSSHKeyPair", dict(name="x", **owner)),
        ("registerSSHKeyPair", dict(name="x", publickey=pub, **owner)),
        ("deleteSSHKeyPair", dict(name=key["name"], **owner)),
        ("deleteSSHKeyPair", {"name": key["name"]}),  # the caller's own account has no such key
        ("resetSSHKeyForVirtualMachine", {"id": vm["id"], "keypair": key["name"]}),
        ("resetSSHKeyForVirtualMachine", dict(id=vm["id"], keypair=key["name"], **owner)),
        ("createAffinityGroup", dict(name="x", type="host affinity", **owner)),
        ("deleteAffinityGroup", {"id": ag["id"]}),
        ("deleteAffinityGroup", dict(name=ag["name"], **owner)),
        ("updateVMAffinityGroup", {"id": vm["id"], "affinitygroupids": ag["id"]}),
        ("createInstanceGroup", dict(name="x", **owner)),
        ("deleteInstanceGroup", {"id": grp["id"]}),
        ("updateInstanceGroup", {"id": grp["id"], "name": "hijacked"}),
        ("createTags", {"resourcetype": "UserVm", "resourceids": vm["id"], "tags": [{"key": "x", "value": "y"}]}),
        ("deleteTags", {"resourcetype": "UserVm", "resourceids": vm["id"]}),
        ("deleteTags", {"resourcetype": "UserVm", "resourceids": vm["id"], "tags": [{"key": tag["key"]}]}),
        ("deployVirtualMachine", {"zoneid": vm["zoneid"], "templateid": c["template"], "serviceofferingid": c["small"],
                                      "affinitygroupids": ag["id"]}),
        ("deployVirtualMachine", {"zoneid": vm["zoneid"], "templateid": c["template"], "serviceofferingid": c["small"],
                                      "keypair": key["name"]}),
    ]
    if own_vm is not None:
        calls += [("updateVMAffinityGroup", {"id": own_vm["id"], "affinitygroupids": ag["id"]}),
                  ("resetSSHKeyForVirtualMachine", {"id": own_vm["id"], "keypair": key["name"]})]
    if me.roletype == "User":
        role_denied(world, me, "updateResourceLimit", resourcetype=0, max=100, **owner)
        role_denied(world, me, "updateResourceCount", **owner)
        limits = me.api.listResourceLimits(listall=True, **owner).get("resourcelimit", [])
        assert limits and {x["account"] for x in limits} == {me.name}, limits
    else:
        calls += [("updateResourceLimit", dict(resourcetype=0, max=100, **owner)),
                  ("updateResourceLimit", {"resourcetype": 0, "max": 100, "domainid": victim.domain_id}),
                  ("updateResourceCount", dict(**owner)),
                  ("updateResourceCount", {"domainid": victim.domain_id}),
                  ("listResourceLimits", dict(**owner)),
                  ("listResourceLimits", {"domainid": victim.domain_id})]
    for command, params in calls:
        denied(world, me, command, **params)
    for command, key_, params in [
        ("listSSHKeyPairs", "sshkeypair", {"name": key["name"], "listall": True}),
        ("listSSHKeyPairs", "sshkeypair", {"fingerprint": key["fingerprint"], "listall": True}),
        ("listSSHKeyPairs", "sshkeypair", dict(**owner)),
        ("listAffinityGroups", "affinitygroup", {"id": ag["id"], "listall": True}),
        ("listAffinityGroups", "affinitygroup", {"virtualmachineid": vm["id"], "listall": True}),
        ("listInstanceGroups", "instancegroup", {"id": grp["id"], "listall": True}),
        ("listInstanceGroups", "instancegroup", dict(**owner)),
        ("listTags", "tag", {"resourceid": vm["id"], "listall": True}),
        ("listTags", "tag", {"key": tag["key"], "listall": True}),
        ("listTags", "tag", dict(**owner)),
    ]:
        hidden(world, me, command, key_, **params)
    # All still there, unchanged.
    admin = world.admin
    assert admin.listSSHKeyPairs(name=key["name"], listall=True)["sshkeypair"][0]["fingerprint"] == key["fingerprint"]
    assert admin.listAffinityGroups(id=ag["id"], listall=True)["affinitygroup"][0]["name"] == ag["name"]
    assert admin.listInstanceGroups(id=grp["id"], listall=True)["instancegroup"][0]["name"] == grp["name"]
    tags = admin.listTags(resourceid=vm["id"], listall=True)["tag"]
    assert [(t["key"], t["value"]) for t in tags] == [(tag["key"], tag["value"])]


def test_account_resources_reach_inside_the_subtree(world: World) -> None:
    r = world.acct_res
    for me in (world["u2"], world["da2"], world["rda"]):
        assert r["keypair"]["name"] in {k["name"] for k in me.api.listSSHKeyPairs(listall=True)["sshkeypair"]}
        assert r["affinitygroup"]["id"] in {g["id"] for g in me.api.listAffinityGroups(listall=True)["affinitygroup"]}
        assert r["instancegroup"]["id"] in {g["id"] for g in me.api.listInstanceGroups(listall=True)["instancegroup"]}
        assert r["tag"]["key"] in {t["key"] for t in me.api.listTags(listall=True)["tag"]}
    assert world["da2"].api.listResourceLimits(account=world["u2"].name, domainid=world["u2"].domain_id)["resourcelimit"]


# -- 12. networking: networks, nics, public IPs, security groups --------------------------------------------------


@pytest.mark.parametrize("attacker", ["u1", "u1a", "da1", "da1a", "ra1a"])
def test_networking_stays_in_reach(world: World, attacker: str) -> None:
    """Another tenant's network, nics, addresses and security groups (CVE-2024-42222: network lists)."""
    me, victim, r, c = world[attacker], world["u2"], world.net_res, world.catalog
    vm, own_vm = world.vms["u2"], world.vms.get(attacker)
    net, nic, ip, sg = (r[k]["id"] for k in ("network", "nic", "ip", "sg"))
    rule = r["rule"]["ruleid"]
    owner = {"account": victim.name, "domainid": victim.domain_id}
    isolated = next(o["id"] for o in world.admin.listNetworkOfferings()["networkoffering"]
                    if o["name"] == "DefaultIsolatedNetworkOfferingWithSourceNatService")
    sg_rule = {"protocol": "tcp", "startport": 1, "endport": 65535, "cidrlist": "0.0.0.0/0"}
    calls: list[tuple[str, dict[str, Any]]] = [
        ("createNetwork", dict(name="x", displaytext="x", networkofferingid=isolated, zoneid=c["advanced"], **owner)),
        ("updateNetwork", {"id": net, "name": "hijacked"}),
        ("restartNetwork", {"id": net, "cleanup": True}),
        ("deleteNetwork", {"id": net, "forced": True}),
        ("addNicToVirtualMachine", {"virtualmachineid": vm["id"], "networkid": net}),
        ("removeNicFromVirtualMachine", {"virtualmachineid": vm["id"], "nicid": nic}),
        ("updateDefaultNicForVirtualMachine", {"virtualmachineid": vm["id"], "nicid": nic}),
        ("updateVmNicIp", {"nicid": nic}),
        ("associateIpAddress", {"networkid": net}),
        ("associateIpAddress", dict(zoneid=c["advanced"], **owner)),
        ("disassociateIpAddress", {"id": ip}),
        ("createSecurityGroup", dict(name="x", **owner)),
        ("deleteSecurityGroup", {"id": sg}),
        ("deleteSecurityGroup", dict(name=r["sg"]["name"], **owner)),
        ("authorizeSecurityGroupIngress", dict(securitygroupid=sg, **sg_rule)),
        ("authorizeSecurityGroupIngress", dict(securitygroupname=r["sg"]["name"], **owner, **sg_rule)),
        ("authorizeSecurityGroupEgress", dict(securitygroupid=sg, **sg_rule)),
        ("authorizeSecurityGroupEgress", dict(securitygroupname=r["sg"]["name"], **owner, **sg_rule)),
        ("revokeSecurityGroupIngress", {"id": rule}),
        ("revokeSecurityGroupEgress", {"id": rule}),
        ("listNics", {"virtualmachineid": vm["id"]}),
        ("listSecurityGroups", {"virtualmachineid": vm["id"]}),
        ("listIpForwardingRules", {"virtualmachineid": vm["id"]}),
        ("listPortForwardingRules", {"networkid": net}),
    ]
    if own_vm is not None:
        calls += [("addNicToVirtualMachine", {"virtualmachineid": own_vm["id"], "networkid": net}),
                  ("removeNicFromVirtualMachine", {"virtualmachineid": own_vm["id"], "nicid": nic}),
                  ("updateDefaultNicForVirtualMachine", {"virtualmachineid": own_vm["id"], "nicid": nic})]
    for command, params in calls:
        denied(world, me, command, **params)
    for command, key, params in [
        ("listNetworks", "network", {"id": net, "listall": True}),
        ("listNetworks", "network", dict(**owner)),
        ("listPublicIpAddresses", "publicipaddress", {"id": ip, "listall": True}),
        ("listPublicIpAddresses", "publicipaddress", {"ipaddress": r["ip"]["ipaddress"], "listall": True}),
        ("listPublicIpAddresses", "publicipaddress", {"associatednetworkid": net, "listall": True}),
        ("listPublicIpAddresses", "publicipaddress", dict(**owner)),
        ("listSecurityGroups", "securitygroup", {"id": sg, "listall": True}),
        ("listSecurityGroups", "securitygroup", {"securitygroupname": r["sg"]["name"], "listall": True}),
        ("listSecurityGroups", "securitygroup", dict(**owner)),
        ("listPortForwardingRules", "portforwardingrule", {"ipaddressid": ip, "listall": True}),
        ("listIpForwardingRules", "ipforwardingrule", {"ipaddressid": ip, "listall": True}),
    ]:
        hidden(world, me, command, key, **params)
    # As u2 left it.
    admin = world.admin
    assert admin.listNetworks(id=net, listall=True)["network"][0]["name"] == r["network"]["name"]
    got_ip = admin.listPublicIpAddresses(id=ip, listall=True)["publicipaddress"][0]
    assert (got_ip["account"], got_ip["state"]) == (victim.name, r["ip"]["state"])
    got_sg = admin.listSecurityGroups(id=sg, listall=True)["securitygroup"][0]
    assert [x["ruleid"] for x in got_sg.get("ingressrule", [])] == [rule]
    assert got_sg.get("egressrule", []) == []
    assert [n["id"] for n in admin.listNics(virtualmachineid=vm["id"])["nic"]] == [nic]


# -- 13. offerings restricted to a domain ------------------------------------------------------------------------


def test_domain_offerings_stay_in_their_domain(world: World) -> None:
    so, do = world.d1_offerings["service"], world.d1_offerings["disk"]
    c, d1, d2 = world.catalog, world.domains["D1"], world.domains["D2"]
    da1, da2, u2 = world["da1"], world["da2"], world["u2"]
    # Outside D1: not listed, not usable, not changeable.
    for me in (u2, da2):
        for cmd, key, offering in (("listServiceOfferings", "serviceoffering", so), ("listDiskOfferings",
                                                                                   "diskoffering", do)):
            hidden(world, me, cmd, key, id=offering["id"])
            hidden(world, me, cmd, key, name=offering["name"])
            hidden(world, me, cmd, key, domainid=d1["id"])
        denied(world, me, "deployVirtualMachine", zoneid=c["basic"], templateid=c["template"],
               serviceofferingid=so["id"])
        denied(world, me, "createVolume", zoneid=c["basic"], diskofferingid=do["id"], name="x")
    for me in (da2, world["da1a"], world["rda"]):
        if me.label == "rda":
            continue
        denied(world, me, "updateServiceOffering", id=so["id"], name="hijacked")
        denied(world, me, "updateDiskOffering", id=do["id"], name="hijacked")
        denied(world, me, "deleteServiceOffering", id=so["id"])
        denied(world, me, "deleteDiskOffering", id=do["id"])
    # A domain admin makes offerings for its subtree only, and can't touch the global ones.
    small = c["small"]
    base = {"displaytext": "x", "cpunumber": 1, "cpuspeed": 100, "memory": 128}
    denied(world, da1, "createServiceOffering", name="x", domainid=d2["id"], **base)
    denied(world, da1, "createServiceOffering", name="x", **base)
    denied(world, da1, "createDiskOffering", name="x", displaytext="x", disksize=1, domainid=d2["id"])
    denied(world, da1, "createDiskOffering", name="x", displaytext="x", disksize=1)
    denied(world, da1, "updateServiceOffering", id=small, name="hijacked")
    denied(world, da1, "deleteServiceOffering", id=small)
    denied(world, da1, "updateDiskOffering", id=c["disk"], name="hijacked")
    denied(world, da1, "deleteDiskOffering", id=c["disk"])
    denied(world, da1, "updateServiceOffering", id=so["id"], domainid=d2["id"])
    denied(world, da1, "updateServiceOffering", id=so["id"], domainid="public")
    denied(world, da1, "updateDiskOffering", id=do["id"], domainid=d2["id"])
    for me in (world["u1"], world["u2"]):
        role_denied(world, me, "createServiceOffering", name="x", **base)
        role_denied(world, me, "updateServiceOffering", id=small, name="hijacked")
        role_denied(world, me, "deleteServiceOffering", id=small)
        role_denied(world, me, "createDiskOffering", name="x", displaytext="x", disksize=1)
        role_denied(world, me, "updateDiskOffering", id=c["disk"], name="hijacked")
        role_denied(world, me, "deleteDiskOffering", id=c["disk"])
    # Inside D1 (and its child domain) they are listed; nothing changed.
    for me in (world["u1"], world["u1a"], da1):
        assert so["id"] in {o["id"] for o in me.api.listServiceOfferings()["serviceoffering"]}
        assert do["id"] in {o["id"] for o in me.api.listDiskOfferings()["diskoffering"]}
    got = world.admin.listServiceOfferings(id=so["id"])["serviceoffering"][0]
    assert (got["name"], got.get("domainid")) == (so["name"], so.get("domainid"))
    assert world.admin.listServiceOfferings(id=small)["serviceoffering"][0]["name"] == "Small Instance"
    assert {o["name"] for o in world.admin.listServiceOfferings()["serviceoffering"]} >= {"Small Instance", so["name"]}
    assert "x" not in {o["name"] for o in world.admin.listServiceOfferings()["serviceoffering"]}


# -- 14. commands only the root admin may call -------------------------------------------------------------------


def test_root_only_commands_refuse_everyone_else(world: World) -> None:
    """Every command no other role is offered (infrastructure, roles, settings, ...) is refused with CloudStack's
    401 to every other caller, before any parameter is looked at."""
    everything = {a["name"] for a in world.admin.listApis()["api"]}
    for label in ("u1", "cu1", "da1", "rda", "ra1a"):
        me = world[label]
        offered = {a["name"] for a in me.api.listApis()["api"]}
        for command in sorted(everything - offered - {"login", "logout"}):
            role_denied(world, me, command)


# -- 15. KV storages ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kv_res(world: World) -> dict[str, dict[str, Any]]:
    """u2's KV storages (an ACCOUNT one with history, a TEMP one, its VM's) each with a key, and an open history
    scroll; their secrets and values are u2's private names."""
    u2 = world["u2"]
    tag = uuid.uuid4().hex[:8]
    acct = u2.api.createAccountKvStorage(accountid=u2.id, name=f"kv-u2-{tag}", historyenabled=True)["kvstorage"]
    temp = u2.api.createTempKvStorage(ttl=3_600_000)["kvstorage"]
    vm_id = world.vms["u2"]["id"]
    deadline = time.monotonic() + 15
    while True:  # made by the VM.CREATE event, delivered after the deployment committed
        try:
            vm = u2.api.getKvStorage(storageid=vm_id)["kvstorage"]
            break
        except CloudStackApiException:
            assert time.monotonic() < deadline, "u2's VM has no KV storage"
            time.sleep(0.1)
    res = {"account": acct, "temp": temp, "vm": vm}
    for kind, storage in res.items():
        u2.api.setKvStorageValue(storageid=storage["id"], key="secret", value=f"kv-value-u2-{kind}-{tag}")
        world.private_names["u2"] |= {storage["secretkey"], f"kv-value-u2-{kind}-{tag}"}
    world.private_names["u2"].add(acct["name"])
    scroll = u2.api.getKvStorageHistory(storageid=acct["id"], size=1, scroll=3_600_000)["kvresult"]
    res["scroll"] = {"id": scroll["scrollid"]}
    return res


def _kv_calls(storage_id: str, account_id: str) -> list[tuple[str, dict[str, Any]]]:
    """Every KV command aimed at one storage (and its supposed owner account)."""
    return [
        ("getKvStorage", {"storageid": storage_id}),
        ("regenerateKvStorageSecretKey", {"storageid": storage_id}),
        ("getKvStorageValue", {"storageid": storage_id, "key": "secret"}),
        ("getKvStorageValues", {"storageid": storage_id, "keys": "secret"}),
        ("setKvStorageValue", {"storageid": storage_id, "key": "secret", "value": "hijacked"}),
        ("setKvStorageValues", {"storageid": storage_id, "items": {"secret": "hijacked"}}),
        ("deleteKvStorageKey", {"storageid": storage_id, "key": "secret"}),
        ("deleteKvStorageKeys", {"storageid": storage_id, "keys": "secret"}),
        ("listKvStorageKeys", {"storageid": storage_id}),
        ("clearKvStorage", {"storageid": storage_id}),
        ("getKvStorageHistory", {"storageid": storage_id}),
        ("updateTempKvStorage", {"storageid": storage_id, "ttl": 1}),
        ("deleteTempKvStorage", {"storageid": storage_id}),
        ("deleteAccountKvStorage", {"accountid": account_id, "storageid": storage_id}),
    ]


@pytest.mark.parametrize("attacker", ["u1", "cu1", "u1a", "da1", "da1a", "ra1a"])
def test_kv_storages_stay_in_reach(world: World, kv_res: dict[str, dict[str, Any]], attacker: str) -> None:
    """Another account's ACCOUNT, VM and TEMP storages, through every one of the 18 KV commands (a TEMP storage
    needs its owner or an admin over it: the original let anyone who knew the id act on it)."""
    me, victim = world[attacker], world["u2"]
    calls: list[tuple[str, dict[str, Any]]] = [
        ("createAccountKvStorage", {"accountid": victim.id, "name": "x"}),
        ("listAccountKvStorages", {"accountid": victim.id}),
        ("scrollKvStorageHistory", {"scrollid": kv_res["scroll"]["id"], "timeout": 60000}),
    ]
    for kind in ("account", "temp", "vm"):
        sid = kv_res[kind]["id"]
        calls += _kv_calls(sid, victim.id)
        calls.append(("deleteAccountKvStorage", {"accountid": me.id, "storageid": sid}))  # "mine", says the caller
    for command, params in calls:
        denied(world, me, command, **params)
    # What the caller makes is its own: its temporary storage is out of the victim's reach in turn.
    own = me.api.createTempKvStorage(ttl=600_000)["kvstorage"]
    denied(world, victim, "getKvStorage", storageid=own["id"])
    assert me.api.deleteTempKvStorage(storageid=own["id"])["success"] is True
    # All of u2's still there, unchanged.
    for kind in ("account", "temp", "vm"):
        storage = kv_res[kind]
        seen = world.admin.getKvStorage(storageid=storage["id"])["kvstorage"]
        assert seen["secretkey"] == storage["secretkey"] and seen["deleted"] is False
        assert seen.get("ttl") == storage.get("ttl")
        assert world.admin.listKvStorageKeys(storageid=storage["id"])["kvresult"]["items"] == ["secret"]
    listed = world.admin.listAccountKvStorages(accountid=victim.id)["kvstorage"]
    assert [s["id"] for s in listed] == [kv_res["account"]["id"]]


def test_kv_storages_reach_inside_the_subtree(world: World, kv_res: dict[str, dict[str, Any]]) -> None:
    """u2, its domain's admin and a domain admin above it reach all of u2's storages."""
    for label in ("u2", "da2", "rda"):
        me = world[label]
        for kind in ("account", "temp", "vm"):
            sid = kv_res[kind]["id"]
            assert me.api.getKvStorage(storageid=sid)["kvstorage"]["secretkey"] == kv_res[kind]["secretkey"]
            assert me.api.getKvStorageValue(storageid=sid, key="secret")["kvresult"]["value"].startswith("kv-value")
        listed = me.api.listAccountKvStorages(accountid=world["u2"].id)["kvstorage"]
        assert [s["id"] for s in listed] == [kv_res["account"]["id"]]


# -- 16. bundles and registered user data ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundle_res(world: World) -> dict[str, dict[str, Any]]:
    """u2's registered user data (with a variable), a private bundle using it and a VM deployed from that bundle,
    and a bundle shared with u2's domain (D2) only. The private bundle's name and the user data are u2's."""
    u2, c = world["u2"], world.catalog
    tag = uuid.uuid4().hex[:8]
    content = b64(f"ud-content-u2-{tag}")
    ud = u2.api.registerUserData(name=f"ud-u2-{tag}", userdata=content, params="queue")["userdata"]
    private = u2.api.createBundle(name=f"bundle-u2-{tag}", zoneid=c["advanced"], templateid=c["template"],
                                  serviceofferingid=c["small"], userdataid=ud["id"],
                                  userdatadetails=[{"queue": f"queue-u2-{tag}"}])["bundle"]
    shared = u2.api.createBundle(name=f"dbundle-u2-{tag}", zoneid=c["advanced"], templateid=c["template"],
                                 serviceofferingid=c["small"], visibility="Domain")["bundle"]
    vm = u2.api.deployBundle(bundleid=private["id"], startvm=False)["virtualmachine"]
    world.private_names["u2"] |= {ud["name"], content, private["name"], f"queue-u2-{tag}"}
    return {"ud": ud, "private": private, "shared": shared, "vm": vm}


@pytest.mark.parametrize("attacker", ["u1", "cu1", "u1a", "da1", "da1a", "ra1a"])
def test_bundles_and_user_data_stay_in_reach(world: World, bundle_res: dict[str, dict[str, Any]],
                                             attacker: str) -> None:
    """Another domain's private and domain-shared bundles, and its registered user data, through every bundle and
    user-data command."""
    me, victim, c = world[attacker], world["u2"], world.catalog
    ud, private, shared = bundle_res["ud"], bundle_res["private"], bundle_res["shared"]
    owner = {"account": victim.name, "domainid": victim.domain_id}
    base = {"zoneid": c["advanced"], "templateid": c["template"], "serviceofferingid": c["small"]}
    calls: list[tuple[str, dict[str, Any]]] = [
        ("updateBundle", {"id": private["id"], "name": "hijacked"}),
        ("updateBundle", {"id": shared["id"], "visibility": "Private"}),
        ("deleteBundle", {"id": private["id"]}),
        ("deleteBundle", {"id": shared["id"]}),
        ("deployBundle", {"bundleid": private["id"]}),
        ("deployBundle", {"bundleid": shared["id"]}),
        ("deployBundle", {"bundle": private["name"]}),
        ("deployBundle", {"bundle": shared["name"]}),
        ("createBundle", {"name": "x", **base, **owner}),
        ("createBundle", {"name": "x", "userdataid": ud["id"], **base}),
        ("registerUserData", {"name": "x", "userdata": b64("x"), **owner}),
        ("deleteUserData", {"id": ud["id"]}),
        ("linkUserDataToTemplate", {"templateid": world.res["u2"]["template"]["id"]}),
        ("linkUserDataToTemplate", {"templateid": c["template"], "userdataid": ud["id"]}),
        ("resetUserDataForVirtualMachine", {"id": bundle_res["vm"]["id"], "userdata": b64("hijacked")}),
        ("deployVirtualMachine", {**base, "userdataid": ud["id"], "userdatadetails[0].queue": "x"}),
    ]
    for command, params in calls:
        denied(world, me, command, **params)
    for bundle in (private, shared):
        hidden(world, me, "listBundles", "bundle", id=bundle["id"], listall=True)
        hidden(world, me, "listBundles", "bundle", name=bundle["name"], listall=True)
    hidden(world, me, "listBundles", "bundle", **owner)
    hidden(world, me, "listUserData", "userdata", id=ud["id"], listall=True)
    hidden(world, me, "listUserData", "userdata", **owner)
    hidden(world, me, "listVirtualMachines", "virtualmachine", bundleid=private["id"], listall=True)
    hidden(world, me, "listVirtualMachines", "virtualmachine", userdataid=ud["id"], listall=True)
    for key, command in (("bundle", "listBundles"), ("userdata", "listUserData")):
        assert_no_leak(world, me, getattr(me.api, command)(listall=True), {})
    # Nothing changed.
    for bundle in (private, shared):
        now = world.admin.listBundles(id=bundle["id"], listall=True)["bundle"][0]
        assert (now["name"], now["version"], now["visibility"]) == (bundle["name"], 1, bundle["visibility"])
    assert world.admin.listUserData(id=ud["id"], listall=True)["userdata"][0]["userdata"] == ud["userdata"]
    vm = world.admin.listVirtualMachines(id=bundle_res["vm"]["id"], listall=True)["virtualmachine"][0]
    assert vm["bundleid"] == private["id"]
    assert world.admin.getVirtualMachineUserData(virtualmachineid=vm["id"])["virtualmachineuserdata"]["userdata"] \
        == ud["userdata"]


def test_bundles_reach_inside_the_domain(world: World, bundle_res: dict[str, dict[str, Any]]) -> None:
    """The positive side: u2's domain admin and a domain admin above it see and may change both bundles; another
    user of D2 sees (and may deploy) only the shared one, and can't change it."""
    private, shared = bundle_res["private"], bundle_res["shared"]
    for label in ("da2", "rda"):
        seen = {b["id"] for b in world[label].api.listBundles(listall=True)["bundle"]}
        assert {private["id"], shared["id"]} <= seen
        assert world[label].api.listUserData(id=bundle_res["ud"]["id"], listall=True)["userdata"]
    t2 = world.make_actor("p2", accounttype=0, domainid=world.domains["D2"]["id"])  # a plain user of D2
    assert [b["id"] for b in t2.api.listBundles()["bundle"]] == [shared["id"]]
    vm = t2.api.deployBundle(bundle=shared["name"], startvm=False)["virtualmachine"]
    assert vm["account"] == t2.name and vm["bundleid"] == shared["id"]
    denied(world, t2, "updateBundle", id=shared["id"], name="mine")
    denied(world, t2, "deployBundle", bundleid=private["id"])
    world.admin.destroyVirtualMachine(id=vm["id"], expunge=True)


# -- coverage ---------------------------------------------------------------------------------------------------

#: Each API command -> the test proving it keeps tenants apart.
COVERAGE = {
    "createBundle": "test_bundles_and_user_data_stay_in_reach",
    "listBundles": "test_bundles_and_user_data_stay_in_reach",
    "updateBundle": "test_bundles_and_user_data_stay_in_reach",
    "deleteBundle": "test_bundles_and_user_data_stay_in_reach",
    "deployBundle": "test_bundles_and_user_data_stay_in_reach",
    "registerUserData": "test_bundles_and_user_data_stay_in_reach",
    "listUserData": "test_bundles_and_user_data_stay_in_reach",
    "deleteUserData": "test_bundles_and_user_data_stay_in_reach",
    "linkUserDataToTemplate": "test_bundles_and_user_data_stay_in_reach",
    "resetUserDataForVirtualMachine": "test_bundles_and_user_data_stay_in_reach",
    "archiveEvents": "test_events_of_others_cannot_be_archived_or_deleted",
    "deleteEvents": "test_events_of_others_cannot_be_archived_or_deleted",
    "createAccount": "test_domain_admin_cannot_touch_outside_its_reach",
    "createDomain": "test_domain_admin_cannot_touch_outside_its_reach",
    "createUser": "test_domain_admin_cannot_touch_outside_its_reach",
    "deleteAccount": "test_domain_admin_cannot_touch_outside_its_reach",
    "deleteDomain": "test_domain_admin_cannot_touch_outside_its_reach",
    "deleteUser": "test_domain_admin_cannot_touch_outside_its_reach",
    "disableAccount": "test_domain_admin_cannot_touch_outside_its_reach",
    "disableUser": "test_domain_admin_cannot_touch_outside_its_reach",
    "enableAccount": "test_domain_admin_cannot_touch_outside_its_reach",
    "enableUser": "test_domain_admin_cannot_touch_outside_its_reach",
    "lockAccount": "test_domain_admin_cannot_touch_outside_its_reach",
    "lockUser": "test_domain_admin_cannot_touch_outside_its_reach",
    "updateAccount": "test_domain_admin_cannot_touch_outside_its_reach",
    "updateDomain": "test_domain_admin_cannot_touch_outside_its_reach",
    "updateUser": "test_user_cannot_act_on_another_user_of_its_account",
    "getUser": "test_no_one_below_root_reaches_the_root_admin",
    "getUserKeys": "test_no_one_below_root_reaches_the_root_admin",
    "registerUserKeys": "test_no_one_below_root_reaches_the_root_admin",
    "createRole": "test_only_root_admin_manages_roles",
    "createRolePermission": "test_only_root_admin_manages_roles",
    "deleteRole": "test_only_root_admin_manages_roles",
    "deleteRolePermission": "test_only_root_admin_manages_roles",
    "listRolePermissions": "test_only_root_admin_manages_roles",
    "listRoles": "test_only_root_admin_manages_roles",
    "updateRole": "test_only_root_admin_manages_roles",
    "updateRolePermission": "test_only_root_admin_manages_roles",
    "listManagementServers": "test_role_rules_deny_and_grant",
    "listApis": "test_listapis_offers_only_callable_commands",
    "listAccounts": "test_user_lists_only_its_own_account",
    "listUsers": "test_user_lists_only_its_own_account",
    "listDomains": "test_user_lists_only_its_own_account",
    "listDomainChildren": "test_domain_admin_lists_its_subtree_only",
    "listEvents": "test_user_sees_only_its_own_events_and_jobs",
    "listAsyncJobs": "test_user_sees_only_its_own_events_and_jobs",
    "queryAsyncJobResult": "test_job_of_another_tenant_is_not_returned",
    "listCapabilities": "test_every_read_is_scoped",
    "listEventTypes": "test_every_read_is_scoped",
    "listConfigurations": "test_configuration_access",
    "updateConfiguration": "test_configuration_access",
    "resetConfiguration": "test_configuration_access",
    "login": "test_login_session_is_scoped_like_keys",
    "deployVirtualMachine": "test_vm_commands_stay_in_reach",
    "startVirtualMachine": "test_vm_commands_stay_in_reach",
    "stopVirtualMachine": "test_vm_commands_stay_in_reach",
    "rebootVirtualMachine": "test_vm_commands_stay_in_reach",
    "destroyVirtualMachine": "test_vm_commands_stay_in_reach",
    "expungeVirtualMachine": "test_vm_commands_stay_in_reach",
    "recoverVirtualMachine": "test_vm_commands_stay_in_reach",
    "updateVirtualMachine": "test_vm_commands_stay_in_reach",
    "changeServiceForVirtualMachine": "test_vm_commands_stay_in_reach",
    "scaleVirtualMachine": "test_vm_commands_stay_in_reach",
    "resetPasswordForVirtualMachine": "test_vm_commands_stay_in_reach",
    "getVirtualMachineUserData": "test_vm_commands_stay_in_reach",
    "migrateVirtualMachine": "test_vm_commands_stay_in_reach",
    "listVirtualMachines": "test_vm_commands_stay_in_reach",
    "restoreVirtualMachine": "test_vm_commands_stay_in_reach",
    "assignVirtualMachine": "test_vm_commands_stay_in_reach",
    "attachIso": "test_storage_and_images_stay_in_reach",
    "attachVolume": "test_storage_and_images_stay_in_reach",
    "copyIso": "test_storage_and_images_stay_in_reach",
    "copyTemplate": "test_storage_and_images_stay_in_reach",
    "createSnapshot": "test_storage_and_images_stay_in_reach",
    "createSnapshotPolicy": "test_storage_and_images_stay_in_reach",
    "createTemplate": "test_storage_and_images_stay_in_reach",
    "createVMSnapshot": "test_storage_and_images_stay_in_reach",
    "createVolume": "test_storage_and_images_stay_in_reach",
    "deleteIso": "test_storage_and_images_stay_in_reach",
    "deleteSnapshot": "test_storage_and_images_stay_in_reach",
    "deleteSnapshotPolicies": "test_storage_and_images_stay_in_reach",
    "deleteTemplate": "test_storage_and_images_stay_in_reach",
    "deleteVMSnapshot": "test_storage_and_images_stay_in_reach",
    "deleteVolume": "test_storage_and_images_stay_in_reach",
    "destroyVolume": "test_storage_and_images_stay_in_reach",
    "detachIso": "test_storage_and_images_stay_in_reach",
    "detachVolume": "test_storage_and_images_stay_in_reach",
    "extractIso": "test_storage_and_images_stay_in_reach",
    "extractTemplate": "test_storage_and_images_stay_in_reach",
    "extractVolume": "test_storage_and_images_stay_in_reach",
    "getUploadParamsForTemplate": "test_storage_and_images_stay_in_reach",
    "getUploadParamsForIso": "test_storage_and_images_stay_in_reach",
    "listIsoPermissions": "test_storage_and_images_stay_in_reach",
    "listIsos": "test_storage_and_images_stay_in_reach",
    "listSnapshotPolicies": "test_storage_and_images_stay_in_reach",
    "listSnapshots": "test_storage_and_images_stay_in_reach",
    "listTemplatePermissions": "test_storage_and_images_stay_in_reach",
    "listTemplates": "test_storage_and_images_stay_in_reach",
    "listVMSnapshot": "test_storage_and_images_stay_in_reach",
    "listVolumes": "test_storage_and_images_stay_in_reach",
    "migrateVolume": "test_storage_and_images_stay_in_reach",
    "recoverVolume": "test_storage_and_images_stay_in_reach",
    "registerIso": "test_storage_and_images_stay_in_reach",
    "registerTemplate": "test_storage_and_images_stay_in_reach",
    "resizeVolume": "test_storage_and_images_stay_in_reach",
    "revertSnapshot": "test_storage_and_images_stay_in_reach",
    "revertToVMSnapshot": "test_storage_and_images_stay_in_reach",
    "updateIso": "test_storage_and_images_stay_in_reach",
    "updateIsoPermissions": "test_storage_and_images_stay_in_reach",
    "updateSnapshotPolicy": "test_storage_and_images_stay_in_reach",
    "updateTemplate": "test_storage_and_images_stay_in_reach",
    "updateTemplatePermissions": "test_storage_and_images_stay_in_reach",
    "listZones": "test_every_read_is_scoped",
    "addNicToVirtualMachine": "test_networking_stays_in_reach",
    "associateIpAddress": "test_networking_stays_in_reach",
    "authorizeSecurityGroupEgress": "test_networking_stays_in_reach",
    "authorizeSecurityGroupIngress": "test_networking_stays_in_reach",
    "createNetwork": "test_networking_stays_in_reach",
    "createSecurityGroup": "test_networking_stays_in_reach",
    "deleteNetwork": "test_networking_stays_in_reach",
    "deleteSecurityGroup": "test_networking_stays_in_reach",
    "disassociateIpAddress": "test_networking_stays_in_reach",
    "listIpForwardingRules": "test_networking_stays_in_reach",
    "listNetworks": "test_networking_stays_in_reach",
    "listNics": "test_networking_stays_in_reach",
    "listPortForwardingRules": "test_networking_stays_in_reach",
    "listPublicIpAddresses": "test_networking_stays_in_reach",
    "listSecurityGroups": "test_networking_stays_in_reach",
    "removeNicFromVirtualMachine": "test_networking_stays_in_reach",
    "restartNetwork": "test_networking_stays_in_reach",
    "revokeSecurityGroupEgress": "test_networking_stays_in_reach",
    "revokeSecurityGroupIngress": "test_networking_stays_in_reach",
    "updateDefaultNicForVirtualMachine": "test_networking_stays_in_reach",
    "updateNetwork": "test_networking_stays_in_reach",
    "updateVmNicIp": "test_networking_stays_in_reach",
    "createSSHKeyPair": "test_account_resources_stay_in_reach",
    "registerSSHKeyPair": "test_account_resources_stay_in_reach",
    "deleteSSHKeyPair": "test_account_resources_stay_in_reach",
    "listSSHKeyPairs": "test_account_resources_stay_in_reach",
    "resetSSHKeyForVirtualMachine": "test_account_resources_stay_in_reach",
    "createAffinityGroup": "test_account_resources_stay_in_reach",
    "deleteAffinityGroup": "test_account_resources_stay_in_reach",
    "listAffinityGroups": "test_account_resources_stay_in_reach",
    "updateVMAffinityGroup": "test_account_resources_stay_in_reach",
    "createInstanceGroup": "test_account_resources_stay_in_reach",
    "deleteInstanceGroup": "test_account_resources_stay_in_reach",
    "updateInstanceGroup": "test_account_resources_stay_in_reach",
    "listInstanceGroups": "test_account_resources_stay_in_reach",
    "createTags": "test_account_resources_stay_in_reach",
    "deleteTags": "test_account_resources_stay_in_reach",
    "listTags": "test_account_resources_stay_in_reach",
    "listResourceLimits": "test_account_resources_stay_in_reach",
    "updateResourceLimit": "test_account_resources_stay_in_reach",
    "updateResourceCount": "test_account_resources_stay_in_reach",
    "createServiceOffering": "test_domain_offerings_stay_in_their_domain",
    "updateServiceOffering": "test_domain_offerings_stay_in_their_domain",
    "deleteServiceOffering": "test_domain_offerings_stay_in_their_domain",
    "listServiceOfferings": "test_domain_offerings_stay_in_their_domain",
    "createDiskOffering": "test_domain_offerings_stay_in_their_domain",
    "updateDiskOffering": "test_domain_offerings_stay_in_their_domain",
    "deleteDiskOffering": "test_domain_offerings_stay_in_their_domain",
    "listDiskOfferings": "test_domain_offerings_stay_in_their_domain",
    "listNetworkOfferings": "test_every_read_is_scoped",
    "listHypervisors": "test_every_read_is_scoped",
    "listOsCategories": "test_every_read_is_scoped",
    "listOsTypes": "test_every_read_is_scoped",
    "listAffinityGroupTypes": "test_every_read_is_scoped",
    "logout": "test_login_session_is_scoped_like_keys",
    "createAccountKvStorage": "test_kv_storages_stay_in_reach",
    "deleteAccountKvStorage": "test_kv_storages_stay_in_reach",
    "listAccountKvStorages": "test_kv_storages_stay_in_reach",
    "createTempKvStorage": "test_kv_storages_stay_in_reach",
    "updateTempKvStorage": "test_kv_storages_stay_in_reach",
    "deleteTempKvStorage": "test_kv_storages_stay_in_reach",
    "getKvStorage": "test_kv_storages_stay_in_reach",
    "regenerateKvStorageSecretKey": "test_kv_storages_stay_in_reach",
    "getKvStorageValue": "test_kv_storages_stay_in_reach",
    "getKvStorageValues": "test_kv_storages_stay_in_reach",
    "setKvStorageValue": "test_kv_storages_stay_in_reach",
    "setKvStorageValues": "test_kv_storages_stay_in_reach",
    "deleteKvStorageKey": "test_kv_storages_stay_in_reach",
    "deleteKvStorageKeys": "test_kv_storages_stay_in_reach",
    "listKvStorageKeys": "test_kv_storages_stay_in_reach",
    "clearKvStorage": "test_kv_storages_stay_in_reach",
    "getKvStorageHistory": "test_kv_storages_stay_in_reach",
    "scrollKvStorageHistory": "test_kv_storages_stay_in_reach",
}


def test_every_command_is_covered(world: World) -> None:
    """A command added without an isolation test fails here. Commands that only the root admin is offered
    are covered by ``test_root_only_commands_refuse_everyone_else``; every other one needs its entry."""
    names = {api["name"] for api in world.admin.listApis()["api"]}
    reachable = set()
    for label in ("u1", "da1", "ra1a", "cu1"):
        reachable |= {api["name"] for api in world[label].api.listApis()["api"]}
    missing = sorted((names & reachable) - set(COVERAGE) - {"login", "logout"} | ({"login", "logout"} - set(COVERAGE)))
    assert not missing, f"commands without an isolation test (add one and list it in COVERAGE): {missing}"
    for command, test in COVERAGE.items():
        assert callable(globals().get(test)), f"{command}: no test named {test}"
        if test in RAN and command in names:
            assert command in EXERCISED, f"{test} ran but never sent {command} as a non-root caller"
    if "test_root_only_commands_refuse_everyone_else" in RAN:
        assert names - reachable - {"login", "logout"} <= EXERCISED
