"""Recording action events in the caller's transaction, publishing them once it commits."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session, sessionmaker

from overcast.db.models import Account, Domain, Event, User
from overcast.events.bus import ActionEvent, EventBus
from overcast.events.types import COMPLETED

_PENDING = "overcast.pending_events"


class EventRecorder:
    def __init__(self, bus: EventBus) -> None:
        self.bus = bus

    def record(
        self,
        session: Session,
        event_type: str,
        description: str,
        *,
        account_id: int,
        domain_id: int,
        user_id: int | None = None,
        state: str = COMPLETED,
        level: str = "INFO",
        resource_type: str | None = None,
        resource_uuid: str | None = None,
        start_id: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> Event:
        """Add an event row to ``session``; it reaches the bus only if the transaction commits."""
        row = Event(
            event_type=event_type, state=state, level=level, description=description,
            account_id=account_id, domain_id=domain_id, user_id=user_id,
            resource_type=resource_type, resource_uuid=resource_uuid, start_id=start_id,
        )  # fmt: skip
        session.add(row)
        session.flush()
        acct, dom = session.get(Account, account_id), session.get(Domain, domain_id)
        user = session.get(User, user_id) if user_id else None
        published = ActionEvent(
            uuid=row.uuid, event_type=row.event_type, state=row.state, level=row.level,
            description=row.description, account_uuid=acct.uuid if acct else None,
            domain_uuid=dom.uuid if dom else None, user_uuid=user.uuid if user else None,
            resource_type=row.resource_type, resource_uuid=row.resource_uuid,
            created=row.created, details=details or {},
        )  # fmt: skip
        session.info.setdefault(_PENDING, []).append(published)
        return row

    def attach(self, factory: sessionmaker[Session]) -> None:
        """Publish the events of every session ``factory`` makes when (and only if) it commits."""
        sa_event.listen(factory, "after_commit", self._after_commit)
        sa_event.listen(factory, "after_rollback", self._after_rollback)

    @staticmethod
    def _after_rollback(session: Session) -> None:
        session.info.pop(_PENDING, None)

    def _after_commit(self, session: Session) -> None:
        for published in session.info.pop(_PENDING, ()):
            self.bus.publish(published)
