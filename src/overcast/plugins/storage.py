"""The image store contract: where templates, ISOs, snapshot backups and volume copies live as objects.

A provider (entry point group ``overcast.storage.image``; ``NFS``, ``S3``, ``Swift``) is a class
implementing :class:`ImageStoreDriver`. The server makes one instance per store per process
(``services.image_store(row)``); a driver holds no database session and may be called between
transactions (call ``ctx.checkpoint()`` first).

Contract:
- ``put`` streams the chunks and is atomic: a reader sees the whole object or nothing (temp file and
  rename on a directory, multipart upload completed at the end on S3, a single PUT of a stream on
  Swift); it returns the number of bytes written;
- ``local_writer`` (optional; NFS only) hands out a new local file that becomes an object atomically,
  for zero-copy writes (a template download splices the socket into it);
- ``open``, ``size``, ``delete`` and ``list`` address objects by store-relative paths with ``/``
  separators (``template/tmpl/<account id>/<template id>/<file>``, ``snapshots/<account id>/<volume id>/
  <file>``, ``volumes/<volume id>/<file>``); ``size`` is None and ``delete`` does nothing for a missing
  object;
- failures are raised as :class:`ImageStoreError` with a message fit for a job result; ``validate``
  raises :class:`overcast.errors.InvalidParameterValue` naming the parameter (``url`` or
  ``details[<key>]``) for bad configuration, before anything is stored.
"""

from __future__ import annotations

import abc
import json
import posixpath
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from io import FileIO
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, ClassVar

from overcast.errors import InvalidParameterValue
from overcast.plugins.registry import PluginLoadError, PluginNotFound, PluginRegistry

if TYPE_CHECKING:
    from overcast.db.models import ImageStore

#: Bytes per chunk when a driver reads a stream for the caller.
CHUNK = 1024 * 1024


class ImageStoreError(Exception):
    """An operation on an image store failed (unreachable, denied, out of space...)."""


class ImageStoreDriver(abc.ABC):
    """One configured image store (a row of ``image_store``), seen as a flat namespace of objects."""

    #: The provider name as CloudStack spells it: "NFS", "S3", "Swift".
    provider: ClassVar[str]
    #: True for object stores (region-wide: no zone), False for NFS (one zone).
    region_wide: ClassVar[bool]
    #: The server's data directory (set at start); stores without a real location keep their files under it.
    data_dir: ClassVar[Path | None] = None

    def __init__(self, url: str, details: dict[str, str]) -> None:
        self.url = url
        self.details = details

    @classmethod
    @abc.abstractmethod
    def validate(cls, url: str, details: dict[str, str]) -> None:
        """Check the configuration's syntax (no I/O); InvalidParameterValue naming the parameter."""

    def probe(self) -> None:
        """Check the store really works: write, read back and delete a small object (addImageStore)."""
        path = ".overcast-probe"
        try:
            written = self.put(path, [b"overcast"])
            back = self.size(path)
            self.delete(path)
        except ImageStoreError as exc:
            raise InvalidParameterValue(f"The {self.provider} image store at {self.url or '(no url)'} can't be"
                                        f" used: {exc}") from exc
        if written != 8 or back != 8:
            raise InvalidParameterValue(f"The {self.provider} image store at {self.url or '(no url)'} didn't keep"
                                        " a test object")

    @abc.abstractmethod
    def put(self, path: str, chunks: Iterable[bytes]) -> int:
        """Store an object from a stream of chunks, atomically; the number of bytes written."""

    @abc.abstractmethod
    def open(self, path: str) -> BinaryIO:
        """A readable stream of the object (ImageStoreError when missing)."""

    @abc.abstractmethod
    def size(self, path: str) -> int | None:
        """The object's size in bytes, None when it does not exist."""

    @abc.abstractmethod
    def delete(self, path: str) -> None:
        """Remove the object; a missing object is not an error."""

    @abc.abstractmethod
    def list(self, prefix: str) -> Iterator[tuple[str, int]]:
        """(path, size) of every object whose path starts with ``prefix``."""

    @abc.abstractmethod
    def download_url(self, path: str, expires_s: int) -> str | None:
        """A URL a client may GET the object from for ``expires_s`` seconds; None when Overcast serves it."""

    @abc.abstractmethod
    def usage(self) -> tuple[int, int | None]:
        """(used bytes, total bytes or None when unknown)."""

    def delete_prefix(self, prefix: str) -> int:
        """Remove every object under ``prefix``; how many were removed."""
        n = 0
        for path, _ in list(self.list(prefix)):
            self.delete(path)
            n += 1
        return n

    def local_path(self, path: str) -> Path | None:
        """The object's file on this machine when the store is a directory (NFS), else None."""
        return None

    def local_writer(self, path: str) -> AbstractContextManager[FileIO] | None:
        """For a store that is a directory on this machine (NFS): a context manager giving a new, empty,
        unbuffered file (open for reading and writing) that becomes the object ``path`` atomically when
        the block ends without an error, and is removed when it raises, as ``put`` does. It lets a
        caller fill the object with the kernel's zero-copy calls on its descriptor (``os.splice``,
        ``os.sendfile``) and check it before it is published. None for stores without local files
        (S3, Swift): they take ``put`` only."""
        return None

    def close(self) -> None:
        """Release connections (server shutdown)."""


