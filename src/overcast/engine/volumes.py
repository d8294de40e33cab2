"""Volumes: allocate, create on primary storage, attach, detach, resize, migrate, destroy, expunge,
recover (CloudStack's VolumeApiServiceImpl).

Accounting, kept exact by every operation here:

- a volume holds its account's ``volume`` and ``primary_storage`` counts from allocation until it is
  destroyed (state ``Destroy``) or expunged; ``recoverVolume`` takes them again;
- a volume holds ``size`` bytes of its pool's ``used_bytes`` while ``pool_id`` is set and it is not
  expunged (a destroyed volume keeps its space until the cleanup task expunges it).

Counts and capacity move only through compare-and-set updates (``engine/limits.py``,
``engine/capacity.py``). Creating a volume on primary storage goes through the hypervisor driver's
``create_volume`` (the simulator's ``CreateCommand``) after ``ctx.checkpoint()``; a failure gives the
reservation back and leaves the volume as it was.
"""

from __future__ import annotations

import logging
import uuid as uuidlib
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from overcast.db.models import (
    Account,
    DiskOffering,
    Event,
    Host,
    HypervisorCapability,
    ServiceOffering,
    Snapshot,
    SnapshotPolicy,
    StoragePool,
    Template,
    VirtualMachine,
    VmSnapshot,
    Volume,
    Zone,
    utcnow,
)
from overcast.engine.capacity import release_pool, reserve_pool
from overcast.engine.context import EngineContext
from overcast.engine.tags import remove_tags
from overcast.engine.limits import GIB, Limits, ResourceType
from overcast.errors import (
    CloudError,
    ConcurrentOperation,
    InsufficientCapacity,
    InvalidParameterValue,
    PermissionDenied,
    ResourceUnavailable,
)
from overcast.events.types import CREATED
from overcast.plugins.hypervisor import HostRef, HypervisorError

if TYPE_CHECKING:
    from overcast.services import Services

logger = logging.getLogger(__name__)

#: Volume states a volume can be attached in (VolumeApiServiceImpl.validAttachStates).
ATTACHABLE = ("Allocated", "Ready", "Uploaded")
#: States in which a volume no longer holds its resource counts.
RELEASED = ("Destroy", "Expunging", "Expunged")
#: Snapshot states of work in progress on a volume.
SNAPSHOT_BUSY = ("Allocated", "Creating", "CreatedOnPrimary", "BackingUp")
#: Device 3 is kept for the CD-ROM, as CloudStack does for every hypervisor.
CDROM_DEVICE = 3


def readable(size: int) -> str:
    """Bytes the way CloudStack's NumbersUtil.toReadableSize prints them."""
    for unit, factor in (("TB", 1024**4), ("GB", GIB), ("MB", 1024**2), ("KB", 1024)):
        if size >= factor:
            return f"{size / factor:.2f} {unit}"
    return f"{size} bytes"


def _tags(value: str | None) -> set[str]:
    return {t.strip().lower() for t in (value or "").split(",") if t.strip()}


