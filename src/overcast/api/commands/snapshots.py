"""Volume snapshots, snapshot policies and VM snapshots."""

from __future__ import annotations

from sqlalchemy import func, select, update

from overcast.access.roles import ALL_ROLES, ROOT_ADMIN
from overcast.api.commands.vms import vm_result
from overcast.api.context import CallContext
from overcast.api.declare import (
    BOOLEAN, INTEGER, LIST, MAP, STRING, UUID, Access, Command, ListResult, ObjectResult, Param, Result, Success,
    SuccessResponse, api_command,
)  # fmt: skip
from overcast.api.listing import OwnedList, fetch_page, keyword_filter
from overcast.engine.tags import tag_filter
from overcast.api.responses.snapshots import (
    SnapshotPolicyResponse,
    SnapshotResponse,
    VMSnapshotListResponse,
    VMSnapshotResponse,
    policy_payload,
    snapshot_payload,
    vm_snapshot_payload,
)
from overcast.api.responses.vms import UserVmResponse
from overcast.db.models import (
    Domain,
    Snapshot,
    SnapshotPolicy,
    VirtualMachine,
    VmSnapshot,
    Volume,
    Zone,
)
from overcast.engine.snapshots import INTERVALS, SnapshotOps, VmSnapshotOps
from overcast.errors import InvalidParameterValue

RELATED = ("createSnapshot", "listSnapshots", "deleteSnapshot", "revertSnapshot")
POLICY_RELATED = ("createSnapshotPolicy", "listSnapshotPolicies", "updateSnapshotPolicy")
VM_SNAPSHOT_RELATED = ("createVMSnapshot", "listVMSnapshot", "revertToVMSnapshot", "deleteVMSnapshot")
VOLUME_RELATED = ("createVolume", "listVolumes")
SNAPSHOT_TYPES = ("MANUAL", "RECURRING", "TEMPLATE", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "GROUP", "FROM_GROUP")

def snapshot_result(ctx: CallContext, snap: Snapshot) -> ObjectResult:
    ctx.session.flush()
    ctx.session.refresh(snap)
    return ObjectResult(snapshot_payload(ctx.session, [snap])[0])


def policy_result(ctx: CallContext, policy: SnapshotPolicy) -> ObjectResult:
    ctx.session.flush()
    ctx.session.refresh(policy)
    return ObjectResult(policy_payload(ctx.session, [policy], admin=ctx.me.is_admin)[0])


def vm_snapshot_result(ctx: CallContext, vs: VmSnapshot) -> ObjectResult:
    ctx.session.flush()
    ctx.session.refresh(vs)
    return ObjectResult(vm_snapshot_payload(ctx.session, [vs])[0])


def only_own_zone(zones: list[Zone] | None, vol: Volume) -> None:
    """Snapshots stay in the volume's zone: copies to other zones are not supported."""
    for zone in zones or []:
        if zone.id != vol.zone_id:
            raise InvalidParameterValue(f"Invalid value for parameter zoneids: snapshots can't be copied to zone"
                                        f" {zone.name}; they are kept in the zone of the volume only")


def restore_volume(ctx: CallContext, volume_id: int, busy: str) -> None:
    """A volume left in a transient state by an interrupted job goes back to Ready."""
    ctx.session.execute(update(Volume).where(Volume.id == volume_id, Volume.state == busy).values(state="Ready")
                        .execution_options(synchronize_session=False))


# -- volume snapshots ---------------------------------------------------------------------------


@api_command("createSnapshot", response=SnapshotResponse, roles=ALL_ROLES, is_async=True, creates_entity=True,
             event_type="SNAPSHOT.CREATE", description="Creates an instant snapshot of a volume.")