#: Image store providers by name, from the ``overcast.storage.image`` entry points.
IMAGE_STORES: PluginRegistry[ImageStoreDriver] = PluginRegistry("overcast.storage.image", ImageStoreDriver)


def provider_class(name: str | None, param: str = "provider") -> type[ImageStoreDriver]:
    """The driver class of a provider name (case-insensitive); an unknown name is an error, never NFS."""
    wanted = (name or "").strip()
    if not wanted:
        raise InvalidParameterValue(f"Please specify the image store provider (parameter {param})")
    try:
        return IMAGE_STORES.get(wanted)
    except PluginNotFound:
        raise InvalidParameterValue(f"Unknown image store provider {wanted} (parameter {param}): use one of"
                                    f" {', '.join(provider_names())}") from None
    except PluginLoadError as exc:
        raise InvalidParameterValue(f"Image store provider {wanted} (parameter {param}) can't be loaded: {exc}"
                                    ) from None


def provider_names() -> list[str]:
    """The providers' names as they spell them ("NFS", "S3", "Swift")."""
    names = []
    for key in IMAGE_STORES.names():
        try:
            names.append(IMAGE_STORES.get(key).provider)
        except (PluginNotFound, PluginLoadError):
            continue
    return names


def store_details(store: ImageStore) -> dict[str, str]:
    """The provider details of a store row (secrets included: never return them to a client)."""
    try:
        raw = json.loads(store.details or "{}")
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}


def clean_path(path: str) -> str:
    """A store-relative object path: no leading slash, no ``..``, no empty parts."""
    parts = path.replace("\\", "/").split("/")
    norm = posixpath.normpath("/" + "/".join(parts)).lstrip("/")
    if not norm or norm == "." or ".." in parts:
        raise ImageStoreError(f"Invalid object path {path!r}")
    return norm


def write_chunks(out: FileIO, chunks: Iterable[bytes]) -> int:
    """Write every chunk to an unbuffered file, whole (short writes are continued); the bytes written."""
    written = 0
    for chunk in chunks:
        view = memoryview(chunk)
        while view:
            n = out.write(view)
            written += n
            view = view[n:]
    return written


def read_chunks(stream: BinaryIO, chunk: int = CHUNK) -> Iterator[bytes]:
    """Iterate a binary stream in chunks, closing it at the end."""
    try:
        while True:
            data = stream.read(chunk)
            if not data:
                return
            yield data
    finally:
        stream.close()


__all__ = [
    "CHUNK", "IMAGE_STORES", "ImageStoreDriver", "ImageStoreError", "clean_path", "provider_class",
    "provider_names", "read_chunks", "store_details", "write_chunks",
]  # fmt: skip
