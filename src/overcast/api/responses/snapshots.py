"""Snapshot, snapshot policy and VM snapshot responses, built for many rows in a few queries."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from overcast.api.declare import Field, ResponseObject
from overcast.api.responses.common import Owners, ResourceTagResponse, tags_for
from overcast.api.serialize import cs_date
from overcast.db.models import (
    GuestOs,
    ImageStore,
    Snapshot,
    SnapshotPolicy,
    Template,
    VirtualMachine,
    VmSnapshot,
    Volume,
    Zone,
)
from overcast.engine.snapshots import INTERVALS

F = Field


def _load(s: Session, model: Any, ids: set[int | None]) -> dict[int, Any]:
    keys = {i for i in ids if i}
    return {r.id: r for r in s.scalars(select(model).where(model.id.in_(keys)))} if keys else {}


class SnapshotResponse(ResponseObject):
    object_name = "snapshot"
    fields = (
        F("id", "string", "ID of the snapshot"),
        F("account", "string", "the account associated with the snapshot"),
        F("domainid", "string", "the domain ID of the snapshot's account"),
        F("domain", "string", "the domain name of the snapshot's account"),
        F("domainpath", "string", "path of the Domain the snapshot's account belongs to"),
        F("projectid", "string", "the project id of the snapshot"),
        F("project", "string", "the project name of the snapshot"),
        F("snapshottype", "string", "the type of the snapshot"),
        F("volumeid", "string", "ID of the disk volume"),
        F("volumename", "string", "name of the disk volume"),
        F("volumetype", "string", "type of the disk volume"),
        F("volumestate", "string", "state of the disk volume"),
        F("created", "date", "  the date the snapshot was created"),
        F("name", "string", "name of the snapshot"),
        F("intervaltype", "string", "valid types are hourly, daily, weekly, monthy, template, and none."),
        F("locationtype", "string", "valid location types are primary and secondary."),
        F("state", "state", "the state of the snapshot. BackedUp means that snapshot is ready to be used; Creating -"
          " the snapshot is being allocated on the primary storage; BackingUp - the snapshot is being backed up on"
          " secondary storage"),
        F("physicalsize", "long", "physical size of backedup snapshot on image store"),
        F("virtualsize", "long", "virtual size of backedup snapshot on image store"),
        F("zoneid", "string", "id of the availability zone"),
        F("zonename", "string", "name of the availability zone"),
        F("revertable", "boolean", "indicates whether the underlying storage supports reverting the volume to this"
          " snapshot"),
        F("ostypeid", "string", "id of the os on volume"),
        F("osdisplayname", "string", "display name of the os on volume"),
        F("datastoreid", "string", "id of the datastore for the snapshot entry"),
        F("datastorename", "string", "name of the datastore for the snapshot entry"),
        F("datastoretype", "string", "type of the datastore for the snapshot entry"),
        F("datastorestate", "string", "state of the snapshot on the datastore"),
        F("tags", "set", "the list of resource tags associated", response=ResourceTagResponse),
        F("hasannotations", "boolean", "whether this snapshot has annotations"),
    )


def wire_snapshot_type(snap: Snapshot) -> str:
    """CloudStack names a recurring snapshot by its interval (Snapshot.Type HOURLY, DAILY, ...)."""
    if snap.snapshot_type == "RECURRING" and snap.interval_type:
        return snap.interval_type
    return snap.snapshot_type


def snapshot_payload(s: Session, snaps: list[Snapshot]) -> list[dict[str, Any]]:
    if not snaps:
        return []
    owners = Owners(s, snaps)
    zones = _load(s, Zone, {x.zone_id for x in snaps})
    vols = _load(s, Volume, {x.volume_id for x in snaps})
    vms = _load(s, VirtualMachine, {v.vm_id for v in vols.values()})
    templates = _load(s, Template, {v.template_id for v in vols.values()})
    oses = _load(s, GuestOs, {t.guest_os_id for t in templates.values()} | {vm.guest_os_id for vm in vms.values()})
    stores = {st.zone_id: st for st in s.scalars(select(ImageStore).where(
        ImageStore.zone_id.in_({x.zone_id for x in snaps}), ImageStore.role == "Image").order_by(ImageStore.id.desc()))}
    tags = tags_for(s, "Snapshot", [x.id for x in snaps])
    out = []
    for x in snaps:
        vol, zone = vols.get(x.volume_id), zones.get(x.zone_id)
        vm = vms.get(vol.vm_id or 0) if vol else None
        tmpl = templates.get(vol.template_id or 0) if vol else None
        os_ = oses.get((vm.guest_os_id if vm else None) or (tmpl.guest_os_id if tmpl else 0) or 0)
        store = stores.get(x.zone_id)
        own = owners.fields(x)
        kind = wire_snapshot_type(x)
        out.append({
            "id": x.uuid, "account": own["account"], "domainid": own["domainid"], "domain": own["domain"],
            "domainpath": own["domainpath"], "snapshottype": kind, "intervaltype": kind,
            "volumeid": vol.uuid if vol else None, "volumename": vol.name if vol else None,
            "volumetype": vol.volume_type if vol else None, "volumestate": vol.state if vol else None,
            "created": cs_date(x.created), "name": x.name, "locationtype": x.location_type, "state": x.state,
            "physicalsize": x.physical_size, "virtualsize": x.size,
            "zoneid": zone.uuid if zone else None, "zonename": zone.name if zone else None,
            "revertable": x.state == "BackedUp" and vol is not None and vol.removed is None,
            "ostypeid": os_.uuid if os_ and vol and vol.volume_type == "ROOT" else None,
            "osdisplayname": os_.display_name if os_ and vol and vol.volume_type == "ROOT" else None,
            "datastoreid": store.uuid if store else None, "datastorename": store.name if store else None,
            "datastoretype": "Image" if store else None,
            "datastorestate": ("Ready" if x.state == "BackedUp" else x.state) if store else None,
            "tags": tags[x.id], "hasannotations": False,
        })  # fmt: skip
    return out


class SnapshotPolicyResponse(ResponseObject):
    object_name = "snapshotpolicy"
    fields = (
        F("id", "string", "the ID of the snapshot policy"),
        F("volumeid", "string", "the ID of the disk volume"),
        F("volumename", "string", "the name of the disk volume"),
        F("schedule", "string", "time the snapshot is scheduled to be taken."),
        F("intervaltype", "short", "the interval type of the snapshot policy"),
        F("maxsnaps", "integer", "maximum number of snapshots retained"),
        F("timezone", "string", "the time zone of the snapshot policy"),
        F("fordisplay", "boolean", "is this policy for display to the regular user"),
        F("tags", "set", "the list of resource tags associated", response=ResourceTagResponse),
        F("hasannotations", "boolean", "whether this snapshot policy has annotations"),
    )


def policy_payload(s: Session, policies: list[SnapshotPolicy], *, admin: bool) -> list[dict[str, Any]]:
    if not policies:
        return []
    vols = _load(s, Volume, {p.volume_id for p in policies})
    tags = tags_for(s, "SnapshotPolicy", [p.id for p in policies])
    out = []
    for p in policies:
        vol = vols.get(p.volume_id)
        out.append({
            "id": p.uuid, "volumeid": vol.uuid if vol else None, "volumename": vol.name if vol else None,
            "schedule": p.schedule, "intervaltype": INTERVALS.index(p.interval_type), "maxsnaps": p.max_snaps,
            "timezone": p.timezone, "fordisplay": p.display if admin else None, "tags": tags[p.id],
            "hasannotations": False,
        })  # fmt: skip
    return out


class VMSnapshotResponse(ResponseObject):
    object_name = "vmsnapshot"
    fields = (
        F("id", "string", "the ID of the vm snapshot"),
        F("name", "string", "the name of the vm snapshot"),
        F("state", "state", "the state of the vm snapshot"),
        F("description", "string", "the description of the vm snapshot"),
        F("displayname", "string", "the display name of the vm snapshot"),
        F("zoneid", "string", "the Zone ID of the vm snapshot"),
        F("zonename", "string", "the Zone name of the vm snapshot"),
        F("virtualmachineid", "string", "the vm ID of the vm snapshot"),
        F("virtualmachinename", "string", "the vm name of the vm snapshot"),
        F("parent", "string", "the parent ID of the vm snapshot"),
        F("parentName", "string", "the parent displayName of the vm snapshot"),
        F("current", "boolean", "indiates if this is current snapshot"),
        F("type", "string", "VM Snapshot type"),
        F("created", "date", "the create date of the vm snapshot"),
        F("account", "string", "the account associated with the disk volume"),
        F("projectid", "string", "the project id of the vpn"),
        F("project", "string", "the project name of the vpn"),
        F("domainid", "string", "the ID of the domain associated with the disk volume"),
        F("domain", "string", "the domain associated with the disk volume"),
        F("domainpath", "string", "path of the domain to which the disk volume belongs"),
        F("hypervisor", "string", "the type of hypervisor on which snapshot is stored"),
        F("tags", "set", "the list of resource tags associated", response=ResourceTagResponse),
        F("hasannotations", "boolean", "whether this VM snapshot has annotations"),
    )


class VMSnapshotListResponse(VMSnapshotResponse):
    """listVMSnapshot's items: CloudStack names them ``vmSnapshot`` (ListVMSnapshotCmd sets that object
    name) while the create and revert jobs answer ``vmsnapshot``; Ansible's cs_vmsnapshot reads both."""

    object_name = "vmSnapshot"