class CreateSnapshot(Command):
    volume = Param(UUID, "volumeid", required=True, entity=Volume, acl=Access.OPERATE, related=VOLUME_RELATED,
                   description="The ID of the disk volume")
    name = Param(STRING, since="4.2.1", description="the name of the snapshot")
    policy = Param(UUID, "policyid", entity=SnapshotPolicy, acl=Access.OPERATE, related=POLICY_RELATED,
                   description="policy id of the snapshot, if this is null, then use MANUAL_POLICY.")
    quiesce = Param(BOOLEAN, "quiescevm", description="quiesce vm if true")
    location_type = Param(STRING, "locationtype", choices=("PRIMARY", "SECONDARY"), since="4.10.0",
                          description="Currently applicable only for managed storage. Valid location types:"
                          " 'primary', 'secondary'. Default = 'primary'.")
    async_backup = Param(BOOLEAN, "asyncbackup", since="4.10.0", description="asynchronous backup if true")
    tags = Param(MAP, since="4.16.0", description="Map of tags (key/value pairs)")
    zones = Param(LIST, "zoneids", item_type=UUID, entity=Zone, since="4.19.0", description="A comma-separated list"
                  " of IDs of the zones in which the snapshot will be made available. The snapshot will always be made"
                  " available in the zone in which the volume is present.")
    account = Param(STRING, description="The account of the snapshot. The account parameter must be used with the"
                    " domainId parameter.")
    domain = Param(UUID, "domainid", entity=Domain, description="The domain ID of the snapshot. If used with the"
                   " account parameter, specifies a domain for the account associated with the disk volume. If account"
                   " is NOT provided then snapshot will be assigned to the caller account and domain.")

    def prepare(self, ctx: CallContext) -> str | None:
        if self.domain is not None:
            ctx.acl.check_domain(ctx.me, self.domain, Access.OPERATE)
        only_own_zone(self.zones, self.volume)
        snap = SnapshotOps(ctx).allocate(self.volume, name=self.name, policy=self.policy,
                                         location_type=self.location_type, tags=self.tags)
        self.raw_snapshot_uuid = snap.uuid
        return snap.uuid

    def instance(self) -> tuple[str | None, str | None]:
        return "Snapshot", getattr(self, "raw_snapshot_uuid", None)

    def _snapshot(self, ctx: CallContext) -> Snapshot | None:
        assert ctx.job is not None
        return ctx.job_entity(Snapshot)

    def execute(self, ctx: CallContext) -> Result:
        snap = self._snapshot(ctx)
        if snap is None or snap.removed is not None:
            raise InvalidParameterValue("The snapshot of this job no longer exists")
        try:
            SnapshotOps(ctx).take(snap)
        except Exception:
            ctx.session.rollback()
            self.recover(ctx)  # nothing half-made keeps its counts
            ctx.checkpoint()
            raise
        return snapshot_result(ctx, snap)

    def recover(self, ctx: CallContext) -> None:
        snap = self._snapshot(ctx)
        if snap is not None and snap.state in ("Allocated", "Creating"):
            restore_volume(ctx, snap.volume_id, "Snapshotting")
            SnapshotOps(ctx).fail(snap)


@api_command("listSnapshots", response=SnapshotResponse, roles=ALL_ROLES, is_list=True,
             description="Lists all available snapshots for the account.")
