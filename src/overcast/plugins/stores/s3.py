"""The S3 image store (boto3): any S3 protocol server (AWS, Ceph RGW, MinIO...).

Details (``addImageStore`` ``details[i].key/value`` or ``addImageStoreS3`` parameters):
``accesskey``*, ``secretkey``*, ``bucket``*, ``endpoint`` (host[:port] or a URL; AWS when absent),
``usehttps`` (default true), ``region`` (default us-east-1), ``pathstyle`` (true: ``endpoint/bucket/key``
addressing, the default for a custom endpoint), ``verifyssl`` (default true), ``cabundle`` (a CA bundle
file for the server's certificate), ``s3signer`` (``AWSS3V4SignerType`` default, ``S3SignerType`` for
V2), ``connectiontimeout``/``sockettimeout`` (ms), ``maxerrorretry``, ``prefix`` (a key prefix inside
the bucket). The url, when given, may hold the endpoint (``https://s3.example.com:9000``).

Uploads are multipart, streamed part by part (nothing is buffered beyond one part), and only become
visible when the upload completes; a failed upload is aborted.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from overcast.errors import InvalidParameterValue
from overcast.plugins.storage import ImageStoreDriver, ImageStoreError, clean_path

#: Multipart part size (S3's minimum is 5 MiB for every part but the last).
PART = 16 * 1024 * 1024
TRUE = ("true", "1", "yes", "on")
FALSE = ("false", "0", "no", "off")


def _flag(details: dict[str, str], key: str, default: bool) -> bool:
    value = details.get(key)
    if value is None or value == "":
        return default
    low = value.strip().lower()
    if low in TRUE:
        return True
    if low in FALSE:
        return False
    raise InvalidParameterValue(f"Invalid value {value} for parameter details[{key}]: use true or false")


def _int(details: dict[str, str], key: str) -> int | None:
    value = details.get(key)
    if value is None or value == "":
        return None
    try:
        n = int(value)
    except ValueError:
        raise InvalidParameterValue(f"Invalid value {value} for parameter details[{key}]: a number is"
                                    " expected") from None
    if n < 0:
        raise InvalidParameterValue(f"Invalid value {value} for parameter details[{key}]: it can't be negative")
    return n


class _Body:
    """A botocore streaming body as a BinaryIO-like reader."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def read(self, n: int = -1) -> bytes:
        return self._body.read(None if n is None or n < 0 else n)

    def close(self) -> None:
        self._body.close()

    def __enter__(self) -> _Body:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class S3ImageStore(ImageStoreDriver):
    provider = "S3"
    region_wide = True

    def __init__(self, url: str, details: dict[str, str]) -> None:
        super().__init__(url, details)
        self.validate(url, details)
        self.bucket = details["bucket"]
        self.prefix = details.get("prefix", "").strip("/")
        self._client: Any = None

    @classmethod
    def endpoint_url(cls, url: str, details: dict[str, str]) -> str | None:
        https = _flag(details, "usehttps", True)
        endpoint = (details.get("endpoint") or "").strip() or (url or "").strip()
        if not endpoint:
            return None
        if "://" not in endpoint:
            endpoint = ("https://" if https else "http://") + endpoint
        return endpoint.rstrip("/")

    @classmethod
    def validate(cls, url: str, details: dict[str, str]) -> None:
        for key in ("accesskey", "secretkey", "bucket"):
            if not (details.get(key) or "").strip():
                raise InvalidParameterValue(f"Please specify the S3 {key} (parameter details[{key}])")
        bucket = details["bucket"]
        if not 3 <= len(bucket) <= 63 or bucket != bucket.strip():
            raise InvalidParameterValue(f"Invalid bucket name {bucket} (parameter details[bucket])")
        for key in ("usehttps", "pathstyle", "verifyssl", "usetcpkeepalive"):
            _flag(details, key, True)
        for key in ("connectiontimeout", "sockettimeout", "maxerrorretry", "connectionttl"):
            _int(details, key)
        signer = details.get("s3signer")
        if signer and signer not in ("AWSS3V4SignerType", "S3SignerType"):
            raise InvalidParameterValue(f"Invalid value {signer} for parameter details[s3signer]: use"
                                        " AWSS3V4SignerType or S3SignerType")
        ca = details.get("cabundle")
        if ca and not os.path.isfile(ca):
            raise InvalidParameterValue(f"No CA bundle file {ca} (parameter details[cabundle])")
        endpoint = cls.endpoint_url(url, details)
        if endpoint is not None:
            parts = urlsplit(endpoint)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise InvalidParameterValue(f"Invalid S3 endpoint {endpoint} (parameter details[endpoint])")

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            d = self.details
            endpoint = self.endpoint_url(self.url, d)
            timeout = _int(d, "connectiontimeout")
            read_timeout = _int(d, "sockettimeout")
            retries = _int(d, "maxerrorretry")
            path_style = _flag(d, "pathstyle", endpoint is not None)
            config = Config(
                signature_version="s3" if d.get("s3signer") == "S3SignerType" else "s3v4",
                s3={"addressing_style": "path" if path_style else "auto"},
                connect_timeout=timeout / 1000 if timeout else 30,
                read_timeout=read_timeout / 1000 if read_timeout else 120,
                retries={"max_attempts": retries if retries is not None else 3, "mode": "standard"},
                tcp_keepalive=_flag(d, "usetcpkeepalive", False),
            )  # fmt: skip
            verify: bool | str = d.get("cabundle") or _flag(d, "verifyssl", True)
            self._client = boto3.session.Session().client(
                "s3", endpoint_url=endpoint, aws_access_key_id=d["accesskey"], aws_secret_access_key=d["secretkey"],
                region_name=d.get("region") or "us-east-1", config=config, verify=verify,
            )  # fmt: skip
        return self._client

    def _key(self, path: str) -> str:
        key = clean_path(path)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _fail(self, what: str, exc: Exception) -> ImageStoreError:
        return ImageStoreError(f"S3 {what} failed on bucket {self.bucket}: {exc}")

    def put(self, path: str, chunks: Iterable[bytes]) -> int:
        from botocore.exceptions import BotoCoreError, ClientError

        key, c = self._key(path), self.client
        buf = bytearray()
        total = 0
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        try:
            for chunk in chunks:
                buf += chunk
                total += len(chunk)
                while len(buf) >= PART:
                    if upload_id is None:
                        upload_id = c.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]
                    n = len(parts) + 1
                    etag = c.upload_part(Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=n,
                                         Body=bytes(buf[:PART]))["ETag"]
                    parts.append({"ETag": etag, "PartNumber": n})
                    del buf[:PART]
            if upload_id is None:
                c.put_object(Bucket=self.bucket, Key=key, Body=bytes(buf))
            else:
                if buf:
                    n = len(parts) + 1
                    etag = c.upload_part(Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=n,
                                         Body=bytes(buf))["ETag"]
                    parts.append({"ETag": etag, "PartNumber": n})
                c.complete_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                            MultipartUpload={"Parts": parts})
                upload_id = None
        except (BotoCoreError, ClientError) as exc:
            raise self._fail(f"upload of {path}", exc) from exc
        finally:
            if upload_id is not None:
                try:
                    c.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
                except (BotoCoreError, ClientError):
                    pass
        return total

    def open(self, path: str) -> BinaryIO:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(path))["Body"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise ImageStoreError(f"No object {path} in the image store") from None
            raise self._fail(f"read of {path}", exc) from exc
        except BotoCoreError as exc:
            raise self._fail(f"read of {path}", exc) from exc
        return _Body(body)  # type: ignore[return-value]

    def size(self, path: str) -> int | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(path))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return None
            raise self._fail(f"stat of {path}", exc) from exc
        except BotoCoreError as exc:
            raise self._fail(f"stat of {path}", exc) from exc
        return int(head["ContentLength"])

    def delete(self, path: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(path))
        except (BotoCoreError, ClientError) as exc:
            raise self._fail(f"delete of {path}", exc) from exc

    def list(self, prefix: str) -> Iterator[tuple[str, int]]:
        from botocore.exceptions import BotoCoreError, ClientError

        base = f"{self.prefix}/" if self.prefix else ""
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                          Prefix=base + prefix)
            for page in pages:
                for item in page.get("Contents", ()):
                    yield item["Key"][len(base):], int(item["Size"])
        except (BotoCoreError, ClientError) as exc:
            raise self._fail("listing", exc) from exc

    def download_url(self, path: str, expires_s: int) -> str | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self.client.generate_presigned_url("get_object", Params={"Bucket": self.bucket,
                                                      "Key": self._key(path)}, ExpiresIn=int(expires_s))
        except (BotoCoreError, ClientError) as exc:
            raise self._fail(f"signing a URL for {path}", exc) from exc

    def usage(self) -> tuple[int, int | None]:
        return sum(size for _, size in self.list("")), None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
