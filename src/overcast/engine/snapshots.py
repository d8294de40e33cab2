"""Volume snapshots, snapshot policies (recurring snapshots) and VM snapshots.

Volume snapshots (CloudStack's SnapshotManagerImpl): a snapshot takes the owner's ``snapshot`` count
and ``secondary_storage`` (the volume's size) when it is allocated and gives them back when it is
deleted or fails. It is taken through the hypervisor driver's ``snapshot_volume`` (the simulator's
``CreateObjectCommand``) after ``ctx.checkpoint()``: Allocated -> Creating -> BackedUp, the volume
Ready -> Snapshotting -> Ready meanwhile.

Snapshot policies: ``schedule`` is CloudStack's string (``MM`` hourly, ``MM:HH`` daily, ``MM:HH:D``
weekly with D 1=Sunday..7=Saturday, ``MM:HH:D`` monthly with D 1..28) read in the policy's time zone;
:func:`next_run` computes the next time (DateUtil.getNextRunTime) and the ``snapshot.policies`` task
(:func:`take_scheduled_snapshots`) takes the snapshots that are due, keeps ``maxsnaps`` of each policy
(the oldest go) and schedules the next run.

VM snapshots (VMSnapshotManagerImpl): through the driver's ``snapshot_vm``, ``revert_vm_snapshot`` and
``delete_vm_snapshot``; each VM's snapshots form a tree (``parent_id``) with one ``current``.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select, update

from overcast.access.acl import AccessChecker
from overcast.plugins.storage import ImageStoreError
from overcast.access.roles import RoleType
from overcast.db.models import (
    Account,
    Domain,
    Host,
    HypervisorCapability,
    ResourceTag,
    Snapshot,
    SnapshotPolicy,
    StoragePool,
    VirtualMachine,
    VmSnapshot,
    Volume,
    utcnow,
)
from overcast.engine.capacity import release_pool, reserve_pool
from overcast.engine.context import EngineContext
from overcast.engine.tags import remove_tags
from overcast.engine.limits import Limits, ResourceType
from overcast.engine.volumes import VolumeOps
from overcast.errors import (
    CloudError,
    ConcurrentOperation,
    InsufficientCapacity,
    InvalidParameterValue,
    ResourceUnavailable,
)
from overcast.plugins.hypervisor import HypervisorError

if TYPE_CHECKING:
    from overcast.services import Services

logger = logging.getLogger(__name__)

#: DateUtil.IntervalType, in ordinal order (SnapshotPolicyResponse.intervaltype is the ordinal).
INTERVALS = ("HOURLY", "DAILY", "WEEKLY", "MONTHLY")
MAX_SETTING = {"HOURLY": "snapshot.max.hourly", "DAILY": "snapshot.max.daily", "WEEKLY": "snapshot.max.weekly",
               "MONTHLY": "snapshot.max.monthly"}
_GMT_OFFSET = re.compile(r"^(?:GMT|UTC)([+-])(\d{1,2})(?::?(\d{2}))?$", re.IGNORECASE)


# -- schedules ----------------------------------------------------------------------------------


def resolve_timezone(name: str) -> str:
    """The time zone id a policy runs in. Like Java's TimeZone.getTimeZone, an unknown id means GMT;
    ``GMT+5`` style offsets are normalized to ``GMT+05:00``."""
    text = (name or "").strip()
    m = _GMT_OFFSET.match(text)
    if m:
        hours, minutes = int(m.group(2)), int(m.group(3) or 0)
        if hours <= 23 and minutes <= 59:
            return f"GMT{m.group(1)}{hours:02d}:{minutes:02d}"
        return "GMT"
    if not text:
        return "GMT"
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return "GMT"
    return text


def tz_of(name: str) -> tzinfo:
    m = _GMT_OFFSET.match(name)
    if m:
        offset = timedelta(hours=int(m.group(2)), minutes=int(m.group(3) or 0))
        return timezone(offset if m.group(1) == "+" else -offset)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return UTC


def parse_schedule(interval: str, schedule: str) -> tuple[int, int, int]:
    """(minute, hour, day) of a schedule; ValueError when it does not fit the interval type."""
    parts = [p.strip() for p in (schedule or "").split(":")]
    need = {"HOURLY": 1, "DAILY": 2, "WEEKLY": 3, "MONTHLY": 3}[interval]
    if len(parts) < need:
        raise ValueError(f"Incorrect schedule format: {schedule} for interval type:{interval}")
    values = [int(p) for p in parts[:need]]  # ValueError on anything but integers
    minute = values[0]
    hour = values[1] if need >= 2 else 0
    day = values[2] if need >= 3 else 0
    if not 0 <= minute <= 59 or not 0 <= hour <= 23:
        raise ValueError("minutes must be 0-59 and hours 0-23")
    if interval == "WEEKLY" and not 1 <= day <= 7:
        raise ValueError("the day of the week must be 1 (Sunday) to 7 (Saturday)")
    if interval == "MONTHLY" and not 1 <= day <= 28:
        raise ValueError("Day cannot be greater than 28 for monthly schedule")
    return minute, hour, day


def next_run(interval: str, schedule: str, tz_name: str, after: datetime) -> datetime:
    """The first time strictly after ``after`` (naive UTC) the schedule fires, as naive UTC."""
    minute, hour, day = parse_schedule(interval, schedule)
    tz = tz_of(tz_name)
    now = after.replace(tzinfo=UTC)
    local = now.astimezone(tz)

    def at(date: datetime, h: int) -> datetime:
        wall = datetime(date.year, date.month, date.day, h, minute, tzinfo=tz)
        return wall.astimezone(UTC)

    if interval == "HOURLY":
        cand = local.replace(minute=minute, second=0, microsecond=0).astimezone(UTC)
        while cand <= now:
            cand += timedelta(hours=1)
    elif interval == "DAILY":
        cand = at(local, hour)
        step = 1
        while cand <= now:
            cand = at(local + timedelta(days=step), hour)
            step += 1
    elif interval == "WEEKLY":
        python_wd = (day + 5) % 7  # Java: 1=Sunday..7=Saturday; Python: 0=Monday..6=Sunday
        ahead = (python_wd - local.weekday()) % 7
        cand = at(local + timedelta(days=ahead), hour)
        if cand <= now:
            cand = at(local + timedelta(days=ahead + 7), hour)
    else:
        year, month = local.year, local.month
        cand = at(datetime(year, month, day), hour)
        while cand <= now:
            month += 1
            if month > 12:
                year, month = year + 1, 1
            cand = at(datetime(year, month, day), hour)
    return cand.astimezone(UTC).replace(tzinfo=None)


def add_tags(ctx: EngineContext, resource_type: str, row: Any, tags: list[dict[str, str]] | None) -> None:
    """Resource tags given with a create command (``tags[i].key``/``tags[i].value``)."""
    s = ctx.session
    for entry in tags or []:
        key, value = entry.get("key"), entry.get("value")
        if not key:
            raise InvalidParameterValue("Invalid value for parameter tags: each tag needs a key")
        if value is None:
            raise InvalidParameterValue(f"Invalid value for parameter tags: tag {key} needs a value")
        if s.scalar(select(ResourceTag.id).where(ResourceTag.resource_type == resource_type,
                                                 ResourceTag.resource_id == row.id, ResourceTag.tag_key == key)):
            raise InvalidParameterValue(f"Invalid value for parameter tags: tag {key} is given twice")
        s.add(ResourceTag(tag_key=key, tag_value=value, resource_type=resource_type, resource_id=row.id,
                          resource_uuid=row.uuid, account_id=row.account_id, domain_id=row.domain_id))
        s.flush()


# -- volume snapshots ---------------------------------------------------------------------------


class SnapshotOps:
    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self.s = ctx.session
        self.volumes = VolumeOps(ctx)

    def account(self, row: Any) -> Account:
        acct = self.s.get(Account, row.account_id)
        assert acct is not None
        return acct

    def event(self, event_type: str, description: str, snap: Snapshot, **kwargs: Any) -> None:
        self.ctx.event(event_type, description, account_id=snap.account_id, domain_id=snap.domain_id,
                       resource_type="Snapshot", resource_uuid=snap.uuid, **kwargs)

    def _set_state(self, snap: Snapshot, expected: tuple[str, ...], new: str) -> None:
        self.s.flush()
        moved = self.s.execute(update(Snapshot).where(Snapshot.id == snap.id, Snapshot.state.in_(expected))
                               .values(state=new).execution_options(synchronize_session=False)).rowcount
        if not moved:
            raise ConcurrentOperation(f"Snapshot {snap.name} was changed by another operation; try again")
        snap.state = new

    def _volume_state(self, vol: Volume, expected: str, new: str) -> bool:
        """Compare-and-set on the volume's state; False when someone else moved it."""
        self.s.flush()
        moved = self.s.execute(update(Volume).where(Volume.id == vol.id, Volume.state == expected)
                               .values(state=new).execution_options(synchronize_session=False)).rowcount
        if moved:
            vol.state = new
        return bool(moved)

    def allocate(self, vol: Volume, *, name: str | None, policy: SnapshotPolicy | None,
                 location_type: str | None = None, tags: list[dict[str, str]] | None = None) -> Snapshot:
        """The synchronous half of createSnapshot: checks, counts, the Allocated row."""
        s = self.s
        if vol.removed is not None or vol.state != "Ready":
            raise InvalidParameterValue(f"VolumeId: {vol.uuid} is not in Ready state but {vol.state}. Cannot take"
                                        " snapshot.", uuids=[(vol.uuid, "volumeId")])
        vm = s.get(VirtualMachine, vol.vm_id) if vol.vm_id else None
        if vm is not None and vm.state in ("Destroyed", "Expunging", "Error"):
            raise InvalidParameterValue("The VM the specified disk is attached to is not in the right state to take"
                                        " snapshot")
        if policy is not None and policy.volume_id != vol.id:
            raise InvalidParameterValue(f"Snapshot policy {policy.uuid} does not belong to volume {vol.uuid}")
        if s.scalar(select(Snapshot.id).where(Snapshot.volume_id == vol.id, Snapshot.removed.is_(None),
                                              Snapshot.state.in_(("Creating", "CreatedOnPrimary", "BackingUp")))):
            raise InvalidParameterValue(f"There is other active snapshot tasks on the volume {vol.uuid}, please try"
                                        " again later")
        account = self.account(vol)
        Limits(s).consume(account, [(ResourceType.snapshot, 1), (ResourceType.secondary_storage, vol.size)])
        if not name or not name.strip():
            stamp = utcnow().strftime("%Y%m%d%H%M%S")
            name = f"{vm.display_name or vm.name}_{vol.name}_{stamp}" if vm is not None else f"{vol.name}_{stamp}"
        snap = Snapshot(name=name.strip()[:255], account_id=vol.account_id, domain_id=vol.domain_id,
                        zone_id=vol.zone_id, volume_id=vol.id,
                        snapshot_type="RECURRING" if policy is not None else "MANUAL",
                        interval_type=policy.interval_type if policy is not None else None,
                        policy_id=policy.id if policy is not None else None, state="Allocated",
                        location_type=location_type.upper() if location_type else None, size=vol.size,
                        physical_size=0)
        s.add(snap)
        s.flush()
        add_tags(self.ctx, "Snapshot", snap, tags)
        return snap

    def take(self, snap: Snapshot) -> Snapshot:
        """The job half: Allocated -> Creating -> (driver) -> BackedUp."""
        s = self.s
        if snap.state == "BackedUp":
            return snap
        vol = s.get(Volume, snap.volume_id)
        assert vol is not None
        if vol.removed is not None or vol.state != "Ready":
            self.fail(snap)
            raise InvalidParameterValue(f"VolumeId: {vol.uuid} is not in Ready state but {vol.state}. Cannot take"
                                        " snapshot.")
        self._set_state(snap, ("Allocated",), "Creating")
        if not self._volume_state(vol, "Ready", "Snapshotting"):
            raise ConcurrentOperation(f"Volume {vol.name} was changed by another operation; try again")
        vm = s.get(VirtualMachine, vol.vm_id) if vol.vm_id else None
        pool = s.get(StoragePool, vol.pool_id) if vol.pool_id else None
        host = self.volumes.vm_host(vm, pool)
        hypervisor = (vm.hypervisor_type if vm else None) or (pool.hypervisor_type if pool else None)
        from overcast.engine import storage_ops

        disks = storage_ops.DiskOps(self.ctx)
        backup = disks.plan_backup(snap, vol)  # to the zone's image store (none: the snapshot stays metadata)
        self.ctx.checkpoint()
        try:
            self.volumes.storage_call("snapshot_volume", hypervisor, host)
            if backup is not None:
                storage_ops.run_steps([backup.run], "Unable to back the snapshot up to the image store")
        except (HypervisorError, ResourceUnavailable) as exc:
            self._volume_state(vol, "Snapshotting", "Ready")
            self.fail(snap)
            self.ctx.checkpoint()
            raise ResourceUnavailable(f"Failed to create snapshot {snap.name} of volume {vol.name}: {exc}") from exc
        self._volume_state(vol, "Snapshotting", "Ready")
        self._set_state(snap, ("Creating",), "BackedUp")
        snap.physical_size = snap.size
        if backup is not None:
            disks.record_backup(backup, snap)
        self.event("SNAPSHOT.CREATE", f"Creating snapshot {snap.name} of volume {vol.uuid}. Snapshot Id: {snap.uuid}",
                   snap)
        s.flush()
        if snap.policy_id is not None:
            policy = s.get(SnapshotPolicy, snap.policy_id)
            if policy is not None and policy.removed is None:
                self.trim(policy)
        return snap

    def fail(self, snap: Snapshot) -> None:
        """A snapshot that could not be taken: Error, hidden, its counts given back."""
        if snap.removed is not None or snap.state in ("BackedUp", "Destroyed", "Error"):
            return
        Limits(self.s).release(self.account(snap), [(ResourceType.snapshot, 1),
                                                   (ResourceType.secondary_storage, snap.size)])
        snap.state, snap.removed = "Error", utcnow()
        remove_tags(self.s, "Snapshot", snap.id)
        self.s.flush()

    def delete(self, snap: Snapshot) -> None:
        if snap.removed is not None:
            return
        if snap.state not in ("BackedUp", "Error", "Destroying"):
            raise InvalidParameterValue(f"Can't delete snapshot {snap.uuid} with state {snap.state}",
                                        uuids=[(snap.uuid, "snapshotId")])
        if snap.state != "Error":
            Limits(self.s).release(self.account(snap), [(ResourceType.snapshot, 1),
                                                       (ResourceType.secondary_storage, snap.size)])
        snap.state, snap.removed = "Destroyed", utcnow()
        remove_tags(self.s, "Snapshot", snap.id)
        self.event("SNAPSHOT.DELETE", f"Deleting snapshot {snap.name}. Snapshot Id: {snap.uuid}", snap)
        from overcast.engine import storage_ops

        disks = storage_ops.DiskOps(self.ctx)
        backups = disks.plan_snapshot_delete(snap)
        self.s.flush()
        if backups:
            self.ctx.checkpoint()
            for driver, path, store_id, size in backups:
                try:
                    driver.delete(path)
                except ImageStoreError as exc:  # the row is gone; the object is logged for the operator
                    logger.warning("Could not delete snapshot backup %s from image store %s: %s", path, store_id, exc)
                    continue
                disks.add_store_usage(store_id, -size)
            self.s.flush()

    def trim(self, policy: SnapshotPolicy) -> int:
        """Keep the newest ``max_snaps`` backed-up snapshots of a policy; delete the older ones."""
        rows = list(self.s.scalars(select(Snapshot).where(
            Snapshot.policy_id == policy.id, Snapshot.removed.is_(None), Snapshot.state == "BackedUp")
            .order_by(Snapshot.created.desc(), Snapshot.id.desc())))
        for old in rows[policy.max_snaps:]:
            self.delete(old)
        return max(len(rows) - policy.max_snaps, 0)

    def revert(self, snap: Snapshot) -> Snapshot:
        s = self.s
        if snap.state != "BackedUp":
            raise InvalidParameterValue(f"Snapshot: {snap.uuid} is not in BackedUp state yet and can't be used for"
                                        " revert operation")
        vol = s.get(Volume, snap.volume_id)
        if vol is None or vol.removed is not None:
            raise InvalidParameterValue(f"Unable to revert snapshot {snap.uuid}: its volume no longer exists")
        if vol.state != "Ready":
            raise InvalidParameterValue(f"Cannot revert snapshot. Volume {vol.uuid} is not in Ready state but"
                                        f" {vol.state}")
        if vol.vm_id is not None:
            vm = s.get(VirtualMachine, vol.vm_id)
            if vm is not None and vm.state not in ("Stopped", "Shutdown"):
                raise InvalidParameterValue("The VM the specified disk is attached to is not in the shutdown state.",
                                            uuids=[(vm.uuid, "virtualMachineId")])
            if self.volumes.vm_snapshot_count(vol.vm_id):
                raise InvalidParameterValue("Unable to revert snapshot for VM, please remove VM snapshots before"
                                            " reverting VM from snapshot")
        if not self._volume_state(vol, "Ready", "RevertSnapshotting"):
            raise ConcurrentOperation(f"Volume {vol.name} was changed by another operation; try again")
        delta = snap.size - vol.size
        if delta:
            Limits(s).consume(self.account(vol), [(ResourceType.primary_storage, delta)])
            if vol.pool_id is not None:
                if delta > 0 and not reserve_pool(s, vol.pool_id, delta, self.volumes.factor(vol.pool_id)):
                    raise InsufficientCapacity(f"Storage pool of volume {vol.name} does not have enough space to"
                                               " revert it to the snapshot")
                if delta < 0:
                    release_pool(s, vol.pool_id, -delta)
            vol.size = snap.size
        from overcast.engine import storage_ops

        move = storage_ops.DiskOps(self.ctx).plan_revert(snap, vol)
        if move is not None:  # the backup's bytes back onto the volume's file
            self.ctx.checkpoint()
            try:
                storage_ops.run_steps([move.run], f"Unable to revert volume {vol.name} to snapshot {snap.name}")
            except ResourceUnavailable:
                if delta:  # give back what the revert took
                    Limits(s).release(self.account(vol), [(ResourceType.primary_storage, delta)])
                    if vol.pool_id is not None:
                        if delta > 0:
                            release_pool(s, vol.pool_id, delta)
                        else:
                            reserve_pool(s, vol.pool_id, -delta, self.volumes.factor(vol.pool_id))
                    vol.size -= delta
                self._volume_state(vol, "RevertSnapshotting", "Ready")
                self.ctx.checkpoint()
                raise
        self._volume_state(vol, "RevertSnapshotting", "Ready")
        self.event("SNAPSHOT.REVERT", f"Reverting volume {vol.uuid} to snapshot {snap.uuid}", snap)
        s.flush()
        return snap

    # -- policies --------------------------------------------------------------------------------
    def create_policy(self, vol: Volume, *, interval: str, schedule: str, timezone_name: str, max_snaps: int,
                      display: bool = True, tags: list[dict[str, str]] | None = None) -> SnapshotPolicy:
        s = self.s
        if vol.state != "Ready":
            raise InvalidParameterValue(f"VolumeId: {vol.uuid} is not in Ready state but {vol.state}. Cannot take"
                                        " snapshot.", uuids=[(vol.uuid, "volumeId")])
        interval = (interval or "").strip().upper()
        if interval not in INTERVALS:
            raise InvalidParameterValue(f"Unsupported interval type {interval}")
        tz_name = resolve_timezone(timezone_name)
        if tz_name != timezone_name:
            logger.info("Using timezone %s for snapshot policy as an equivalent of %s", tz_name, timezone_name)
        try:
            first = next_run(interval, schedule, tz_name, utcnow())
        except ValueError:
            raise InvalidParameterValue(f"Invalid schedule: {schedule} for interval type: {interval}") from None
        if max_snaps <= 0:
            raise InvalidParameterValue("maxSnaps should be greater than 0")
        interval_max = int(self.ctx.setting(MAX_SETTING[interval]))
        if max_snaps > interval_max:
            raise InvalidParameterValue(f"maxSnaps exceeds limit: {interval_max} for interval type: {interval}")
        owner = self.account(vol)
        if AccessChecker(s).role_type_of(owner) is not RoleType.ADMIN:
            limits = Limits(s)
            account_limit = limits.limit_for_account(owner, ResourceType.snapshot)
            domain = s.get(Domain, owner.domain_id)
            domain_limit = limits.limit_for_domain(domain, ResourceType.snapshot) if domain else -1
            if 0 <= account_limit < max_snaps or 0 <= domain_limit < max_snaps:
                raise InvalidParameterValue("Max number of snapshots shouldn't exceed the domain/account level"
                                            " snapshot limit")
        policy = s.scalar(select(SnapshotPolicy).where(SnapshotPolicy.volume_id == vol.id,
                                                       SnapshotPolicy.interval_type == interval,
                                                       SnapshotPolicy.removed.is_(None)))
        if policy is None:
            policy = SnapshotPolicy(volume_id=vol.id, account_id=vol.account_id, domain_id=vol.domain_id,
                                    interval_type=interval)
            s.add(policy)
        policy.schedule, policy.timezone, policy.max_snaps = schedule.strip(), tz_name, max_snaps
        policy.display, policy.next_run = display, first
        s.flush()
        remove_tags(self.s, "SnapshotPolicy", policy.id)
        add_tags(self.ctx, "SnapshotPolicy", policy, tags)
        self.ctx.event("SNAPSHOTPOLICY.CREATE", f"Creating snapshot policy {policy.uuid} ({interval} {schedule}"
                       f" {tz_name}) for volume {vol.uuid}", account_id=vol.account_id, domain_id=vol.domain_id,
                       resource_type="SnapshotPolicy", resource_uuid=policy.uuid)
        return policy

    def update_policy(self, policy: SnapshotPolicy, *, display: bool | None, custom_id: str | None) -> SnapshotPolicy:
        if custom_id is not None and custom_id != policy.uuid:
            if not custom_id.strip() or len(custom_id) > 40:
                raise InvalidParameterValue("Invalid value for parameter customid: it must be 1 to 40 characters")
            if self.s.scalar(select(SnapshotPolicy.id).where(SnapshotPolicy.uuid == custom_id)) is not None:
                raise InvalidParameterValue(f"Invalid value for parameter customid: {custom_id} is already in use")
            policy.uuid = custom_id
        if display is not None:
            policy.display = display
        self.ctx.event("SNAPSHOTPOLICY.UPDATE", f"Updating snapshot policy {policy.uuid}", account_id=policy.account_id,
                       domain_id=policy.domain_id, resource_type="SnapshotPolicy", resource_uuid=policy.uuid)
        self.s.flush()
        return policy

    def delete_policy(self, policy: SnapshotPolicy) -> None:
        policy.removed, policy.next_run = utcnow(), None
        remove_tags(self.s, "SnapshotPolicy", policy.id)
        self.ctx.event("SNAPSHOTPOLICY.DELETE", f"Deleting snapshot policy {policy.uuid}", account_id=policy.account_id,
                       domain_id=policy.domain_id, resource_type="SnapshotPolicy", resource_uuid=policy.uuid)
        self.s.flush()


