"""The volume response (VolumeResponse), built for many volumes in a few queries."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from overcast.api.declare import Field, ResponseObject
from overcast.api.responses.common import Owners, ResourceTagResponse, tags_for
from overcast.api.serialize import cs_date
from overcast.db.models import (
    Cluster,
    DiskOffering,
    Pod,
    ServiceOffering,
    StoragePool,
    Template,
    VirtualMachine,
    Volume,
    Zone,
)

F = Field


class VolumeResponse(ResponseObject):
    object_name = "volume"
    fields = (
        F("id", "string", "ID of the disk volume"),
        F("name", "string", "name of the disk volume"),
        F("zoneid", "string", "ID of the availability zone"),
        F("zonename", "string", "name of the availability zone"),
        F("type", "string", "type of the disk volume (ROOT or DATADISK)"),
        F("deviceid", "long", "the ID of the device on user vm the volume is attahed to. This tag is not returned"
          " when the volume is detached."),
        F("virtualmachineid", "string", "id of the virtual machine"),
        F("vmname", "string", "name of the virtual machine"),
        F("vmdisplayname", "string", "display name of the virtual machine"),
        F("vmstate", "string", "state of the virtual machine"),
        F("vmtype", "string", "type of the virtual machine"),
        F("isoid", "string", "the ID of the ISO attached to the virtual machine"),
        F("isoname", "string", "the name of the ISO attached to the virtual machine"),
        F("isodisplaytext", "string", "an alternate display text of the ISO attached to the virtual machine"),
        F("templateid", "string", "the ID of the template for the virtual machine. A -1 is returned if the virtual"
          " machine was created from an ISO file."),
        F("templatename", "string", "the name of the template for the virtual machine"),
        F("templatedisplaytext", "string", " an alternate display text of the template for the virtual machine"),
        F("provisioningtype", "string", "provisioning type used to create volumes."),
        F("size", "long", "size of the disk volume"),
        F("miniops", "long", "min iops of the disk volume"),
        F("maxiops", "long", "max iops of the disk volume"),
        F("created", "date", "the date the disk volume was created"),
        F("state", "string", "the state of the disk volume"),
        F("account", "string", "the account associated with the disk volume"),
        F("projectid", "string", "the project id of the vpn"),
        F("project", "string", "the project name of the vpn"),
        F("domainid", "string", "the ID of the domain associated with the disk volume"),
        F("domain", "string", "the domain associated with the disk volume"),
        F("domainpath", "string", "path of the Domain the disk volume belongs to"),
        F("storagetype", "string", "shared or local storage"),
        F("diskBytesReadRate", "long", "bytes read rate of the disk volume"),
        F("diskBytesWriteRate", "long", "bytes write rate of the disk volume"),
        F("diskIopsReadRate", "long", "IO requests read rate of the disk volume per the disk offering"),
        F("diskIopsWriteRate", "long", "IO requests write rate of the disk volume per the disk offering"),
        F("diskkbsread", "long", "the VM's disk read in KiB"),
        F("diskkbswrite", "long", "the VM's disk write in KiB"),
        F("diskioread", "long", "the read (IO) of disk on the vm"),
        F("diskiowrite", "long", "the write (IO) of disk on the vm"),
        F("hypervisor", "string", "Hypervisor the volume belongs to"),
        F("diskofferingid", "string", "ID of the disk offering"),
        F("diskofferingname", "string", "name of the disk offering"),
        F("diskofferingdisplaytext", "string", "the display text of the disk offering"),
        F("storage", "string", "name of the primary storage hosting the disk volume"),
        F("snapshotid", "string", "ID of the snapshot from which this volume was created"),
        F("attached", "date", "the date the volume was attached to a VM instance"),
        F("destroyed", "boolean", "the boolean state of whether the volume is destroyed or not"),
        F("serviceofferingid", "string", "ID of the service offering for root disk"),
        F("serviceofferingname", "string", "name of the service offering for root disk"),
        F("serviceofferingdisplaytext", "string", "the display text of the service offering for root disk"),
        F("isextractable", "boolean", "true if the volume is extractable, false otherwise"),
        F("status", "string", "the status of the volume"),
        F("displayvolume", "boolean", "an optional field whether to the display the volume to the end user or not."),
        F("path", "string", "the path of the volume"),
        F("storageid", "string", "id of the primary storage hosting the disk volume; returned to admin user only"),
        F("quiescevm", "boolean", "need quiesce vm or not when taking snapshot"),
        F("supportsstoragesnapshot", "boolean", "true if storage snapshot is supported for the volume, false"
          " otherwise"),
        F("physicalsize", "long", "the bytes actually consumed on disk"),
        F("virtualsize", "long", "the bytes allocated"),
        F("utilization", "string", "the disk utilization"),
        F("clusterid", "string", "cluster id of the volume"),
        F("clustername", "string", "cluster name where the volume is allocated"),
        F("podid", "string", "pod id of the volume"),
        F("podname", "string", "pod name of the volume"),
        F("deleteprotection", "boolean", "true if volume has delete protection."),
        F("tags", "set", "the list of resource tags associated", response=ResourceTagResponse),
        F("hasannotations", "boolean", "whether this volume has annotations"),
    )


def volume_payload(s: Session, vols: list[Volume], *, admin_view: bool) -> list[dict[str, Any]]:
    """Wire dicts for ``vols``. ``admin_view``: root and resource admins also see where a volume lives
    (pool, cluster, pod, path, hypervisor) and the display flag."""
    if not vols:
        return []

    def load(model: Any, ids: set[int | None]) -> dict[int, Any]:
        keys = {i for i in ids if i}
        return {r.id: r for r in s.scalars(select(model).where(model.id.in_(keys)))} if keys else {}

    owners = Owners(s, vols)
    zones = load(Zone, {v.zone_id for v in vols})
    vms = load(VirtualMachine, {v.vm_id for v in vols})
    offerings = load(DiskOffering, {v.disk_offering_id for v in vols})
    pools = load(StoragePool, {v.pool_id for v in vols})
    clusters = load(Cluster, {p.cluster_id for p in pools.values()})
    pods = load(Pod, {p.pod_id for p in pools.values()})
    templates = load(Template, {v.template_id for v in vols})
    services = load(ServiceOffering, {vm.service_offering_id for vm in vms.values()})
    tags = tags_for(s, "Volume", [v.id for v in vols])
    out = []
    for v in vols:
        zone, vm, off = zones.get(v.zone_id), vms.get(v.vm_id or 0), offerings.get(v.disk_offering_id or 0)
        pool = pools.get(v.pool_id or 0)
        tmpl = templates.get(v.template_id or 0)
        so = services.get(vm.service_offering_id) if vm is not None and v.volume_type == "ROOT" else None
        own = owners.fields(v)
        placed = v.pool_id is not None and v.state not in ("Allocated", "Expunged")
        item: dict[str, Any] = {
            "id": v.uuid, "name": v.name, "zoneid": zone.uuid if zone else None,
            "zonename": zone.name if zone else None, "type": v.volume_type,
            "deviceid": v.device_id if vm is not None else None,
            "virtualmachineid": vm.uuid if vm else None, "vmname": vm.name if vm else None,
            "vmdisplayname": (vm.display_name or vm.name) if vm else None, "vmstate": vm.state if vm else None,
            "vmtype": "User" if vm else None,
            "templateid": tmpl.uuid if tmpl and tmpl.format != "ISO" else None,
            "templatename": tmpl.name if tmpl and tmpl.format != "ISO" else None,
            "templatedisplaytext": tmpl.display_text if tmpl and tmpl.format != "ISO" else None,
            "isoid": tmpl.uuid if tmpl and tmpl.format == "ISO" else None,
            "isoname": tmpl.name if tmpl and tmpl.format == "ISO" else None,
            "isodisplaytext": tmpl.display_text if tmpl and tmpl.format == "ISO" else None,
            "provisioningtype": v.provisioning_type, "size": v.size, "miniops": v.min_iops, "maxiops": v.max_iops,
            "created": cs_date(v.created), "state": v.state,
            "account": own["account"], "domainid": own["domainid"], "domain": own["domain"],
            "domainpath": own["domainpath"],
            "storagetype": off.storage_type if off else "shared",
            "diskofferingid": off.uuid if off else None, "diskofferingname": off.name if off else None,
            "diskofferingdisplaytext": off.display_text if off else None,
            "serviceofferingid": so.uuid if so else None, "serviceofferingname": so.name if so else None,
            "serviceofferingdisplaytext": so.display_text if so else None,
            "attached": cs_date(v.attached) if vm is not None else None,
            "destroyed": v.state in ("Destroy", "Expunging", "Expunged"),
            "isextractable": v.volume_type != "ROOT" or bool(tmpl and tmpl.extractable),
            "quiescevm": False, "supportsstoragesnapshot": False,
            "physicalsize": v.size if placed else None, "virtualsize": v.size,
            "diskkbsread": 0 if vm is not None else None, "diskkbswrite": 0 if vm is not None else None,
            "diskioread": 0 if vm is not None else None, "diskiowrite": 0 if vm is not None else None,
            "deleteprotection": v.delete_protection, "tags": tags[v.id], "hasannotations": False,
        }  # fmt: skip
        if admin_view:
            cluster = clusters.get(pool.cluster_id or 0) if pool else None
            pod = pods.get(pool.pod_id or 0) if pool else None
            item.update({
                "hypervisor": (vm.hypervisor_type if vm else None) or (pool.hypervisor_type if pool else None)
                or "None",
                "storage": pool.name if pool else "none", "storageid": pool.uuid if pool else None,
                "clusterid": cluster.uuid if cluster else None, "clustername": cluster.name if cluster else None,
                "podid": pod.uuid if pod else None, "podname": pod.name if pod else None,
                "path": v.path, "displayvolume": v.display_volume,
            })  # fmt: skip
        out.append(item)
    return out


__all__ = ["VolumeResponse", "volume_payload"]