class ListSnapshots(OwnedList):
    id = Param(UUID, description="lists snapshot by snapshot ID")
    ids = Param(LIST, item_type=UUID, since="4.9", description="the IDs of the snapshots, mutually exclusive with id")
    name = Param(STRING, description="lists snapshot by snapshot name")
    volume = Param(UUID, "volumeid", description="the ID of the disk volume")
    zone = Param(UUID, "zoneid", since="4.3", description="list snapshots by zone id")
    interval_type = Param(STRING, "intervaltype", description="valid values are HOURLY, DAILY, WEEKLY, and MONTHLY.")
    snapshot_type = Param(STRING, "snapshottype", description="valid values are MANUAL or RECURRING.")
    location_type = Param(STRING, "locationtype", since="4.19.0", description="list snapshots by location type. Used"
                          " only when showunique=false. Valid location types: 'primary', 'secondary'. Default is"
                          " empty")
    show_unique = Param(BOOLEAN, "showunique", since="4.19.0", description="If set to false, list templates across"
                        " zones and their storages")
    tags = Param(MAP, description="List resources by tags (key/value pairs)")

    def execute(self, ctx: CallContext) -> Result:
        stmt = self.scoped(ctx, Snapshot, by_id=bool(self.id or self.ids))
        stmt = stmt.where(Snapshot.state != "Error")  # type: ignore[attr-defined]
        if self.id:
            stmt = stmt.where(Snapshot.uuid == self.id)  # type: ignore[attr-defined]
        if self.ids:
            stmt = stmt.where(Snapshot.uuid.in_(self.ids))  # type: ignore[attr-defined]
        if self.name:
            pattern = f"%{self.name.lower().replace('%', '').replace('_', '')}%"
            stmt = stmt.where(func.lower(Snapshot.name).like(pattern))  # type: ignore[attr-defined]
        if self.volume:
            stmt = stmt.where(Snapshot.volume_id.in_(  # type: ignore[attr-defined]
                select(Volume.id).where(Volume.uuid == self.volume)))
        if self.zone:
            stmt = stmt.where(Snapshot.zone_id.in_(select(Zone.id).where(Zone.uuid == self.zone)))  # type: ignore[attr-defined]
        if self.interval_type:
            interval = self.interval_type.upper()
            if interval not in INTERVALS:
                raise InvalidParameterValue(f"Unsupported snapshot interval type {self.interval_type} (parameter"
                                            f" intervaltype); allowed: {', '.join(INTERVALS)}")
            stmt = stmt.where(Snapshot.snapshot_type == "RECURRING", Snapshot.interval_type == interval)  # type: ignore[attr-defined]
        if self.snapshot_type:
            kind = self.snapshot_type.upper()
            if kind not in SNAPSHOT_TYPES:
                raise InvalidParameterValue(f"Unsupported snapshot type {self.snapshot_type} (parameter snapshottype);"
                                            " allowed: MANUAL, RECURRING, HOURLY, DAILY, WEEKLY, MONTHLY")
            if kind in INTERVALS:
                stmt = stmt.where(Snapshot.snapshot_type == "RECURRING", Snapshot.interval_type == kind)  # type: ignore[attr-defined]
            else:
                stmt = stmt.where(Snapshot.snapshot_type == kind)  # type: ignore[attr-defined]
        if self.location_type:
            stmt = stmt.where(func.upper(Snapshot.location_type) == self.location_type.upper())  # type: ignore[attr-defined]
        stmt = stmt.where(*tag_filter("Snapshot", Snapshot.id, self.tags))
        kw = keyword_filter(self.keyword, Snapshot.name)
        if kw is not None:
            stmt = stmt.where(kw)  # type: ignore[attr-defined]
        rows, count = fetch_page(ctx, stmt, self)  # type: ignore[arg-type]
        return ListResult(snapshot_payload(ctx.session, rows), count)


class SnapshotCommand(Command):
    def instance(self) -> tuple[str | None, str | None]:
        return "Snapshot", self.id.uuid


@api_command("deleteSnapshot", response=SuccessResponse, roles=ALL_ROLES, is_async=True, idempotent=True,
             event_type="SNAPSHOT.DELETE", description="Deletes a snapshot of a disk volume.")
class DeleteSnapshot(SnapshotCommand):
    id = Param(UUID, required=True, entity=Snapshot, acl=Access.OPERATE, related=RELATED,
               description="The ID of the snapshot")
    zone = Param(UUID, "zoneid", entity=Zone, since="4.19.0", description="The ID of the zone for the snapshot")

    def execute(self, ctx: CallContext) -> Result:
        if self.zone is not None and self.zone.id != self.id.zone_id:
            raise InvalidParameterValue(f"Snapshot {self.id.uuid} is not in zone {self.zone.name} (parameter zoneid)")
        SnapshotOps(ctx).delete(self.id)
        return Success()


@api_command("revertSnapshot", response=SnapshotResponse, roles=ALL_ROLES, is_async=True,
             event_type="SNAPSHOT.REVERT", since="4.2.0", description="This is supposed to revert a volume snapshot."
             " This command is only supported with KVM so far")
class RevertSnapshot(SnapshotCommand):
    id = Param(UUID, required=True, entity=Snapshot, acl=Access.OPERATE, related=RELATED,
               description="The ID of the snapshot")

    def execute(self, ctx: CallContext) -> Result:
        return snapshot_result(ctx, SnapshotOps(ctx).revert(self.id))

    def recover(self, ctx: CallContext) -> None:
        restore_volume(ctx, self.id.volume_id, "RevertSnapshotting")


