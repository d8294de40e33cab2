"""Bytes on storage: volumes on (simulated) primary storage, the template cache on pools, snapshot
backups and templates made from disks, and the staging store selection policy.

Primary storage is a directory on this machine: the pool's own path for ``file://``,
``sharedmountpoint://`` and ``filesystem://`` pools, else ``<data dir>/primary/<pool uuid>`` (the
simulator's stand-in for an NFS export it can't mount). A volume is the file named by its ``path``.

Every operation comes in three steps so no transaction is held while bytes move: ``plan_*`` reads the
database (and may pick a staging store), the caller commits (``ctx.checkpoint()``), ``run()`` moves the
bytes, then ``record()`` writes the outcome in the caller's next transaction.

Templates are cached once per pool (``template_pool_ref``: install path, size, ``ref_count`` = the
volumes made from the cached copy); a ROOT volume is a qcow2 overlay on the cached copy when qemu-img is
installed (the ``qcow2overlay`` strategy), a copy otherwise. A template with no file in any store (the
sandbox's seeded template) gives a blank volume, as a volume made from a disk offering.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from overcast.db.models import (
    ImageStore,
    Snapshot,
    SnapshotStoreRef,
    StoragePool,
    Template,
    TemplatePool,
    TemplateZone,
    Volume,
    utcnow,
)
from overcast.engine.context import EngineContext
from overcast.errors import InvalidParameterValue, ResourceUnavailable
from overcast.plugins.storage import ImageStoreDriver, ImageStoreError
from overcast.storage.motion import (
    DataMotionService,
    DataMotionStrategy,
    DataObject,
    MotionEnv,
    MotionError,
    is_qcow2,
    qemu_img,
)

if TYPE_CHECKING:
    from overcast.services import Services

logger = logging.getLogger(__name__)

#: Pool URL schemes whose path is a directory on this machine.
LOCAL_POOL_SCHEMES = ("file", "sharedmountpoint", "filesystem")
#: Staging store selection policies (setting ``staging.store.selection.policy``).
STAGING_POLICIES = ("leastused", "roundrobin")

_motion: DataMotionService | None = None


def motion() -> DataMotionService:
    """The process's data-motion strategies (loaded from the entry points once)."""
    global _motion
    if _motion is None:
        _motion = DataMotionService()
    return _motion


def pool_dir(services: Services, pool: StoragePool) -> Path:
    scheme = urlsplit(pool.url or "").scheme.lower()
    if scheme in LOCAL_POOL_SCHEMES and pool.path:
        return Path(pool.path)
    return Path(services.config.data_dir) / "primary" / pool.uuid


def volume_file(services: Services, vol: Volume, pool: StoragePool) -> Path:
    return pool_dir(services, pool) / (vol.path or vol.uuid)


def disk_format(path: Path) -> str:
    return "QCOW2" if is_qcow2(path) else "RAW"


def _ext(fmt: str | None) -> str:
    return {"QCOW2": "qcow2", "RAW": "raw", "VHD": "vhd", "ISO": "iso", "OVA": "ova"}.get((fmt or "").upper(), "img")


def usable_image_store(ctx: EngineContext, zone_id: int) -> ImageStore | None:
    """Where new objects of ``zone_id`` go (templates, ISOs, snapshot backups, extracted volumes): the
    zone's writable image stores, one that really stores bytes before a simulated one (``overcast
    sandbox`` seeds simulated stores), the least used first; else a writable region-wide one."""
    from overcast.engine.template_downloads import simulated_store

    s = ctx.session
    base = select(ImageStore).where(ImageStore.removed.is_(None), ImageStore.role == "Image",
                                    ImageStore.readonly.is_(False)).order_by(ImageStore.used_bytes, ImageStore.id)
    stores = list(s.scalars(base.where(ImageStore.zone_id == zone_id)))
    if not stores:
        stores = list(s.scalars(base.where(ImageStore.scope == "REGION")))
    stores.sort(key=simulated_store)  # stable: real stores first, each kind least used first
    return stores[0] if stores else None


