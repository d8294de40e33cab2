"""Response pieces many objects share: tags, and batch loading of owners."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from overcast.access.identity import domain_wire_path
from overcast.api.declare import Field, ResponseObject
from overcast.db.models import Account, Domain, ResourceTag

F = Field


class ResourceTagResponse(ResponseObject):
    object_name = "tag"
    fields = (
        F("key", "string", "tag key name"),
        F("value", "string", "tag value"),
        F("resourcetype", "string", "resource type"),
        F("resourceid", "string", "id of the resource"),
        F("account", "string", "the account associated with the tag"),
        F("domainid", "string", "the ID of the domain associated with the tag"),
        F("domain", "string", "the domain associated with the tag"),
        F("domainpath", "string", "path of the domain associated with the tag"),
        F("customer", "string", "customer associated with the tag"),
        F("projectid", "string", "the project id the tag belongs to"),
        F("project", "string", "the project name where tag belongs to"),
    )


class Owners:
    """Accounts and domains of a batch of rows, loaded in two queries."""

    def __init__(self, s: Session, rows: Iterable[Any]) -> None:
        rows = list(rows)
        aids = {r.account_id for r in rows if getattr(r, "account_id", None)}
        self.accounts = {a.id: a for a in s.scalars(select(Account).where(Account.id.in_(aids)))} if aids else {}
        dids = {r.domain_id for r in rows if getattr(r, "domain_id", None)} | {a.domain_id for a in self.accounts.values()}
        self.domains = {d.id: d for d in s.scalars(select(Domain).where(Domain.id.in_(dids)))} if dids else {}

    def fields(self, row: Any) -> dict[str, Any]:
        a = self.accounts.get(getattr(row, "account_id", None) or 0)
        d = self.domains.get(getattr(row, "domain_id", None) or (a.domain_id if a else 0))
        return {"account": a.name if a else None, "accountid": a.uuid if a else None,
                "domainid": d.uuid if d else None, "domain": d.name if d else None,
                "domainpath": domain_wire_path(d) if d else None}


def tags_for(s: Session, resource_type: str, ids: list[int], *,
             key_value_only: bool = False) -> dict[int, list[dict[str, Any]]]:
    """Tags of many resources of one type, as wire dicts, by resource id.

    ``key_value_only``: only ``key`` and ``value``, as CloudStack embeds the tags of the responses
    ApiResponseHelper builds (public IP addresses, networks). Ansible's cs_ip_address finds an address
    again by comparing those dicts with its own ``{key, value}`` tags.
    """
    out: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    if not ids:
        return out
    tags = list(s.scalars(select(ResourceTag).where(ResourceTag.resource_type == resource_type,
                                                    ResourceTag.resource_id.in_(ids)).order_by(ResourceTag.id)))
    if key_value_only:
        for t in tags:
            out[t.resource_id].append({"key": t.tag_key, "value": t.tag_value})
        return out
    owners = Owners(s, tags)
    for t in tags:
        o = owners.fields(t)
        out[t.resource_id].append({
            "key": t.tag_key, "value": t.tag_value, "resourcetype": t.resource_type, "resourceid": t.resource_uuid,
            "account": o["account"], "domainid": o["domainid"], "domain": o["domain"],
            "domainpath": o["domainpath"], "customer": t.customer,
        })  # fmt: skip
    return out
