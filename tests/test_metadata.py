"""The guest metadata service, the password server and config drives (docs/metadata.md), seen by guests.

Guests are network namespaces on a bridge that holds their network's gateway address; the server's
metadata service listens there on the virtual router's ports (80, 8080). Each namespace holds the
address the server gave its VM, and asks from inside: a real TCP peer address, as a guest's.
cloud-init's own CloudStack and ConfigDrive data sources (Debian's package) read the same data.
"""

from __future__ import annotations

import base64
import io
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from conftest import Sandbox, client, tenant_factory, unique
from network_helpers import ISOLATED_SNAT, GuestLan, guest_fetch, guest_get, netns_unavailable, offering

pytestmark = pytest.mark.slow


def public_key(comment: str) -> str:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    text = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return f"{text} {comment}"


def stored(key: str) -> str:
    """A registered key as the server keeps it: type and key, the comment dropped."""
    return " ".join(key.split()[:2])


class World:
    """One server with its metadata service on a guest LAN, a tenant's network and two VMs in it."""

    lan: GuestLan
    server: Any
    admin: Any
    tenant: Any
    sandbox: Sandbox
    network: dict[str, Any]
    vms: list[dict[str, Any]]
    keys: list[str]
    user_data: list[bytes]
    namespaces: list[str]
    stranger: str
    stranger_ip: str
    source_nat_ip: str
    base: str


@pytest.fixture(scope="module")
def world(server_factory: Any) -> Any:
    reason = netns_unavailable()
    if reason:
        pytest.skip(reason)
    gateway = f"10.{random.randint(200, 250)}.{random.randint(0, 255)}.1"
    w = World()
    with GuestLan(gateway) as lan:
        w.lan = lan
        # The virtual router's ports on the guest network's gateway address, as cloud-init expects them;
        # the API (and the KV HTTP service under /kv/, the kv-url guests are given) there too, so that
        # guests reach their KV storage.
        w.server = server_factory(host=gateway, extra_args=["--sandbox", "--metadata-host", gateway,
                                                            "--metadata-port", "80", "--password-port", "8080"])
        w.admin = client(w.server, w.server.api_key, w.server.secret_key)
        w.sandbox = Sandbox(w.server)
        w.admin.updateTemplate(id=w.sandbox.template, passwordenabled=True)
        w.tenant = tenant_factory(w.server, w.admin)()
        api = w.tenant.api
        w.network = api.createNetwork(name=unique("net"), displaytext="guests", zoneid=w.sandbox.advanced_zone,
                                      networkofferingid=offering(api, ISOLATED_SNAT), gateway=gateway,
                                      netmask="255.255.255.0")["network"]
        w.keys, w.user_data, w.vms = [], [], []
        for index in range(2):
            name = unique(f"kp{index}")
            key = public_key(f"guest{index}@example")
            api.registerSSHKeyPair(name=name, publickey=key)
            w.keys.append(stored(key))
            w.user_data.append(f"#cloud-config\n# guest {index}: {unique('secret')}\n".encode())
            w.vms.append(api.deployVirtualMachine(
                zoneid=w.sandbox.advanced_zone, templateid=w.sandbox.template, serviceofferingid=w.sandbox.small,
                networkids=w.network["id"], name=unique(f"guest{index}"), keypair=name,
                userdata=base64.b64encode(w.user_data[-1]).decode())["virtualmachine"])
        snat = api.listPublicIpAddresses(associatednetworkid=w.network["id"], issourcenat=True)["publicipaddress"]
        w.source_nat_ip = snat[0]["ipaddress"]
        hosts = {"data-server": gateway}
        w.namespaces = [lan.add_guest(vm["nic"][0]["ipaddress"], hosts=hosts) for vm in w.vms]
        taken = {vm["nic"][0]["ipaddress"] for vm in w.vms}
        w.stranger_ip = next(f"{gateway.rsplit('.', 1)[0]}.{n}" for n in range(250, 2, -1)
                             if f"{gateway.rsplit('.', 1)[0]}.{n}" not in taken)
        w.stranger = lan.add_guest(w.stranger_ip, hosts=hosts)
        w.base = f"http://{gateway}"
        yield w
        w.server.stop()


def meta(w: World, ns: str, *paths: str, headers: dict[str, str] | None = None) -> list[tuple[int, bytes]]:
    return [(status, body) for status, body, _ in
            guest_fetch(w.lan, ns, [(f"{w.base}{p}", headers or {}) for p in paths])]


def password_request(w: World, ns: str, request: str | None, **headers: str) -> tuple[int, str, dict[str, str]]:
    if request is not None:
        headers["DomU_Request"] = request
    status, body, response_headers = guest_get(w.lan, ns, f"{w.base}:8080/", headers)
    return status, body.decode(), response_headers


def expected_items(w: World, index: int) -> dict[str, str]:
    vm = w.vms[index]
    zone = w.admin.listZones(id=w.sandbox.advanced_zone)["zone"][0]
    small = w.admin.listServiceOfferings(id=w.sandbox.small)["serviceoffering"][0]
    return {"service-offering": small["displaytext"], "availability-zone": zone["name"],
            "local-ipv4": vm["nic"][0]["ipaddress"], "local-hostname": vm["name"], "public-ipv4": w.source_nat_ip,
            "public-hostname": w.source_nat_ip, "instance-id": vm["id"], "vm-id": vm["id"],
            "public-keys": w.keys[index]}