# -- staging stores ---------------------------------------------------------------------------------


def _staging_query(zone_id: int | None):  # type: ignore[no-untyped-def]
    stmt = select(ImageStore).where(ImageStore.removed.is_(None), ImageStore.role == "ImageCache",
                                    ImageStore.readonly.is_(False))
    if zone_id is not None:
        stmt = stmt.where((ImageStore.zone_id == zone_id) | (ImageStore.scope == "REGION"))
    return stmt


def staging_available(ctx: EngineContext, zone_id: int | None) -> bool:
    return ctx.session.scalar(_staging_query(zone_id).with_only_columns(ImageStore.id).limit(1)) is not None


def select_staging(ctx: EngineContext, zone_id: int | None) -> ImageStore | None:
    """The staging store a copy in ``zone_id`` goes through, by the ``staging.store.selection.policy``
    setting: ``leastused`` (fewest bytes used, then the oldest) or ``roundrobin`` (the one chosen least
    recently; the choice is claimed with a compare-and-set so concurrent copies spread). Never random."""
    policy = str(ctx.setting("staging.store.selection.policy") or "leastused").strip().lower()
    if policy not in STAGING_POLICIES:
        raise InvalidParameterValue(f"Invalid staging.store.selection.policy {policy}: use one of"
                                    f" {', '.join(STAGING_POLICIES)}")
    s = ctx.session
    if policy == "leastused":
        return s.scalar(_staging_query(zone_id).order_by(ImageStore.used_bytes, ImageStore.id).limit(1))
    for _ in range(5):
        stores = list(s.scalars(_staging_query(zone_id).order_by(ImageStore.selection_order, ImageStore.id).limit(8)))
        if not stores:
            return None
        top = s.scalar(select(func.max(ImageStore.selection_order)).where(ImageStore.role == "ImageCache")) or 0
        for store in stores:
            seen = store.selection_order or 0
            won = s.execute(update(ImageStore).where(ImageStore.id == store.id, ImageStore.selection_order == seen)
                            .values(selection_order=top + 1).execution_options(synchronize_session=False)).rowcount
            if won:
                s.refresh(store)
                return store
    return stores[0]


# -- data objects -------------------------------------------------------------------------------


