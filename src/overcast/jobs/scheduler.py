"""Periodic background tasks (expunging destroyed VMs, snapshot policies, host health, purges).

A task runs on one node at a time cluster-wide: before each run the node takes the task's lease in
``task_lease`` with a compare-and-set (free, expired, or already its own). Tasks run on a thread of
their own in every process that runs job workers; an exception is logged and the task runs again at
its next period.

Usage::

    scheduler.add("vm.expunge", lambda: settings.get("expunge.interval"), expunge_destroyed_vms)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from overcast.db.models import TaskLease, utcnow
from overcast.db.session import Database

logger = logging.getLogger(__name__)


@dataclass
class Task:
    name: str
    #: Seconds between runs; a callable so settings changes apply at the next run.
    interval: Callable[[], float]
    run: Callable[[], None]
    next_at: float = 0.0


class Scheduler:
    def __init__(self, db: Database, node_id: str) -> None:
        self.db = db
        self.node_id = node_id
        self.tasks: dict[str, Task] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, name: str, interval: Callable[[], float], run: Callable[[], None]) -> None:
        self.tasks[name] = Task(name, interval, run, next_at=time.monotonic() + min(5.0, interval()))

    def start(self) -> None:
        if self._thread is None and self.tasks:
            self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def poke(self) -> None:
        """Re-read intervals now (after a settings change)."""
        for task in self.tasks.values():
            task.next_at = min(task.next_at, time.monotonic() + max(0.0, min(task.interval(), 1.0)))
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            due = [t for t in self.tasks.values() if t.next_at <= now]
            for task in due:
                interval = max(float(task.interval()), 0.1)
                task.next_at = time.monotonic() + interval
                if self.acquire(task.name, interval):
                    self.run_now(task.name)
            wait = min((t.next_at for t in self.tasks.values()), default=now + 1) - time.monotonic()
            self._wake.wait(max(0.05, min(wait, 5.0)))
            self._wake.clear()

    def run_now(self, name: str) -> None:
        task = self.tasks[name]
        try:
            task.run()
        except Exception:
            logger.exception("Periodic task %s failed", name)
        try:
            with self.db.writer.begin() as s:
                s.execute(update(TaskLease).where(TaskLease.name == name).values(last_run=utcnow()))
        except Exception:
            logger.debug("Could not record the run of %s", name, exc_info=True)

    def acquire(self, name: str, interval: float) -> bool:
        """Take (or keep) the lease of ``name`` for about one interval."""
        now = utcnow()
        until = now + timedelta(seconds=max(interval * 2, 5))
        try:
            with self.db.writer.begin() as s:
                exists = s.scalar(select(TaskLease.name).where(TaskLease.name == name))
                if exists is None:
                    try:
                        with s.begin_nested():
                            s.execute(insert(TaskLease).values(name=name, owner=self.node_id, expires=until))
                        return True
                    except IntegrityError:
                        pass
                won = s.execute(update(TaskLease).where(
                    TaskLease.name == name,
                    (TaskLease.owner == self.node_id) | (TaskLease.expires < now) | TaskLease.owner.is_(None),
                ).values(owner=self.node_id, expires=until)).rowcount
                return bool(won)
        except Exception:
            logger.exception("Could not take the lease of %s", name)
            return False
