"""Durable async jobs: the queue in the database, worker threads, and recovery after a crash.

A job is a row of ``async_job``. Submitting writes it in the caller's transaction; a worker claims it
with a compare-and-set (``claimed_by`` from NULL to the node id; on PostgreSQL and MariaDB the candidate
rows are read ``FOR UPDATE SKIP LOCKED``), runs it, and completes it in the same transaction as the
command's own changes, so a job is done exactly when its effects are.

Ordering: jobs with the same ``sync_key`` (the resource they act on) run one at a time in id order.

Crash recovery: every node heart-beats in ``management_node``. A node that restarts under the same
name takes over its previous incarnation's jobs at once; other nodes take over when the heartbeat is
older than ``node_timeout``. A taken-over job whose command is idempotent goes back to the queue (at
most three attempts in all); any other fails with a message saying so, after its command's ``recover``
hook has put its resource back in a consistent state.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, delete, exists, select, update
from sqlalchemy.orm import Session, aliased

from overcast.db.models import AsyncJob, ManagementNode, utcnow

if TYPE_CHECKING:
    from overcast.services import Services

logger = logging.getLogger(__name__)

PENDING, SUCCEEDED, FAILED, CANCELLED = 0, 1, 2, 3
MAX_ATTEMPTS = 3


@dataclass
class JobHooks:
    """What the API layer supplies: how to run a job and how to treat an interrupted one."""

    #: Runs the job to completion (its own transaction completes it); exceptions mean a bug.
    run: Callable[[int], None]
    #: Whether the job's command may simply be run again from the start.
    is_idempotent: Callable[[str], bool]
    #: Puts the resource of an interrupted, non-idempotent job back in a consistent state, and fails
    #: the job; called in the transaction that fails it.
    abandon: Callable[[Session, AsyncJob, str], None]


@functools.lru_cache(maxsize=2)
def _claimable(*, skip_locked: bool) -> Any:
    """The query for the oldest runnable jobs. Built once: every idle worker polls with it twice a
    second, and building it (an alias above all) costs far more than running it."""
    earlier = aliased(AsyncJob)
    # A parked job (waiting for its guest) does not hold up later jobs on the same resource: the
    # owner may stop or destroy a VM that never reports ready.
    blocked = exists().where(
        and_(earlier.sync_key == AsyncJob.sync_key, earlier.status == PENDING, earlier.id < AsyncJob.id,
             earlier.waiting_for.is_(None))
    )
    stmt = (select(AsyncJob.id).where(AsyncJob.status == PENDING, AsyncJob.claimed_by.is_(None),
                                      AsyncJob.waiting_for.is_(None),
                                      ~(AsyncJob.sync_key.is_not(None) & blocked))
            .order_by(AsyncJob.id).limit(8))
    if skip_locked:
        stmt = stmt.with_for_update(skip_locked=True, of=AsyncJob)
    return stmt


class JobQueue:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.hooks: JobHooks | None = None
        self._wake = threading.Condition()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.poll_interval = 0.5

    # -- submitting --------------------------------------------------------------------------
    def submit(self, s: Session, *, user_id: int, account_id: int, domain_id: int, command: str,
               params: dict[str, Any], instance_type: str | None, instance_uuid: str | None,
               job_uuid: str | None = None, start_event_id: int | None = None) -> AsyncJob:
        job = AsyncJob(
            user_id=user_id, account_id=account_id, domain_id=domain_id, command=command,
            params=json.dumps(params), instance_type=instance_type, instance_uuid=instance_uuid,
            sync_key=f"{instance_type}:{instance_uuid}" if instance_type and instance_uuid else None,
            start_event_id=start_event_id, **({"uuid": job_uuid} if job_uuid else {}),
        )  # fmt: skip
        s.add(job)
        s.flush()
        return job

    def wake(self) -> None:
        with self._wake:
            self._wake.notify_all()

    # -- completing --------------------------------------------------------------------------
    @staticmethod
    def complete(job: AsyncJob, *, status: int, result_code: int, result: dict[str, Any] | None,
                 result_type: str = "object") -> None:
        job.status = status
        job.result_code = result_code
        job.result_type = result_type
        job.result = json.dumps(result) if result is not None else None
        job.completed = utcnow()

    @staticmethod
    def park(job: AsyncJob, key: str, until: datetime) -> None:
        """Leave a job pending, held by no worker, until ``resume(key)`` or ``until``."""
        job.waiting_for, job.wait_until, job.claimed_by, job.resumed = key, until, None, None

    def resume(self, s: Session, key: str) -> int:
        """Wake the jobs parked on ``key`` (in the caller's transaction); a worker then runs their
        commands' resume() hook. Returns how many woke."""
        woken = s.execute(update(AsyncJob).where(AsyncJob.waiting_for == key, AsyncJob.status == PENDING)
                          .values(waiting_for=None, resumed="ready")
                          .execution_options(synchronize_session=False)).rowcount
        if woken:
            self.wake()  # early is harmless: a worker that finds nothing yet polls again shortly
        return int(woken or 0)

    def expire_waits(self) -> int:
        """Wake parked jobs whose deadline passed, to fail with their command's timeout error."""
        with self.services.db.writer.begin() as s:
            woken = s.execute(update(AsyncJob).where(
                AsyncJob.waiting_for.is_not(None), AsyncJob.wait_until < utcnow(), AsyncJob.status == PENDING)
                .values(waiting_for=None, resumed="timeout").execution_options(synchronize_session=False)).rowcount
        if woken:
            self.wake()
        return int(woken or 0)

    # -- workers -----------------------------------------------------------------------------
    def start(self, hooks: JobHooks, workers: int) -> None:
        self.hooks = hooks
        self._register_node()
        self.recover_dead_nodes()
        for i in range(workers):
            t = threading.Thread(target=self._work, name=f"job-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        hb = threading.Thread(target=self._heartbeat, name="job-heartbeat", daemon=True)
        hb.start()
        self._threads.append(hb)

    def stop(self) -> None:
        self._stop.set()
        self.wake()
        for t in self._threads:
            t.join(timeout=10)
        self._threads.clear()
        if self.hooks is not None:
            try:
                with self.services.db.writer.begin() as s:
                    node = s.get(ManagementNode, self.services.node_id)
                    if node is not None:
                        node.stopped = utcnow()
            except Exception:  # the database may already be gone at shutdown
                logger.debug("Could not mark node stopped", exc_info=True)

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                job_id = self.claim()
            except Exception as exc:
                from overcast.db.retry import is_transient

                if is_transient(exc):  # another node or worker took the same rows: just try again
                    logger.debug("Claim conflicted with another claimer", exc_info=True)
                else:
                    logger.exception("Claiming a job failed")
                job_id = None
            if job_id is None:
                with self._wake:
                    self._wake.wait(self.poll_interval)
                continue
            self._run(job_id)

    def _run(self, job_id: int) -> None:
        assert self.hooks is not None
        try:
            self.hooks.run(job_id)
        except Exception:
            logger.exception("Job %s failed unexpectedly", job_id)
            with self.services.db.writer.begin() as s:
                job = s.get(AsyncJob, job_id)
                if job is not None and job.status == PENDING:
                    self.complete(job, status=FAILED, result_code=530, result={
                        "uuidList": [], "errorcode": 530, "cserrorcode": 4250,
                        "errortext": "Internal error executing the job; see the server log"})
        self.wake()  # a job that waited on this one's sync key may run now

    def claim(self) -> int | None:
        """Claim the oldest runnable job for this node; None when there is none."""
        db = self.services.db
        stmt = _claimable(skip_locked=db.dialect != "sqlite")
        with db.writer.begin() as s:
            for job_id in s.scalars(stmt).all():
                won = s.execute(
                    update(AsyncJob)
                    .where(AsyncJob.id == job_id, AsyncJob.claimed_by.is_(None), AsyncJob.status == PENDING)
                    .values(claimed_by=self.services.node_id, attempts=AsyncJob.attempts + 1)
                ).rowcount
                if won:
                    return int(job_id)
        return None

    # -- nodes and recovery ------------------------------------------------------------------
    def _register_node(self) -> None:
        with self.services.db.writer.begin() as s:
            now = utcnow()
            for old in s.scalars(select(ManagementNode).where(
                    ManagementNode.name == self.services.node_name, ManagementNode.stopped.is_(None))):
                old.stopped = now  # our previous incarnation: certainly not running any more
            s.add(ManagementNode(id=self.services.node_id, name=self.services.node_name, started=now,
                                 last_heartbeat=now))

    def _heartbeat(self) -> None:
        interval = self.services.config.heartbeat_interval
        while not self._stop.wait(interval):
            try:
                self.beat()
                self.recover_dead_nodes()
                self.expire_waits()
                self.expire_old_jobs()
            except Exception:
                logger.exception("Heartbeat failed")

    def beat(self) -> None:
        """Record that this node is alive. A node that stalled past the timeout finds its row removed
        (or marked stopped by a restart under its name): its jobs were taken over by then, and the ones
        it is still running can no longer complete (``_still_ours``). It joins again, so that jobs it
        claims from now on are recovered if it dies."""
        node_id = self.services.node_id
        with self.services.db.writer.begin() as s:
            now = utcnow()
            alive = s.execute(update(ManagementNode).where(ManagementNode.id == node_id,
                                                           ManagementNode.stopped.is_(None))
                              .values(last_heartbeat=now)).rowcount
            if alive:
                return
            logger.warning("This node (%s) was taken for dead by the others (it stalled longer than the node"
                           " timeout); its jobs were taken over. Joining again.", self.services.node_name)
            row = s.get(ManagementNode, node_id)
            if row is None:
                s.add(ManagementNode(id=node_id, name=self.services.node_name, started=now, last_heartbeat=now))
            else:
                row.stopped, row.last_heartbeat = None, now

    def recover_dead_nodes(self) -> int:
        """Take over the jobs of stopped or silent nodes. Returns how many jobs were recovered."""
        assert self.hooks is not None
        cutoff = utcnow() - timedelta(seconds=self.services.config.node_timeout)
        recovered = 0
        with self.services.db.writer.begin() as s:
            dead = list(s.scalars(select(ManagementNode.id).where(
                ManagementNode.id != self.services.node_id,
                (ManagementNode.stopped.is_not(None)) | (ManagementNode.last_heartbeat < cutoff))))
            # Jobs claimed by a node that has no row at all: it claimed them after others had declared
            # it dead and removed its row, and died before its heartbeat could join again.
            dead += s.scalars(select(AsyncJob.claimed_by).distinct().where(
                AsyncJob.status == PENDING, AsyncJob.claimed_by.is_not(None),
                AsyncJob.claimed_by != self.services.node_id,
                AsyncJob.claimed_by.not_in(select(ManagementNode.id)))).all()
            if not dead:
                return 0
            orphans = list(s.scalars(select(AsyncJob).where(
                AsyncJob.status == PENDING, AsyncJob.claimed_by.in_(dead)).order_by(AsyncJob.id)))
            for job in orphans:
                owner = job.claimed_by
                # Take the job over with a compare-and-set: another node may be recovering the same
                # dead node right now, and must not re-queue or fail the job a second time.
                won = s.execute(
                    update(AsyncJob)
                    .where(AsyncJob.id == job.id, AsyncJob.claimed_by == owner, AsyncJob.status == PENDING)
                    .values(claimed_by=self.services.node_id)
                    .execution_options(synchronize_session=False)
                ).rowcount
                if not won:
                    continue
                job.claimed_by = self.services.node_id
                recovered += 1
                if self.hooks.is_idempotent(job.command) and job.attempts < MAX_ATTEMPTS:
                    logger.warning("Re-queueing job %s (%s) of a stopped node", job.uuid, job.command)
                    job.claimed_by = None
                else:
                    reason = (
                        f"Job interrupted: the management server running it ({owner}) stopped"
                        f" before {job.command} finished; the operation was not completed"
                    )
                    logger.warning("Failing interrupted job %s (%s)", job.uuid, job.command)
                    self.hooks.abandon(s, job, reason)
            s.flush()
            # Nodes with nothing left to recover are forgotten.
            busy = set(s.scalars(select(AsyncJob.claimed_by).where(
                AsyncJob.claimed_by.in_(dead), AsyncJob.status == PENDING)))
            gone = [n for n in dead if n not in busy]
            if gone:
                s.execute(delete(ManagementNode).where(ManagementNode.id.in_(gone)))
        if recovered:
            self.wake()
        return recovered

    def expire_old_jobs(self) -> None:
        minutes = int(self.services.settings.get("job.expire.minutes"))
        cutoff = utcnow() - timedelta(minutes=minutes)
        with self.services.db.writer.begin() as s:
            s.execute(delete(AsyncJob).where(AsyncJob.status != PENDING, AsyncJob.completed < cutoff))