def test_each_guest_reads_its_own_user_data_and_metadata(world: World) -> None:
    for index, ns in enumerate(world.namespaces):
        items = expected_items(world, index)
        results = meta(world, ns, "/latest/user-data", "/latest/user-data/", "/latest/meta-data/", "/latest/meta-data",
                       *(f"/latest/meta-data/{name}" for name in items), "/latest/meta-data/instance-id/",
                       "/latest/instance-id", "/latest/public-keys", "/latest/local-ipv4", "/latest/META-DATA/vm-id")
        assert results[0] == (200, world.user_data[index])
        assert results[1] == (200, world.user_data[index])
        status, manifest = results[2]
        assert status == 200 and results[3] == results[2]
        names = manifest.decode().splitlines()
        assert names[:len(items)] == list(items), names  # the router's order
        for (status, body), (name, value) in zip(results[4:4 + len(items)], items.items()):
            assert (status, body.decode()) == (200, value), name
        tail = results[4 + len(items):]
        assert tail == [(200, items["instance-id"].encode()), (200, items["instance-id"].encode()),
                        (200, items["public-keys"].encode()), (200, items["local-ipv4"].encode()),
                        (200, items["vm-id"].encode())]


def test_guests_never_see_each_others_data(world: World) -> None:
    for index, ns in enumerate(world.namespaces):
        other = world.vms[1 - index]
        results = meta(world, ns, "/latest/user-data", "/latest/meta-data/instance-id", "/latest/meta-data/public-keys",
                       "/latest/meta-data/local-ipv4")
        everything = b"".join(body for _, body in results)
        assert other["id"].encode() not in everything
        assert world.user_data[1 - index] not in everything
        assert world.keys[1 - index].encode() not in everything
        assert other["nic"][0]["ipaddress"].encode() not in everything


def test_an_address_of_no_vm_gets_nothing(world: World) -> None:
    paths = ["/latest/user-data", "/latest/meta-data/", "/latest/meta-data/instance-id", "/latest/instance-id"]
    assert [status for status, _ in meta(world, world.stranger, *paths)] == [404] * len(paths)
    assert password_request(world, world.stranger, "send_my_password")[1] == "saved_password"
    # Unknown paths and the item names of nobody are 404 for a real guest too.
    assert [s for s, _ in meta(world, world.namespaces[0], "/latest/meta-data/no-such-item", "/latest/",
                               "/latest/hypervisor-host-name", "/latest/meta-data/public-keys/0")] == [404] * 4


def test_forwarded_headers_are_ignored(world: World) -> None:
    victim = world.vms[0]["nic"][0]["ipaddress"]
    spoof = {"X-Forwarded-For": victim, "X-Real-IP": victim, "Forwarded": f"for={victim}",
             "Client-IP": victim, "True-Client-IP": victim}
    results = meta(world, world.stranger, "/latest/user-data", "/latest/meta-data/instance-id", headers=spoof)
    assert [status for status, _ in results] == [404, 404]
    assert password_request(world, world.stranger, "send_my_password", **spoof)[1] == "saved_password"
    # The other guest, claiming to be the first, still gets only its own data.
    results = meta(world, world.namespaces[1], "/latest/user-data", "/latest/meta-data/instance-id", headers=spoof)
    assert results == [(200, world.user_data[1]), (200, world.vms[1]["id"].encode())]


def test_password_is_handed_out_once(world: World) -> None:
    first, second = world.namespaces
    status, body, headers = password_request(world, first, "send_my_password")
    assert (status, body) == (200, world.vms[0]["password"])
    assert headers["server"] == "CloudStack Password Server"
    assert headers["content-type"].startswith("text/plain")
    assert password_request(world, second, "send_my_password")[1] == world.vms[1]["password"]
    assert password_request(world, first, "saved_password")[1] == "saved_password"
    assert password_request(world, first, "send_my_password")[1] == "saved_password"
    assert password_request(world, second, "send_my_password")[1] == world.vms[1]["password"]  # not acknowledged
    # Anything else is a bad request (answered with status 200, as the router's server does).
    assert password_request(world, first, "give_me_everything")[:2] == (200, "bad_request")
    assert password_request(world, first, None)[:2] == (200, "bad_request")
    # A reset sets a new password, handed out once again.
    reset = world.tenant.api.resetPasswordForVirtualMachine(id=world.vms[0]["id"])["virtualmachine"]
    assert password_request(world, first, "send_my_password")[1] == reset["password"] != world.vms[0]["password"]
    assert password_request(world, first, "saved_password")[1] == "saved_password"
    assert password_request(world, first, "send_my_password")[1] == "saved_password"
    # One given with the reset (4.19) is the one handed out.
    world.tenant.api.resetPasswordForVirtualMachine(id=world.vms[0]["id"], password="Chosen-pass-4711")
    assert password_request(world, first, "send_my_password")[1] == "Chosen-pass-4711"
    assert password_request(world, first, "saved_password")[1] == "saved_password"
    log = world.server.log()
    assert reset["password"] not in log and "Chosen-pass-4711" not in log