class VolumeOps:
    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self.s = ctx.session
        self.services = ctx.services

    # -- plumbing -------------------------------------------------------------------------------
    def account(self, vol: Volume) -> Account:
        acct = self.s.get(Account, vol.account_id)
        assert acct is not None
        return acct

    def event(self, event_type: str, description: str, vol: Volume, **kwargs: Any) -> None:
        self.ctx.event(event_type, description, account_id=vol.account_id, domain_id=vol.domain_id,
                       resource_type="Volume", resource_uuid=vol.uuid, **kwargs)

    def transit(self, vol: Volume, expected: tuple[str, ...], new_state: str) -> None:
        """Move ``vol`` from one of ``expected`` to ``new_state`` with a compare-and-set."""
        self.s.flush()
        moved = self.s.execute(
            update(Volume).where(Volume.id == vol.id, Volume.state.in_(expected))
            .values(state=new_state).execution_options(synchronize_session=False)).rowcount
        if not moved:
            raise ConcurrentOperation(f"Volume {vol.name} was changed by another operation; try again",
                                      uuids=[(vol.uuid, "volumeId")])
        vol.state = new_state

    def factor(self, pool_id: int) -> float:
        return float(self.ctx.setting("storage.overprovisioning.factor", scope="storagepool", scope_id=pool_id))

    def lock_vm(self, vm: VirtualMachine) -> VirtualMachine:
        """Serialize volume changes on one VM (device ids) until this transaction ends. SQLite writers
        are serialized anyway; PostgreSQL and MariaDB take the row lock."""
        if self.s.get_bind().dialect.name != "sqlite":
            self.s.execute(select(VirtualMachine.id).where(VirtualMachine.id == vm.id).with_for_update())
        return vm

    def vm_snapshot_count(self, vm_id: int) -> int:
        return int(self.s.scalar(select(func.count()).select_from(VmSnapshot).where(
            VmSnapshot.vm_id == vm_id, VmSnapshot.removed.is_(None))) or 0)

    def validate_size(self, size: int) -> None:
        """CloudStack's validateVolumeSizeInBytes."""
        max_gb = int(self.ctx.setting("storage.max.volume.size"))
        if size < 0 or 0 < size < GIB:
            raise InvalidParameterValue("Please specify a size of at least 1 GB.")
        if size > max_gb * GIB:
            raise InvalidParameterValue(f"Requested volume size is {readable(size)}, but the maximum size allowed is"
                                        f" {max_gb} GB.")

    def validate_custom_size(self, size_gb: int) -> None:
        low, high = int(self.ctx.setting("custom.diskoffering.size.min")), int(
            self.ctx.setting("custom.diskoffering.size.max"))
        if size_gb < low or size_gb > high:
            raise InvalidParameterValue(f"Volume size: {size_gb} GB is out of allowed range. Min: {low}. Max: {high}")

    def check_offering_access(self, offering: DiskOffering, account: Account, zone: Zone | None) -> None:
        """The owner may use the disk offering (its domains) in the zone (its zones)."""
        if offering.domain_ids and not (self.ctx.caller and self.ctx.caller.is_root_admin):
            allowed = {int(x) for x in offering.domain_ids.split(",") if x.strip().isdigit()}
            reach = {d.id for d in Limits(self.s).domains_of(account)}
            if allowed and not allowed & reach:
                raise PermissionDenied(f"Account {account.name} does not have access to disk offering"
                                       f" id={offering.uuid}")  # by id: the name is the offering's domain's
        if offering.zone_ids and zone is not None:
            zones = {int(x) for x in offering.zone_ids.split(",") if x.strip().isdigit()}
            if zones and zone.id not in zones:
                raise InvalidParameterValue(f"Disk offering {offering.name} is not available in zone {zone.name}")

    def max_data_volumes(self, vm: VirtualMachine) -> int:
        host_id = vm.host_id or vm.last_host_id
        host = self.s.get(Host, host_id) if host_id else None
        caps = None
        if host is not None and host.hypervisor_version:
            caps = self.s.scalar(select(HypervisorCapability.max_data_volumes_limit).where(
                HypervisorCapability.hypervisor_type == vm.hypervisor_type,
                HypervisorCapability.hypervisor_version == host.hypervisor_version))
        if caps is None:
            caps = self.s.scalar(select(HypervisorCapability.max_data_volumes_limit).where(
                HypervisorCapability.hypervisor_type == vm.hypervisor_type,
                HypervisorCapability.hypervisor_version == "default"))
        return int(caps if caps is not None else 6)

    def vm_host(self, vm: VirtualMachine | None, pool: StoragePool | None = None) -> Host | None:
        """Where a host-side storage command for ``vm`` (or ``pool``) goes: the VM's host, its last
        host, else an Up host that reaches the pool."""
        if vm is not None and (vm.host_id or vm.last_host_id):
            return self.s.get(Host, vm.host_id or vm.last_host_id)
        if pool is None:
            return None
        stmt = select(Host).where(Host.zone_id == pool.zone_id, Host.removed.is_(None), Host.status == "Up",
                                  Host.host_type == "Routing")
        if pool.scope == "CLUSTER" and pool.cluster_id is not None:
            stmt = stmt.where(Host.cluster_id == pool.cluster_id)
        return self.s.scalar(stmt.order_by(Host.id).limit(1))

    def storage_call(self, operation: str, hypervisor: str | None, host: Host | None) -> None:
        """Run a host-side storage operation of the hypervisor driver (``create_volume``, ...)."""
        from overcast.engine.vms import host_ref

        driver = self.services.hypervisor(hypervisor or (host.hypervisor_type if host else None) or "Simulator")
        fn = getattr(driver, operation, None)
        if fn is None:
            return
        ref: HostRef | None = host_ref(host) if host is not None else None
        fn(ref)

    # -- pools ----------------------------------------------------------------------------------
    def reachable_pools(self, zone_id: int, cluster_id: int | None, tags: str | None) -> list[StoragePool]:
        stmt = select(StoragePool).where(StoragePool.zone_id == zone_id, StoragePool.removed.is_(None),
                                         StoragePool.status == "Up")
        if cluster_id is not None:
            stmt = stmt.where((StoragePool.scope == "ZONE") | ((StoragePool.scope == "CLUSTER")
                                                               & (StoragePool.cluster_id == cluster_id)))
        wanted = _tags(tags)
        pools = list(self.s.scalars(stmt.order_by(StoragePool.used_bytes, StoragePool.id)))
        return [p for p in pools if wanted <= _tags(p.tags)]

    def vm_cluster(self, vm: VirtualMachine) -> int | None:
        """The cluster a VM's placed volumes tie it to (a cluster-scoped pool), else its host's."""
        for pool_id in self.s.scalars(select(Volume.pool_id).where(
                Volume.vm_id == vm.id, Volume.removed.is_(None), Volume.pool_id.is_not(None))
                .order_by(Volume.device_id)):
            pool = self.s.get(StoragePool, pool_id)
            if pool is not None and pool.scope == "CLUSTER" and pool.cluster_id is not None:
                return int(pool.cluster_id)
        host_id = vm.host_id or vm.last_host_id
        host = self.s.get(Host, host_id) if host_id else None
        return host.cluster_id if host is not None else None

    def reserve_near(self, vol: Volume, *, zone_id: int, cluster_id: int | None,
                     preferred: int | None = None, exclude: int | None = None) -> StoragePool:
        """Reserve ``vol.size`` on a pool reachable from ``cluster_id`` (``preferred`` first)."""
        offering = self.s.get(DiskOffering, vol.disk_offering_id) if vol.disk_offering_id else None
        pools = self.reachable_pools(zone_id, cluster_id, offering.tags if offering else None)
        pools.sort(key=lambda p: p.id != preferred)
        for pool in pools:
            if pool.id == exclude:
                continue
            if reserve_pool(self.s, pool.id, vol.size, self.factor(pool.id)):
                return pool
        raise InsufficientCapacity(f"Unable to find a storage pool with {readable(vol.size)} free for volume {vol.name}"
                                   + (" in the VM's cluster" if cluster_id is not None else ""))

    def create_on_pool(self, vol: Volume, pool: StoragePool, host: Host | None, *, undo: dict[str, object],
                       snapshot: Snapshot | None = None) -> None:
        """The pool space is reserved: create the volume there (the host's CreateCommand, then its bytes:
        a copy of ``snapshot``'s backup, or a blank disk). On failure the reservation is given back and the
        volume's ``undo`` attributes restored."""
        from overcast.engine import storage_ops

        vol.pool_id = pool.id
        vol.path = vol.path or vol.uuid
        self.transit(vol, ("Allocated",), "Creating")
        hypervisor = pool.hypervisor_type
        pool_id, pool_name, size = pool.id, pool.name, vol.size
        disks = storage_ops.DiskOps(self.ctx)
        plan = disks.plan_volume(vol, pool, snapshot=snapshot)
        self.ctx.checkpoint()
        try:
            self.storage_call("create_volume", hypervisor, host)
            storage_ops.run_steps([plan.run], "Unable to create the volume's disk")
        except (HypervisorError, ResourceUnavailable) as exc:
            release_pool(self.s, pool_id, size)
            for attr, value in undo.items():
                setattr(vol, attr, value)
            vol.pool_id = None
            self.transit(vol, ("Creating",), "Allocated")
            self.ctx.checkpoint()
            raise ResourceUnavailable(f"Failed to create volume {vol.name} on storage pool {pool_name}: {exc}") from exc
        self.transit(vol, ("Creating",), "Ready")
        disks.record_volume(plan)
        vol.format = plan.format if snapshot is not None else (vol.format or "QCOW2")
        self.s.flush()

    # -- allocate / create ----------------------------------------------------------------------
    def allocate(self, *, owner: Account, zone: Zone | None, name: str | None, offering: DiskOffering | None,
                 size_gb: int | None, snapshot: Snapshot | None, vm: VirtualMachine | None, display: bool = True,
                 min_iops: int | None = None, max_iops: int | None = None) -> Volume:
        """The synchronous half of createVolume: validate, take the counts, add the row (Allocated)."""
        s = self.s
        me = self.ctx.caller
        if snapshot is None and offering is None:
            raise InvalidParameterValue("At least one of disk Offering ID or snapshot ID must be passed whilst"
                                        " creating volume")
        parent: Volume | None = None
        if snapshot is not None:
            parent = s.get(Volume, snapshot.volume_id)
            if offering is not None and parent is not None and parent.volume_type != "ROOT":
                raise InvalidParameterValue("Disk Offering ID cannot be passed whilst creating volume from snapshot"
                                            " other than ROOT disk snapshots")
        size = 0
        if offering is not None:
            if size_gb is not None and size_gb <= 0:
                raise InvalidParameterValue("Disk size must be larger than 0")
            if offering.removed is not None or offering.compute_only or offering.state != "Active":
                raise InvalidParameterValue("Please specify a valid disk offering.")
            if offering.customized:
                if size_gb is None:
                    raise InvalidParameterValue("This disk offering requires a custom size specified")
                self.validate_custom_size(size_gb)
            elif size_gb is not None:
                raise InvalidParameterValue("This disk offering does not allow custom size")
            size = offering.disk_size if offering.disk_size > 0 else (size_gb or 0) * GIB
            if offering.customized_iops:
                if min_iops is not None or max_iops is not None:
                    if min_iops is None or min_iops <= 0:
                        raise InvalidParameterValue("The min IOPS must be greater than 0.")
                    if max_iops is not None and min_iops > max_iops:
                        raise InvalidParameterValue("The min IOPS must be less than or equal to the max IOPS.")
            else:
                min_iops, max_iops = offering.min_iops, offering.max_iops
            self.validate_size(size)
        if snapshot is not None:
            if snapshot.state != "BackedUp":
                raise InvalidParameterValue(f"Snapshot id={snapshot.uuid} is not in BackedUp state yet and can't be"
                                            " used for volume creation")
            if zone is None:
                zone = s.get(Zone, snapshot.zone_id)
            if offering is None:
                offering = s.get(DiskOffering, parent.disk_offering_id) if parent and parent.disk_offering_id else None
                size = snapshot.size
                if parent is not None:
                    min_iops, max_iops = parent.min_iops, parent.max_iops
            elif size < snapshot.size:
                raise InvalidParameterValue(f"Invalid size for volume creation: {size // GIB}GB, snapshot size is:"
                                            f" {snapshot.size // GIB}GB")
        if zone is None:
            raise InvalidParameterValue("Please specify zoneid: a volume made from a disk offering needs a zone")
        if zone.allocation_state == "Disabled" and not (me and me.is_root_admin):
            raise PermissionDenied(f"Cannot perform this operation, Zone is currently disabled: {zone.uuid}")
        if offering is not None:
            self.check_offering_access(offering, owner, zone)
            if offering.storage_type == "local" and not zone.local_storage_enabled:
                raise InvalidParameterValue(f"Zone is not configured to use local storage but volume's disk offering"
                                            f" {offering.name} uses it")
        if vm is not None:
            if vm.state not in ("Running", "Stopped"):
                raise InvalidParameterValue("Please specify a VM that is either running or stopped.",
                                            uuids=[(vm.uuid, "virtualMachineId")])
            if vm.zone_id != zone.id:
                raise InvalidParameterValue("Please specify a VM that is in the same zone as the volume.")
            if vm.account_id != owner.id:
                raise PermissionDenied(f"Entity VM {vm.uuid} and the new volume belong to different accounts")
        Limits(s).consume(owner, [(ResourceType.volume, 1), (ResourceType.primary_storage, size)])
        vol = Volume(name=name.strip() if name and name.strip() else str(uuidlib.uuid4()), account_id=owner.id,
                     domain_id=owner.domain_id, zone_id=zone.id, volume_type="DATADISK", state="Allocated", size=size,
                     disk_offering_id=offering.id if offering else None,
                     provisioning_type=offering.provisioning_type if offering else "thin",
                     min_iops=min_iops, max_iops=max_iops, display_volume=display,
                     template_id=parent.template_id if parent else None,
                     format=parent.format if parent else None)
        s.add(vol)
        s.flush()
        self.event("VOLUME.CREATE", f"Creating volume {vol.name}. Volume Id: {vol.uuid}", vol, state=CREATED)
        return vol

    def create(self, vol: Volume, *, snapshot: Snapshot | None, vm: VirtualMachine | None) -> Volume:
        """The job half of createVolume: a volume from a snapshot is created on primary storage now;
        a blank one only when it is attached to a VM whose disks exist. ``vm``: attach afterwards."""
        if vol.state in RELEASED:
            raise InvalidParameterValue(f"Volume {vol.name} is in state {vol.state}")
        if snapshot is not None and vol.state == "Allocated":
            if vm is not None:
                cluster = self.vm_cluster(vm)
                pool = self.reserve_near(vol, zone_id=vol.zone_id, cluster_id=cluster)
            else:
                pool = self.reserve_near(vol, zone_id=vol.zone_id, cluster_id=None)
            self.create_on_pool(vol, pool, self.vm_host(vm, pool), undo={}, snapshot=snapshot)
        if vm is not None and vol.vm_id is None:
            if snapshot is None:
                self.attach(vol, vm, None)  # a blank volume is made by its attachment
                return vol
            try:
                self.attach(vol, vm, None)
            except CloudError as exc:
                raise type(exc)(f"Volume: {vol.uuid} created successfully, but failed to attach the newly created"
                                f" volume to VM: {vm.uuid} due to error: {exc.message}", uuids=exc.uuids) from exc
        return vol

    def fail_creation(self, vol: Volume) -> None:
        """A createVolume job failed: the volume goes to Destroy and gives back what it held (CloudStack
        marks it destroyed and decrements the counts)."""
        if vol.removed is not None or vol.state in RELEASED:
            return
        if vol.pool_id is not None and vol.state in ("Allocated", "Creating"):
            release_pool(self.s, vol.pool_id, vol.size)
            vol.pool_id = None
        vol.vm_id, vol.device_id, vol.attached = None, None, None
        Limits(self.s).release(self.account(vol), [(ResourceType.volume, 1), (ResourceType.primary_storage, vol.size)])
        vol.state = "Destroy"
        self.s.flush()

    # -- attach / detach ------------------------------------------------------------------------
    def device_id(self, vm: VirtualMachine, requested: int | None) -> int:
        max_id = self.max_data_volumes(vm) + 1  # + ROOT and CD-ROM, counted from 0
        used = set(self.s.scalars(select(Volume.device_id).where(
            Volume.vm_id == vm.id, Volume.removed.is_(None), Volume.device_id.is_not(None))))
        if requested is not None:
            if requested < 0 or requested > max_id or requested == CDROM_DEVICE:
                raise InvalidParameterValue(f"Invalid value {requested} for parameter deviceid: it should be 0, 1, 2"
                                            f" or 4-{max_id}")
            if requested in used:
                raise InvalidParameterValue(f"deviceId {requested} is used by VM {vm.uuid}")
            return requested
        for candidate in range(1, max_id + 1):
            if candidate != CDROM_DEVICE and candidate not in used:
                return candidate
        raise InvalidParameterValue(f"All device Ids are used by vm {vm.uuid}")

    def attach(self, vol: Volume, vm: VirtualMachine, device_id: int | None) -> Volume:
        s = self.s
        self.lock_vm(vm)
        if vol.volume_type not in ("DATADISK", "ROOT"):
            raise InvalidParameterValue("Please specify a volume with the valid type: ROOT or DATADISK")
        if vol.vm_id is not None:
            raise InvalidParameterValue("Please specify a volume that is not attached to any VM.",
                                        uuids=[(vol.uuid, "volumeId")])
        if vol.state == "Destroy":
            raise InvalidParameterValue("Please specify a volume that is not destroyed.")
        if vol.state not in ATTACHABLE:
            raise InvalidParameterValue("Volume state must be in Allocated, Ready or in Uploaded state")
        if vm.state not in ("Running", "Stopped"):
            raise InvalidParameterValue("Please specify a VM that is either running or stopped.",
                                        uuids=[(vm.uuid, "virtualMachineId")])
        if vm.zone_id != vol.zone_id:
            raise InvalidParameterValue("Please specify a VM that is in the same zone as the volume.")
        if device_id == 0:
            if vm.state != "Stopped":
                raise InvalidParameterValue("Root volume detach can happen only when vm is in states: Stopped or"
                                            " Destroyed")
            if s.scalar(select(Volume.id).where(Volume.vm_id == vm.id, Volume.device_id == 0,
                                                Volume.removed.is_(None))) is not None:
                raise InvalidParameterValue("Vm already has root volume attached to it")
        else:
            attached = int(s.scalar(select(func.count()).select_from(Volume).where(
                Volume.vm_id == vm.id, Volume.volume_type == "DATADISK", Volume.removed.is_(None))) or 0)
            limit = self.max_data_volumes(vm)
            if attached >= limit:
                raise InvalidParameterValue(f"The specified VM already has the maximum number of data disks ({limit})"
                                            " attached. Please specify another VM.")
        if self.vm_snapshot_count(vm.id):
            raise InvalidParameterValue(f"Unable to attach volume to VM {vm.name}/{vm.uuid}, please specify a VM that"
                                        " does not have VM snapshots")
        if vol.account_id != vm.account_id:
            raise PermissionDenied(f"Entity Volume {vol.uuid} and entity VM {vm.uuid} belong to different accounts",
                                   uuids=[(vol.uuid, "volumeId"), (vm.uuid, "virtualMachineId")])
        offering = s.get(DiskOffering, vol.disk_offering_id) if vol.disk_offering_id else None
        if offering is not None and offering.encrypt and vm.hypervisor_type != "KVM":
            raise InvalidParameterValue("Volume's disk offering has encryption enabled, but volume encryption is not"
                                        f" supported for hypervisor type {vm.hypervisor_type}")
        device = self.device_id(vm, device_id)
        vol.vm_id, vol.device_id = vm.id, device
        s.flush()
        # The disk is made on primary storage now when the VM's disks exist; else at the VM's start.
        cluster = self.vm_cluster(vm)
        placed = s.scalar(select(Volume.pool_id).where(Volume.vm_id == vm.id, Volume.id != vol.id,
                                                       Volume.removed.is_(None), Volume.pool_id.is_not(None))
                          .order_by(Volume.device_id).limit(1))
        if vol.state == "Allocated" and placed is not None:
            pool = self.reserve_near(vol, zone_id=vm.zone_id, cluster_id=cluster, preferred=placed)
            self.create_on_pool(vol, pool, self.vm_host(vm, pool),
                                undo={"vm_id": None, "device_id": None})
        elif vol.pool_id is not None and cluster is not None:
            pool = s.get(StoragePool, vol.pool_id)
            if pool is not None and pool.scope == "CLUSTER" and pool.cluster_id != cluster:
                self.move(vol, cluster, placed)  # a cluster-wide disk the VM's hosts can't reach
        vol.attached = utcnow()
        self.event("VOLUME.ATTACH", f"Attaching volume {vol.name} (Volume Id: {vol.uuid}) to VM {vm.uuid}", vol)
        s.flush()
        return vol

    def move(self, vol: Volume, cluster_id: int, preferred: int | None) -> None:
        """Move a Ready volume to a pool reachable from ``cluster_id`` (CloudStack's moveVolume)."""
        old = vol.pool_id
        assert old is not None
        self.transit(vol, ("Ready",), "Migrating")
        pool = self.reserve_near(vol, zone_id=vol.zone_id, cluster_id=cluster_id, preferred=preferred, exclude=old)
        release_pool(self.s, old, vol.size)
        vol.pool_id = pool.id
        self.transit(vol, ("Migrating",), "Ready")

    def detach(self, vol: Volume) -> Volume:
        if vol.vm_id is None:
            raise InvalidParameterValue("The specified volume is not attached to a VM.", uuids=[(vol.uuid, "volumeId")])
        vm = self.s.get(VirtualMachine, vol.vm_id)
        assert vm is not None
        self.lock_vm(vm)
        if vm.state not in ("Running", "Stopped", "Destroyed"):
            raise InvalidParameterValue("Please specify a VM that is either running or stopped.",
                                        uuids=[(vm.uuid, "virtualMachineId")])
        if vol.volume_type == "ROOT":
            raise InvalidParameterValue(f"Unable to detach volume {vol.name}: it is the ROOT volume of VM {vm.name};"
                                        " only DATADISK volumes can be detached")
        if self.vm_snapshot_count(vm.id):
            raise InvalidParameterValue("Unable to detach volume, please specify a VM that does not have VM snapshots")
        vol.vm_id, vol.device_id, vol.attached = None, None, None
        self.event("VOLUME.DETACH", f"Detaching volume {vol.name} (Volume Id: {vol.uuid}) from VM {vm.uuid}", vol)
        self.s.flush()
        return vol

    # -- resize ---------------------------------------------------------------------------------
    def resize(self, vol: Volume, *, size_gb: int | None, offering: DiskOffering | None, shrink_ok: bool,
               min_iops: int | None, max_iops: int | None) -> Volume:
        s = self.s
        if s.scalar(select(Snapshot.id).where(Snapshot.volume_id == vol.id, Snapshot.removed.is_(None),
                                              Snapshot.state.in_(("Creating", "CreatedOnPrimary", "BackingUp")))):
            raise InvalidParameterValue("There is/are unbacked up snapshot(s) on this volume, resize volume is not"
                                        " permitted, please try again later.")
        if vol.state not in ("Ready", "Allocated"):
            raise InvalidParameterValue(f"Volume should be in ready or allocated state before attempting a resize."
                                        f" Volume {vol.uuid} is in state {vol.state}.")
        current_offering = s.get(DiskOffering, vol.disk_offering_id) if vol.disk_offering_id else None
        vm = s.get(VirtualMachine, vol.vm_id) if vol.vm_id else None
        current = vol.size
        if offering is None:
            if size_gb is None and min_iops is None and max_iops is None:
                raise InvalidParameterValue("Please specify size, diskofferingid, miniops or maxiops to resize the"
                                            " volume")
            if size_gb is not None:
                if size_gb <= 0:
                    raise InvalidParameterValue("Invalid value for parameter size: it must be a positive number of GB")
                if current_offering is not None and current_offering.customized:
                    self.validate_custom_size(size_gb)
                if vol.volume_type == "ROOT" and vm is not None:
                    so = s.get(ServiceOffering, vm.service_offering_id)
                    tmpl = s.get(Template, vol.template_id) if vol.template_id else None
                    if so is not None and so.root_disk_size and tmpl is not None and tmpl.format != "ISO":
                        raise InvalidParameterValue(
                            "Failed to resize Root volume. The service offering of this Volume has been configured"
                            " with a root disk size; on such case a Root Volume can only be resized when changing to"
                            " another Service Offering with a Root disk size. For more details please check out the"
                            " Official Resizing Volumes documentation.")
                new_size = size_gb * GIB
            else:
                new_size = current
            new_min = min_iops if min_iops is not None else vol.min_iops
            new_max = max_iops if max_iops is not None else vol.max_iops
            if (min_iops is not None or max_iops is not None) and vol.volume_type != "ROOT" and not (
                    current_offering is not None and current_offering.customized_iops):
                raise InvalidParameterValue("The current disk offering does not support customization of the"
                                            f" '{'Min' if min_iops is not None else 'Max'} IOPS' parameter.")
        else:
            if offering.removed is not None or offering.state != "Active":
                raise InvalidParameterValue("Requested disk offering has been removed.")
            if offering.compute_only:
                raise InvalidParameterValue("Please specify a valid disk offering.")
            if current_offering is not None and _tags(current_offering.tags) != _tags(offering.tags):
                if current_offering.tags:
                    raise InvalidParameterValue("The tags on the new and old disk offerings must match.")
                raise InvalidParameterValue("There are no tags on the current disk offering. The new disk offering"
                                            " needs to have no tags, as well.")
            self.check_offering_access(offering, self.account(vol), s.get(Zone, vol.zone_id))
            if offering.disk_size > 0:
                if size_gb is not None:
                    raise InvalidParameterValue("You cannot pass in a custom disk size to a non-custom disk offering.")
                new_size = offering.disk_size
            elif offering.customized:
                if size_gb is None:
                    raise InvalidParameterValue("The new disk offering requires that a size be specified.")
                self.validate_custom_size(size_gb)
                new_size = size_gb * GIB
            else:
                new_size = current
            if vol.volume_type == "ROOT" and vm is not None and new_size != current and vm.state != "Stopped":
                raise InvalidParameterValue(f"Cannot resize ROOT volume [{vol.name}] when VM is not on Stopped State."
                                            f" VM {vm.instance_name} is in state {vm.state}")
            if offering.customized_iops:
                new_min = min_iops if min_iops is not None else vol.min_iops
                new_max = max_iops if max_iops is not None else vol.max_iops
            else:
                new_min, new_max = offering.min_iops, offering.max_iops
        if (new_min is None) != (new_max is None) and (min_iops is not None or max_iops is not None):
            raise InvalidParameterValue("Either 'miniops' and 'maxiops' must both be provided or neither must be"
                                        " provided.")
        if new_min is not None and new_max is not None and new_min > new_max:
            raise InvalidParameterValue("The 'miniops' parameter must be less than or equal to the 'maxiops'"
                                        " parameter.")
        delta = new_size - current
        if delta:
            if vm is not None and self.vm_snapshot_count(vm.id):
                raise InvalidParameterValue("A volume that is attached to a VM with any VM snapshots cannot be"
                                            " resized.")
            self.validate_size(new_size)
            if delta < 0 and not shrink_ok:
                raise InvalidParameterValue(f"Going from existing size of {current} to size of {new_size} would shrink"
                                            " the volume.Need to sign off by supplying the shrinkok parameter with"
                                            " value of true.")
            account = self.account(vol)
            Limits(s).consume(account, [(ResourceType.primary_storage, delta)])
            if vol.pool_id is not None:
                if delta > 0:
                    if not reserve_pool(s, vol.pool_id, delta, self.factor(vol.pool_id)):
                        pool = s.get(StoragePool, vol.pool_id)
                        raise InsufficientCapacity(f"Storage pool {pool.name if pool else vol.pool_id} does not have"
                                                   f" enough space to resize volume {vol.name}")
                else:
                    release_pool(s, vol.pool_id, -delta)
        if vol.state == "Ready":
            self.transit(vol, ("Ready",), "Resizing")
        vol.size = new_size
        vol.min_iops, vol.max_iops = new_min, new_max
        if offering is not None:
            vol.disk_offering_id = offering.id
            vol.provisioning_type = offering.provisioning_type
        if vol.state == "Resizing":
            self.transit(vol, ("Resizing",), "Ready")
        self.event("VOLUME.RESIZE", f"Resizing volume {vol.name} (Volume Id: {vol.uuid}) from {current} to"
                   f" {new_size} bytes", vol)
        s.flush()
        return vol

    # -- migrate --------------------------------------------------------------------------------
    def migrate(self, vol: Volume, pool: StoragePool, *, live: bool, offering: DiskOffering | None) -> Volume:
        s = self.s
        if vol.state != "Ready" or vol.pool_id is None:
            raise InvalidParameterValue("Volume must be in ready state", uuids=[(vol.uuid, "volumeId")])
        if vol.pool_id == pool.id:
            raise InvalidParameterValue(f"Volume {vol.name} is already on the destination storage pool")
        vm = s.get(VirtualMachine, vol.vm_id) if vol.vm_id else None
        if vm is not None and self.vm_snapshot_count(vm.id):
            raise InvalidParameterValue("Volume cannot be migrated, please remove all VM snapshots for VM to which this"
                                        " volume is attached")
        if pool.zone_id != vol.zone_id or pool.removed is not None:
            raise InvalidParameterValue(f"Storage pool {pool.name} is not suitable to migrate volume {vol.name}")
        if pool.status in ("Maintenance", "PrepareForMaintenance", "ErrorInMaintenance"):
            raise InvalidParameterValue(f"Cannot migrate volume {vol.name} to the destination storage pool {pool.name}"
                                        " as the storage pool is in maintenance mode.")
        if pool.status != "Up":
            raise InvalidParameterValue(f"Storage pool {pool.name} is not suitable to migrate volume {vol.name}")
        if vm is not None:
            if vm.state == "Running":
                host = s.get(Host, vm.host_id) if vm.host_id else None
                motion = s.scalar(select(HypervisorCapability.storage_motion_supported).where(
                    HypervisorCapability.hypervisor_type == vm.hypervisor_type).order_by(
                    HypervisorCapability.hypervisor_version != "default"))
                if not motion:
                    raise InvalidParameterValue("Volume needs to be detached from VM")
                if not live:
                    raise InvalidParameterValue(f"The volume {vol.name}is attached to a vm and for migrating it the"
                                                " parameter livemigrate should be specified")
                if host is not None and pool.scope == "CLUSTER" and pool.cluster_id != host.cluster_id:
                    raise InvalidParameterValue("Cannot migrate a volume of a virtual machine to a storage pool in a"
                                                " different cluster")
            elif vm.state != "Stopped":
                raise InvalidParameterValue("Please specify a VM that is either running or stopped.")
            others = {p.cluster_id for p in s.scalars(select(StoragePool).join(Volume, Volume.pool_id == StoragePool.id)
                                                       .where(Volume.vm_id == vm.id, Volume.id != vol.id,
                                                              Volume.removed.is_(None), StoragePool.scope == "CLUSTER"))}
            if pool.scope == "CLUSTER" and others and others != {pool.cluster_id}:
                raise InvalidParameterValue("Cannot migrate a volume of a virtual machine to a storage pool in a"
                                            " different cluster")
        disk = offering or (s.get(DiskOffering, vol.disk_offering_id) if vol.disk_offering_id else None)
        if offering is not None and (offering.removed is not None or offering.compute_only):
            raise InvalidParameterValue("Please specify a valid disk offering.")
        if disk is not None and not _tags(disk.tags) <= _tags(pool.tags):
            raise InvalidParameterValue(f"Storage pool {pool.name} is not suitable to migrate volume {vol.name}")
        source = vol.pool_id
        self.transit(vol, ("Ready",), "Migrating")
        if not reserve_pool(s, pool.id, vol.size, self.factor(pool.id)):
            raise InsufficientCapacity(f"Storage pool {pool.name} does not have enough space to migrate volume"
                                       f" {vol.name}")
        from overcast.engine import storage_ops

        disks = storage_ops.DiskOps(self.ctx)
        old_pool = s.get(StoragePool, source)
        move = disks.plan_pool_copy(vol, old_pool, pool) if old_pool is not None else None
        if move is not None:  # the bytes, primary to primary (a qcow2 overlay arrives flattened)
            self.ctx.checkpoint()
            try:
                storage_ops.run_steps([move.run], f"Unable to copy volume {vol.name} to storage pool {pool.name}")
            except ResourceUnavailable:
                release_pool(s, pool.id, vol.size)
                self.transit(vol, ("Migrating",), "Ready")
                self.ctx.checkpoint()
                raise
            disks.release_volume(vol)  # the source pool's file and template-cache reference
        release_pool(s, source, vol.size)
        vol.pool_id = pool.id
        if offering is not None:
            vol.disk_offering_id = offering.id
        self.transit(vol, ("Migrating",), "Ready")
        self.event("VOLUME.MIGRATE", f"Migrating volume {vol.name} (Volume Id: {vol.uuid}) to storage pool"
                   f" {pool.uuid}", vol)
        s.flush()
        return vol

    # -- destroy / expunge / recover ------------------------------------------------------------
    def check_deletable(self, vol: Volume) -> None:
        if self.s.scalar(select(Snapshot.id).where(Snapshot.volume_id == vol.id, Snapshot.removed.is_(None),
                                                   Snapshot.state.in_(SNAPSHOT_BUSY))) is not None:
            raise InvalidParameterValue("There are snapshot operations in progress on the volume, unable to delete it")
        if vol.vm_id is not None:
            vm = self.s.get(VirtualMachine, vol.vm_id)
            if vm is not None and vm.removed is None:
                raise InvalidParameterValue("Please specify a volume that is not attached to any VM.",
                                            uuids=[(vol.uuid, "volumeId")])
        if vol.delete_protection:
            raise InvalidParameterValue(f"Volume {vol.name} has delete protection on; turn it off first")

    def destroy(self, vol: Volume, *, expunge: bool) -> Volume:
        """Ready -> Destroy: counts given back, the pool's space kept until the volume is expunged."""
        self.check_deletable(vol)
        if not expunge and vol.state in ("Allocated", "Uploaded"):
            raise InvalidParameterValue("The volume in Allocated/Uploaded state can only be expunged not"
                                        " destroyed/recovered")
        if vol.state not in RELEASED and vol.state != "Allocated":
            if vol.state != "Ready":
                raise InvalidParameterValue(f"Volume {vol.name} can't be destroyed in state {vol.state}")
            self.transit(vol, ("Ready",), "Destroy")
            Limits(self.s).release(self.account(vol), [(ResourceType.volume, 1),
                                                      (ResourceType.primary_storage, vol.size)])
            self.remove_policies(vol)
        if expunge:
            self.expunge(vol)
        self.s.flush()
        return vol

    def expunge(self, vol: Volume) -> None:
        """Remove a detached volume for good: its pool space, its counts (if it still holds them), its
        snapshot policies and tags. Its snapshots stay (they live on secondary storage)."""
        if vol.removed is not None:
            return
        if vol.pool_id is not None:
            release_pool(self.s, vol.pool_id, vol.size)
            from overcast.engine import storage_ops

            storage_ops.DiskOps(self.ctx).release_volume(vol)
        if vol.state not in RELEASED:
            Limits(self.s).release(self.account(vol), [(ResourceType.volume, 1),
                                                      (ResourceType.primary_storage, vol.size)])
        self.remove_policies(vol)
        remove_tags(self.s, "Volume", vol.id)
        vol.state, vol.removed, vol.vm_id, vol.device_id = "Expunged", utcnow(), None, None
        self.s.flush()

    def remove_policies(self, vol: Volume) -> None:
        self.s.execute(update(SnapshotPolicy).where(SnapshotPolicy.volume_id == vol.id,
                                                    SnapshotPolicy.removed.is_(None))
                       .values(removed=utcnow(), next_run=None).execution_options(synchronize_session=False))

    def delete(self, vol: Volume) -> None:
        """deleteVolume: destroy and expunge at once (any caller may)."""
        self.check_deletable(vol)
        if vol.state not in ("Allocated", "Ready", "Destroy", "Uploaded", "UploadError", "UploadAbandoned"):
            raise InvalidParameterValue(f"Volume {vol.name} can't be deleted in state {vol.state}")
        self.expunge(vol)
        self.event("VOLUME.DELETE", f"Deleting volume {vol.name}. Volume Id: {vol.uuid}", vol)

    def recover(self, vol: Volume) -> Volume:
        if vol.state != "Destroy" or vol.removed is not None:
            raise InvalidParameterValue("Please specify a volume in Destroy state.", uuids=[(vol.uuid, "volumeId")])
        if vol.vm_id is not None:
            raise InvalidParameterValue("Please specify a volume that is not attached to any VM.")
        try:
            Limits(self.s).consume(self.account(vol), [(ResourceType.volume, 1),
                                                      (ResourceType.primary_storage, vol.size)])
        except CloudError as exc:
            raise InvalidParameterValue(exc.message) from exc
        self.transit(vol, ("Destroy",), "Ready" if vol.pool_id is not None else "Allocated")
        self.event("VOLUME.RECOVER", f"Recovering volume {vol.name}. Volume Id: {vol.uuid}", vol)
        self.s.flush()
        return vol


