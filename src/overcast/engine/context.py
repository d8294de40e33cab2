"""What engine services need from their caller (an API call or a job): structural, so the engine
doesn't import the API layer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.orm import Session

from overcast.access.caller import Caller
from overcast.db.models import Event

if TYPE_CHECKING:
    from overcast.services import Services


class EngineContext(Protocol):
    session: Session
    services: Services
    caller: Caller | None

    @property
    def me(self) -> Caller: ...

    def event(self, event_type: str, description: str, *, account_id: int | None = None,
              domain_id: int | None = None, resource_type: str | None = None,
              resource_uuid: str | None = None, **kwargs: Any) -> Event: ...

    def checkpoint(self) -> None:
        """Commit what is done so far (jobs only): later failures must undo it themselves."""

    def setting(self, name: str, **scope: Any) -> Any: ...
