"""Templates and ISOs really downloaded into image stores, in the background, surviving restarts.

registerTemplate / registerIso answer at once (as CloudStack does) with the template's per-store refs
``NOT_DOWNLOADED``. Download workers (``template.download.workers`` threads on every node that runs job
workers) claim a ref with a compare-and-set on ``download_node`` (NULL to the node id), set it
``DOWNLOAD_IN_PROGRESS`` and stream the bytes into the store through the image store contract
(``services.image_store(row).put``), reporting the percentage as they go; then the format is checked
(:mod:`overcast.storage.formats`) and the ref becomes ``DOWNLOADED`` / Ready, or ``DOWNLOAD_ERROR`` with
the reason as its status text.

All the refs of one template on one store (a region-wide store serves every zone) move together.
When another store already holds the template's bytes (copyTemplate to a new zone), they are copied
from there rather than fetched again.

A crash mid-download: the ref stays claimed by a node that no longer heart-beats. Any live node's
workers take it over (the node is stopped, forgotten, or silent for ``node_timeout`` seconds) and start
it again, up to ``MAX_ATTEMPTS`` tries in all; after that the ref ends ``DOWNLOAD_ERROR`` saying it was
interrupted. No ref stays in progress forever.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from overcast.db.models import Account, ImageStore, ManagementNode, Template, TemplateZone, utcnow
from overcast.plugins.storage import ImageStoreError, read_chunks, store_details, write_chunks
from overcast.storage.download import (
    ABANDONED,
    DOWNLOAD_ERROR,
    DOWNLOAD_IN_PROGRESS,
    DOWNLOADED,
    NOT_DOWNLOADED,
    NOT_UPLOADED,
    UPLOAD_ERROR,
    UPLOAD_IN_PROGRESS,
    Checksum,
    Download,
    DownloadError,
    FetchLimits,
    Verifying,
    percent,
)
from overcast.storage.formats import FormatError, ImageInfo, Sniffer, check

if TYPE_CHECKING:
    from overcast.engine.context import EngineContext
    from overcast.services import Services

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
GB = 1024 ** 3
#: The bytes to store, given the descriptor of the local file they go to (None for an object store).
Body = Callable[[int | None], Iterable[bytes]]
#: Formats with no bytes to fetch (CloudStack reports them ready at once).
NO_BYTES = frozenset({"BAREMETAL", "EXTERNAL", "DIR"})


def simulated_store(store: ImageStore | None) -> bool:
    """Stores whose downloads are simulated (Ready at once, nothing fetched): none at all, and the
    stores ``overcast sandbox`` seeds (``details.simulated=true``), so client test suites can register
    templates from URLs that don't exist, as with CloudStack's simulator."""
    return store is None or store_details(store).get("simulated", "").lower() == "true"


def needs_download(template: Template, store: ImageStore | None) -> bool:
    return not simulated_store(store) and template.format not in NO_BYTES


def object_path(template: Template) -> str:
    """CloudStack's layout: template/tmpl/<account id>/<template id>/<uuid>.<ext>."""
    ext = "iso" if template.format == "ISO" else template.format.lower()
    return f"template/tmpl/{template.account_id}/{template.id}/{template.uuid}.{ext}"


def fetch_limits(services: Services) -> FetchLimits:
    settings = services.settings
    timeout = float(settings.get("template.download.timeout"))
    return FetchLimits(max_bytes=int(settings.get("max.template.iso.size")) * GB, connect_timeout=timeout,
                       read_timeout=timeout,
                       allow_private=bool(settings.get("template.download.allow.private.addresses")))


def live_nodes_clause(services: Services):  # type: ignore[no-untyped-def]
    cutoff = utcnow() - timedelta(seconds=services.config.node_timeout)
    return select(ManagementNode.id).where(ManagementNode.stopped.is_(None), ManagementNode.last_heartbeat >= cutoff)


@dataclass
class Work:
    template_id: int
    store_id: int
    url: str | None
    checksum: str | None
    format: str
    path: str
    source: tuple[int, str] | None  # (store id, object path) holding the bytes already
    #: The download_state of the refs while this runs (UPLOAD_IN_PROGRESS for browser uploads).
    in_progress: str = DOWNLOAD_IN_PROGRESS


