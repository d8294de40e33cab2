"""Data motion: moving a disk image between image stores, staging stores and primary storage.

A strategy (entry point group ``overcast.storage.motion``) answers :meth:`DataMotionStrategy.can_handle`
for a source and a destination with a :class:`Priority`; the strictly highest answer wins, the first
registered (by entry point name) on a tie, and nobody answering means the move can't be done (as
CloudStack's ``StorageStrategyFactoryImpl.bestMatch``). A strategy that goes through a staging store
says so (:meth:`DataMotionStrategy.needs_staging`); the caller then picks one with the selection policy
(``engine/storage_ops.py``) and passes it to :meth:`DataMotionStrategy.copy`.

Endpoints are plain values (:class:`DataObject`): an object on a store (its driver and path) or a file
in a primary storage pool's directory. Nothing here touches the database: the engine reads what it
needs, commits (``ctx.checkpoint()``), then moves bytes.
"""

from __future__ import annotations

import abc
import enum
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from overcast.plugins.registry import PluginLoadError, PluginNotFound, PluginRegistry
from overcast.plugins.storage import CHUNK, ImageStoreDriver, ImageStoreError, read_chunks

QCOW2_MAGIC = b"QFI\xfb"


class Priority(enum.IntEnum):
    """CloudStack's StrategyPriority."""

    CANT_HANDLE = 0
    DEFAULT = 1
    HYPERVISOR = 2
    HIGHEST = 3


class MotionError(Exception):
    """Bytes could not be moved (a store or a disk failed, or no strategy can do it)."""


@dataclass(frozen=True)
class DataObject:
    """One end of a move.

    ``location`` is ``store`` (an image store), ``staging`` (a staging store) or ``pool`` (a primary
    storage pool's directory); ``kind`` is ``template``, ``snapshot`` or ``volume``.
    """

    kind: str
    location: str
    path: str
    format: str | None = None
    driver: ImageStoreDriver | None = None
    store_id: int | None = None
    pool_dir: Path | None = None
    pool_id: int | None = None
    zone_id: int | None = None

    @property
    def on_object_store(self) -> bool:
        return self.driver is not None and self.driver.region_wide

    @property
    def file(self) -> Path:
        """The local file of a pool object (or of a store object on a directory store)."""
        if self.location == "pool":
            assert self.pool_dir is not None
            return self.pool_dir / self.path
        local = self.driver.local_path(self.path) if self.driver is not None else None
        if local is None:
            raise MotionError(f"{self.path} is not a local file")
        return local

    @property
    def is_local(self) -> bool:
        return self.location == "pool" or (self.driver is not None and self.driver.local_path(self.path) is not None)

    def describe(self) -> str:
        where = f"pool {self.pool_id}" if self.location == "pool" else f"{self.location} store {self.store_id}"
        return f"{self.kind} {self.path} on {where}"


@dataclass(frozen=True)
class MotionEnv:
    """What the strategies may ask about the surroundings of a move."""

    #: A staging store is available in the zone of the move.
    staging_available: bool = False
    #: The qemu-img executable, None when it is not installed.
    qemu_img: str | None = None


def qemu_img() -> str | None:
    return shutil.which("qemu-img")