class DiskOps:
    """Data objects and moves for one caller (an API call or a job)."""

    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self.s = ctx.session
        self.services: Services = ctx.services  # type: ignore[attr-defined]

    def driver(self, store: ImageStore) -> ImageStoreDriver:
        return self.services.image_store(store)

    def store_object(self, store: ImageStore, kind: str, path: str, fmt: str | None = None) -> DataObject:
        return DataObject(kind=kind, location="staging" if store.role == "ImageCache" else "store", path=path,
                          format=fmt, driver=self.driver(store), store_id=store.id, zone_id=store.zone_id)

    def pool_object(self, pool: StoragePool, kind: str, path: str, fmt: str | None = None) -> DataObject:
        return DataObject(kind=kind, location="pool", path=path, format=fmt, pool_dir=pool_dir(self.services, pool),
                          pool_id=pool.id, zone_id=pool.zone_id)

    def env(self, zone_id: int | None) -> MotionEnv:
        return MotionEnv(staging_available=staging_available(self.ctx, zone_id), qemu_img=qemu_img())

    def plan_move(self, src: DataObject, dst: DataObject, zone_id: int | None) -> Move:
        """Choose the strategy (and a staging store when it needs one): database work, before the checkpoint."""
        env = self.env(zone_id)
        strategy = motion().choose(src, dst, env)
        staging = None
        if strategy.needs_staging(src, dst):
            store = select_staging(self.ctx, zone_id)
            if store is not None:
                staging = self.store_object(store, src.kind, "")
        return Move(src, dst, env, strategy, staging, staging.store_id if staging else None)

    def add_store_usage(self, store_id: int | None, delta: int) -> None:
        if store_id is None or not delta:
            return
        self.s.execute(update(ImageStore).where(ImageStore.id == store_id)
                       .values(used_bytes=ImageStore.used_bytes + delta).execution_options(synchronize_session=False))

    # -- templates ---------------------------------------------------------------------------
    def template_sources(self, template: Template, zone_id: int) -> list[tuple[ImageStore, str]]:
        """(store, install path) of the template's copies usable in ``zone_id``, zone stores first."""
        rows = self.s.execute(select(ImageStore, TemplateZone.install_path).join(
            TemplateZone, TemplateZone.store_id == ImageStore.id).where(
            TemplateZone.template_id == template.id, TemplateZone.removed.is_(None), TemplateZone.state == "Ready",
            ImageStore.removed.is_(None), (TemplateZone.zone_id == zone_id) | (ImageStore.scope == "REGION"))
            .order_by(ImageStore.scope != "ZONE", ImageStore.id)).all()
        seen, out = set(), []
        for store, path in rows:
            if path and store.id not in seen:
                seen.add(store.id)
                out.append((store, path))
        return out

    def plan_volume(self, vol: Volume, pool: StoragePool, *, snapshot: Snapshot | None = None) -> VolumePlan:
        """What creating ``vol``'s bytes on ``pool`` takes: from a snapshot's backup, from the volume's
        template (through the pool's template cache), or blank."""
        dst = self.pool_object(pool, "volume", vol.path or vol.uuid)
        plan = VolumePlan(vol_id=vol.id, dst=dst, size=vol.size, zone_id=pool.zone_id)
        if snapshot is not None:
            ref = self.snapshot_ref(snapshot)
            if ref is not None:
                store = self.s.get(ImageStore, ref.store_id)
                if store is not None and store.removed is None:
                    src = self.store_object(store, "snapshot", ref.install_path, ref.format)
                    plan.moves.append(self.plan_move(src, dst, pool.zone_id))
            return plan
        if vol.volume_type != "ROOT" or vol.template_id is None:
            return plan
        template = self.s.get(Template, vol.template_id)
        if template is None or template.format == "ISO":
            return plan
        plan.template_id = template.id
        cache = self.s.scalar(select(TemplatePool).where(TemplatePool.template_id == template.id,
                                                         TemplatePool.pool_id == pool.id))
        cache_name = (cache.install_path if cache is not None and cache.install_path else template.uuid)
        cached = self.pool_object(pool, "template", cache_name, template.format)
        plan.cache = cached
        if cache is not None and cache.install_path and cached.file.is_file():
            plan.cached = True
        else:
            for store, path in self.template_sources(template, pool.zone_id):
                src = self.store_object(store, "template", path, template.format)
                plan.moves.append(self.plan_move(src, cached, pool.zone_id))
        plan.clone_env = MotionEnv(qemu_img=qemu_img())
        return plan

    def snapshot_ref(self, snap: Snapshot) -> SnapshotStoreRef | None:
        return self.s.scalar(select(SnapshotStoreRef).where(
            SnapshotStoreRef.snapshot_id == snap.id, SnapshotStoreRef.removed.is_(None),
            SnapshotStoreRef.state == "Ready").order_by(SnapshotStoreRef.id).limit(1))

    def record_volume(self, plan: VolumePlan) -> None:
        """Write what :meth:`VolumePlan.run` did: the pool's template cache row and its reference count."""
        if plan.template_id is None or plan.cache is None or not (plan.cached or plan.cache_filled):
            return
        pool_id = plan.dst.pool_id
        cache = self.s.scalar(select(TemplatePool).where(TemplatePool.template_id == plan.template_id,
                                                         TemplatePool.pool_id == pool_id))
        if cache is None:
            try:
                with self.s.begin_nested():
                    cache = TemplatePool(template_id=plan.template_id, pool_id=pool_id, state="Ready",
                                         install_path=plan.cache.path, size=plan.cache_size, ref_count=0)
                    self.s.add(cache)
            except IntegrityError:  # another deploy cached it at the same time
                cache = self.s.scalar(select(TemplatePool).where(TemplatePool.template_id == plan.template_id,
                                                                 TemplatePool.pool_id == pool_id))
        assert cache is not None
        if plan.cache_filled or not cache.install_path:
            cache.install_path, cache.state = plan.cache.path, "Ready"
            if plan.cache_size:
                cache.size = plan.cache_size
        if plan.from_cache:
            self.s.execute(update(TemplatePool).where(TemplatePool.id == cache.id)
                           .values(ref_count=TemplatePool.ref_count + 1).execution_options(synchronize_session=False))
        for move in plan.moves:
            if move.staging_id is not None and move.staging_written:
                self.add_store_usage(move.staging_id, move.staging_written)
        self.s.flush()

    def release_volume(self, vol: Volume) -> None:
        """A volume is gone for good: its file on the pool goes, and its reference on the template cache."""
        if vol.pool_id is None:
            return
        pool = self.s.get(StoragePool, vol.pool_id)
        if pool is None:
            return
        try:
            volume_file(self.services, vol, pool).unlink(missing_ok=True)
        except OSError as exc:
            logger.warning("Could not remove the file of volume %s: %s", vol.uuid, exc)
        if vol.volume_type == "ROOT" and vol.template_id is not None:
            self.s.execute(update(TemplatePool).where(
                TemplatePool.template_id == vol.template_id, TemplatePool.pool_id == pool.id,
                TemplatePool.ref_count > 0).values(ref_count=TemplatePool.ref_count - 1)
                .execution_options(synchronize_session=False))

    def plan_revert(self, snap: Snapshot, vol: Volume) -> Move | None:
        """revertSnapshot: the snapshot's backup onto the volume's file; None without a backup."""
        ref = self.snapshot_ref(snap)
        pool = self.s.get(StoragePool, vol.pool_id) if vol.pool_id else None
        store = self.s.get(ImageStore, ref.store_id) if ref is not None else None
        if ref is None or pool is None or store is None or store.removed is not None:
            return None
        src = self.store_object(store, "snapshot", ref.install_path, ref.format)
        return self.plan_move(src, self.pool_object(pool, "volume", vol.path or vol.uuid), pool.zone_id)

    def plan_pool_copy(self, vol: Volume, src_pool: StoragePool, dst_pool: StoragePool) -> Move | None:
        """A volume's file from one pool to another (migrateVolume); None when it has no file yet."""
        src = self.pool_object(src_pool, "volume", vol.path or vol.uuid)
        if not src.file.exists():
            return None
        dst = self.pool_object(dst_pool, "volume", vol.path or vol.uuid)
        return self.plan_move(src, dst, dst_pool.zone_id)

    # -- snapshots -----------------------------------------------------------------------------
    def plan_backup(self, snap: Snapshot, vol: Volume) -> Backup | None:
        """Where a snapshot's bytes go: the zone's image store (None: the zone has none)."""
        pool = self.s.get(StoragePool, vol.pool_id) if vol.pool_id else None
        if pool is None:
            return None
        store = usable_image_store(self.ctx, snap.zone_id)
        if store is None:
            return None
        src = self.pool_object(pool, "volume", vol.path or vol.uuid)
        path = f"snapshots/{snap.account_id}/{vol.id}/{snap.uuid}"
        dst = self.store_object(store, "snapshot", path)
        # a volume placed without bytes yet (a restored VM not started since): make them first
        first = None if src.file.exists() else self.plan_volume(vol, pool)
        return Backup(snapshot_id=snap.id, volume_id=vol.id, store_id=store.id, size=vol.size,
                      move=self.plan_move(src, dst, snap.zone_id), first=first)

    def record_backup(self, backup: Backup, snap: Snapshot) -> None:
        if backup.first is not None:
            self.record_volume(backup.first)
        self.s.add(SnapshotStoreRef(snapshot_id=snap.id, store_id=backup.store_id, volume_id=backup.volume_id,
                                    install_path=backup.path, physical_size=backup.written, format=backup.format,
                                    state="Ready"))
        snap.physical_size = backup.written
        self.add_store_usage(backup.store_id, backup.written)
        self.s.flush()

    def plan_snapshot_delete(self, snap: Snapshot) -> list[tuple[ImageStoreDriver, str, int, int]]:
        """(driver, path, store id, bytes) of a snapshot's backups; the refs are marked removed."""
        out = []
        now = utcnow()
        for ref in self.s.scalars(select(SnapshotStoreRef).where(SnapshotStoreRef.snapshot_id == snap.id,
                                                                 SnapshotStoreRef.removed.is_(None))):
            store = self.s.get(ImageStore, ref.store_id)
            if store is not None and store.removed is None:
                out.append((self.driver(store), ref.install_path, store.id, ref.physical_size))
            ref.removed, ref.state = now, "Destroyed"
        return out

    # -- templates from disks --------------------------------------------------------------------
    def plan_template(self, template: Template, ref: TemplateZone, *, volume: Volume | None,
                      snapshot: Snapshot | None) -> Move | None:
        """The move that makes a template's file from a snapshot's backup or a volume; None when the source
        has no bytes (a snapshot without backup) or the zone has no image store."""
        store = self.s.get(ImageStore, ref.store_id) if ref.store_id else None
        if store is None or store.removed is not None:
            return None
        base = f"template/tmpl/{template.account_id}/{template.id}/{template.uuid}"
        src: DataObject | None = None
        if snapshot is not None:
            sref = self.snapshot_ref(snapshot)
            sstore = self.s.get(ImageStore, sref.store_id) if sref is not None else None
            if sref is None or sstore is None or sstore.removed is not None:
                return None
            src = self.store_object(sstore, "snapshot", sref.install_path, sref.format)
            dst = self.store_object(store, "template", f"{base}.{_ext(sref.format)}", sref.format)
        else:
            assert volume is not None
            pool = self.s.get(StoragePool, volume.pool_id) if volume.pool_id else None
            if pool is None:
                return None
            src = self.pool_object(pool, "volume", volume.path or volume.uuid)
            dst = self.store_object(store, "template", base)  # the extension is known once the format is
        return self.plan_move(src, dst, ref.zone_id)


