"""The process-wide services a server runs with, wired once at start."""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from overcast.access.auth import Authenticator
from overcast.access.identity import Identity
from overcast.config.globals import GlobalSettings
from overcast.config.server import ServerSettings
from overcast.db.session import Database
from overcast.events.bus import EventBus
from overcast.events.recorder import EventRecorder

if TYPE_CHECKING:
    from overcast.api.context import CallContext
    from overcast.jobs.queue import JobQueue

logger = logging.getLogger(__name__)


@dataclass
class Services:
    config: ServerSettings
    db: Database
    settings: GlobalSettings
    bus: EventBus
    events: EventRecorder
    auth: Authenticator
    node_id: str
    node_name: str
    jobs: JobQueue = field(init=False)

    @classmethod
    def build(cls, config: ServerSettings) -> Services:
        import uuid

        from overcast.jobs.queue import JobQueue

        db = Database(config.database_url)
        bus = EventBus()
        events = EventRecorder(bus)
        events.attach(db.reader)
        if db.writer is not db.reader:
            events.attach(db.writer)
        node_name = config.node_name or f"{socket.gethostname()}:{config.port}"
        svc = cls(
            config=config, db=db, settings=GlobalSettings(db.reader), bus=bus, events=events,
            auth=Authenticator(db.reader), node_id=str(uuid.uuid4()), node_name=node_name,
        )  # fmt: skip
        svc.jobs = JobQueue(svc)
        return svc

    def identity(self, ctx: CallContext) -> Identity:
        return Identity(ctx.session, self.events)

    def close(self) -> None:
        self.jobs.stop()
        self.bus.drain(5)
        self.bus.close()
        self.db.dispose()