# -- snapshot policies --------------------------------------------------------------------------


@api_command("createSnapshotPolicy", response=SnapshotPolicyResponse, roles=ALL_ROLES,
             event_type="SNAPSHOTPOLICY.CREATE", description="Creates a snapshot policy for the account.")
class CreateSnapshotPolicy(Command):
    volume = Param(UUID, "volumeid", required=True, entity=Volume, acl=Access.OPERATE, related=VOLUME_RELATED,
                   description="the ID of the disk volume")
    interval_type = Param(STRING, "intervaltype", required=True, description="valid values are HOURLY, DAILY,"
                          " WEEKLY, and MONTHLY")
    schedule = Param(STRING, required=True, description="time the snapshot is scheduled to be taken. Format is:*"
                     " if HOURLY, MM* if DAILY, MM:HH* if WEEKLY, MM:HH:DD (1-7)* if MONTHLY, MM:HH:DD (1-28)")
    timezone = Param(STRING, required=True, description="Specifies a timezone for this command. For more"
                     " information on the timezone parameter, see Time Zone Format.")
    max_snaps = Param(INTEGER, "maxsnaps", required=True, description="maximum number of snapshots to retain")
    display = Param(BOOLEAN, "fordisplay", authorized=ROOT_ADMIN, since="4.4", description="an optional field,"
                    " whether to the display the policy to the end user or not")
    tags = Param(MAP, since="4.16.0", description="Map of tags (key/value pairs)")
    zones = Param(LIST, "zoneids", item_type=UUID, entity=Zone, since="4.19.0", description="A list of IDs of the"
                  " zones in which the snapshot will be made available. The snapshot will always be made available in"
                  " the zone in which the volume is present.")

    def execute(self, ctx: CallContext) -> Result:
        only_own_zone(self.zones, self.volume)
        policy = SnapshotOps(ctx).create_policy(
            self.volume, interval=self.interval_type, schedule=self.schedule, timezone_name=self.timezone,
            max_snaps=self.max_snaps, display=True if self.display is None else self.display, tags=self.tags)
        return policy_result(ctx, policy)


@api_command("updateSnapshotPolicy", response=SnapshotPolicyResponse, roles=ALL_ROLES, is_async=True,
             idempotent=True, event_type="SNAPSHOTPOLICY.UPDATE", since="4.4",
             description="Updates the snapshot policy.")
class UpdateSnapshotPolicy(Command):
    id = Param(UUID, entity=SnapshotPolicy, acl=Access.OPERATE, related=POLICY_RELATED,
               description="the ID of the snapshot policy")
    custom_id = Param(STRING, "customid", authorized=ROOT_ADMIN, description="an optional field, in case you want"
                      " to set a custom id to the resource. Allowed to Root Admins only")
    display = Param(BOOLEAN, "fordisplay", authorized=ROOT_ADMIN, description="an optional field, whether to the"
                    " display the snapshot policy to the end user or not.")

    def instance(self) -> tuple[str | None, str | None]:
        return "SnapshotPolicy", self.id.uuid if self.id is not None else None

    def execute(self, ctx: CallContext) -> Result:
        if self.id is None:
            raise InvalidParameterValue("Please specify the snapshot policy to update (parameter id)")
        policy = SnapshotOps(ctx).update_policy(self.id, display=self.display, custom_id=self.custom_id)
        return policy_result(ctx, policy)


@api_command("listSnapshotPolicies", response=SnapshotPolicyResponse, roles=ALL_ROLES, is_list=True,
             description="Lists snapshot policies.")