@dataclass
class Move:
    """One planned move; :meth:`run` after the checkpoint."""

    src: DataObject
    dst: DataObject
    env: MotionEnv
    strategy: DataMotionStrategy
    staging: DataObject | None = None
    staging_id: int | None = None
    written: int = 0
    staging_written: int = 0

    def run(self) -> int:
        before = self.staging.driver.size(self.src.path) if self.staging is not None and self.staging.driver \
            and self.src.location != "pool" else None
        try:
            self.written = self.strategy.copy(self.src, self.dst, self.env, self.staging)
        except ImageStoreError as exc:
            raise MotionError(str(exc)) from exc
        if self.staging is not None and self.staging.driver is not None and self.src.location != "pool":
            after = self.staging.driver.size(self.src.path)
            self.staging_written = (after or 0) - (before or 0)
        return self.written


@dataclass
class VolumePlan:
    vol_id: int
    dst: DataObject
    size: int
    zone_id: int
    moves: list[Move] = field(default_factory=list)
    template_id: int | None = None
    cache: DataObject | None = None
    cached: bool = False
    cache_filled: bool = False
    cache_size: int = 0
    from_cache: bool = False
    clone_env: MotionEnv = field(default_factory=MotionEnv)
    format: str = "RAW"

    def run(self) -> None:
        """Make the volume's file (idempotent: an existing file is kept)."""
        target = self.dst.file
        if target.exists():
            self.format = disk_format(target)
            return
        if self.template_id is None and self.moves:  # from a snapshot
            self.moves[0].run()
            self.format = disk_format(target)
            return
        self.fill_cache()
        if self.cache is not None and (self.cached or self.cache_filled):
            clone = motion().choose(self.cache, self.dst, self.clone_env)
            clone.copy(self.cache, self.dst, self.clone_env)
            self.from_cache = True
            self.format = disk_format(target)
            return
        blank(target, self.size)

    def fill_cache(self) -> None:
        """Copy the template to the pool's cache unless it is there (MotionError when a copy fails)."""
        if self.cache is not None and not self.cached:
            failure: Exception | None = None
            for move in self.moves:
                try:
                    if move.src.driver is not None and move.src.driver.size(move.src.path) is None:
                        found = _resolve(move.src)
                        if found is None:
                            continue  # no file on this store (a template registered without bytes)
                        move.src = found
                    self.cache_size = move.run()
                    self.cache_filled = True
                    break
                except (MotionError, ImageStoreError) as exc:
                    logger.warning("Template copy from %s failed: %s", move.src.describe(), exc)
                    failure = exc
            if not self.cache_filled and failure is not None:
                raise MotionError(f"The template could not be copied to primary storage: {failure}")


