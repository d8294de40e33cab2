"""The event bus: action events go to subscribers after the transaction that made them commits.

Subscribers register a callable for a pattern (``"VM.*"``, ``"ACCOUNT.DELETE"``, ``"*"``) and get an
:class:`ActionEvent`. Delivery is in order, on one dispatcher thread, so a slow subscriber delays
other subscribers but never an API call; a subscriber that raises is logged and the rest still run.
Further backends (RabbitMQ) plug in through the ``overcast.eventbus`` entry-point group.
"""

from __future__ import annotations

import fnmatch
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ActionEvent:
    uuid: str
    event_type: str
    state: str
    level: str
    description: str
    account_uuid: str | None
    domain_uuid: str | None
    user_uuid: str | None
    resource_type: str | None
    resource_uuid: str | None
    created: datetime
    details: dict[str, Any] = field(default_factory=dict)


Subscriber = Callable[[ActionEvent], None]


class EventBus:
    def __init__(self) -> None:
        self._subs: list[tuple[str, Subscriber]] = []
        self._queue: queue.Queue[ActionEvent | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._idle = threading.Condition()
        self._pending = 0

    def subscribe(self, pattern: str, subscriber: Subscriber) -> None:
        with self._lock:
            self._subs.append((pattern, subscriber))

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._subs = [(p, s) for p, s in self._subs if s is not subscriber]

    def publish(self, event: ActionEvent) -> None:
        self._ensure_thread()
        with self._idle:
            self._pending += 1
        self._queue.put(event)

    def _ensure_thread(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="event-bus", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        while True:
            event = self._queue.get()
            if event is None:
                return
            with self._lock:
                subs = list(self._subs)
            for pattern, sub in subs:
                if fnmatch.fnmatchcase(event.event_type, pattern):
                    try:
                        sub(event)
                    except Exception:
                        logger.exception("Event subscriber %r failed on %s", sub, event.event_type)
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every published event has been delivered (tests, shutdown)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=5)
            self._thread = None