def test_kv_items_reach_only_their_guest(world: World) -> None:
    try:
        from overcast.kv import registry, store  # noqa: F401
    except ImportError:
        pytest.skip("the KV storage (overcast.kv.registry/store) is not part of this build")
    values = []
    for ns in world.namespaces:
        results = meta(world, ns, "/latest/meta-data/kv-url", "/latest/meta-data/kv-storage-id",
                       "/latest/meta-data/kv-secret-key")
        assert [status for status, _ in results] == [200, 200, 200]
        values.append([body.decode() for _, body in results])
    assert values[0][1] == world.vms[0]["id"] and values[1][1] == world.vms[1]["id"]
    assert values[0][2] != values[1][2]
    assert [s for s, _ in meta(world, world.stranger, "/latest/meta-data/kv-secret-key")] == [404]


def test_destroyed_vm_is_served_no_more(world: World) -> None:
    api = world.tenant.api
    vm = api.deployVirtualMachine(zoneid=world.sandbox.advanced_zone, templateid=world.sandbox.template,
                                  serviceofferingid=world.sandbox.small, networkids=world.network["id"],
                                  userdata=base64.b64encode(b"short-lived").decode())["virtualmachine"]
    ns = world.lan.add_guest(vm["nic"][0]["ipaddress"])
    assert meta(world, ns, "/latest/user-data") == [(200, b"short-lived")]
    api.destroyVirtualMachine(id=vm["id"])
    assert [s for s, _ in meta(world, ns, "/latest/user-data", "/latest/meta-data/")] == [404, 404]


def test_items_from_settings(world: World) -> None:
    admin, ns = world.admin, world.namespaces[0]
    paths = ["/latest/meta-data/cloud-identifier", "/latest/meta-data/cloud-name",
             "/latest/meta-data/hypervisor-host-name"]
    assert [s for s, _ in meta(world, ns, *paths)] == [404, 404, 404]  # off or empty by default
    admin.updateConfiguration(name="cloud.identifier", value="b1946ac9-2a4d-4c2e-9f1e-5c6d7e8f9a0b")
    admin.updateConfiguration(name="metadata.custom.cloud.name", value="Overcast Lab",
                              zoneid=world.sandbox.advanced_zone)
    admin.updateConfiguration(name="global.allow.expose.host.hostname", value="true")
    try:
        # Both the global and the account setting must allow the host name.
        assert meta(world, ns, "/latest/meta-data/hypervisor-host-name")[0][0] == 404
        admin.updateConfiguration(name="account.allow.expose.host.hostname", value="true",
                                  accountid=world.tenant.id)
        host = admin.listVirtualMachines(id=world.vms[0]["id"], listall=True)["virtualmachine"][0]["hostname"]
        results = meta(world, ns, *paths, "/latest/meta-data/")
        assert results[:3] == [(200, b"CloudStack-{b1946ac9-2a4d-4c2e-9f1e-5c6d7e8f9a0b}"), (200, b"Overcast Lab"),
                               (200, host.encode())]
        names = results[3][1].decode().splitlines()
        assert {"cloud-identifier", "cloud-name", "hypervisor-host-name"} <= set(names)
    finally:
        admin.updateConfiguration(name="global.allow.expose.host.hostname", value="false")
        admin.updateConfiguration(name="account.allow.expose.host.hostname", value="false", accountid=world.tenant.id)
        admin.updateConfiguration(name="cloud.identifier", value="")
        admin.updateConfiguration(name="metadata.custom.cloud.name", value="", zoneid=world.sandbox.advanced_zone)
    assert [s for s, _ in meta(world, ns, *paths)] == [404, 404, 404]


def test_registered_user_data_variables_are_items(world: World) -> None:
    api = world.tenant.api
    template = b"#cloud-config\nwrite_files: [{path: /etc/color, content: '{{ ds.meta_data.color }}'}]\n"
    registered = api.registerUserData(name=unique("ud"), userdata=base64.b64encode(template).decode(),
                                      params="color,size")["userdata"]
    vm = api.deployVirtualMachine(zoneid=world.sandbox.advanced_zone, templateid=world.sandbox.template,
                                  serviceofferingid=world.sandbox.small, networkids=world.network["id"],
                                  userdataid=registered["id"],
                                  userdatadetails=[{"color": "blue", "size": "L"}])["virtualmachine"]
    ns = world.lan.add_guest(vm["nic"][0]["ipaddress"])
    results = meta(world, ns, "/latest/user-data", "/latest/meta-data/", "/latest/meta-data/color",
                   "/latest/meta-data/size")
    assert results[0] == (200, template)
    assert {"color", "size"} <= set(results[1][1].decode().splitlines())
    assert results[2:] == [(200, b"blue"), (200, b"L")]
    world.admin.destroyVirtualMachine(id=vm["id"], expunge=True)