def _resolve(obj: DataObject) -> DataObject | None:
    """A template's install path may name its folder: the disk image in it (its largest file; a folder
    also holds small metadata files such as template.properties), None when there is none."""
    import dataclasses

    assert obj.driver is not None
    files = [(size, path) for path, size in obj.driver.list(obj.path.rstrip("/") + "/")
             if not path.endswith(".properties")]
    if not files:
        return None
    return dataclasses.replace(obj, path=max(files)[1])


def blank(target: Path, size: int) -> None:
    """A blank (sparse) raw disk of ``size`` bytes."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.part")
    with open(tmp, "wb") as f:
        f.truncate(max(size, 0))
    os.replace(tmp, target)


@dataclass
class Backup:
    snapshot_id: int
    volume_id: int
    store_id: int
    size: int
    move: Move
    written: int = 0
    format: str = "RAW"
    path: str = ""
    first: VolumePlan | None = None

    def run(self) -> None:
        src = self.move.src
        if self.first is not None:
            self.first.run()
        self.format = "QCOW2" if is_qcow2(src.file) else "RAW"
        import dataclasses

        self.path = f"{self.move.dst.path}.{_ext(self.format)}"
        self.move.dst = dataclasses.replace(self.move.dst, path=self.path, format=self.format)
        self.written = self.move.run()


def run_steps(steps: list[Callable[[], object]], what: str) -> None:
    """Run byte moves, turning their failures into a CloudStack error."""
    for step in steps:
        try:
            step()
        except (MotionError, ImageStoreError) as exc:
            raise ResourceUnavailable(f"{what}: {exc}") from exc
        except OSError as exc:  # no server paths in the message
            logger.warning("%s: %s", what, exc)
            raise ResourceUnavailable(f"{what}: {exc.strerror or type(exc).__name__}") from exc


__all__ = [
    "Backup", "DiskOps", "Move", "VolumePlan", "blank", "motion", "pool_dir", "run_steps", "select_staging",
    "staging_available", "usable_image_store", "volume_file",
]  # fmt: skip


def plan_vm_disks(ctx: EngineContext, vm_id: int) -> list[VolumePlan]:
    """The volumes of a VM placed on a pool: plans to give each its bytes (a VM start, before the checkpoint)."""
    ops = DiskOps(ctx)
    plans = []
    for vol in ctx.session.scalars(select(Volume).where(Volume.vm_id == vm_id, Volume.removed.is_(None),
                                                        Volume.pool_id.is_not(None)).order_by(Volume.device_id)):
        pool = ctx.session.get(StoragePool, vol.pool_id)
        if pool is not None and not volume_file(ops.services, vol, pool).exists():
            plans.append(ops.plan_volume(vol, pool))
    return plans


def run_vm_disks(plans: list[VolumePlan]) -> None:
    """Create the planned volumes' files (after the checkpoint); ResourceUnavailable on failure."""
    run_steps([p.run for p in plans], "Unable to create the volumes on primary storage")


