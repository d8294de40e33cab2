"""Recording action events in the caller's transaction, publishing them once it commits."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from overcast.db.models import Account, Domain, Event, User
from overcast.events.bus import ActionEvent, EventBus
from overcast.events.types import COMPLETED

_PENDING = "overcast.pending_events"
#: ``session.info`` key: the Scheduled event of the job the session runs; the job's events continue it.
JOB_START_EVENT = "overcast.job_start_event"


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
        if start_id is None:
            start_id = session.info.get(JOB_START_EVENT)
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
        # Remember the savepoint (if any) it was recorded in: rolling that back drops the event.
        session.info.setdefault(_PENDING, []).append((session.get_nested_transaction(), published))
        return row

    def attach(self, factory: sessionmaker[Session]) -> None:
        """Publish the events of every session ``factory`` makes when (and only if) it commits."""
        sa_event.listen(factory, "after_commit", self._after_commit)
        sa_event.listen(factory, "after_soft_rollback", self._after_soft_rollback)
        sa_event.listen(factory, "after_transaction_end", self._after_transaction_end)

    @staticmethod
    def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
        # The transaction is over without a commit having published them (a session closed without
        # commit or rollback): its events must not leak into the session's next transaction.
        if transaction.parent is None:
            session.info.pop(_PENDING, None)

    @staticmethod
    def _after_soft_rollback(session: Session, previous: SessionTransaction) -> None:
        # Find what was really rolled back: the nearest savepoint, or the whole transaction.
        boundary: SessionTransaction | None = previous
        while boundary is not None and not boundary.nested and boundary.parent is not None:
            boundary = boundary.parent
        if boundary is None or not boundary.nested:
            session.info.pop(_PENDING, None)
            return

        def inside(txn: SessionTransaction | None) -> bool:
            while txn is not None:
                if txn is boundary:
                    return True
                txn = txn.parent
            return False

        pending = session.info.get(_PENDING)
        if pending:
            pending[:] = [(txn, ev) for txn, ev in pending if not inside(txn)]

    def _after_commit(self, session: Session) -> None:
        if session.get_nested_transaction() is not None:
            return  # a savepoint released: the transaction itself may still roll back
        for _txn, published in session.info.pop(_PENDING, ()):
            self.bus.publish(published)