def take_scheduled_snapshots(services: Services, *, now: datetime | None = None) -> int:
    """Take the snapshots of every policy whose ``next_run`` has passed; returns how many were taken.

    Each due policy is claimed by moving its ``next_run`` forward with a compare-and-set (committed on
    its own, so a failed snapshot does not make the policy fire again at once); the snapshot is then
    allocated and taken as the policy's owner, and the policy trimmed to ``maxsnaps``.
    """
    from overcast.engine.tasks import SystemContext

    when = now or utcnow()
    with services.db.reader() as s:
        due = list(s.execute(select(SnapshotPolicy.id, SnapshotPolicy.next_run).where(
            SnapshotPolicy.removed.is_(None), SnapshotPolicy.next_run.is_not(None),
            SnapshotPolicy.next_run <= when).order_by(SnapshotPolicy.next_run, SnapshotPolicy.id)))
    taken = 0
    for policy_id, scheduled in due:
        with services.db.writer() as session:
            ctx = SystemContext(services, session)
            policy = session.get(SnapshotPolicy, policy_id)
            if policy is None or policy.removed is not None or policy.next_run != scheduled:
                continue
            try:
                following = next_run(policy.interval_type, policy.schedule, policy.timezone, max(utcnow(), scheduled))
            except ValueError:
                following = None  # a schedule that no longer parses: the policy stops
            claimed = session.execute(update(SnapshotPolicy).where(
                SnapshotPolicy.id == policy_id, SnapshotPolicy.next_run == scheduled)
                .values(next_run=following).execution_options(synchronize_session=False)).rowcount
            session.commit()
            if not claimed:
                continue
            policy = session.get(SnapshotPolicy, policy_id)
            assert policy is not None
            vol = session.get(Volume, policy.volume_id)
            if vol is None or vol.removed is not None:
                policy.removed, policy.next_run = utcnow(), None
                session.commit()
                continue
            ops = SnapshotOps(ctx)
            snap_id: int | None = None
            try:
                snap = ops.allocate(vol, name=None, policy=policy)
                session.commit()
                snap_id = snap.id
                ops.take(snap)
                session.commit()
                taken += 1
            except CloudError as exc:
                session.rollback()
                left = session.get(Snapshot, snap_id) if snap_id is not None else None
                if left is not None and left.state in ("Allocated", "Creating"):
                    session.execute(update(Volume).where(Volume.id == left.volume_id, Volume.state == "Snapshotting")
                                    .values(state="Ready").execution_options(synchronize_session=False))
                    ops.fail(left)  # nothing half-made keeps its counts
                logger.warning("Scheduled snapshot of volume %s (policy %s) failed: %s", vol.uuid, policy.uuid,
                               exc.message)
                ctx.event("SNAPSHOT.CREATE", f"Error while taking the scheduled snapshot of volume {vol.uuid}"
                          f" (policy {policy.uuid}): {exc.message}", account_id=vol.account_id,
                          domain_id=vol.domain_id, resource_type="Volume", resource_uuid=vol.uuid, level="ERROR")
                session.commit()
    return taken