def record_vm_disks(ctx: EngineContext, plans: list[VolumePlan]) -> None:
    ops = DiskOps(ctx)
    for plan in plans:
        ops.record_volume(plan)


def make_template_file(ctx: EngineContext, template: Template, *, volume: Volume | None,
                       snapshot: Snapshot | None) -> None:
    """createTemplate's bytes: the volume (flattened) or the snapshot's backup copied into the template's
    image store, the template's refs pointing at the file. Without a source of bytes (a snapshot with no
    backup, a zone with no image store) the template stays metadata only, as before image stores."""
    import dataclasses

    s = ctx.session
    ops = DiskOps(ctx)
    refs = list(s.scalars(select(TemplateZone).where(TemplateZone.template_id == template.id,
                                                     TemplateZone.removed.is_(None))))
    moves = [(ref, ops.plan_template(template, ref, volume=volume, snapshot=snapshot)) for ref in refs]
    moves = [(ref, m) for ref, m in moves if m is not None]
    if not moves:
        return
    first = None  # a volume placed without bytes yet (never started since): its bytes first
    if volume is not None and volume.pool_id is not None and not moves[0][1].src.file.exists():
        pool = s.get(StoragePool, volume.pool_id)
        first = ops.plan_volume(volume, pool) if pool is not None else None
    ctx.checkpoint()
    if first is not None:
        run_steps([first.run], f"Unable to create the disk of volume {volume.name if volume else ''}")
        ops.record_volume(first)
    done: list[tuple[TemplateZone, Move, str]] = []
    for ref, move in moves:
        fmt = move.src.format or "RAW"
        if move.src.location == "pool":
            fmt = disk_format(move.src.file)
            move.dst = dataclasses.replace(move.dst, path=f"{move.dst.path}.{_ext(fmt)}", format=fmt)
        run_steps([move.run], f"Unable to write template {template.name} to the image store")
        done.append((ref, move, fmt))
    for ref, move, fmt in done:
        ref = s.get(TemplateZone, ref.id) or ref
        ref.install_path, ref.physical_size = move.dst.path, move.written
        ops.add_store_usage(move.dst.store_id, move.written)
        template = s.get(Template, template.id) or template
        template.format, template.physical_size = fmt, move.written
    s.flush()