# -- config drive ------------------------------------------------------------------------------------

def test_config_drive_key_names() -> None:
    from overcast.metadata.configdrive import key_name

    assert key_name("ssh-ed25519 AAAA") == "key"
    assert key_name("ssh-ed25519 AAAA alice@host") == "key"
    assert key_name("ssh-ed25519 AAAA alice@host laptop") == "alice@host"


@pytest.fixture(scope="module")
def config_drive_vm(world: World) -> dict[str, Any]:
    """A VM on a network whose offering has ConfigDrive as its UserData provider."""
    admin = world.admin
    name = unique("cd-offering")
    off = admin.createNetworkOffering(
        name=name, displaytext=name, guestiptype="Isolated", traffictype="Guest",
        supportedservices="Dhcp,Dns,SourceNat,UserData",
        serviceproviderlist=[{"service": "Dhcp", "provider": "VirtualRouter"},
                             {"service": "Dns", "provider": "VirtualRouter"},
                             {"service": "SourceNat", "provider": "VirtualRouter"},
                             {"service": "UserData", "provider": "ConfigDrive"}])["networkoffering"]
    admin.updateNetworkOffering(id=off["id"], state="Enabled")
    api = world.tenant.api
    net = api.createNetwork(name=unique("cdnet"), displaytext="config drive", zoneid=world.sandbox.advanced_zone,
                            networkofferingid=off["id"])["network"]
    key = public_key("cd-user@example")
    key_name = unique("cdkey")
    api.registerSSHKeyPair(name=key_name, publickey=key)
    key = stored(key)
    vm = api.deployVirtualMachine(zoneid=world.sandbox.advanced_zone, templateid=world.sandbox.template,
                                  serviceofferingid=world.sandbox.small, networkids=net["id"], keypair=key_name,
                                  name=unique("cdvm"), userdata=base64.b64encode(b"#!/bin/sh\necho drive\n").decode())
    vm = vm["virtualmachine"]
    vm["_key"], vm["_network"] = key, net
    return vm  # type: ignore[no-any-return]


def instance_name(world: World, vm_id: str) -> str:
    from sqlalchemy import create_engine, text

    engine = create_engine(world.server.db_url or f"sqlite:///{world.server.data_dir / 'overcast.db'}")
    with engine.connect() as c:
        name = c.execute(text("SELECT instance_name FROM vm_instance WHERE uuid = :u"), {"u": vm_id}).scalar_one()
    engine.dispose()
    return str(name)


def read_iso(path: Path, *, wait_for: Any = None, timeout: float = 15.0) -> tuple[dict[str, bytes], str]:
    """The files of an ISO (Rock Ridge names) and its volume label; waits until ``wait_for(files)``."""
    import pycdlib

    deadline = time.monotonic() + timeout
    while True:
        files: dict[str, bytes] = {}
        label = ""
        if path.exists():
            iso = pycdlib.PyCdlib()
            iso.open_fp(io.BytesIO(path.read_bytes()))
            label = iso.pvd.volume_identifier.decode().strip()
            for root, _dirs, names in iso.walk(rr_path="/"):
                for name in names:
                    out = io.BytesIO()
                    iso.get_file_from_iso_fp(out, rr_path=f"{root.rstrip('/')}/{name}")
                    files[f"{root.rstrip('/')}/{name}".lstrip("/")] = out.getvalue()
            iso.close()
        if files and (wait_for is None or wait_for(files)):
            return files, label
        if time.monotonic() > deadline:
            raise AssertionError(f"{path}: no config drive as expected; has {sorted(files)}")
        time.sleep(0.1)


def test_config_drive_has_both_layouts(world: World, config_drive_vm: dict[str, Any]) -> None:
    vm = config_drive_vm
    path = world.server.data_dir / "configdrive" / f"{instance_name(world, vm['id'])}.iso"
    files, label = read_iso(path)
    assert label == "config-2"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    zone = world.admin.listZones(id=world.sandbox.advanced_zone)["zone"][0]
    assert files["cloudstack/userdata/user_data.txt"] == b"#!/bin/sh\necho drive\n"
    assert files["openstack/latest/user_data"] == b"#!/bin/sh\necho drive\n"
    md = {name[len("cloudstack/metadata/"):-4]: body.decode() for name, body in files.items()
          if name.startswith("cloudstack/metadata/")}
    assert md["instance-id"] == md["vm-id"] == vm["id"]
    assert md["local-ipv4"] == vm["nic"][0]["ipaddress"]
    assert md["local-hostname"] == vm["name"]
    assert md["availability-zone"] == zone["name"]
    assert md["public-keys"] == vm["_key"]
    assert files["cloudstack/password/vm_password.txt"].decode() == vm["password"]
    meta_data = json.loads(files["openstack/latest/meta_data.json"])
    assert meta_data["uuid"] == vm["id"] and meta_data["hostname"] == vm["name"]
    assert meta_data["availability_zone"] == zone["name"]
    # Two fields (the server drops comments): the key's name is "key".
    assert meta_data["keys"] == [{"type": "ssh", "data": vm["_key"], "name": "key"}]
    assert meta_data["public_keys"] == {"key": vm["_key"]}
    vendor = json.loads(files["openstack/latest/vendor_data.json"])
    assert vendor == {"cloud-init": f"#cloud-config\npassword: {vm['password']}\nchpasswd:\n  expire: False"}
    network = json.loads(files["openstack/latest/network_data.json"])
    nic = vm["nic"][0]
    assert network["links"] == [{"ethernet_mac_address": nic["macaddress"], "id": "eth0", "mtu": 1500, "type": "phy"}]
    assert network["networks"][0]["ip_address"] == nic["ipaddress"]
    assert network["networks"][0]["network_id"] == nic["id"] and network["networks"][0]["type"] == "ipv4"
    assert {"address": zone["dns1"], "type": "dns"} in network["services"]
    # A VM of a router network gets no drive.
    assert not (world.server.data_dir / "configdrive" / f"{instance_name(world, world.vms[0]['id'])}.iso").exists()


