"""Resource limit and resource count responses."""

from __future__ import annotations

from typing import Any

from overcast.access.identity import domain_wire_path
from overcast.api.declare import Field, ResponseObject
from overcast.db.models import Domain
from overcast.engine.resource_limits import CountRow, LimitRow

F = Field


class ResourceLimitResponse(ResponseObject):
    object_name = "resourcelimit"
    fields = (
        F("account", "string", "the account of the resource limit"),
        F("domainid", "string", "the domain ID of the resource limit"),
        F("domain", "string", "the domain name of the resource limit"),
        F("domainpath", "string", "path of the domain to which the resource limit belongs"),
        F("resourcetype", "string", "resource type. Values include 0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11. See the"
          " resourceType parameter for more information on these values."),
        F("resourcetypename", "string", "resource type name. Values include user_vm, public_ip, volume,"
          " snapshot, template, network, vpc, cpu, memory, primary_storage, secondary_storage."),
        F("max", "long", "the maximum number of the resource. A -1 means the resource currently has no limit."
          " Storage limits are in GiB."),
        F("tag", "string", "The tag for the resource limit"),
        F("projectid", "string", "the project id of the resource limit"),
        F("project", "string", "the project name of the resource limit"),
    )


class ResourceCountResponse(ResponseObject):
    object_name = "resourcecount"
    fields = (
        F("account", "string", "the account for which resource count's are updated"),
        F("domainid", "string", "the domain ID for which resource count's are updated"),
        F("domain", "string", "the domain name for which resource count's are updated"),
        F("domainpath", "string", "path of the domain to which the resource counts are updated"),
        F("resourcetype", "string", "resource type. Values include 0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11. See the"
          " resourceType parameter for more information on these values."),
        F("resourcetypename", "string", "resource type name. Values include user_vm, public_ip, volume,"
          " snapshot, template, network, vpc, cpu, memory, primary_storage, secondary_storage."),
        F("resourcecount", "long", "resource count (storage counts are in bytes)"),
        F("tag", "string", "Tag for the resource"),
        F("projectid", "string", "the project id for which resource count's are updated"),
        F("project", "string", "the project name for which resource count's are updated"),
    )


def _owner(row: LimitRow | CountRow, domains: dict[int, Domain]) -> dict[str, Any]:
    if row.account is not None:
        d = domains.get(row.account.domain_id)
        return {"account": row.account.name, "domainid": d.uuid if d else None, "domain": d.name if d else None,
                "domainpath": domain_wire_path(d) if d else None}
    d = row.domain
    assert d is not None
    return {"domainid": d.uuid, "domain": d.name, "domainpath": domain_wire_path(d)}


def limit_payload(rows: list[LimitRow], domains: dict[int, Domain]) -> list[dict[str, Any]]:
    return [{**_owner(r, domains), "resourcetype": str(int(r.rtype)), "resourcetypename": r.rtype.name,
             "max": r.max} for r in rows]


def count_payload(rows: list[CountRow], domains: dict[int, Domain]) -> list[dict[str, Any]]:
    return [{**_owner(r, domains), "resourcetype": str(int(r.rtype)), "resourcetypename": r.rtype.name,
             "resourcecount": r.count} for r in rows]


__all__ = ["ResourceCountResponse", "ResourceLimitResponse", "count_payload", "limit_payload"]
