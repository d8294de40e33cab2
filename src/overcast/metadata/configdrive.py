"""Config drives (spec 3.9): an ISO 9660 image per VM carrying its user data, metadata and password,
for networks without a router (the network offering names ConfigDrive as its UserData provider).

The image is ``<data_dir>/configdrive/<instance name>.iso`` (CloudStack's ``configdrive/<instanceName>.iso``),
labelled ``vm.configdrive.label`` (``config-2``), with Rock Ridge and Joliet names as ``genisoimage -J -r``
makes them, written with pycdlib (pure Python: nothing to install on the host). It is (re)built after
every committed VM event (deploy, start, password, SSH key or user data reset, update) whose result
differs from the image on disk, and removed when the VM is expunged or no longer uses a config drive.
The files hold the guest's secrets, so they are readable by the server's user only.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from pathlib import Path
from typing import Any

from sqlalchemy import select

from overcast.db.models import VirtualMachine
from overcast.metadata.guest import VmData, uses_config_drive, vm_data
from overcast.plugins.network import NetworkElement, NetworkRef, NicRef

logger = logging.getLogger(__name__)

#: The largest image CloudStack builds.
MAX_SIZE = 64 * 1024 * 1024
#: metadata item -> key of openstack/latest/meta_data.json (``NetworkModel.openStackFileMapping``).
OPENSTACK_KEYS = {"availability-zone": "availability_zone", "local-hostname": "hostname", "vm-id": "uuid",
                  "public-hostname": "name", "cloud-domain": "cloud-domain", "cloud-domain-id": "cloud-domain-id",
                  "cloud-name": "cloud-name", "hypervisor-host-name": "hypervisor-host-name"}


def key_name(public_key: str) -> str:
    """The name CloudStack gives a key in meta_data.json: its third field when it has more than three."""
    parts = public_key.split(" ")
    return parts[2] if len(parts) > 3 else "key"


def files(data: VmData) -> dict[str, bytes]:
    """Path on the drive -> content, both layouts."""
    out: dict[str, bytes] = {}
    if data.user_data:
        out["cloudstack/userdata/user_data.txt"] = data.user_data
    for name, value in data.items.items():
        if value.strip():
            out[f"cloudstack/metadata/{name}.txt"] = value.encode("utf-8")
    if data.password:
        out["cloudstack/password/vm_password.txt"] = data.password.encode("utf-8")
    meta: dict[str, Any] = {}
    for name, value in data.items.items():
        if name in OPENSTACK_KEYS:
            meta[OPENSTACK_KEYS[name]] = value
        elif name in data.variables or name.startswith("kv-"):
            meta[name] = value
    if data.key_names:
        keys = [key for _, key in data.key_names]
        meta["keys"] = [{"type": "ssh", "data": key, "name": key_name(key)} for key in keys]
        meta["public_keys"] = {key_name(key): key for key in keys}
    out["openstack/latest/meta_data.json"] = json.dumps(meta, sort_keys=True).encode()
    if data.user_data:
        out["openstack/latest/user_data"] = data.user_data  # CloudStack hard-links the same file
    vendor: dict[str, Any] = {}
    if data.password:
        vendor["cloud-init"] = f"#cloud-config\npassword: {data.password}\nchpasswd:\n  expire: False"
    out["openstack/latest/vendor_data.json"] = json.dumps(vendor).encode()
    out["openstack/latest/network_data.json"] = json.dumps(network_data(data), sort_keys=True).encode()
    return out


def network_data(data: VmData) -> dict[str, Any]:
    links, networks = [], []
    for nic in data.nics:
        link = f"eth{nic['device_id']}"
        links.append({"ethernet_mac_address": nic["mac"], "id": link, "mtu": 1500, "type": "phy"})
        for kind, address in (("ipv4", nic["ip"]), ("ipv6", nic["ip6"])):
            if not address:
                continue
            routes = []
            if kind == "ipv4" and nic["gateway"]:
                routes.append({"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": nic["gateway"]})
            networks.append({"id": link, "ip_address": address, "link": link,
                             "netmask": nic["netmask"] if kind == "ipv4" else None,
                             "network_id": nic["uuid"], "type": kind, "routes": routes})
    return {"links": links, "networks": networks,
            "services": [{"address": address, "type": "dns"} for address in data.dns]}


def build_iso(content: dict[str, bytes], label: str) -> bytes:
    """An ISO 9660 image (Rock Ridge and Joliet names) holding ``content``."""
    import pycdlib

    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=4, joliet=3, rock_ridge="1.09", vol_ident=label[:32])
    made: set[str] = set()
    for path in sorted(content):
        parts = path.split("/")
        for depth in range(1, len(parts)):
            folder = "/" + "/".join(parts[:depth])
            if folder not in made:
                iso.add_directory(folder, rr_name=parts[depth - 1], joliet_path=folder)
                made.add(folder)
        body = content[path]
        iso.add_fp(io.BytesIO(body), len(body), "/" + path, rr_name=parts[-1], joliet_path="/" + path)
    out = io.BytesIO()
    iso.write_fp(out)
    iso.close()
    image = out.getvalue()
    if len(image) > MAX_SIZE:
        raise ValueError(f"config drive of {len(image)} bytes is over the {MAX_SIZE} byte limit")
    return image


def iso_path(data_dir: Path, instance_name: str) -> Path:
    return Path(data_dir) / "configdrive" / f"{instance_name}.iso"


def refresh(services: Any, vm_uuid: str) -> Path | None:
    """Bring the VM's config drive up to date; returns its path, or None when it has none."""
    with services.db.reader() as s:
        vm = s.scalar(select(VirtualMachine).where(VirtualMachine.uuid == vm_uuid))
        if vm is None:
            return None
        path = iso_path(services.config.data_dir, vm.instance_name)
        if vm.removed is not None or vm.state in ("Expunging", "Error") or not uses_config_drive(s, vm.id):
            for stale in (path, path.with_suffix(".sha256")):
                stale.unlink(missing_ok=True)
            return None
        content = files(vm_data(s, services, vm))
        label = str(services.settings.get("vm.configdrive.label") or "config-2")
    digest = hashlib.sha256(json.dumps([label, sorted((k, hashlib.sha256(v).hexdigest())
                                                      for k, v in content.items())]).encode()).hexdigest()
    stamp = path.with_suffix(".sha256")
    if path.exists() and stamp.exists() and stamp.read_text() == digest:
        return path
    image = build_iso(content, label)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(image)
    os.replace(tmp, path)
    stamp.write_text(digest)
    logger.info("Config drive of VM %s written to %s", vm_uuid, path)
    return path


def watch_config_drives(services: Any) -> None:
    """Rebuild config drives after VM events (they are delivered once the change has committed)."""

    def on_event(event: Any) -> None:
        if event.resource_type != "VirtualMachine" or not event.resource_uuid:
            return
        try:
            refresh(services, event.resource_uuid)
        except Exception:
            logger.exception("Config drive of VM %s could not be built", event.resource_uuid)

    services.bus.subscribe("VM.*", on_event)


class ConfigDriveElement(NetworkElement):
    """The ConfigDrive provider: offers UserData without a router. Its work is the ISO, which
    :func:`watch_config_drives` keeps current from the database; the network calls need nothing."""

    provider = "ConfigDrive"
    services = frozenset({"UserData"})

    def implement(self, network: NetworkRef, source_nat_ip: str | None) -> None:
        return None

    def prepare(self, network: NetworkRef, nic: NicRef) -> None:
        return None

    def release(self, network: NetworkRef, nic: NicRef) -> None:
        return None

    def shutdown(self, network: NetworkRef) -> None:
        return None


__all__ = ["ConfigDriveElement", "build_iso", "files", "iso_path", "key_name", "refresh", "watch_config_drives"]