def is_qcow2(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == QCOW2_MAGIC
    except OSError:
        return False


def qcow2_backing(path: Path) -> bool:
    """Whether a qcow2 file names a backing file (header offset 8: backing file offset, non-zero)."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        return False
    return head[:4] == QCOW2_MAGIC and int.from_bytes(head[8:16], "big") != 0


def _run(args: list[str]) -> None:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=3600, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise MotionError(f"{args[0]} failed: {exc}") from exc
    if done.returncode != 0:
        raise MotionError(f"{' '.join(args[:2])} failed: {(done.stderr or done.stdout).strip()[:500]}")


def _temp_beside(target: Path) -> Path:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    except OSError as exc:
        raise MotionError(f"Can't write {target.name}: {exc.strerror or exc}") from exc
    os.close(fd)
    return Path(tmp)


def copy_file(src: Path, dst: Path) -> int:
    """Copy a local file atomically (temp + rename), keeping holes sparse; the bytes copied."""
    tmp = _temp_beside(dst)
    written = 0
    try:
        with open(src, "rb") as fin, open(tmp, "wb") as fout:
            zero = bytes(CHUNK)
            while True:
                data = fin.read(CHUNK)
                if not data:
                    break
                if data == zero[:len(data)]:
                    fout.seek(len(data), os.SEEK_CUR)  # a hole stays a hole
                else:
                    fout.write(data)
                written += len(data)
            fout.truncate(written)
        os.replace(tmp, dst)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise MotionError(f"Copy of {src.name} failed: {exc.strerror or exc}") from exc
    return written


def write_stream(chunks: Iterator[bytes], dst: Path) -> int:
    tmp = _temp_beside(dst)
    written = 0
    try:
        with open(tmp, "wb") as fout:
            for chunk in chunks:
                fout.write(chunk)
                written += len(chunk)
        os.replace(tmp, dst)
    except (OSError, ImageStoreError) as exc:
        tmp.unlink(missing_ok=True)
        raise MotionError(f"Copy to {dst.name} failed: {exc}") from exc
    return written


def flattened(src: Path, qemu: str | None) -> tuple[Path, bool]:
    """A standalone image of ``src``: itself, or (for a qcow2 overlay) a temporary flattened copy
    (True: the caller removes it)."""
    if not qcow2_backing(src):
        return src, False
    if qemu is None:
        raise MotionError(f"{src.name} is a qcow2 overlay and qemu-img is not installed to flatten it")
    tmp = _temp_beside(src.parent / f"{src.name}.flat")
    _run([qemu, "convert", "-O", "qcow2", str(src), str(tmp)])
    return tmp, True


def read_object(obj: DataObject) -> Iterator[bytes]:
    if obj.is_local:
        return read_chunks(open(obj.file, "rb"))  # noqa: SIM115 - read_chunks closes it
    assert obj.driver is not None
    return read_chunks(obj.driver.open(obj.path))


def transfer(src: DataObject, dst: DataObject, qemu: str | None) -> int:
    """Move the bytes of ``src`` to ``dst`` by the most direct means (no staging). A qcow2 overlay is
    flattened on the way (its backing file stays behind)."""
    if src.is_local:
        source, temp = flattened(src.file, qemu)
        try:
            if dst.is_local:
                return copy_file(source, dst.file)
            assert dst.driver is not None
            return dst.driver.put(dst.path, read_chunks(open(source, "rb")))  # noqa: SIM115
        except ImageStoreError as exc:
            raise MotionError(str(exc)) from exc
        finally:
            if temp:
                source.unlink(missing_ok=True)
    if dst.is_local:
        return write_stream(read_object(src), dst.file)
    assert dst.driver is not None
    try:
        return dst.driver.put(dst.path, read_object(src))
    except ImageStoreError as exc:
        raise MotionError(str(exc)) from exc


class DataMotionStrategy(abc.ABC):
    """Moves bytes between two kinds of places."""

    name: ClassVar[str]

    @abc.abstractmethod
    def can_handle(self, src: DataObject, dst: DataObject, env: MotionEnv) -> Priority: ...

    def needs_staging(self, src: DataObject, dst: DataObject) -> bool:
        return False

    @abc.abstractmethod
    def copy(self, src: DataObject, dst: DataObject, env: MotionEnv, staging: DataObject | None = None) -> int:
        """Move the bytes; the number of bytes written at the destination."""


#: Strategies by name, from the ``overcast.storage.motion`` entry points.
STRATEGIES: PluginRegistry[DataMotionStrategy] = PluginRegistry("overcast.storage.motion", DataMotionStrategy)


class DataMotionService:
    """The strategies of this process, and the choice among them."""

    def __init__(self, strategies: list[DataMotionStrategy] | None = None) -> None:
        if strategies is None:
            strategies = []
            for name in STRATEGIES.names():
                try:
                    strategies.append(STRATEGIES.get(name)())
                except (PluginNotFound, PluginLoadError):
                    continue
        self.strategies = strategies

    def choose(self, src: DataObject, dst: DataObject, env: MotionEnv) -> DataMotionStrategy:
        best, highest = None, Priority.CANT_HANDLE
        for strategy in self.strategies:
            priority = strategy.can_handle(src, dst, env)
            if priority > highest:
                best, highest = strategy, priority
        if best is None:
            raise MotionError(f"Can't find strategy to move data. Source: {src.describe()}, destination:"
                              f" {dst.describe()}")
        return best


__all__ = [
    "DataMotionService", "DataMotionStrategy", "DataObject", "MotionEnv", "MotionError", "Priority", "STRATEGIES",
    "copy_file", "flattened", "is_qcow2", "qcow2_backing", "qemu_img", "read_object", "transfer", "write_stream",
]  # fmt: skip
