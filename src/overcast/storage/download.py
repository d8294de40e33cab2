"""Fetching a template or ISO from an http(s) URL: streamed, size-capped, checksummed, never redirected.

Security (CVE-2024-29007, SSRF through template URLs):

- redirects are never followed: a 3xx answer is an error that says so;
- the host name is resolved once, every address it resolves to must be a public (global unicast)
  address unless ``allow_private`` is set (loopback, link-local, private, unique-local, the cloud
  metadata addresses 169.254.169.254 and fd00:ec2::254, multicast, reserved, unspecified...), and the
  connection is made to the vetted address itself (the ``Host`` header and the TLS server name carry
  the original name), so a second DNS answer cannot switch the target (DNS rebinding).

Memory stays bounded: the body is read in chunks of ``CHUNK`` bytes and handed on as an iterator,
hashed as it passes (on a thread of its own, overlapping the next read); nothing holds more than two
chunks plus the format sniffer's small head and tail. The transport is the standard library's
``http.client``, which never follows redirects and reads a chunk in one call (httpx's per-64-KiB
parsing made downloads run at half the speed of a disk copy; see docs/benchmarks.md).

Zero copy: when the body goes to a file on this machine (``chunks(into=fd)``, an NFS-kind store), the
transfer is plain HTTP with a Content-Length, and no checksum is asked, only the first chunk (which
holds the headers the format checks read) passes through Python; the rest moves from the socket to
the file in the kernel (``os.splice`` through a pipe, Linux), never more than the Content-Length.
Anything else (HTTPS, chunked encoding, no length, a checksum, an object store, another OS) takes the
chunk loop.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import http.client
import ipaddress
import os
import select
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from overcast.storage.formats import HEAD

CHUNK = 1 << 20
#: Bytes that always pass through Python before the rest may be spliced: the format checks read them.
SPLICE_AFTER = max(CHUNK, HEAD)

#: CloudStack's download states (VMTemplateStorageResourceAssoc.Status) this pipeline uses.
NOT_DOWNLOADED = "NOT_DOWNLOADED"
DOWNLOAD_IN_PROGRESS = "DOWNLOAD_IN_PROGRESS"
DOWNLOADED = "DOWNLOADED"
DOWNLOAD_ERROR = "DOWNLOAD_ERROR"
ABANDONED = "ABANDONED"
UPLOADED = "UPLOADED"
NOT_UPLOADED = "NOT_UPLOADED"
UPLOAD_IN_PROGRESS = "UPLOAD_IN_PROGRESS"
UPLOAD_ERROR = "UPLOAD_ERROR"

#: Checksum prefixes (Java algorithm names, exactly as CloudStack takes them) and hashlib names.
ALGORITHMS = {"MD5": "md5", "SHA-1": "sha1", "SHA-224": "sha224", "SHA-256": "sha256", "SHA-384": "sha384",
              "SHA-512": "sha512"}  # fmt: skip

#: Addresses refused even if some future ``ipaddress`` release called them global.
METADATA_ADDRESSES = frozenset({ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254"),
                                ipaddress.ip_address("100.100.100.200")})  # fmt: skip


class DownloadError(Exception):
    """A download that cannot complete; ``message`` is fit for the template's status text."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Checksum:
    algorithm: str  # a key of ALGORITHMS
    digest: str  # lower-case hex

    @classmethod
    def parse(cls, value: str | None) -> Checksum | None:
        """``{SHA-256}ab12...`` or a bare hex MD5; None for no checksum. Raises ValueError when malformed."""
        if value is None or not value.strip():
            return None
        text = value.strip()
        algorithm, digest = "MD5", text
        if text.startswith("{"):
            end = text.find("}")
            if end < 0:
                raise ValueError(f"checksum {value}: the prefix is written {{ALGORITHM}}")
            algorithm, digest = text[1:end], text[end + 1:]
        if algorithm not in ALGORITHMS:
            raise ValueError(f"checksum algorithm {algorithm} is not supported; use one of {', '.join(ALGORITHMS)}")
        expected = hashlib.new(ALGORITHMS[algorithm]).digest_size * 2
        if len(digest) != expected or any(c not in "0123456789abcdefABCDEF" for c in digest):
            raise ValueError(f"checksum {value}: expected {expected} hexadecimal digits of a {algorithm} digest")
        return cls(algorithm, digest.lower())

    def hasher(self) -> Any:
        return hashlib.new(ALGORITHMS[self.algorithm])


