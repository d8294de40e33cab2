"""The NFS image store: a directory on this machine (an NFS export mounted here, or a plain directory).

URLs:
- ``file:///srv/secondary`` or a plain absolute path: that directory;
- ``nfs://host/export/path``: ``details[mountpoint]`` when given; else where ``host:/export/path`` is
  mounted on this machine (``/proc/mounts``); else, for simulated clouds, ``<data dir>/nfs/<host>/<path>``.

Writes go to a temporary file beside the target and are renamed into place, so readers never see a
partial object; ``local_writer`` hands that file out for zero-copy writes (template downloads).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from io import FileIO
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

from overcast.errors import InvalidParameterValue
from overcast.plugins.storage import ImageStoreDriver, ImageStoreError, clean_path, write_chunks

SCHEMES = ("nfs", "cifs", "file")


def _mounted(host: str, export: str) -> Path | None:
    """Where ``host:export`` is mounted on this machine, if it is."""
    try:
        lines = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return None
    want = {f"{host}:{export.rstrip('/') or '/'}", f"{host}:{export.rstrip('/')}/"}
    for line in lines:
        parts = line.split()
        if len(parts) >= 3 and parts[2].startswith("nfs") and parts[0] in want:
            return Path(parts[1].replace("\\040", " "))
    return None


class NfsImageStore(ImageStoreDriver):
    provider = "NFS"
    region_wide = False

    def __init__(self, url: str, details: dict[str, str]) -> None:
        super().__init__(url, details)
        self.root = self.resolve_root(url, details)

    @classmethod
    def validate(cls, url: str, details: dict[str, str]) -> None:
        raw = (url or "").strip()
        if not raw:
            raise InvalidParameterValue("Please specify the url of the NFS image store (parameter url)")
        if raw.startswith("/"):
            return
        parts = urlsplit(raw)
        scheme = parts.scheme.lower()
        if scheme not in SCHEMES:
            raise InvalidParameterValue(f"Invalid url {url} for parameter url: an NFS image store takes nfs://,"
                                        " cifs:// or file:// URLs or an absolute directory path")
        if scheme in ("nfs", "cifs") and (not parts.hostname or not parts.path or parts.path == "/"):
            raise InvalidParameterValue(f"Invalid url {url} for parameter url: it needs a host and a path, e.g."
                                        f" {scheme}://10.1.1.2/export/secondary")
        if scheme == "file" and (not parts.path or parts.path == "/"):
            raise InvalidParameterValue(f"Invalid url {url} for parameter url: file:// needs a directory")
        mount = details.get("mountpoint")
        if mount is not None and not mount.startswith("/"):
            raise InvalidParameterValue(f"Invalid value {mount} for parameter details[mountpoint]: it must be an"
                                        " absolute directory path")

    @classmethod
    def resolve_root(cls, url: str, details: dict[str, str]) -> Path:
        raw = url.strip()
        if raw.startswith("/"):
            return Path(raw)
        parts = urlsplit(raw)
        path = unquote(parts.path)
        if parts.scheme.lower() == "file":
            return Path(path)
        if details.get("mountpoint"):
            return Path(details["mountpoint"])
        host = parts.hostname or "localhost"
        found = _mounted(host, path)
        if found is not None:
            return found
        base = cls.data_dir if cls.data_dir is not None else Path.home() / ".overcast"
        return Path(base) / "nfs" / host / path.strip("/")

    def _file(self, path: str) -> Path:
        return self.root / clean_path(path)

    def local_path(self, path: str) -> Path | None:
        return self._file(path)

    def put(self, path: str, chunks: Iterable[bytes]) -> int:
        with self._writing(path) as out:
            return write_chunks(out, chunks)

    def local_writer(self, path: str) -> AbstractContextManager[FileIO]:
        return self._writing(path)

    @contextmanager
    def _writing(self, path: str) -> Iterator[FileIO]:
        """A temporary file beside the target, renamed into place when the block ends without an error."""
        target = self._file(path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
        except OSError as exc:
            raise ImageStoreError(f"Can't write to {target.parent}: {exc.strerror or exc}") from exc
        try:
            with FileIO(fd, "r+", closefd=True) as out:
                yield out
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException as exc:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            if isinstance(exc, OSError):
                raise ImageStoreError(f"Can't write {path}: {exc.strerror or exc}") from exc
            raise

    def open(self, path: str) -> BinaryIO:
        try:
            return open(self._file(path), "rb")  # noqa: SIM115 - the caller closes it
        except FileNotFoundError:
            raise ImageStoreError(f"No object {path} in the image store") from None
        except OSError as exc:
            raise ImageStoreError(f"Can't read {path}: {exc.strerror or exc}") from exc

    def size(self, path: str) -> int | None:
        try:
            st = self._file(path).stat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ImageStoreError(f"Can't read {path}: {exc.strerror or exc}") from exc
        return st.st_size

    def delete(self, path: str) -> None:
        target = self._file(path)
        try:
            target.unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise ImageStoreError(f"Can't delete {path}: {exc.strerror or exc}") from exc
        parent = target.parent  # tidy empty folders up to the root
        while parent != self.root and self.root in parent.parents:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    def list(self, prefix: str) -> Iterator[tuple[str, int]]:
        folder = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = self._file(folder) if folder else self.root  # walk only below the prefix's folder
        if not start.is_dir():
            return
        for dirpath, _dirs, files in os.walk(start):
            for name in files:
                if name.endswith(".part") and name.startswith("."):
                    continue
                full = Path(dirpath) / name
                rel = full.relative_to(self.root).as_posix()
                if rel.startswith(prefix):
                    try:
                        yield rel, full.stat().st_size
                    except FileNotFoundError:
                        continue

    def download_url(self, path: str, expires_s: int) -> str | None:
        return None

    def usage(self) -> tuple[int, int | None]:
        try:
            du = shutil.disk_usage(self.root)
        except OSError:
            return 0, None
        return du.used, du.total
