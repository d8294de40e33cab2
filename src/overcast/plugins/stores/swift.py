"""The Swift image store (python-swiftclient).

The url is the auth URL (``http://swift.example.com:8080/auth/v1.0`` or a Keystone ``.../v3``). Details:
``account``*, ``username``*, ``key``*, ``container`` (default ``overcast``), ``authversion`` (``1``
default, ``2.0`` or ``3``; with Keystone the account is the project), ``region``, ``storagepolicy``,
``tempurlkey`` (enables temporary GET URLs; set on the account when it has none), ``insecure`` (skip
TLS verification), ``cacert`` (a CA bundle file).

A Swift object only becomes visible once its (chunked) PUT completes, so writes are atomic.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from overcast.errors import InvalidParameterValue
from overcast.plugins.storage import CHUNK, ImageStoreDriver, ImageStoreError, clean_path
from overcast.plugins.stores.s3 import _flag


class _Reader:
    """A swiftclient body generator as a BinaryIO-like reader."""

    def __init__(self, body: Any) -> None:
        self._iter = iter(body)
        self._body = body
        self._buf = b""

    def read(self, n: int = -1) -> bytes:
        while n is None or n < 0 or len(self._buf) < n:
            try:
                self._buf += next(self._iter)
            except StopIteration:
                break
        if n is None or n < 0:
            out, self._buf = self._buf, b""
        else:
            out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def close(self) -> None:
        close = getattr(self._body, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> _Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SwiftImageStore(ImageStoreDriver):
    provider = "Swift"
    region_wide = True

    def __init__(self, url: str, details: dict[str, str]) -> None:
        super().__init__(url, details)
        self.validate(url, details)
        self.container = details.get("container") or "overcast"
        self._conn: Any = None

    @classmethod
    def validate(cls, url: str, details: dict[str, str]) -> None:
        parts = urlsplit((url or "").strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidParameterValue(f"Invalid url {url} for parameter url: a Swift image store takes the auth"
                                        " URL, e.g. http://swift.example.com:8080/auth/v1.0")
        for key in ("account", "username", "key"):
            if not (details.get(key) or "").strip():
                raise InvalidParameterValue(f"Please specify the Swift {key} (parameter details[{key}])")
        version = details.get("authversion") or "1"
        if version not in ("1", "1.0", "2", "2.0", "3"):
            raise InvalidParameterValue(f"Invalid value {version} for parameter details[authversion]: use 1, 2.0"
                                        " or 3")
        container = details.get("container")
        if container is not None and (not container or "/" in container or len(container) > 256):
            raise InvalidParameterValue(f"Invalid container name {container} (parameter details[container])")
        _flag(details, "insecure", False)
        ca = details.get("cacert")
        if ca and not os.path.isfile(ca):
            raise InvalidParameterValue(f"No CA bundle file {ca} (parameter details[cacert])")

    @property
    def conn(self) -> Any:
        if self._conn is None:
            from swiftclient.client import Connection

            d = self.details
            version = d.get("authversion") or "1"
            if version.startswith("1"):
                user, options = f"{d['account']}:{d['username']}", {}
            else:
                user, options = d["username"], {"project_name": d["account"], "tenant_name": d["account"]}
            if d.get("region"):
                options["region_name"] = d["region"]
            self._conn = Connection(authurl=self.url, user=user, key=d["key"], auth_version=version.split(".")[0],
                                    os_options=options, insecure=_flag(d, "insecure", False),
                                    cacert=d.get("cacert") or None, retries=2, timeout=120)
        return self._conn

    def _fail(self, what: str, exc: Exception) -> ImageStoreError:
        return ImageStoreError(f"Swift {what} failed on container {self.container}: {exc}")

    def _errors(self) -> tuple[type[Exception], ...]:
        from swiftclient.exceptions import ClientException

        return (ClientException, OSError)

    def probe(self) -> None:
        from swiftclient.exceptions import ClientException

        try:
            headers = {"X-Storage-Policy": self.details["storagepolicy"]} if self.details.get("storagepolicy") else {}
            self.conn.put_container(self.container, headers=headers)
            key = self.details.get("tempurlkey")
            if key:
                account = self.conn.head_account()
                have = account.get("x-account-meta-temp-url-key")
                if have is None:
                    self.conn.post_account({"X-Account-Meta-Temp-URL-Key": key})
                elif have != key:
                    raise InvalidParameterValue("details[tempurlkey] differs from the Swift account's temp URL key"
                                                " (parameter details[tempurlkey])")
        except (ClientException, OSError) as exc:
            raise InvalidParameterValue(f"The Swift image store at {self.url} can't be used: {exc}") from exc
        super().probe()

    def put(self, path: str, chunks: Iterable[bytes]) -> int:
        total = 0

        def counted() -> Iterator[bytes]:
            nonlocal total
            for chunk in chunks:
                if chunk:
                    total += len(chunk)
                    yield chunk

        try:
            self.conn.put_object(self.container, clean_path(path), contents=counted())
        except self._errors() as exc:
            raise self._fail(f"upload of {path}", exc) from exc
        return total

    def open(self, path: str) -> BinaryIO:
        from swiftclient.exceptions import ClientException

        try:
            _headers, body = self.conn.get_object(self.container, clean_path(path), resp_chunk_size=CHUNK)
        except ClientException as exc:
            if exc.http_status == 404:
                raise ImageStoreError(f"No object {path} in the image store") from None
            raise self._fail(f"read of {path}", exc) from exc
        except OSError as exc:
            raise self._fail(f"read of {path}", exc) from exc
        return _Reader(body)  # type: ignore[return-value]

    def size(self, path: str) -> int | None:
        from swiftclient.exceptions import ClientException

        try:
            headers = self.conn.head_object(self.container, clean_path(path))
        except ClientException as exc:
            if exc.http_status == 404:
                return None
            raise self._fail(f"stat of {path}", exc) from exc
        except OSError as exc:
            raise self._fail(f"stat of {path}", exc) from exc
        return int(headers["content-length"])

    def delete(self, path: str) -> None:
        from swiftclient.exceptions import ClientException

        try:
            self.conn.delete_object(self.container, clean_path(path))
        except ClientException as exc:
            if exc.http_status != 404:
                raise self._fail(f"delete of {path}", exc) from exc
        except OSError as exc:
            raise self._fail(f"delete of {path}", exc) from exc

    def list(self, prefix: str) -> Iterator[tuple[str, int]]:
        try:
            _headers, items = self.conn.get_container(self.container, prefix=prefix, full_listing=True)
        except self._errors() as exc:
            raise self._fail("listing", exc) from exc
        for item in items:
            if "name" in item:
                yield item["name"], int(item.get("bytes", 0))

    def download_url(self, path: str, expires_s: int) -> str | None:
        key = self.details.get("tempurlkey")
        if not key:
            return None
        from swiftclient.utils import generate_temp_url

        try:
            storage_url, _token = self.conn.get_auth()
        except self._errors() as exc:
            raise self._fail("authentication", exc) from exc
        parts = urlsplit(storage_url)
        signed = generate_temp_url(f"{parts.path}/{self.container}/{clean_path(path)}", int(expires_s), key, "GET")
        return f"{parts.scheme}://{parts.netloc}{signed}"

    def usage(self) -> tuple[int, int | None]:
        try:
            headers = self.conn.head_container(self.container)
        except self._errors() as exc:
            raise self._fail("stat", exc) from exc
        return int(headers.get("x-container-bytes-used", 0)), None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