# -- cloud-init's own data sources -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def cloud_init(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Debian's cloud-init package, unpacked (not installed): its Python package directory."""
    where = tmp_path_factory.mktemp("cloud-init")
    got = subprocess.run(["apt-get", "download", "cloud-init"], cwd=where, capture_output=True, text=True,
                         timeout=300)
    debs = list(where.glob("cloud-init_*.deb"))
    if got.returncode != 0 or not debs:
        pytest.skip(f"Debian's cloud-init package could not be downloaded: {got.stderr.strip()[-200:]}")
    subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(where / "root")], check=True)
    packages = where / "root" / "usr" / "lib" / "python3" / "dist-packages"
    assert (packages / "cloudinit" / "sources" / "DataSourceCloudStack.py").exists()
    return packages


CLOUDSTACK_DS = r"""
import json, logging, sys, tempfile
from cloudinit import helpers
from cloudinit.sources.DataSourceCloudStack import DataSourceCloudStack
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, force=True)
tmp = tempfile.mkdtemp()
paths = helpers.Paths({"cloud_dir": tmp, "run_dir": tmp + "/run"})
ds = DataSourceCloudStack({"datasource": {"CloudStack": {"max_wait": 20, "timeout": 5}}}, None, paths)
ok = ds._get_data()
if not ok:
    sys.exit("the data source found no data")
print(json.dumps({"ok": ok, "vr": ds.vr_addr, "userdata": ds.userdata_raw.decode() if ds.userdata_raw else None,
                  "metadata": ds.metadata, "cfg": ds.get_config_obj(), "instance_id": ds.get_instance_id(),
                  "zone": ds.availability_zone}, default=str))
"""


def test_cloud_init_cloudstack_datasource(world: World, cloud_init: Path) -> None:
    index = 1  # its password has not been acknowledged by the other tests
    ns = world.namespaces[index]
    env = {**os.environ, "PYTHONPATH": str(cloud_init)}
    done = world.lan.run(ns, [sys.executable, "-c", CLOUDSTACK_DS], env=env)
    assert done.returncode == 0, f"{done.stderr[-4000:]}\nserver log:\n{world.server.log()[-4000:]}"
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["ok"] is True, done.stderr
    assert out["vr"] == world.base.split("//")[1]
    assert out["userdata"] == world.user_data[index].decode()
    items = expected_items(world, index)
    assert out["instance_id"] == world.vms[index]["id"] and out["zone"] == items["availability-zone"]
    for name, value in items.items():
        if name != "public-keys":
            assert out["metadata"][name] == value, name
    assert world.keys[index] in json.dumps(out["metadata"]["public-keys"])
    assert out["cfg"] == {"ssh_pwauth": True, "password": world.vms[index]["password"], "chpasswd": {"expire": False}}
    # cloud-init acknowledged it: the password is gone.
    assert password_request(world, ns, "send_my_password")[1] == "saved_password"


CONFIG_DRIVE_DS = r"""
import json, sys
from cloudinit import sources, util
from cloudinit.sources.DataSourceConfigDrive import LABEL_TYPES, read_config_drive
from cloudinit.sources.helpers import openstack
# How the data source finds the drive among block devices (blkid), asked about the image file itself.
found = [util.find_devs_with(f"LABEL={label}", path=sys.argv[3]) for label in LABEL_TYPES]
fstype = util.find_devs_with("TYPE=iso9660", path=sys.argv[3])
results = read_config_drive(sys.argv[1])
keys = sources.normalize_pubkey_data(results["metadata"].get("public_keys"))  # what the data source installs
net = openstack.convert_net_json(results["networkdata"], known_macs={sys.argv[2]: "eth0"})
print(json.dumps({"metadata": results["metadata"], "userdata": results["userdata"].decode()
                  if isinstance(results["userdata"], bytes) else results["userdata"],
                  "vendordata": results["vendordata"], "version": results["version"], "net": net, "keys": keys,
                  "found": found, "fstype": fstype},
                 default=str))
"""


