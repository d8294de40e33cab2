"""What a guest is told about itself: finding the VM behind a source address, and its metadata items.

Both the metadata HTTP service (the virtual router's, spec 3.5-3.7) and the config drive (3.9) use
:func:`vm_data`, so the two always agree. A guest is known only by the address it sends from, on its
guest network: :func:`find_guest` never looks at anything the client says about itself.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.orm import Session

from overcast.db.models import (
    Host,
    Network,
    NetworkOffering,
    Nic,
    PublicIp,
    ServiceOffering,
    SshKeyPair,
    VirtualMachine,
    Zone,
)

logger = logging.getLogger(__name__)

#: VM states whose guests are served: a destroyed (recoverable) or expunging VM gets nothing.
SERVED_STATES = ("Starting", "Running", "Stopping", "Stopped", "Migrating")

#: The items of ``/latest/meta-data/``, in the order of CloudStack's ``generateVmDataCommand``; the
#: manifest lists those that have a value, then the user-data variables, then Overcast's KV items.
VR_ITEMS = ("service-offering", "availability-zone", "local-ipv4", "local-hostname", "public-ipv4",
            "public-hostname", "instance-id", "vm-id", "public-keys", "cloud-identifier",
            "hypervisor-host-name", "cloud-name")
#: Overcast's own items: how the guest reaches its KV storage (docs/metadata.md).
KV_ITEMS = ("kv-url", "kv-storage-id", "kv-secret-key")


def normalize_address(address: str) -> str | None:
    """The textual form of an IP address (an IPv4-mapped IPv6 address as IPv4), or None if it is none."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


@dataclass(frozen=True, slots=True)
class Guest:
    vm_id: int
    nic_id: int
    network_id: int


def _guest_query(*extra: Any) -> Any:
    address = bindparam("address")
    return (select(Nic.vm_id, Nic.id, Nic.network_id, Network.gateway, *extra)
            .join(VirtualMachine, VirtualMachine.id == Nic.vm_id)
            .join(Network, Network.id == Nic.network_id)
            .where(or_(Nic.ip_address == address, Nic.ip6_address == address), Nic.removed.is_(None),
                   VirtualMachine.removed.is_(None), VirtualMachine.state.in_(SERVED_STATES))
            .limit(16))


#: The NICs holding an address, with their VM's user data (the metadata service's busiest question).
GUEST_QUERY = _guest_query()
GUEST_USER_DATA_QUERY = _guest_query(VirtualMachine.user_data)


def pick_guest(rows: list[Any], local: str | None) -> Any | None:
    """The one row of :data:`GUEST_QUERY` that is the guest. Several networks may use one address
    (isolated networks each have their own range): then the NIC whose network's gateway is ``local``
    (the address the request came in on, as on a virtual router serving each network on its gateway) is
    the one; if that does not single one out, nobody is answered. ``local`` ``nic:<id>`` names the NIC
    itself (an in-process guest: overcast.metadata.service.NIC_SCOPE_KEY)."""
    if local and local.startswith("nic:"):
        rows = [r for r in rows if str(r.id) == local[4:]]
    if len(rows) > 1:
        here = normalize_address(local or "")
        rows = [r for r in rows if here is not None and normalize_address(r.gateway or "") == here]
    return rows[0] if len(rows) == 1 else None


def find_guest(session: Any, source: str, local: str | None = None) -> Guest | None:
    """The VM whose NIC holds the source address ``source`` (see :func:`pick_guest`)."""
    address = normalize_address(source)
    if address is None:
        return None
    row = pick_guest(session.execute(GUEST_QUERY, {"address": address}).all(), local)
    return Guest(vm_id=row.vm_id, nic_id=row.id, network_id=row.network_id) if row is not None else None


@dataclass
class VmData:
    """Everything a guest is told: the raw user data, metadata items (name -> text, only those with a
    value), the pending password and the NICs (for the config drive's network_data.json)."""

    vm_uuid: str
    instance_name: str
    user_data: bytes | None
    items: dict[str, str]
    #: Names of the user-data variables among ``items`` (``userdatadetails``).
    variables: list[str] = field(default_factory=list)
    password: str | None = None
    key_names: list[tuple[str, str]] = field(default_factory=list)
    nics: list[dict[str, Any]] = field(default_factory=list)
    dns: list[str] = field(default_factory=list)