def migrate_store_data(ctx: EngineContext, src: ImageStore, dests: list[ImageStore], *,
                       complete: bool) -> tuple[int, int]:
    """migrateSecondaryStorageData: move the template files and snapshot backups of ``src`` to ``dests``
    (each object to the destination using the fewest bytes). ``complete``: everything; else (Balance)
    until ``src`` uses no more than the stores' average. Returns (objects moved, objects left)."""
    from overcast.plugins.storage import read_chunks

    s = ctx.session
    ops = DiskOps(ctx)
    objects: list[tuple[str, int, str, int]] = []
    for tref in s.scalars(select(TemplateZone).where(TemplateZone.store_id == src.id, TemplateZone.removed.is_(None))):
        objects.append(("template", tref.id, tref.install_path or "", tref.physical_size or 0))
    for sref in s.scalars(select(SnapshotStoreRef).where(SnapshotStoreRef.store_id == src.id,
                                                         SnapshotStoreRef.removed.is_(None))):
        objects.append(("snapshot", sref.id, sref.install_path, sref.physical_size or 0))
    objects.sort(key=lambda o: (-o[3], o[0], o[1]))
    src_driver = ops.driver(src)
    drivers = {d.id: ops.driver(d) for d in dests}
    usage = {d.id: int(d.used_bytes or 0) for d in dests}
    src_used = int(src.used_bytes or 0)
    mean = (src_used + sum(usage.values())) / (1 + len(dests))
    ctx.checkpoint()
    moved, left = [], 0
    for kind, ref_id, path, size in objects:
        if not complete and src_used <= mean:
            left += 1
            continue
        dest_id = min(usage, key=lambda i: (usage[i], i))
        written = 0
        files: list[str] = []
        if path:
            try:
                files = [path] if src_driver.size(path) is not None else \
                    [p for p, _ in src_driver.list(path.rstrip("/") + "/")]
                for f in files:
                    written += drivers[dest_id].put(f, read_chunks(src_driver.open(f)))
            except ImageStoreError as exc:
                raise ResourceUnavailable(f"Unable to migrate {kind} {path} from image store {src.name}: {exc}"
                                          ) from exc
        usage[dest_id] += written
        src_used -= written
        moved.append((kind, ref_id, dest_id, files, written))
    for kind, ref_id, dest_id, _files, _written in moved:
        if kind == "template":
            tref = s.get(TemplateZone, ref_id)
            if tref is None:
                continue
            dup = s.scalar(select(TemplateZone).where(TemplateZone.template_id == tref.template_id,
                                                      TemplateZone.zone_id == tref.zone_id,
                                                      TemplateZone.store_id == dest_id))
            if dup is not None:
                dup.removed, dup.state, dup.install_path = None, tref.state, tref.install_path
                dup.size, dup.physical_size = tref.size, tref.physical_size
                s.delete(tref)
            else:
                tref.store_id = dest_id
        else:
            sref = s.get(SnapshotStoreRef, ref_id)
            if sref is not None:
                sref.store_id = dest_id
    for dest_id, used in usage.items():
        s.execute(update(ImageStore).where(ImageStore.id == dest_id).values(used_bytes=used)
                  .execution_options(synchronize_session=False))
    s.execute(update(ImageStore).where(ImageStore.id == src.id).values(used_bytes=max(src_used, 0))
              .execution_options(synchronize_session=False))
    ctx.checkpoint()
    for _kind, _ref_id, _dest_id, files, _written in moved:
        for f in files:
            try:
                src_driver.delete(f)
            except ImageStoreError as exc:
                logger.warning("Could not remove %s from image store %s after migrating it: %s", f, src.name, exc)
    return len(moved), left