def test_cloud_init_config_drive_datasource(world: World, config_drive_vm: dict[str, Any], cloud_init: Path,
                                            tmp_path: Path) -> None:
    vm = world.tenant.api.listVirtualMachines(id=config_drive_vm["id"])["virtualmachine"][0]
    path = world.server.data_dir / "configdrive" / f"{instance_name(world, vm['id'])}.iso"
    files, _ = read_iso(path)
    # The drive's files as the guest sees them mounted (Rock Ridge names), extracted with pycdlib: this
    # machine's kernel has no iso9660 driver, so the image can't be loop-mounted here.
    for name, body in files.items():
        target = tmp_path / "drive" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(body)
    env = {**os.environ, "PYTHONPATH": str(cloud_init)}
    nic = vm["nic"][0]
    args = [str(tmp_path / "drive"), nic["macaddress"], str(path)]
    done = subprocess.run([sys.executable, "-c", CONFIG_DRIVE_DS, *args], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["version"] == 2
    if shutil.which("blkid"):  # util-linux: what cloud-init uses to find the drive
        assert out["found"] == [[str(path)], []] and out["fstype"] == [str(path)]
    assert out["metadata"]["instance-id"] == vm["id"]
    assert out["metadata"]["local-hostname"] == vm["name"]
    assert out["keys"] == [config_drive_vm["_key"]]
    assert out["userdata"] == files["openstack/latest/user_data"].decode()
    password = files["cloudstack/password/vm_password.txt"].decode()
    assert password in json.dumps(out["vendordata"])
    assert out["net"]["config"][0]["mac_address"] == nic["macaddress"]
    assert out["net"]["config"][0]["subnets"][0]["address"] == nic["ipaddress"]


def test_config_drive_is_rebuilt_on_changes_and_removed_on_expunge(world: World, config_drive_vm: dict[str, Any]) -> None:
    api = world.tenant.api
    vm = config_drive_vm
    path = world.server.data_dir / "configdrive" / f"{instance_name(world, vm['id'])}.iso"
    read_iso(path)
    api.stopVirtualMachine(id=vm["id"])
    reset = api.resetPasswordForVirtualMachine(id=vm["id"])["virtualmachine"]
    files, _ = read_iso(path, wait_for=lambda f: f.get("cloudstack/password/vm_password.txt")
                        == reset["password"].encode())
    assert reset["password"] in files["openstack/latest/vendor_data.json"].decode()
    new_key = public_key("rotated@example")
    key_name = unique("cdkey2")
    api.registerSSHKeyPair(name=key_name, publickey=new_key)
    new_key = stored(new_key)
    api.resetSSHKeyForVirtualMachine(id=vm["id"], keypair=key_name)
    files, _ = read_iso(path, wait_for=lambda f: f.get("cloudstack/metadata/public-keys.txt") == new_key.encode())
    assert json.loads(files["openstack/latest/meta_data.json"])["public_keys"] == {"key": new_key}
    api.updateVirtualMachine(id=vm["id"], userdata=base64.b64encode(b"#cloud-config\n{}\n").decode())
    read_iso(path, wait_for=lambda f: f.get("openstack/latest/user_data") == b"#cloud-config\n{}\n")
    world.admin.destroyVirtualMachine(id=vm["id"], expunge=True)
    deadline = time.monotonic() + 15
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not path.exists()


def test_one_address_in_two_networks_with_one_gateway_gets_nothing(world: World) -> None:
    """Another account's network with the same gateway, and a VM of it on the first guest's address:
    the source address no longer names one guest, so neither is answered; expunged, the first is again."""
    other = tenant_factory(world.server, world.admin)()
    gateway = world.base.split("//")[1]
    net = other.api.createNetwork(name=unique("twin"), displaytext="twin", zoneid=world.sandbox.advanced_zone,
                                  networkofferingid=offering(other.api, ISOLATED_SNAT), gateway=gateway,
                                  netmask="255.255.255.0")["network"]
    address = world.vms[0]["nic"][0]["ipaddress"]
    twin = other.api.deployVirtualMachine(zoneid=world.sandbox.advanced_zone, templateid=world.sandbox.template,
                                          serviceofferingid=world.sandbox.small, networkids=net["id"],
                                          ipaddress=address, userdata=base64.b64encode(b"twin").decode())
    assert twin["virtualmachine"]["nic"][0]["ipaddress"] == address
    ns = world.namespaces[0]
    assert [s for s, _ in meta(world, ns, "/latest/user-data", "/latest/meta-data/instance-id")] == [404, 404]
    assert password_request(world, ns, "send_my_password")[1] == "saved_password"
    world.admin.destroyVirtualMachine(id=twin["virtualmachine"]["id"], expunge=True)
    assert meta(world, ns, "/latest/user-data") == [(200, world.user_data[0])]


def test_metadata_serve_alone(tmp_path: Path) -> None:
    """``overcast metadata serve``: the guest services without the API, from a server's database. Asked from
    127.0.0.1 (no guest's address): nothing, in the protocol's own answers."""
    import httpx

    from servers import free_port

    subprocess.run([sys.executable, "-m", "overcast.cli.main", "db", "upgrade", "--data-dir", str(tmp_path)],
                   check=True, capture_output=True)
    md_port, pw_port = free_port(), free_port()
    log = open(tmp_path / "metadata.log", "wb")  # noqa: SIM115 - the child keeps its own descriptor
    proc = subprocess.Popen([sys.executable, "-m", "overcast.cli.main", "metadata", "serve", "--data-dir", str(tmp_path),
                             "--metadata-host", "127.0.0.1,::1", "--metadata-port", str(md_port), "--password-port",
                             str(pw_port)], stdout=log, stderr=subprocess.STDOUT)
    log.close()
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                first = httpx.get(f"http://127.0.0.1:{md_port}/latest/user-data", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "metadata.log").read_text()
                time.sleep(0.05)
        assert first.status_code == 404
        assert httpx.get(f"http://[::1]:{md_port}/latest/user-data", timeout=5).status_code == 404  # both addresses
        md = f"http://127.0.0.1:{md_port}"
        assert httpx.get(f"{md}/latest/meta-data/", headers={"X-Forwarded-For": "10.1.1.2"}).status_code == 404
        assert httpx.head(f"{md}/latest/meta-data/instance-id").status_code == 404
        assert httpx.post(f"{md}/latest/user-data").status_code == 405
        pw = f"http://127.0.0.1:{pw_port}/"
        answer = httpx.get(pw, headers={"DomU_Request": "send_my_password"})
        assert (answer.status_code, answer.text) == (200, "saved_password")
        assert answer.headers["server"] == "CloudStack Password Server"
        assert httpx.get(pw, headers={"DomU_Request": "saved_password"}).text == "saved_password"
        assert httpx.get(pw, headers={"DomU_Request": "what"}).text == "bad_request"
        assert httpx.post(pw, headers={"DomU_Request": "save_password"}, data={"ip": "10.1.1.2"}).status_code == 501
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    assert proc.returncode == 0, (tmp_path / "metadata.log").read_text()


def test_a_guest_reports_ready_to_the_metadata_service(world: World) -> None:
    """``POST /latest/ready`` from a guest's own address marks that VM ready, and only that VM."""
    import sys

    post = ("import sys, urllib.request, urllib.error\n"
            "try:\n"
            "    print(urllib.request.urlopen(urllib.request.Request(sys.argv[1], data=b'done', method='POST'),"
            " timeout=20).status)\n"
            "except urllib.error.HTTPError as e:\n"
            "    print(e.code)\n")
    api = world.tenant.api
    assert api.listVirtualMachines(id=world.vms[0]["id"])["virtualmachine"][0]["ready"] is False
    done = world.lan.run(world.stranger, [sys.executable, "-c", post, f"{world.base}/latest/ready"])
    assert done.stdout.strip() == "404", done.stderr
    done = world.lan.run(world.namespaces[0], [sys.executable, "-c", post, f"{world.base}/latest/ready"])
    assert done.stdout.strip() == "200", done.stderr
    first, second = (api.listVirtualMachines(id=vm["id"])["virtualmachine"][0] for vm in world.vms[:2])
    assert first["ready"] is True and first["readyat"]
    assert second["ready"] is False
    events = api.listEvents(type="VM.READY")["event"]
    assert [e for e in events if world.vms[0]["id"] in e["description"]]
    assert not [e for e in events if world.vms[1]["id"] in e["description"]]


# -- the dispatcher scenario (issue 5, item 7) ----------------------------------------------------------

#: What a guest's boot script does, run inside its namespace: ``work`` reads its user data (a JSON task)
#: and its KV items from the metadata service, computes the task and writes the key ``result`` into its
#: KV storage with its own secret (and tries once with a forged one); ``ready`` writes ``ready``;
#: ``get <kv-url> <storage> <secret> <key>`` reads a key back. Prints a JSON object.
GUEST_BOOT = r"""
import json, sys, urllib.error, urllib.request
base, step = sys.argv[1], sys.argv[2]

def call(url, method="GET", data=None, headers=None):
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()

def meta(item):
    status, body = call(f"{base}/latest/{item}")
    assert status == 200, (item, status)
    return body

def put(kv, storage, secret, key, value):
    return call(f"{kv}/set/{storage}/{key}", "PUT", value.encode(),
                {"Secret-Key": secret, "Content-Type": "text/plain"})[0]

if step == "get":
    kv, storage, secret, key = sys.argv[3:7]
    status, body = call(f"{kv}/get/{storage}/{key}", headers={"Secret-Key": secret})
    print(json.dumps({"status": status, "body": body.decode()}))
    sys.exit()
kv = meta("meta-data/kv-url").decode().rstrip("/")
storage, secret = meta("meta-data/kv-storage-id").decode(), meta("meta-data/kv-secret-key").decode()
out = {"kv": kv, "storage": storage, "secret": secret}
if step == "work":
    task = json.loads(meta("user-data"))
    result = {"sum": sum(task["numbers"]), "instance": meta("meta-data/instance-id").decode()}
    out["forged"] = put(kv, storage, secret[::-1], "result", "forged")
    out["put"] = put(kv, storage, secret, "result", json.dumps(result))
else:
    out["put"] = put(kv, storage, secret, "ready", "true")
print(json.dumps(out))
"""


def guest_boot(w: World, ns: str, *args: str) -> dict[str, Any]:
    done = w.lan.run(ns, [sys.executable, "-c", GUEST_BOOT, w.base, *args])
    assert done.returncode == 0, f"{done.stderr[-3000:]}\nserver log:\n{w.server.log()[-3000:]}"
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_dispatcher_deploys_a_bundle_and_its_guest_reports_ready(world: World) -> None:
    """``deployBundle bundle=foo readytimeout=...``: the job stays pending until the guest (a namespace
    holding the VM's address) has read its user data from the metadata service and written its result and
    ``ready`` into its KV storage over HTTP with its own secret; the dispatcher then reads the result and
    its history through the API, and expunges the VM, whose storage is gone over HTTP and through the API."""
    from network_helpers import error_of

    api, admin = world.tenant.api, world.admin
    numbers = [random.randint(1, 10**6) for _ in range(8)]
    task = json.dumps({"task": "sum", "numbers": numbers}).encode()
    admin.updateConfiguration(name="storage.kv.vm.history.enabled", value="true")
    admin.updateConfiguration(name="allow.user.expunge.recover.vm", value="true", accountid=world.tenant.id)
    try:
        bundle = api.createBundle(name="foo", zoneid=world.sandbox.advanced_zone, templateid=world.sandbox.template,
                                  serviceofferingid=world.sandbox.small, networkids=world.network["id"],
                                  userdata=base64.b64encode(task).decode())["bundle"]
        job = api.deployBundle(bundle="foo", readytimeout=120, fetch_result=False)
        vm_id = job["id"]
        deadline = time.monotonic() + 30
        while (vm := api.listVirtualMachines(id=vm_id)["virtualmachine"][0])["state"] != "Running":
            assert time.monotonic() < deadline, f"the VM never ran: {vm['state']}"
            time.sleep(0.1)
        assert (vm["bundleid"], vm["bundlename"], vm["bundleversion"]) == (bundle["id"], "foo", 1)
        assert vm["ready"] is False
        ns = world.lan.add_guest(vm["nic"][0]["ipaddress"])
        assert api.queryAsyncJobResult(jobid=job["jobid"], fetch_result=False)["jobstatus"] == 0

        # The guest boots: its task from the user data, the result into its storage.
        work = guest_boot(world, ns, "work")
        assert work["storage"] == vm_id
        assert work["kv"] == f"http://{world.base.split('//')[1]}:{world.server.port}/kv"
        assert (work["forged"], work["put"]) == (401, 200)
        time.sleep(0.5)  # more than a heartbeat: a result is not a ready report, the job still waits
        assert api.queryAsyncJobResult(jobid=job["jobid"], fetch_result=False)["jobstatus"] == 0
        assert api.listVirtualMachines(id=vm_id)["virtualmachine"][0]["ready"] is False
        assert guest_boot(world, ns, "ready")["put"] == 200

        deadline = time.monotonic() + 30
        while (result := api.queryAsyncJobResult(jobid=job["jobid"], fetch_result=False))["jobstatus"] == 0:
            assert time.monotonic() < deadline, "the deploy job did not complete after the guest reported ready"
            time.sleep(0.1)
        assert result["jobstatus"] == 1, result
        done = result["jobresult"]["virtualmachine"]
        assert done["id"] == vm_id and done["ready"] is True and done["readyat"] and done["bundlename"] == "foo"

        # The dispatcher reads what its guest wrote.
        value = api.getKvStorageValue(storageid=vm_id, key="result")["kvresult"]["value"]
        assert json.loads(value) == {"sum": sum(numbers), "instance": vm_id}
        assert api.getKvStorageValues(storageid=vm_id, keys="result,ready")["kvresult"]["items"] == {
            "result": value, "ready": "true"}
        history = api.getKvStorageHistory(storageid=vm_id, sort="timestamp")["kvresult"]
        assert [(i["key"], i.get("value"), i["operation"]) for i in history["items"]] == [
            ("result", value, "set"), ("ready", "true", "set")]  # the forged write left nothing

        # Done with it: destroyed with expunge, the storage goes with the VM.
        api.destroyVirtualMachine(id=vm_id, expunge=True)
        assert not admin.listVirtualMachines(id=vm_id, listall=True).get("virtualmachine")
        deadline = time.monotonic() + 15
        while (got := guest_boot(world, ns, "get", work["kv"], vm_id, work["secret"], "result"))["status"] != 404:
            assert got["status"] == 200 and time.monotonic() < deadline, got
            time.sleep(0.1)
        err = error_of(lambda: api.getKvStorageValue(storageid=vm_id, key="result"))
        assert err["errorcode"] == 431 and "does not exist" in err["errortext"], err
        err = error_of(lambda: api.getKvStorage(storageid=vm_id))
        assert err["errorcode"] == 431 and "does not exist" in err["errortext"], err
    finally:
        admin.updateConfiguration(name="storage.kv.vm.history.enabled", value="false")
        admin.updateConfiguration(name="allow.user.expunge.recover.vm", value="false", accountid=world.tenant.id)