class ListSnapshotPolicies(OwnedList):
    id = Param(UUID, since="4.4", description="the ID of the snapshot policy")
    volume = Param(UUID, "volumeid", entity=Volume, acl=Access.LIST, related=VOLUME_RELATED,
                   description="the ID of the disk volume")
    display = Param(BOOLEAN, "fordisplay", authorized=ROOT_ADMIN, since="4.4", description="list resources by"
                    " display flag; only ROOT admin is eligible to pass this parameter")

    def execute(self, ctx: CallContext) -> Result:
        if self.volume is not None:
            # The policies of a volume the caller may see (checked when the parameter was bound).
            stmt = select(SnapshotPolicy).where(SnapshotPolicy.removed.is_(None), SnapshotPolicy.volume_id ==
                                                self.volume.id).order_by(SnapshotPolicy.id)
        else:
            stmt = self.scoped(ctx, SnapshotPolicy, by_id=bool(self.id))
        if self.id:
            stmt = stmt.where(SnapshotPolicy.uuid == self.id)  # type: ignore[attr-defined]
        if self.display is not None:
            stmt = stmt.where(SnapshotPolicy.display.is_(self.display))  # type: ignore[attr-defined]
        elif not ctx.me.is_admin:
            stmt = stmt.where(SnapshotPolicy.display.is_(True))  # type: ignore[attr-defined]
        kw = keyword_filter(self.keyword, SnapshotPolicy.interval_type, SnapshotPolicy.schedule)
        if kw is not None:
            stmt = stmt.where(kw)  # type: ignore[attr-defined]
        rows, count = fetch_page(ctx, stmt, self)  # type: ignore[arg-type]
        return ListResult(policy_payload(ctx.session, rows, admin=ctx.me.is_admin), count)


@api_command("deleteSnapshotPolicies", response=SuccessResponse, roles=ALL_ROLES,
             event_type="SNAPSHOTPOLICY.DELETE", description="Deletes snapshot policies for the account.")
class DeleteSnapshotPolicies(Command):
    id = Param(UUID, entity=SnapshotPolicy, acl=Access.OPERATE, related=POLICY_RELATED,
               description="the Id of the snapshot policy")
    ids = Param(LIST, item_type=UUID, entity=SnapshotPolicy, acl=Access.OPERATE, description="list of snapshots"
                " policy IDs separated by comma")

    def execute(self, ctx: CallContext) -> Result:
        if self.id is None and not self.ids:
            raise InvalidParameterValue("No policy id (or list of ids) specified.")
        policies = [self.id] if self.id is not None else []
        policies += [p for p in self.ids or [] if p not in policies]
        ops = SnapshotOps(ctx)
        for policy in policies:
            ops.delete_policy(policy)
        return Success()


# -- VM snapshots -------------------------------------------------------------------------------


@api_command("createVMSnapshot", response=VMSnapshotResponse, roles=ALL_ROLES, is_async=True, creates_entity=True,
             event_type="VMSNAPSHOT.CREATE", since="4.2.0", description="Creates snapshot for a vm.")
class CreateVMSnapshot(Command):
    vm = Param(UUID, "virtualmachineid", required=True, entity=VirtualMachine, acl=Access.OPERATE,
               related=("deployVirtualMachine", "listVirtualMachines"), description="The ID of the vm")
    name = Param(STRING, description="The display name of the snapshot")
    description = Param(STRING, description="The description of the snapshot")
    memory = Param(BOOLEAN, "snapshotmemory", description="snapshot memory if true")
    quiesce = Param(BOOLEAN, "quiescevm", description="quiesce vm if true")

    def prepare(self, ctx: CallContext) -> str | None:
        vs = VmSnapshotOps(ctx).allocate(self.vm, name=self.name, description=self.description,
                                         memory=bool(self.memory))
        self.raw_vm_snapshot_uuid = vs.uuid
        return vs.uuid

    def instance(self) -> tuple[str | None, str | None]:
        return "VMSnapshot", getattr(self, "raw_vm_snapshot_uuid", None)

    def _row(self, ctx: CallContext) -> VmSnapshot | None:
        assert ctx.job is not None
        return ctx.job_entity(VmSnapshot)

    def execute(self, ctx: CallContext) -> Result:
        vs = self._row(ctx)
        if vs is None or vs.removed is not None:
            raise InvalidParameterValue("The VM snapshot of this job no longer exists")
        try:
            VmSnapshotOps(ctx).create(vs)
        except Exception:
            ctx.session.rollback()
            self.recover(ctx)  # nothing half-made keeps its counts
            ctx.checkpoint()
            raise
        return vm_snapshot_result(ctx, vs)

    def recover(self, ctx: CallContext) -> None:
        vs = self._row(ctx)
        if vs is not None:
            VmSnapshotOps(ctx).fail(vs)


