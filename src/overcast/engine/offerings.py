"""Where an offering may be used: the domains and zones it is limited to (comma-separated internal ids)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from overcast.db.models import Account, Domain, Zone
from overcast.engine.context import EngineContext
from overcast.errors import InvalidParameterValue, PermissionDenied


def split_ids(text: str | None) -> list[int]:
    return [int(p) for p in (text or "").split(",") if p.strip()]


def check_offering_scope(ctx: EngineContext, offering: Any, account: Account, zone: Zone | None, what: str,
                         param: str) -> None:
    """Refuse ``offering`` (a service, disk or network offering) outside its domains or zones."""
    s = ctx.session
    domains = split_ids(offering.domain_ids)
    if domains:
        owner_path = s.scalar(select(Domain.path).where(Domain.id == account.domain_id)) or "/"
        paths = s.scalars(select(Domain.path).where(Domain.id.in_(domains)))
        if not any(owner_path.startswith(p) for p in paths):
            # By id: the name of an offering out of the caller's domains is not the caller's to learn.
            raise PermissionDenied(f"{what} id={offering.uuid} is not available to account {account.name}"
                                   f" (parameter {param})", uuids=[(offering.uuid, param)])
    zones = split_ids(offering.zone_ids)
    if zones and zone is not None and zone.id not in zones:
        raise InvalidParameterValue(f"{what} {offering.name} is not available in zone {zone.name} (parameter"
                                    f" {param})")


__all__ = ["check_offering_scope", "split_ids"]