def expunge_destroyed_volumes(services: Services) -> int:
    """Expunge detached volumes destroyed longer than ``storage.cleanup.delay`` ago."""
    from overcast.engine.tasks import SystemContext

    if not services.settings.get("storage.cleanup.enabled"):
        return 0
    delay = int(services.settings.get("storage.cleanup.delay"))
    with services.db.reader() as s:
        ids = list(s.scalars(select(Volume.id).where(Volume.removed.is_(None), Volume.state == "Destroy",
                                                     Volume.vm_id.is_(None))))
    done = 0
    cutoff = utcnow() - timedelta(seconds=delay)
    for vol_id in ids:
        with services.db.writer() as session:
            ctx = SystemContext(services, session)
            try:
                vol = session.get(Volume, vol_id)
                if vol is None or vol.removed is not None or vol.state != "Destroy" or vol.vm_id is not None:
                    continue
                if _destroyed_at(session, vol) > cutoff:
                    continue
                VolumeOps(ctx).expunge(vol)
                ctx.event("VOLUME.EXPUNGE", f"Expunging volume {vol.name}. Volume Id: {vol.uuid}",
                          account_id=vol.account_id, domain_id=vol.domain_id, resource_type="Volume",
                          resource_uuid=vol.uuid)
                session.commit()
                done += 1
            except CloudError as exc:
                session.rollback()
                logger.warning("Expunging volume %s failed: %s", vol_id, exc.message)
    return done


def _destroyed_at(s: Session, vol: Volume) -> datetime:
    """When the volume was destroyed: its last VOLUME.DESTROY event, else its creation."""
    when = s.scalar(select(func.max(Event.created)).where(
        Event.resource_uuid == vol.uuid, Event.event_type.in_(("VOLUME.DESTROY", "VOLUME.CREATE"))))
    return when or vol.created


__all__ = ["VolumeOps", "expunge_destroyed_volumes", "readable"]
