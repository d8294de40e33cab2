"""Resource tag responses (the ``tag`` object of listTags and of every taggable resource)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from overcast.api.responses.common import Owners, ResourceTagResponse
from overcast.db.models import ResourceTag


def tag_payload(s: Session, tags: list[ResourceTag]) -> list[dict[str, Any]]:
    """Wire dicts for ``tags``, their owners loaded in two queries."""
    owners = Owners(s, tags)
    out = []
    for t in tags:
        o = owners.fields(t)
        out.append({
            "key": t.tag_key, "value": t.tag_value, "resourcetype": t.resource_type, "resourceid": t.resource_uuid,
            "account": o["account"], "domainid": o["domainid"], "domain": o["domain"],
            "domainpath": o["domainpath"], "customer": t.customer,
        })  # fmt: skip
    return out


__all__ = ["ResourceTagResponse", "tag_payload"]