def address_refusal(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why ``ip`` is not a public address a download may reach, or None when it is."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return address_refusal(ip.ipv4_mapped)
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    for test, what in ((ip.is_loopback, "a loopback address"), (ip.is_link_local, "a link-local address"),
                       (ip.is_unspecified, "an unspecified address"), (ip.is_multicast, "a multicast address"),
                       (ip.is_private, "a private address"), (ip.is_reserved, "a reserved address")):
        if test:
            return what
    if not ip.is_global:
        return "not a public address"
    return None


def resolve(host: str, port: int, *, allow_private: bool) -> str:
    """Resolve ``host`` once and vet every address; returns the address to connect to."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise DownloadError(f"Unable to resolve the host {host} of the URL: {exc}") from None
    addresses: list[str] = []
    for family, _, _, _, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        text = str(sockaddr[0]).split("%", 1)[0]
        if text not in addresses:
            addresses.append(text)
    if not addresses:
        raise DownloadError(f"Unable to resolve the host {host} of the URL")
    if not allow_private:
        for text in addresses:
            why = address_refusal(ipaddress.ip_address(text))
            if why is not None:
                raise DownloadError(
                    f"The URL host {host} resolves to {text}, {why}; downloads from non-public addresses are"
                    " refused unless the global setting template.download.allow.private.addresses is true")
    return addresses[0]


@dataclass
class FetchLimits:
    max_bytes: int
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    allow_private: bool = False


class Download:
    """One streaming GET of a template URL. Iterate :meth:`chunks` to receive the body.

    ``progress(done, total)`` is called as bytes arrive (total None when the server gave no length),
    at most about once a second. Errors raise :class:`DownloadError`; a checksum mismatch is raised
    after the last chunk, so a consumer writing a store object must not publish it before the
    iterator is exhausted (an atomic put does exactly that). ``spliced`` counts the bytes that went
    straight into the file (see :meth:`chunks`).
    """

    def __init__(self, url: str, limits: FetchLimits, checksum: Checksum | None = None,
                 progress: Callable[[int, int | None], None] | None = None) -> None:
        self.url = url
        self.limits = limits
        self.checksum = checksum
        self.progress = progress
        self.total: int | None = None
        self.received = 0
        self.spliced = 0
        self.digest: str | None = None

    def _connection(self) -> tuple[http.client.HTTPConnection, str, dict[str, str]]:
        parts = urlsplit(self.url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise DownloadError(f"Unsupported URL scheme {parts.scheme!r}: use http:// or https://")
        host = parts.hostname
        if not host:
            raise DownloadError("The URL has no host")
        if parts.username or parts.password:
            raise DownloadError("URLs with user names or passwords are not supported")
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError:
            raise DownloadError("The URL has an invalid port") from None
        address = resolve(host, port, allow_private=self.limits.allow_private)
        default_port = (scheme == "https" and port == 443) or (scheme == "http" and port == 80)
        host_header = (f"[{host}]" if ":" in host else host) + ("" if default_port else f":{port}")
        timeout = self.limits.connect_timeout
        conn: http.client.HTTPConnection
        if scheme == "https":
            conn = _VettedHTTPS(address, port, server_name=host, timeout=timeout)
        else:
            conn = http.client.HTTPConnection(address, port, timeout=timeout)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return conn, target, {"Host": host_header, "Accept-Encoding": "identity", "User-Agent": "Overcast",
                              "Connection": "close"}

    def chunks(self, into: int | None = None) -> Iterator[bytes]:
        """The body, chunk by chunk. ``into``: the descriptor of the file the caller writes every chunk to,
        in order, before asking for the next. With it, once the first ``SPLICE_AFTER`` bytes have been
        yielded, the rest of the body may be written into that file at its current position by the
        download itself (zero copy, when :meth:`_can_splice`); the caller sees fewer bytes than the
        file gets, so it takes the file's size and last bytes from the file."""
        conn, target, headers = self._connection()
        hashing = _Hashing(self.checksum.hasher()) if self.checksum else None
        cap = self.limits.max_bytes
        try:
            try:
                conn.putrequest("GET", target, skip_host=True, skip_accept_encoding=True)
                for name, value in headers.items():
                    conn.putheader(name, value)
                conn.endheaders()
                response = conn.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                raise DownloadError(f"Could not fetch the URL: {exc}") from None
            if conn.sock is not None:
                conn.sock.settimeout(self.limits.read_timeout)
            if 300 <= response.status < 400:
                where = response.getheader("location", "")
                raise DownloadError(
                    f"The server answered HTTP {response.status} redirecting to {where or 'elsewhere'}; redirects"
                    " are not followed for template downloads (CVE-2024-29007): register the final URL")
            if response.status != 200:
                raise DownloadError(f"The server answered HTTP {response.status} {response.reason} for the URL")
            length = response.getheader("content-length")
            if length is not None and length.strip().isdigit():
                self.total = int(length)
                if self.total > cap:
                    raise DownloadError(f"The file is {self.total} bytes, more than the limit of {cap} bytes"
                                        " (global setting max.template.iso.size, in GB)")
            last = 0.0
            self._report(force=True)
            splice = into is not None and self._can_splice(response)
            while True:
                if splice and self.received >= SPLICE_AFTER:
                    assert into is not None
                    yield from self._splice(response, into)
                    break
                try:
                    chunk = response.read(CHUNK)
                except TimeoutError:
                    raise DownloadError(f"The download timed out after {self.received} bytes") from None
                except (OSError, http.client.HTTPException) as exc:
                    raise DownloadError(f"The download failed after {self.received} bytes: {exc}") from None
                if not chunk:
                    break
                self.received += len(chunk)
                if self.received > cap:
                    raise DownloadError(f"The download exceeded the limit of {cap} bytes (global setting"
                                        " max.template.iso.size, in GB)")
                if hashing is not None:
                    hashing.update(chunk)
                now = time.monotonic()
                if now - last >= 1.0:
                    last = now
                    self._report()
                yield chunk
            if self.total is not None and self.received != self.total:
                raise DownloadError(f"The connection closed after {self.received} of {self.total} bytes")
        finally:
            conn.close()
            if hashing is not None:
                self.digest = hashing.finish()
        if hashing is not None:
            assert self.checksum is not None
            if self.digest != self.checksum.digest:
                raise DownloadError(f"Checksum mismatch: the {self.checksum.algorithm} of the downloaded file is"
                                    f" {self.digest}, the checksum given was {self.checksum.digest}")
        self._report(force=True)

    def _can_splice(self, response: http.client.HTTPResponse) -> bool:
        """Whether the rest of this body can move in the kernel: Linux, plain HTTP (TLS needs the bytes
        in user space), a Content-Length (never chunked), and nothing that must see every byte (a
        checksum)."""
        return (hasattr(os, "splice") and self.checksum is None and self.total is not None
                and not response.chunked and urlsplit(self.url).scheme.lower() == "http")

    def _splice(self, response: http.client.HTTPResponse, into: int) -> Iterator[bytes]:
        """Move the body's remaining bytes (up to the Content-Length, never more) from the socket into
        ``into``: socket to pipe to file with ``os.splice``. The bytes http.client has buffered already are
        yielded first, as an ordinary chunk."""
        assert self.total is not None
        left = self.total - self.received
        if left <= 0:
            return
        try:
            buffered = response.peek(1)[:left]  # what http.client holds (one socket read when it holds none)
            chunk = response.read(len(buffered)) if buffered else b""
        except TimeoutError:
            raise DownloadError(f"The download timed out after {self.received} bytes") from None
        except (OSError, http.client.HTTPException) as exc:
            raise DownloadError(f"The download failed after {self.received} bytes: {exc}") from None
        if not chunk:
            return  # the server closed the connection: the caller reports the short body
        self.received += len(chunk)
        left -= len(chunk)
        yield chunk
        if left <= 0:
            return
        sock = response.fileno()
        timeout_ms = max(1, int(self.limits.read_timeout * 1000))
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        pipe_out, pipe_in = os.pipe()
        try:
            try:
                fcntl.fcntl(pipe_in, fcntl.F_SETPIPE_SZ, CHUNK)
            except OSError:
                pass  # over the per-user pipe quota: the default size works, in more calls
            room = fcntl.fcntl(pipe_in, fcntl.F_GETPIPE_SZ)
            last = time.monotonic()
            while left > 0:
                try:
                    n = os.splice(sock, pipe_in, min(left, room), flags=os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK)
                except BlockingIOError:
                    if not poller.poll(timeout_ms):
                        raise DownloadError(f"The download timed out after {self.received} bytes") from None
                    continue
                except OSError as exc:
                    raise DownloadError(f"The download failed after {self.received} bytes: {exc}") from None
                if n == 0:
                    return  # closed early: the caller reports the short body
                while n:  # pipe to file; an error here (disk full) is the store's, raised as OSError
                    moved = os.splice(pipe_out, into, n, flags=os.SPLICE_F_MOVE)
                    if moved <= 0:
                        raise OSError(errno.EIO, "the file took no bytes")
                    n -= moved
                    left -= moved
                    self.received += moved
                    self.spliced += moved
                now = time.monotonic()
                if now - last >= 1.0:
                    last = now
                    self._report()
        finally:
            os.close(pipe_out)
            os.close(pipe_in)

    def _report(self, *, force: bool = False) -> None:
        if self.progress is not None:
            self.progress(self.received, self.total)


class _VettedHTTPS(http.client.HTTPSConnection):
    """HTTPS to an address resolved beforehand, with the URL's host name for SNI and the certificate check."""

    def __init__(self, address: str, port: int, *, server_name: str, timeout: float) -> None:
        super().__init__(address, port, timeout=timeout, context=ssl.create_default_context())
        self.server_name = server_name

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.server_name)  # type: ignore[attr-defined]