def decode_user_data(value: str | None) -> bytes | None:
    """Stored base64 user data as the guest gets it: padded to a multiple of 4, decoded, raw bytes."""
    if not value:
        return None
    text = value.strip()
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        logger.warning("VM user data is not valid base64; not served")
        return None
    return raw or None


def user_data_variables(details: str | None) -> dict[str, str]:
    """``userdatadetails`` as stored on the VM: a JSON object of variable -> value."""
    if not details:
        return {}
    try:
        value = json.loads(details)
    except ValueError:
        return {}
    if isinstance(value, dict):
        return {str(k): "" if v is None else str(v) for k, v in value.items()}
    if isinstance(value, list):  # [{"key": value}, ...] as a MAP parameter arrives
        out: dict[str, str] = {}
        for entry in value:
            if isinstance(entry, dict):
                out.update({str(k): "" if v is None else str(v) for k, v in entry.items()})
        return out
    return {}


def vm_data(session: Session, services: Any, vm: VirtualMachine, nic: Nic | None = None) -> VmData:
    """The metadata of ``vm`` as seen through ``nic`` (its default NIC when None)."""
    nics = list(session.scalars(select(Nic).where(Nic.vm_id == vm.id, Nic.removed.is_(None))
                                .order_by(Nic.device_id)))
    if nic is None:
        nic = next((n for n in nics if n.is_default), nics[0] if nics else None)
    zone = session.get(Zone, vm.zone_id)
    offering = session.get(ServiceOffering, vm.service_offering_id)
    network = session.get(Network, nic.network_id) if nic is not None else None
    settings = services.settings
    items: dict[str, str | None] = {}
    items["service-offering"] = (offering.display_text or offering.name) if offering else None
    items["availability-zone"] = zone.name if zone else None
    items["local-ipv4"] = nic.ip_address if nic else None
    items["local-hostname"] = vm.name
    basic_or_shared = (zone is not None and zone.network_type == "Basic") or (
        network is not None and network.guest_type == "Shared")
    if basic_or_shared:
        items["public-ipv4"] = nic.ip_address if nic else None
        items["public-hostname"] = vm.name
    else:
        public = session.scalar(select(PublicIp.address).where(PublicIp.vm_id == vm.id, PublicIp.state != "Free")
                                .order_by(PublicIp.id).limit(1))
        if public is None and network is not None:
            public = session.scalar(select(PublicIp.address).where(
                PublicIp.network_id == network.id, PublicIp.source_nat.is_(True), PublicIp.state != "Free"))
        items["public-ipv4"] = public
        items["public-hostname"] = public
    items["instance-id"] = vm.uuid
    items["vm-id"] = vm.uuid
    names = [n.strip() for n in (vm.keypairs or "").split(",") if n.strip()]
    key_names: list[tuple[str, str]] = []
    if names:
        found = {k.name: k.public_key for k in session.scalars(
            select(SshKeyPair).where(SshKeyPair.account_id == vm.account_id, SshKeyPair.name.in_(names)))}
        key_names = [(n, found[n].strip()) for n in names if n in found]
    items["public-keys"] = "\n".join(k for _, k in key_names) or None
    identifier = settings.get("cloud.identifier")
    items["cloud-identifier"] = f"CloudStack-{{{identifier}}}" if identifier else None
    if settings.get("global.allow.expose.host.hostname") and settings.get(
            "account.allow.expose.host.hostname", scope="account", scope_id=vm.account_id):
        host_id = vm.host_id or vm.last_host_id
        host = session.get(Host, host_id) if host_id else None
        items["hypervisor-host-name"] = host.name if host else None
    items["cloud-name"] = settings.get("metadata.custom.cloud.name", scope="zone", scope_id=vm.zone_id) or None
    variables = user_data_variables(vm.userdata_details)
    for name, value in variables.items():
        if name not in items and name not in KV_ITEMS and "/" not in name and name not in ("", ".", ".."):
            items[name] = value
    data = VmData(vm_uuid=vm.uuid, instance_name=vm.instance_name, user_data=decode_user_data(vm.user_data),
                  items={k: v for k, v in items.items() if v}, variables=[v for v in variables if v in items],
                  password=vm.password or None, key_names=key_names)
    for n in nics:
        net = session.get(Network, n.network_id)
        data.nics.append({"uuid": n.uuid, "device_id": n.device_id, "mac": n.mac_address, "ip": n.ip_address,
                          "ip6": n.ip6_address, "netmask": n.netmask or (net.netmask if net else None),
                          "gateway": n.gateway or (net.gateway if net else None),
                          "network_uuid": net.uuid if net else None})
        if net is not None:
            data.dns += [d for d in (net.dns1, net.dns2) if d and d not in data.dns]
    if zone is not None:
        data.dns += [d for d in (zone.dns1, zone.dns2) if d and d not in data.dns]
    try:  # last: a failure here leaves the rest intact
        data.items.update({k: v for k, v in kv_items(session, services, vm).items() if v})
    except Exception:  # the guest still gets the rest; the KV items come on its next request
        logger.exception("KV metadata items of VM %s could not be read", vm.uuid)
    return data