def vm_snapshot_payload(s: Session, rows: list[VmSnapshot]) -> list[dict[str, Any]]:
    if not rows:
        return []
    owners = Owners(s, rows)
    vms = _load(s, VirtualMachine, {r.vm_id for r in rows})
    zones = _load(s, Zone, {vm.zone_id for vm in vms.values()})
    parents = _load(s, VmSnapshot, {r.parent_id for r in rows})
    tags = tags_for(s, "VMSnapshot", [r.id for r in rows])
    out = []
    for r in rows:
        vm = vms.get(r.vm_id)
        zone = zones.get(vm.zone_id) if vm else None
        parent = parents.get(r.parent_id or 0)
        own = owners.fields(r)
        out.append({
            "id": r.uuid, "name": r.name, "state": r.state, "description": r.description,
            "displayname": r.display_name or r.name, "zoneid": zone.uuid if zone else None,
            "zonename": zone.name if zone else None, "virtualmachineid": vm.uuid if vm else None,
            "virtualmachinename": (vm.display_name or vm.name) if vm else None,
            "parent": parent.uuid if parent else None,
            "parentName": (parent.display_name or parent.name) if parent else None,
            "current": r.current, "type": r.snapshot_type, "created": cs_date(r.created),
            "account": own["account"], "domainid": own["domainid"], "domain": own["domain"],
            "domainpath": own["domainpath"], "hypervisor": vm.hypervisor_type if vm else None,
            "tags": tags[r.id], "hasannotations": False,
        })  # fmt: skip
    return out


__all__ = [
    "SnapshotPolicyResponse", "SnapshotResponse", "VMSnapshotListResponse", "VMSnapshotResponse", "policy_payload",
    "snapshot_payload", "vm_snapshot_payload",
]  # fmt: skip