class _Hashing:
    """Feeds a hash on a thread of its own (hashlib releases the GIL on large buffers), so hashing a chunk
    overlaps reading and writing the next; at most one chunk waits."""

    def __init__(self, hasher: Any) -> None:
        self.hasher = hasher
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="download-hash")
        self.pending: Future[None] | None = None

    def update(self, chunk: bytes) -> None:
        if self.pending is not None:
            self.pending.result()
        self.pending = self.pool.submit(self.hasher.update, chunk)

    def finish(self) -> str:
        try:
            if self.pending is not None:
                self.pending.result()
        finally:
            self.pool.shutdown(wait=True)
        return str(self.hasher.hexdigest())


def percent(done: int, total: int | None) -> int:
    if not total:
        return 0
    return max(0, min(100, done * 100 // total))


class Verifying:
    """Wraps any chunk iterator (an upload body) with the same size cap and checksum as downloads."""

    def __init__(self, source: Iterator[bytes], max_bytes: int, checksum: Checksum | None) -> None:
        self.source = source
        self.max_bytes = max_bytes
        self.checksum = checksum
        self.received = 0

    def __iter__(self) -> Iterator[bytes]:
        hasher = self.checksum.hasher() if self.checksum else None
        for chunk in self.source:
            self.received += len(chunk)
            if self.received > self.max_bytes:
                raise DownloadError(f"The file exceeded the limit of {self.max_bytes} bytes (global setting"
                                    " max.template.iso.size, in GB)")
            if hasher is not None:
                hasher.update(chunk)
            yield chunk
        if hasher is not None:
            assert self.checksum is not None
            digest = hasher.hexdigest()
            if digest != self.checksum.digest:
                raise DownloadError(f"Checksum mismatch: the {self.checksum.algorithm} of the uploaded file is"
                                    f" {digest}, the checksum given was {self.checksum.digest}")


__all__ = [
    "ABANDONED", "ALGORITHMS", "DOWNLOADED", "DOWNLOAD_ERROR", "DOWNLOAD_IN_PROGRESS", "NOT_DOWNLOADED", "Checksum",
    "Download", "DownloadError", "FetchLimits", "Verifying", "address_refusal", "percent", "resolve",
]  # fmt: skip
