"""Bundle responses (an Overcast extension)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from overcast.api.declare import Field, ResponseObject
from overcast.api.responses.common import Owners, ResourceTagResponse
from overcast.api.serialize import cs_date
from overcast.db.models import (
    AffinityGroup,
    Bundle,
    DiskOffering,
    Network,
    ServiceOffering,
    Template,
    UserData,
    Zone,
)

F = Field


class BundleResponse(ResponseObject):
    object_name = "bundle"
    fields = (
        F("id", "string", "the ID of the bundle"),
        F("name", "string", "the name of the bundle"),
        F("description", "string", "the description of the bundle"),
        F("account", "string", "the account owning the bundle"),
        F("accountid", "string", "the ID of the account owning the bundle"),
        F("domain", "string", "the domain of the account owning the bundle"),
        F("domainid", "string", "the ID of the domain of the account owning the bundle"),
        F("domainpath", "string", "the path of the domain of the account owning the bundle"),
        F("visibility", "string", "Private (the owner only), Domain (every account of the owner's domain) or"
          " Public (every account)"),
        F("version", "integer", "the version of the recipe shown (the current one unless asked otherwise)"),
        F("latestversion", "integer", "the current version of the bundle"),
        F("created", "date", "the date the bundle was created"),
        F("lastupdated", "date", "the date of the bundle's latest version"),
        F("zoneid", "string", "the zone of the recipe"),
        F("zonename", "string", "the name of the zone of the recipe"),
        F("templateid", "string", "the template (or ISO) of the recipe"),
        F("templatename", "string", "the name of the template of the recipe"),
        F("serviceofferingid", "string", "the service offering of the recipe"),
        F("serviceofferingname", "string", "the name of the service offering of the recipe"),
        F("diskofferingid", "string", "the disk offering of the recipe"),
        F("diskofferingname", "string", "the name of the disk offering of the recipe"),
        F("size", "long", "the data disk size in GB, for a custom disk offering"),
        F("rootdisksize", "long", "the root disk size in GB"),
        F("networkids", "list", "the networks of the recipe"),
        F("keypairs", "list", "the names of the SSH key pairs of the recipe"),
        F("userdata", "string", "the base64 user data of the recipe (shown to those who may change the bundle)"),
        F("userdataid", "string", "the registered user data of the recipe"),
        F("userdataname", "string", "the name of the registered user data of the recipe"),
        F("userdatadetails", "map", "the values of the registered user data's variables"),
        F("affinitygroupids", "list", "the affinity groups of the recipe, by id"),
        F("affinitygroupnames", "list", "the affinity groups of the recipe, by name (the deploying account's)"),
        F("tags", "list", "the tags of the recipe, given to every VM deployed from it",
          response=ResourceTagResponse),
        F("details", "map", "the VM details of the recipe"),
    )


def bundle_payload(s: Session, rows: list[tuple[Bundle, int, dict[str, Any]]], operable: set[int]
                   ) -> list[dict[str, Any]]:
    """Wire dicts for (bundle, version shown, recipe) rows; ``operable``: bundle ids whose user data the
    caller may see (it may change them)."""
    if not rows:
        return []

    def load(model: Any, ids: set[int]) -> dict[int, Any]:
        ids = {i for i in ids if i}
        return {r.id: r for r in s.scalars(select(model).where(model.id.in_(ids)))} if ids else {}

    recipes = [r for _, _, r in rows]
    zones = load(Zone, {r.get("zoneid", 0) for r in recipes})
    templates = load(Template, {r.get("templateid", 0) for r in recipes})
    offerings = load(ServiceOffering, {r.get("serviceofferingid", 0) for r in recipes})
    disks = load(DiskOffering, {r.get("diskofferingid", 0) for r in recipes})
    nets = load(Network, {i for r in recipes for i in r.get("networkids", [])})
    groups = load(AffinityGroup, {i for r in recipes for i in r.get("affinitygroupids", [])})
    registered = load(UserData, {r.get("userdataid", 0) for r in recipes})
    owners = Owners(s, [b for b, _, _ in rows])
    out = []
    for b, version, r in rows:
        o = owners.fields(b)
        zone, tmpl = zones.get(r.get("zoneid", 0)), templates.get(r.get("templateid", 0))
        off, disk = offerings.get(r.get("serviceofferingid", 0)), disks.get(r.get("diskofferingid", 0))
        ud = registered.get(r.get("userdataid", 0))
        item: dict[str, Any] = {
            "id": b.uuid, "name": b.name, "description": b.description, "account": o["account"],
            "accountid": o["accountid"], "domain": o["domain"], "domainid": o["domainid"],
            "domainpath": o["domainpath"], "visibility": b.visibility, "version": version,
            "latestversion": b.version, "created": cs_date(b.created), "lastupdated": cs_date(b.updated),
            "zoneid": zone.uuid if zone else None, "zonename": zone.name if zone else None,
            "templateid": tmpl.uuid if tmpl else None, "templatename": tmpl.name if tmpl else None,
            "serviceofferingid": off.uuid if off else None, "serviceofferingname": off.name if off else None,
            "diskofferingid": disk.uuid if disk else None, "diskofferingname": disk.name if disk else None,
            "size": r.get("size"), "rootdisksize": r.get("rootdisksize"),
            "networkids": [nets[i].uuid for i in r.get("networkids", []) if i in nets] or None,
            "keypairs": r.get("keypairs") or None,
            "userdata": r.get("userdata") if b.id in operable else None,
            "userdataid": ud.uuid if ud else None, "userdataname": ud.name if ud else None,
            "userdatadetails": r.get("userdatadetails") or None,
            "affinitygroupids": [groups[i].uuid for i in r.get("affinitygroupids", []) if i in groups] or None,
            "affinitygroupnames": r.get("affinitygroupnames") or None,
            "tags": [{"key": k, "value": v} for k, v in (r.get("tags") or {}).items()],
            "details": r.get("details") or {},
        }  # fmt: skip
        out.append(item)
    return out


__all__ = ["BundleResponse", "bundle_payload"]