def kv_items(session: Session, services: Any, vm: VirtualMachine) -> dict[str, str | None]:
    """How the guest reaches its own KV storage (URL, storage id, secret key), when the KV service is
    part of this build. The storage is made on VM.CREATE; if that has not happened yet it is made here.
    A storage that was deleted stays deleted: then there are no KV items."""
    try:
        from overcast.kv import registry, store
        from overcast.db.models import KvStorage
    except ImportError:
        return {}
    storage = session.scalar(select(KvStorage).where(KvStorage.uuid == vm.uuid, KvStorage.kind == "VM"))
    if storage is None:
        history = bool(services.settings.get(registry.VM_HISTORY_SETTING))
        with services.db.writer.begin() as writer:
            row = writer.get(VirtualMachine, vm.id)
            if row is None:
                return {}
            made = registry.ensure_vm_storage(writer, row, history_enabled=history)
            storage_id, secret, live = made.uuid, made.secret_key, store.is_live(made)
    else:
        storage_id, secret, live = storage.uuid, storage.secret_key, store.is_live(storage)
    if not live:
        return {}
    return {"kv-url": store.public_url(services), "kv-storage-id": storage_id, "kv-secret-key": secret}


def take_password(session: Session, vm_id: int) -> str | None:
    """The VM's pending password, if any (``send_my_password``)."""
    return session.scalar(select(VirtualMachine.password).where(VirtualMachine.id == vm_id)) or None


def clear_password(session: Session, vm_id: int) -> None:
    """``saved_password``: the guest has its password; forget it, as the router deletes its entry."""
    session.execute(update(VirtualMachine).where(VirtualMachine.id == vm_id, VirtualMachine.password.is_not(None))
                    .values(password=None).execution_options(synchronize_session=False))


def uses_config_drive(session: Session, vm_id: int) -> bool:
    """Whether one of the VM's networks offers UserData through the ConfigDrive provider."""
    from overcast.engine.networks import offering_services

    offerings = session.scalars(select(NetworkOffering).join(Network, Network.network_offering_id == NetworkOffering.id)
                                .join(Nic, Nic.network_id == Network.id)
                                .where(Nic.vm_id == vm_id, Nic.removed.is_(None)))
    return any("ConfigDrive" in offering_services(o).get("UserData", []) for o in offerings)


__all__ = ["GUEST_QUERY", "GUEST_USER_DATA_QUERY", "Guest", "pick_guest", "KV_ITEMS", "SERVED_STATES", "VR_ITEMS", "VmData", "clear_password", "decode_user_data",
           "find_guest", "kv_items", "normalize_address", "take_password", "user_data_variables",
           "uses_config_drive", "vm_data"]