@api_command("listVMSnapshot", response=VMSnapshotListResponse, roles=ALL_ROLES, is_list=True, since="4.2.0",
             description="List virtual machine snapshot by conditions")
class ListVMSnapshot(OwnedList):
    vm_snapshot = Param(UUID, "vmsnapshotid", description="The ID of the VM snapshot")
    vm_snapshots = Param(LIST, "vmsnapshotids", item_type=UUID, since="4.9", description="the IDs of the vm"
                         " snapshots, mutually exclusive with vmsnapshotid")
    vm = Param(UUID, "virtualmachineid", description="the ID of the vm")
    name = Param(STRING, description="lists snapshot by snapshot name or display name")
    state = Param(STRING, description="state of the virtual machine snapshot")
    tags = Param(MAP, description="List resources by tags (key/value pairs)")

    def execute(self, ctx: CallContext) -> Result:
        stmt = self.scoped(ctx, VmSnapshot, by_id=bool(self.vm_snapshot or self.vm_snapshots))
        if self.vm_snapshot:
            stmt = stmt.where(VmSnapshot.uuid == self.vm_snapshot)  # type: ignore[attr-defined]
        if self.vm_snapshots:
            stmt = stmt.where(VmSnapshot.uuid.in_(self.vm_snapshots))  # type: ignore[attr-defined]
        if self.vm:
            stmt = stmt.where(VmSnapshot.vm_id.in_(  # type: ignore[attr-defined]
                select(VirtualMachine.id).where(VirtualMachine.uuid == self.vm)))
        if self.name:
            stmt = stmt.where((VmSnapshot.display_name == self.name) | (VmSnapshot.name == self.name))  # type: ignore[attr-defined]
        if self.state:
            stmt = stmt.where(func.lower(VmSnapshot.state) == self.state.lower())  # type: ignore[attr-defined]
        stmt = stmt.where(*tag_filter("VMSnapshot", VmSnapshot.id, self.tags))
        kw = keyword_filter(self.keyword, VmSnapshot.name, VmSnapshot.display_name, VmSnapshot.description)
        if kw is not None:
            stmt = stmt.where(kw)  # type: ignore[attr-defined]
        rows, count = fetch_page(ctx, stmt, self)  # type: ignore[arg-type]
        return ListResult(vm_snapshot_payload(ctx.session, rows), count)


class VmSnapshotCommand(Command):
    def instance(self) -> tuple[str | None, str | None]:
        return "VMSnapshot", self.vm_snapshot.uuid


@api_command("revertToVMSnapshot", response=UserVmResponse, roles=ALL_ROLES, is_async=True,
             event_type="VMSNAPSHOT.REVERTTOSNAPSHOT", since="4.2.0", description="Revert VM from a vmsnapshot.")
class RevertToVMSnapshot(VmSnapshotCommand):
    vm_snapshot = Param(UUID, "vmsnapshotid", required=True, entity=VmSnapshot, acl=Access.OPERATE,
                        related=VM_SNAPSHOT_RELATED, description="The ID of the vm snapshot")

    def execute(self, ctx: CallContext) -> Result:
        return vm_result(ctx, VmSnapshotOps(ctx).revert(self.vm_snapshot))

    def recover(self, ctx: CallContext) -> None:
        vs = self.vm_snapshot
        if vs.state == "Reverting":
            vs.state = "Ready"
            ctx.session.flush()


@api_command("deleteVMSnapshot", response=SuccessResponse, roles=ALL_ROLES, is_async=True, idempotent=True,
             event_type="VMSNAPSHOT.DELETE", since="4.2.0", description="Deletes a vmsnapshot.")
class DeleteVMSnapshot(VmSnapshotCommand):
    vm_snapshot = Param(UUID, "vmsnapshotid", required=True, entity=VmSnapshot, acl=Access.OPERATE,
                        related=VM_SNAPSHOT_RELATED, description="The ID of the VM snapshot")

    def execute(self, ctx: CallContext) -> Result:
        VmSnapshotOps(ctx).delete(self.vm_snapshot)
        return Success()


__all__ = ["CreateSnapshot", "CreateVMSnapshot", "ListSnapshots", "ListVMSnapshot"]