class TemplateDownloads:
    """The download workers of one process."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._stop = threading.Event()
        self._wake = threading.Condition()
        self._threads: list[threading.Thread] = []
        self.poll_interval = 1.0
        self._last_recovery = 0.0

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self, workers: int) -> None:
        for i in range(workers):
            t = threading.Thread(target=self._loop, name=f"template-download-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        self.wake()
        for t in self._threads:
            t.join(timeout=5)
        self._threads.clear()

    def wake(self) -> None:
        with self._wake:
            self._wake.notify_all()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if time.monotonic() - self._last_recovery > 5:
                    self._last_recovery = time.monotonic()
                    self.recover()
                work = self.claim()
            except Exception:
                logger.exception("Claiming a template download failed")
                work = None
            if work is None:
                with self._wake:
                    self._wake.wait(self.poll_interval)
                continue
            try:
                self.run(work)
            except Exception:
                logger.exception("Template download of template %s raised", work.template_id)
                self.finish_error(work, "Internal error while downloading; see the server log")

    # -- claiming -------------------------------------------------------------------------------
    def claim(self, template_id: int | None = None) -> Work | None:
        """Claim the oldest waiting download (or ``template_id``'s) for this node. An idle poll only reads
        (on SQLite a write transaction would take the database's write lock every second)."""
        stmt = select(TemplateZone.template_id, TemplateZone.store_id).where(
            TemplateZone.download_state == NOT_DOWNLOADED, TemplateZone.download_node.is_(None),
            TemplateZone.removed.is_(None), TemplateZone.store_id.is_not(None))
        if template_id is not None:
            stmt = stmt.where(TemplateZone.template_id == template_id)
        stmt = stmt.order_by(TemplateZone.id).limit(4)
        with self.services.db.reader() as s:
            if not list(s.execute(stmt)):
                return None
        with self.services.db.writer.begin() as s:
            for tid, store_id in list(s.execute(stmt)):
                work = self._claim(s, int(tid), int(store_id))
                if work is not None:
                    return work
        return None

    def _claim(self, s: Session, template_id: int, store_id: int) -> Work | None:
        won = s.execute(update(TemplateZone).where(
            TemplateZone.template_id == template_id, TemplateZone.store_id == store_id,
            TemplateZone.download_state == NOT_DOWNLOADED, TemplateZone.download_node.is_(None),
            TemplateZone.removed.is_(None),
        ).values(download_node=self.services.node_id, download_state=DOWNLOAD_IN_PROGRESS, download_pct=0,
                 state="Creating", error_str=None, download_attempts=TemplateZone.download_attempts + 1)
            .execution_options(synchronize_session=False)).rowcount
        if not won:
            return None
        return self.work_for(s, template_id, store_id)

    def claimed(self, template_id: int) -> list[Work]:
        """The work of ``template_id``'s refs this node claimed already (add_to_zone(claim=True))."""
        with self.services.db.reader() as s:
            stores = sorted(set(s.scalars(select(TemplateZone.store_id).where(
                TemplateZone.template_id == template_id, TemplateZone.download_node == self.services.node_id,
                TemplateZone.download_state == DOWNLOAD_IN_PROGRESS, TemplateZone.removed.is_(None),
                TemplateZone.store_id.is_not(None)))))
            found = [self.work_for(s, template_id, int(store_id)) for store_id in stores]
        return [w for w in found if w is not None]

    def work_for(self, s: Session, template_id: int, store_id: int) -> Work | None:
        template = s.get(Template, template_id)
        if template is None:
            return None
        source = s.execute(select(TemplateZone.store_id, TemplateZone.install_path).where(
            TemplateZone.template_id == template_id, TemplateZone.store_id != store_id,
            TemplateZone.state == "Ready", TemplateZone.removed.is_(None),
            TemplateZone.install_path.is_not(None)).limit(1)).first()
        real_source = None
        if source is not None:
            src_store = s.get(ImageStore, source[0])
            if src_store is not None and src_store.removed is None and not simulated_store(src_store):
                real_source = (int(source[0]), str(source[1]))
        return Work(template_id, store_id, template.url, template.checksum, template.format, object_path(template),
                    real_source)

    def recover(self) -> int:
        """Take over refs claimed by nodes that are gone; re-queue them or fail them after MAX_ATTEMPTS."""
        n = 0
        minutes = int(self.services.settings.get("upload.operation.timeout"))
        cutoff = utcnow() - timedelta(minutes=minutes)
        interrupted = TemplateZone.download_state.in_((DOWNLOAD_IN_PROGRESS, UPLOAD_IN_PROGRESS)) & \
            TemplateZone.download_node.not_in(live_nodes_clause(self.services))
        late = (TemplateZone.download_state == NOT_UPLOADED) & (TemplateZone.created < cutoff)
        with self.services.db.reader() as s:
            if s.scalar(select(TemplateZone.id).where(TemplateZone.removed.is_(None), interrupted | late).limit(1)) \
                    is None:
                return 0
        with self.services.db.writer.begin() as s:
            orphans = list(s.scalars(select(TemplateZone).where(
                TemplateZone.download_state == DOWNLOAD_IN_PROGRESS, TemplateZone.download_node.is_not(None),
                TemplateZone.removed.is_(None),
                TemplateZone.download_node.not_in(live_nodes_clause(self.services)))))
            for ref in orphans:
                if ref.download_attempts >= MAX_ATTEMPTS:
                    ref.download_state, ref.state, ref.download_node = DOWNLOAD_ERROR, "Failed", None
                    ref.error_str = (f"The download was interrupted {ref.download_attempts} times (the management"
                                     " server running it stopped); giving up")
                else:
                    ref.download_state, ref.download_node, ref.download_pct = NOT_DOWNLOADED, None, 0
                    ref.state = "Allocated"
                n += 1
            # Uploads can't be resumed: an interrupted one failed; one never made in time is abandoned.
            for ref in s.scalars(select(TemplateZone).where(
                    TemplateZone.download_state == UPLOAD_IN_PROGRESS, TemplateZone.removed.is_(None),
                    TemplateZone.download_node.not_in(live_nodes_clause(self.services)))):
                ref.download_state, ref.state, ref.download_node = UPLOAD_ERROR, "Failed", None
                ref.error_str = "The upload was interrupted (the management server receiving it stopped)"
                self._set_template_state(s, ref.template_id, "UploadError")
                n += 1
            for ref in s.scalars(select(TemplateZone).where(
                    TemplateZone.download_state == NOT_UPLOADED, TemplateZone.removed.is_(None),
                    TemplateZone.created < cutoff)):
                ref.download_state, ref.state = ABANDONED, "Failed"
                ref.error_str = f"Nothing was uploaded within {minutes} minutes (upload.operation.timeout)"
                self._set_template_state(s, ref.template_id, "UploadAbandoned")
        if n:
            logger.warning("Took over %d interrupted template downloads", n)
            self.wake()
        return n

    @staticmethod
    def _set_template_state(s: Session, template_id: int, state: str) -> None:
        template = s.get(Template, template_id)
        if template is not None and template.state != "Active":
            template.state = state

    # -- running --------------------------------------------------------------------------------
    def _refs(self, work: Work):  # type: ignore[no-untyped-def]
        return (TemplateZone.template_id == work.template_id, TemplateZone.store_id == work.store_id,
                TemplateZone.download_node == self.services.node_id, TemplateZone.removed.is_(None),
                TemplateZone.download_state == work.in_progress)

    def progress(self, work: Work, pct: int) -> None:
        with self.services.db.writer.begin() as s:
            s.execute(update(TemplateZone).where(*self._refs(work)).values(download_pct=min(pct, 99))
                      .execution_options(synchronize_session=False))

    def run(self, work: Work) -> None:
        services = self.services
        with services.db.reader() as s:
            store = s.get(ImageStore, work.store_id)
            source_store = s.get(ImageStore, work.source[0]) if work.source else None
            if store is None or store.removed is not None:
                store = None
        if store is None:
            self.finish_error(work, "The image store of this template was removed")
            return
        download: Download | None = None
        try:
            driver = services.image_store(store)
            body: Body
            if work.source is not None and source_store is not None:
                source_driver = services.image_store(source_store)
                total = source_driver.size(work.source[1])
                copying = self._copying(work, read_chunks(source_driver.open(work.source[1])), total)
                body = lambda _into: copying  # noqa: E731
            elif work.url:
                checksum = Checksum.parse(work.checksum)
                last = [-1]

                def report(done: int, total: int | None) -> None:
                    pct = percent(done, total)
                    if pct != last[0]:
                        last[0] = pct
                        self.progress(work, pct)

                download = Download(work.url, fetch_limits(services), checksum, report)
                body = download.chunks
            else:
                self.finish_error(work, "There is nothing to download: the template has no URL and no copy on"
                                  " another image store")
                return
            info = self.store_checked(driver, work, body)
        except (DownloadError, FormatError, ImageStoreError, ValueError) as exc:
            message = getattr(exc, "message", None) or str(exc)
            self.finish_error(work, message)
            return
        finally:
            if download is not None and download.spliced:
                logger.info("Download of %s: %d of %d bytes moved from the socket to the file in the kernel",
                            work.path, download.spliced, download.received)
        self.finish_ok(work, info)

    def _copying(self, work: Work, chunks: Iterator[bytes], total: int | None) -> Iterator[bytes]:
        done, last, last_pct = 0, time.monotonic(), -1
        for chunk in chunks:
            done += len(chunk)
            if time.monotonic() - last > 1.0:
                last = time.monotonic()
                pct = percent(done, total)
                if pct != last_pct:
                    last_pct = pct
                    self.progress(work, pct)
            yield chunk

    @staticmethod
    def store_checked(driver, work: Work, body: Body) -> ImageInfo:  # type: ignore[no-untyped-def]
        """Stream the body into the store at ``work.path`` and check the format; a refused file is never
        kept. ``body(fd)`` gives the chunks; ``fd`` is the descriptor of the local file they go to when the
        store has local files (NFS: :meth:`ImageStoreDriver.local_writer`), into which a download may move
        most of the body in the kernel (:meth:`Download.chunks`); there the file is checked before it is
        published. Object stores (fd None) get a ``put``, and a refused object is deleted again."""
        sniffer = Sniffer()
        writer = driver.local_writer(work.path)
        if writer is not None:
            with writer as out:
                write_chunks(out, sniffer.wrap(body(out.fileno()), work.format))
                sniffer.settle(out.fileno())
                info = sniffer.result()
                check(work.format, info)
            return info
        driver.put(work.path, sniffer.wrap(body(None), work.format))
        try:
            info = sniffer.result()
            check(work.format, info)
        except FormatError:
            driver.delete(work.path)
            raise
        return info

    def finish_ok(self, work: Work, info: ImageInfo) -> None:
        from overcast.engine.limits import Limits, ResourceType

        with self.services.db.writer.begin() as s:
            refs = list(s.scalars(select(TemplateZone).where(*self._refs(work))))
            template = s.get(Template, work.template_id)
            if not refs or template is None:
                # Deleted while it downloaded (or taken over by another node): drop the file unless a
                # live ref holds it.
                held = s.scalar(select(TemplateZone.id).where(
                    TemplateZone.store_id == work.store_id, TemplateZone.install_path == work.path,
                    TemplateZone.removed.is_(None)).limit(1))
                store = s.get(ImageStore, work.store_id) if held is None else None
                if store is not None:
                    try:
                        self.services.image_store(store).delete(work.path)
                    except ImageStoreError as exc:
                        logger.warning("Could not delete %s from image store %s: %s", work.path, store.name, exc)
                return
            for ref in refs:
                ref.download_state, ref.state, ref.download_pct, ref.error_str = DOWNLOADED, "Ready", 100, None
                ref.size, ref.physical_size, ref.install_path = info.virtual_size, info.physical_size, work.path
                ref.download_node = None
            if template.size != info.virtual_size:
                owner = s.get(Account, template.account_id)
                if owner is not None:
                    Limits(s).consume(owner, [(ResourceType.secondary_storage, info.virtual_size - template.size)])
                template.size = info.virtual_size
            template.physical_size = info.physical_size
            if template.state in ("NotUploaded", "UploadInProgress", "UploadError"):
                template.state = "Active"
            self._event(s, template, "TEMPLATE.DOWNLOAD.SUCCESS",
                        f"{'ISO' if template.format == 'ISO' else 'Template'} {template.name} is on image store"
                        f" {work.store_id}: {info.physical_size} bytes, virtual size {info.virtual_size}")
        logger.info("Template %s stored on image store %s (%d bytes)", work.template_id, work.store_id,
                    info.physical_size)

    def finish_error(self, work: Work, message: str) -> None:
        upload = work.in_progress == UPLOAD_IN_PROGRESS
        with self.services.db.writer.begin() as s:
            n = s.execute(update(TemplateZone).where(*self._refs(work)).values(
                download_state=UPLOAD_ERROR if upload else DOWNLOAD_ERROR, state="Failed", error_str=message[:4000],
                download_node=None).execution_options(synchronize_session=False)).rowcount
            template = s.get(Template, work.template_id)
            if n and template is not None:
                if upload:
                    template.state = "UploadError"
                self._event(s, template, "TEMPLATE.DOWNLOAD.FAILED", f"Storing {template.name} failed: {message}",
                            level="ERROR")
        logger.info("Template %s download to image store %s failed: %s", work.template_id, work.store_id, message)

    def _event(self, s: Session, template: Template, event_type: str, text: str, level: str = "INFO") -> None:
        self.services.events.record(s, event_type, text, account_id=template.account_id,
                                    domain_id=template.domain_id, level=level,
                                    resource_type="Iso" if template.format == "ISO" else "Template",
                                    resource_uuid=template.uuid)


def copy_now(ctx: EngineContext, template: Template) -> list[str]:
    """Run the waiting copies or downloads of ``template`` in this thread (copyTemplate's job), after
    committing what the caller did; the error texts of those that failed."""
    services = ctx.services  # type: ignore[attr-defined]
    ctx.checkpoint()
    runner = services.downloads or TemplateDownloads(services)
    errors: list[str] = []
    for work in runner.claimed(template.id):
        try:
            runner.run(work)
        except Exception:
            logger.exception("Copying template %s raised", template.id)
            runner.finish_error(work, "Internal error while copying; see the server log")
        with services.db.reader() as s:
            errors += [e for e in s.scalars(select(TemplateZone.error_str).where(
                TemplateZone.template_id == template.id, TemplateZone.store_id == work.store_id,
                TemplateZone.download_state == DOWNLOAD_ERROR, TemplateZone.removed.is_(None))) if e]
    ctx.session.expire_all()
    return errors


def remove_objects(ctx: EngineContext, template: Template) -> int:
    """After deleteTemplate/deleteIso: delete the template's files that no live ref uses any more from the
    (real) image stores, outside any transaction. Returns how many were deleted."""
    services = ctx.services  # type: ignore[attr-defined]
    s = ctx.session
    refs = list(s.scalars(select(TemplateZone).where(TemplateZone.template_id == template.id,
                                                     TemplateZone.install_path.is_not(None))))
    live = {(r.store_id, r.install_path) for r in refs if r.removed is None}
    gone = {(r.store_id, r.install_path) for r in refs if r.removed is not None} - live
    targets = []
    for store_id, path in sorted(gone, key=str):
        store = s.get(ImageStore, store_id) if store_id else None
        if store is not None and store.removed is None and not simulated_store(store) and path:
            targets.append((store, path))
    if not targets:
        return 0
    ctx.checkpoint()
    n = 0
    for store, path in targets:
        try:
            services.image_store(store).delete(path)
            n += 1
        except ImageStoreError as exc:
            logger.warning("Could not delete %s from image store %s: %s", path, store.name, exc)
    return n


def claim_upload(services: Services, template_uuid: str) -> Work | None:
    """Start the browser upload of a template made by getUploadParamsFor*: NOT_UPLOADED refs become
    UPLOAD_IN_PROGRESS for this node (None when there is none: uploaded already, or in progress)."""
    with services.db.writer.begin() as s:
        template = s.scalar(select(Template).where(Template.uuid == template_uuid, Template.removed.is_(None)))
        if template is None:
            return None
        store_id = s.scalar(select(TemplateZone.store_id).where(
            TemplateZone.template_id == template.id, TemplateZone.download_state == NOT_UPLOADED,
            TemplateZone.removed.is_(None)).limit(1))
        if store_id is None:
            return None
        won = s.execute(update(TemplateZone).where(
            TemplateZone.template_id == template.id, TemplateZone.store_id == store_id,
            TemplateZone.download_state == NOT_UPLOADED, TemplateZone.removed.is_(None),
        ).values(download_state=UPLOAD_IN_PROGRESS, download_node=services.node_id, state="Creating",
                 download_attempts=TemplateZone.download_attempts + 1)
            .execution_options(synchronize_session=False)).rowcount
        if not won:
            return None
        template.state = "UploadInProgress"
        return Work(template.id, int(store_id), None, template.checksum, template.format, object_path(template),
                    None, UPLOAD_IN_PROGRESS)


def run_upload(services: Services, work: Work, chunks: Iterator[bytes]) -> str | None:
    """Store an uploaded file with the same checks as a download; the error text, or None when stored."""
    runner = services.downloads or TemplateDownloads(services)
    with services.db.reader() as s:
        store = s.get(ImageStore, work.store_id)
    if store is None or store.removed is not None:
        runner.finish_error(work, "The image store of this template was removed")
        return "The image store of this template was removed"
    limited = Verifying(chunks, int(services.settings.get("max.template.iso.size")) * GB,
                        Checksum.parse(work.checksum))
    try:
        info = TemplateDownloads.store_checked(services.image_store(store), work, lambda _into: iter(limited))
    except (DownloadError, FormatError, ImageStoreError, ValueError) as exc:
        message = getattr(exc, "message", None) or str(exc)
        runner.finish_error(work, message)
        return message
    runner.finish_ok(work, info)
    return None


__all__ = [
    "TemplateDownloads", "Work", "claim_upload", "copy_now", "needs_download", "object_path", "remove_objects",
    "run_upload", "simulated_store",
]  # fmt: skip
