"""What a command handler gets: the shared services and this call's session and caller."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from overcast.access.acl import AccessChecker
from overcast.access.caller import Caller
from overcast.db.models import AsyncJob, Event

if TYPE_CHECKING:
    from overcast.services import Services


@dataclass
class CallContext:
    services: Services
    session: Session
    caller: Caller | None
    remote_addr: str = ""
    #: The job running this command, for async commands executed by a worker.
    job: AsyncJob | None = None
    #: GET or POST: some limits depend on it (user data).
    http_method: str = "GET"
    #: Per-call scratch.
    extras: dict[str, Any] = field(default_factory=dict)

    def job_entity(self, model: type[Any]) -> Any:
        """The row an async-create command made in ``prepare()``, by the job's instance id (None when
        it is gone or there is no job)."""
        if self.job is None or self.job.instance_uuid is None:
            return None
        return self.session.scalar(select(model).where(model.uuid == self.job.instance_uuid))

    def created(self, model: type[Any], what: str) -> Any:
        """:meth:`job_entity`, or a clear error naming ``what`` when the row is gone."""
        row = self.job_entity(model)
        if row is None:
            from overcast.errors import InvalidParameterValue

            raise InvalidParameterValue(f"The {what} of this job no longer exists")
        return row

    def checkpoint(self) -> None:
        """Commit the work so far. Engine operations call it before talking to a hypervisor, so no
        transaction (and on SQLite no write lock) is held while a host works."""
        self.session.commit()

    @cached_property
    def acl(self) -> AccessChecker:
        return AccessChecker(self.session)

    @property
    def me(self) -> Caller:
        assert self.caller is not None, "command requires an authenticated caller"
        return self.caller

    def setting(self, name: str, **scope: Any) -> Any:
        return self.services.settings.get(name, **scope)

    def event(
        self,
        event_type: str,
        description: str,
        *,
        account_id: int | None = None,
        domain_id: int | None = None,
        resource_type: str | None = None,
        resource_uuid: str | None = None,
        **kwargs: Any,
    ) -> Event:
        """Record an action event in this call's transaction (owner defaults to the caller)."""
        me = self.me
        return self.services.events.record(
            self.session, event_type, description,
            account_id=account_id if account_id is not None else me.account_id,
            domain_id=domain_id if domain_id is not None else me.domain_id,
            user_id=me.user_id, resource_type=resource_type, resource_uuid=resource_uuid,
            start_id=self.job.start_event_id if self.job is not None else None, **kwargs,
        )  # fmt: skip