# -- VM snapshots -------------------------------------------------------------------------------


class VmSnapshotOps:
    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self.s = ctx.session

    def event(self, event_type: str, description: str, vs: VmSnapshot) -> None:
        self.ctx.event(event_type, description, account_id=vs.account_id, domain_id=vs.domain_id,
                       resource_type="VMSnapshot", resource_uuid=vs.uuid)

    def _set_state(self, vs: VmSnapshot, expected: tuple[str, ...], new: str) -> None:
        self.s.flush()
        moved = self.s.execute(update(VmSnapshot).where(VmSnapshot.id == vs.id, VmSnapshot.state.in_(expected))
                               .values(state=new).execution_options(synchronize_session=False)).rowcount
        if not moved:
            raise ConcurrentOperation(f"VM snapshot {vs.display_name or vs.name} was changed by another operation;"
                                      " try again")
        vs.state = new

    def host_of(self, vm: VirtualMachine) -> Host:
        """The host a VM snapshot command goes to: the VM's, its last, else one that reaches its disks."""
        host_id = vm.host_id or vm.last_host_id
        host = self.s.get(Host, host_id) if host_id else None
        if host is None:
            pool_id = self.s.scalar(select(Volume.pool_id).where(Volume.vm_id == vm.id, Volume.removed.is_(None),
                                                                 Volume.pool_id.is_not(None)).limit(1))
            pool = self.s.get(StoragePool, pool_id) if pool_id else None
            host = VolumeOps(self.ctx).vm_host(None, pool)
        if host is None:
            raise InvalidParameterValue(f"Unable to find a host to take the snapshot of VM {vm.name}: it has never"
                                        " been started")
        return host

    def allocate(self, vm: VirtualMachine, *, name: str | None, description: str | None,
                 memory: bool) -> VmSnapshot:
        s = self.s
        if vm.state not in ("Running", "Stopped"):
            raise InvalidParameterValue(f"Creating vm snapshot failed due to VM:{vm.uuid} is not in the running or"
                                        " Stopped state", uuids=[(vm.uuid, "virtualMachineId")])
        if memory and vm.state != "Running":
            raise InvalidParameterValue("Can not snapshot memory when VM is not in Running state")
        enabled = s.scalar(select(HypervisorCapability.vm_snapshot_enabled).where(
            HypervisorCapability.hypervisor_type == vm.hypervisor_type).order_by(
            HypervisorCapability.hypervisor_version != "default"))
        driver = self.ctx.services.hypervisor(vm.hypervisor_type)
        if enabled is False or not driver.capabilities.vm_snapshots:
            raise InvalidParameterValue(f"VM snapshot is not enabled for hypervisor type: {vm.hypervisor_type}")
        for vol in s.scalars(select(Volume).where(Volume.vm_id == vm.id, Volume.removed.is_(None))):
            if vol.state != "Ready":
                raise InvalidParameterValue(f"Creating VM snapshot failed due to volume:{vol.uuid} is not in Ready"
                                            f" state but {vol.state}")
        active = s.scalar(select(VmSnapshot.id).where(VmSnapshot.vm_id == vm.id, VmSnapshot.removed.is_(None),
                                                      VmSnapshot.state.in_(("Allocated", "Creating", "Reverting",
                                                                            "Expunging"))))
        if active is not None:
            raise ConcurrentOperation("There is other active vm snapshot tasks on the instance, please try again later")
        limit = int(self.ctx.setting("vmsnapshot.max"))
        count = int(s.scalar(select(func.count()).select_from(VmSnapshot).where(
            VmSnapshot.vm_id == vm.id, VmSnapshot.removed.is_(None))) or 0)
        if count >= limit:
            raise InvalidParameterValue(f"Creating vm snapshot failed due to a VM can just have : {limit} VM snapshots."
                                        " Please delete old ones")
        internal = f"{vm.instance_name}_VS_{utcnow().strftime('%Y%m%d%H%M%S')}"
        display = name.strip() if name and name.strip() else internal
        if s.scalar(select(VmSnapshot.id).where(VmSnapshot.vm_id == vm.id, VmSnapshot.removed.is_(None),
                                                VmSnapshot.display_name == display)) is not None:
            raise InvalidParameterValue(f"Creating VM snapshot failed due to VM snapshot with name {display} already"
                                        " exists")
        vs = VmSnapshot(name=internal, display_name=display, description=description, vm_id=vm.id,
                        account_id=vm.account_id, domain_id=vm.domain_id, state="Allocated",
                        snapshot_type="DiskAndMemory" if memory else "Disk")
        s.add(vs)
        s.flush()
        return vs

    def create(self, vs: VmSnapshot) -> VmSnapshot:
        from overcast.engine.vms import VmOps, host_ref

        s = self.s
        if vs.state == "Ready":
            return vs
        vm = s.get(VirtualMachine, vs.vm_id)
        assert vm is not None
        if vm.state not in ("Running", "Stopped") or (vs.snapshot_type == "DiskAndMemory" and vm.state != "Running"):
            self.fail(vs)
            raise InvalidParameterValue(f"Creating vm snapshot failed due to VM:{vm.uuid} is in state {vm.state}")
        host = self.host_of(vm)
        ops = VmOps(self.ctx)
        ref, spec = host_ref(host), ops.spec(vm)
        self._set_state(vs, ("Allocated",), "Creating")
        self.ctx.checkpoint()
        try:
            ops.driver(vm.hypervisor_type).snapshot_vm(ref, spec, vs.name, memory=vs.snapshot_type == "DiskAndMemory")
        except HypervisorError as exc:
            self.fail(vs)
            self.ctx.checkpoint()
            raise ResourceUnavailable(f"Creating VM snapshot {vs.display_name} of VM {vm.name} failed: {exc}") from exc
        current = s.scalar(select(VmSnapshot).where(VmSnapshot.vm_id == vm.id, VmSnapshot.current.is_(True),
                                                    VmSnapshot.removed.is_(None), VmSnapshot.id != vs.id))
        vs.parent_id = current.id if current is not None else None
        s.execute(update(VmSnapshot).where(VmSnapshot.vm_id == vm.id, VmSnapshot.id != vs.id)
                  .values(current=False).execution_options(synchronize_session=False))
        vs.current = True
        self._set_state(vs, ("Creating",), "Ready")
        self.event("VMSNAPSHOT.CREATE", f"Creating VM snapshot {vs.display_name} of VM {vm.uuid}. VM snapshot Id:"
                   f" {vs.uuid}", vs)
        s.flush()
        return vs

    def fail(self, vs: VmSnapshot) -> None:
        if vs.removed is None and vs.state in ("Allocated", "Creating"):
            vs.state, vs.removed, vs.current = "Error", utcnow(), False
            self.s.flush()

    def revert(self, vs: VmSnapshot) -> VirtualMachine:
        from overcast.engine.vms import VmOps, host_ref

        s = self.s
        vm = s.get(VirtualMachine, vs.vm_id)
        assert vm is not None
        if vs.state != "Ready":
            raise InvalidParameterValue("VM Snapshot reverting failed due to vm snapshot is not in the state of"
                                        " Created.", uuids=[(vs.uuid, "vmSnapshotId")])
        if vm.state not in ("Running", "Stopped"):
            raise InvalidParameterValue("VM Snapshot reverting failed due to vm is not in the state of Running or"
                                        " Stopped.", uuids=[(vm.uuid, "virtualMachineId")])
        if (vm.state == "Running" and vs.snapshot_type == "Disk") or (
                vm.state == "Stopped" and vs.snapshot_type == "DiskAndMemory"):
            raise InvalidParameterValue("VM Snapshot revert not allowed. This will result in VM state change. You can"
                                        " revert running VM to disk and memory type snapshot and stopped VM to disk"
                                        " type snapshot")
        host = self.host_of(vm)
        ops = VmOps(self.ctx)
        ref, spec = host_ref(host), ops.spec(vm)
        self._set_state(vs, ("Ready",), "Reverting")
        self.ctx.checkpoint()
        try:
            ops.driver(vm.hypervisor_type).revert_vm_snapshot(ref, spec, vs.name)
        except HypervisorError as exc:
            self._set_state(vs, ("Reverting",), "Ready")
            self.ctx.checkpoint()
            raise ResourceUnavailable(f"Reverting VM {vm.name} to VM snapshot {vs.display_name} failed: {exc}") from exc
        s.execute(update(VmSnapshot).where(VmSnapshot.vm_id == vm.id, VmSnapshot.id != vs.id)
                  .values(current=False).execution_options(synchronize_session=False))
        vs.current = True
        self._set_state(vs, ("Reverting",), "Ready")
        self.event("VMSNAPSHOT.REVERTTOSNAPSHOT", f"Reverting VM {vm.uuid} to VM snapshot {vs.uuid}", vs)
        s.flush()
        return vm

    def delete(self, vs: VmSnapshot) -> None:
        from overcast.engine.vms import VmOps, host_ref

        s = self.s
        if vs.removed is not None:
            return
        if vs.state not in ("Ready", "Expunging", "Error"):
            raise InvalidParameterValue(f"Can't delete the vm snapshot {vs.uuid} due to it is not in Created or Error,"
                                        " or Expunging State", uuids=[(vs.uuid, "vmSnapshotId")])
        vm = s.get(VirtualMachine, vs.vm_id)
        assert vm is not None
        if vs.state != "Error" and vm.removed is None:
            host = self.host_of(vm)
            ops = VmOps(self.ctx)
            ref, spec = host_ref(host), ops.spec(vm)
            previous = vs.state
            self._set_state(vs, ("Ready", "Expunging"), "Expunging")
            self.ctx.checkpoint()
            try:
                ops.driver(vm.hypervisor_type).delete_vm_snapshot(ref, spec, vs.name)
            except HypervisorError as exc:
                self._set_state(vs, ("Expunging",), previous)
                self.ctx.checkpoint()
                raise ResourceUnavailable(f"Deleting VM snapshot {vs.display_name} of VM {vm.name} failed: {exc}") from exc
        s.execute(update(VmSnapshot).where(VmSnapshot.parent_id == vs.id)
                  .values(parent_id=vs.parent_id).execution_options(synchronize_session=False))
        if vs.current and vs.parent_id is not None:
            s.execute(update(VmSnapshot).where(VmSnapshot.id == vs.parent_id)
                      .values(current=True).execution_options(synchronize_session=False))
        vs.state, vs.removed, vs.current = "Removed", utcnow(), False
        remove_tags(self.s, "VMSnapshot", vs.id)
        self.event("VMSNAPSHOT.DELETE", f"Deleting VM snapshot {vs.display_name}. VM snapshot Id: {vs.uuid}", vs)
        s.flush()


__all__ = [
    "INTERVALS", "SnapshotOps", "VmSnapshotOps", "add_tags", "next_run", "parse_schedule", "resolve_timezone",
    "take_scheduled_snapshots",
]  # fmt: skip