def fill_template_caches(ctx: EngineContext, template: Template, pools: list[StoragePool]) -> int:
    """prepareTemplate: copy ``template`` into the cache of each pool (once; later deploys clone it).
    Returns how many pools received a copy."""
    ops = DiskOps(ctx)
    plans = []
    for pool in pools:
        cache = ctx.session.scalar(select(TemplatePool).where(TemplatePool.template_id == template.id,
                                                              TemplatePool.pool_id == pool.id))
        cached = ops.pool_object(pool, "template", cache.install_path if cache is not None and cache.install_path
                                 else template.uuid, template.format)
        if cache is not None and cache.install_path and cached.file.is_file():
            continue
        plan = VolumePlan(vol_id=0, dst=cached, size=0, zone_id=pool.zone_id, template_id=template.id, cache=cached)
        for store, path in ops.template_sources(template, pool.zone_id):
            plan.moves.append(ops.plan_move(ops.store_object(store, "template", path, template.format), cached,
                                            pool.zone_id))
        plans.append(plan)
    if not plans:
        return 0
    ctx.checkpoint()
    run_steps([p.fill_cache for p in plans], f"Unable to copy template {template.name} to primary storage")
    for plan in plans:
        ops.record_volume(plan)
    return sum(1 for p in plans if p.cache_filled)
