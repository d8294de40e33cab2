"""Byte transfers on Overcast's own HTTP server, outside the API: browser uploads and extract downloads.

- ``POST /upload/{id}``: the URL getUploadParamsForTemplate / getUploadParamsForIso answer. Headers
  ``X-signature``, ``X-expires`` and ``X-metadata`` (as CloudStack's SSVM takes them); the body is
  ``multipart/form-data`` with the file as its (first) file part (the UI sends ``files[]``), or the
  raw file. A missing, altered or expired signature is a 403. The file then gets the checks of a
  download (size cap, checksum, format) and the template becomes ready.
- ``GET /download/{token}``: the URL extractTemplate / extractIso / extractVolume answer when the image
  store has no presigned URLs of its own (NFS); the token is signed and carries its expiry (403 after).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from overcast.db.models import ImageStore
from overcast.plugins.storage import CHUNK, ImageStoreError, read_chunks
from overcast.services import Services
from overcast.storage.signed import read_token, server_secret, valid

logger = logging.getLogger(__name__)

GB = 1024 ** 3


def _error(status: int, text: str) -> Response:
    return JSONResponse({"errorcode": status, "errortext": text}, status_code=status)


def upload_parts(metadata: str, post_path: str, expires: str) -> tuple[str, ...]:
    """What an upload signature covers (getUploadParams signs the same parts)."""
    return ("upload", metadata, post_path, expires)


def _expired(expires: str) -> bool:
    try:
        when = datetime.fromisoformat(expires.replace("Z", "+00:00"))
    except ValueError:
        return True
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when < datetime.now(UTC)


def routes(services: Services) -> list[Route]:
    async def upload(request: Request) -> Response:
        from overcast.engine.template_downloads import claim_upload

        template_uuid = request.path_params["id"]
        signature = request.headers.get("x-signature", "")
        expires = request.headers.get("x-expires", "")
        metadata = request.headers.get("x-metadata", "")
        if not (signature and expires and metadata):
            return _error(403, "The upload needs the X-signature, X-expires and X-metadata headers that"
                               " getUploadParamsForTemplate/Iso returned")
        secret = await run_in_threadpool(server_secret, services)
        if not valid(secret, signature, *upload_parts(metadata, f"/upload/{template_uuid}", expires)):
            return _error(403, "Invalid upload signature")
        if _expired(expires):
            return _error(403, f"The upload URL expired at {expires}")
        try:
            meta = json.loads(base64.urlsafe_b64decode(metadata + "=" * (-len(metadata) % 4)))
        except ValueError:
            return _error(403, "Invalid upload metadata")
        if not isinstance(meta, dict) or meta.get("id") != template_uuid:
            return _error(403, "The upload metadata is not for this URL")
        length = request.headers.get("content-length")
        cap = int(services.settings.get("max.template.iso.size")) * GB
        if length is not None and (not length.isdigit() or int(length) <= 0):
            return _error(400, "The upload is empty (Content-Length)")
        if length is not None and int(length) > cap + CHUNK:
            return _error(413, f"The upload is larger than the limit of {cap} bytes (max.template.iso.size)")
        work = await run_in_threadpool(claim_upload, services, template_uuid)
        if work is None:
            return _error(409, "This template or ISO is not waiting for an upload (uploaded already, in progress,"
                               " or removed)")
        spool_dir = Path(services.config.data_dir) / "tmp"
        spool_dir.mkdir(parents=True, exist_ok=True)
        fd, spool_name = tempfile.mkstemp(dir=spool_dir, prefix="upload-")
        error: str | None = None
        stored = False
        try:
            with os.fdopen(fd, "wb") as spool:
                error = await _receive(request, spool, cap)
            if error is None:
                error = await run_in_threadpool(_store_spooled, services, work, spool_name)
                stored = True  # run_upload recorded the outcome, good or bad
        except Exception as exc:  # a client that went away, a malformed multipart body...
            logger.info("Upload of %s failed: %s", template_uuid, exc)
            error = f"The upload failed: {type(exc).__name__} {exc}".strip()
        finally:
            try:
                os.unlink(spool_name)
            except OSError:
                pass
            if error is not None and not stored:
                await run_in_threadpool(_fail, services, work, error)
        if error is not None:
            return _error(400, error)
        return JSONResponse({"id": template_uuid, "status": "Upload Complete"})

    async def _receive(request: Request, spool: object, cap: int) -> str | None:
        """Write the request's file into ``spool``; an error text, or None."""
        write = spool.write  # type: ignore[attr-defined]
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            form = await request.form(max_files=1, max_fields=16)
            try:
                files = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
                if not files:
                    return "The multipart upload has no file part"
                while chunk := await files[0].read(CHUNK):
                    write(chunk)
            finally:
                await form.close()
            return None
        written = 0
        async for chunk in request.stream():
            written += len(chunk)
            if written > cap:
                return f"The upload is larger than the limit of {cap} bytes (max.template.iso.size)"
            write(chunk)
        return None

    def _fail(svc: Services, work: object, error: str) -> None:
        from overcast.engine.template_downloads import TemplateDownloads, Work

        assert isinstance(work, Work)
        (svc.downloads or TemplateDownloads(svc)).finish_error(work, error)

    def _store_spooled(svc: Services, work: object, path: str) -> str | None:
        from overcast.engine.template_downloads import Work, run_upload

        assert isinstance(work, Work)
        with open(path, "rb") as f:
            return run_upload(svc, work, read_chunks(f))

    async def download(request: Request) -> Response:
        secret = await run_in_threadpool(server_secret, services)
        payload = read_token(secret, request.path_params["token"])
        if payload is None:
            return _error(403, "This download link is invalid or has expired")

        def open_object() -> tuple[Iterator[bytes], int | None] | None:
            with services.db.reader() as s:
                store = s.get(ImageStore, int(payload["store"]))
            if store is None or store.removed is not None:
                return None
            driver = services.image_store(store)
            try:
                size = driver.size(payload["path"])
                if size is None:
                    return None
                return read_chunks(driver.open(payload["path"])), size
            except ImageStoreError:
                logger.warning("Could not read %s from image store %s", payload["path"], store.id, exc_info=True)
                return None

        opened = await run_in_threadpool(open_object)
        if opened is None:
            return _error(404, "The object of this download link is gone")
        chunks, size = opened
        name = str(payload.get("name") or "download").replace('"', "")
        headers = {"content-disposition": f'attachment; filename="{name}"'}
        if size is not None:
            headers["content-length"] = str(size)
        return StreamingResponse(chunks, media_type="application/octet-stream", headers=headers)

    return [Route("/upload/{id}", upload, methods=["POST"]),
            Route("/download/{token}", download, methods=["GET"])]


__all__ = ["routes", "upload_parts"]
