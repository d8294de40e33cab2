"""The built-in data-motion strategies (entry points ``overcast.storage.motion``).

- ``local`` (DEFAULT): streams any source to any destination directly; qcow2 overlays are flattened.
- ``staged`` (HYPERVISOR): an object store (S3, Swift) to a primary pool or back, through a staging store,
  as a hypervisor that mounts NFS needs (CloudStack's cache storage): templates stay cached on the staging
  store for the next copy; snapshot backups pass through and are removed from it.
- ``qcow2overlay`` (HIGHEST): a volume from a template cached on the same pool, as a qcow2 overlay backed
  by the cached copy, when qemu-img is installed (KVM's way: the template is read-only and shared).
"""

from __future__ import annotations

import dataclasses
import os
from typing import ClassVar

from overcast.storage.motion import (
    DataMotionStrategy,
    DataObject,
    MotionEnv,
    MotionError,
    Priority,
    _run,
    _temp_beside,
    is_qcow2,
    transfer,
)


class LocalCopyStrategy(DataMotionStrategy):
    name: ClassVar[str] = "local"

    def can_handle(self, src: DataObject, dst: DataObject, env: MotionEnv) -> Priority:
        return Priority.DEFAULT

    def copy(self, src: DataObject, dst: DataObject, env: MotionEnv, staging: DataObject | None = None) -> int:
        return transfer(src, dst, env.qemu_img)


class StagedCopyStrategy(DataMotionStrategy):
    name: ClassVar[str] = "staged"

    @staticmethod
    def _object_store_and_pool(src: DataObject, dst: DataObject) -> bool:
        return ((src.on_object_store and dst.location == "pool")
                or (src.location == "pool" and dst.on_object_store))

    def can_handle(self, src: DataObject, dst: DataObject, env: MotionEnv) -> Priority:
        if env.staging_available and self._object_store_and_pool(src, dst):
            return Priority.HYPERVISOR
        return Priority.CANT_HANDLE

    def needs_staging(self, src: DataObject, dst: DataObject) -> bool:
        return self._object_store_and_pool(src, dst)

    def copy(self, src: DataObject, dst: DataObject, env: MotionEnv, staging: DataObject | None = None) -> int:
        if staging is None or staging.driver is None:
            raise MotionError("No staging store to copy through")
        if src.location == "pool":  # a backup: pool -> staging -> object store; the staging copy goes
            middle = dataclasses.replace(staging, kind=src.kind, path=dst.path, format=src.format)
            transfer(src, middle, env.qemu_img)
            try:
                return transfer(middle, dst, env.qemu_img)
            finally:
                staging.driver.delete(middle.path)
        middle = dataclasses.replace(staging, kind=src.kind, path=src.path, format=src.format)
        want = src.driver.size(src.path) if src.driver is not None else None
        if want is None:
            raise MotionError(f"No object {src.path} on the source store")
        if staging.driver.size(middle.path) != want:  # cached on the staging store from an earlier copy?
            transfer(src, middle, env.qemu_img)
        return transfer(middle, dst, env.qemu_img)


class Qcow2OverlayStrategy(DataMotionStrategy):
    name: ClassVar[str] = "qcow2overlay"

    def can_handle(self, src: DataObject, dst: DataObject, env: MotionEnv) -> Priority:
        if (env.qemu_img and src.kind == "template" and src.location == "pool" and dst.location == "pool"
                and dst.kind == "volume" and src.pool_id == dst.pool_id and self._backing_format(src)):
            return Priority.HIGHEST
        return Priority.CANT_HANDLE

    @staticmethod
    def _backing_format(src: DataObject) -> str | None:
        if is_qcow2(src.file):
            return "qcow2"
        if (src.format or "").upper() == "RAW" and src.file.is_file():
            return "raw"
        return None

    def copy(self, src: DataObject, dst: DataObject, env: MotionEnv, staging: DataObject | None = None) -> int:
        assert env.qemu_img is not None
        fmt = self._backing_format(src)
        if fmt is None:
            raise MotionError(f"{src.path} is neither a qcow2 nor a raw image")
        target = dst.file
        tmp = _temp_beside(target)
        try:
            tmp.unlink()
            _run([env.qemu_img, "create", "-q", "-f", "qcow2", "-F", fmt, "-b", str(src.file.resolve()), str(tmp)])
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return target.stat().st_size


__all__ = ["LocalCopyStrategy", "Qcow2OverlayStrategy", "StagedCopyStrategy"]
