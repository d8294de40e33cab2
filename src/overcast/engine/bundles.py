"""Bundles: named, versioned deployment recipes (an Overcast extension, after the 2011
cloudstack-api-extension's ``deployBundle``, done natively).

A recipe is a JSON object stored per version (``bundle_version.recipe``); it names rows by internal id
(zone, template, offerings, networks, registered user data, affinity groups) so a rename elsewhere
does not break it, and holds the inline user data already validated (base64), the key pair names,
affinity group names, tags and details. ``deployBundle`` turns a recipe back into
``deployVirtualMachine`` parameters; the deploy engine re-checks everything for the deploying account.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import delete as sql_delete
from sqlalchemy import select
from sqlalchemy import update as sql_update

from overcast.access.acl import bundle_shared_clause
from overcast.access.caller import Caller
from overcast.db.models import Account, Bundle, BundleTag, BundleVersion, utcnow
from overcast.engine.context import EngineContext
from overcast.errors import InvalidParameterValue, PermissionDenied, ResourceInUse

VISIBILITIES = ("Private", "Domain", "Public")
#: The recipe's keys: the deployVirtualMachine parameter each one stands for.
RECIPE_KEYS = ("zoneid", "templateid", "serviceofferingid", "diskofferingid", "size", "rootdisksize", "networkids",
               "keypairs", "userdata", "userdataid", "userdatadetails", "affinitygroupids", "affinitygroupnames",
               "tags", "details")


def visibility_of(caller: Caller, value: str | None, current: str = "Private") -> str:
    if value is None:
        return current
    canonical = {v.lower(): v for v in VISIBILITIES}.get(value.strip().lower())
    if canonical is None:
        raise InvalidParameterValue(f"Invalid value {value} for parameter visibility: use Private, Domain or Public")
    if canonical == "Public" and not caller.is_admin:
        raise PermissionDenied("Only admins can make a bundle public (parameter visibility)")
    return canonical


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 255:
        raise InvalidParameterValue("A bundle needs a name of 1 to 255 characters (parameter name)")
    return name


def _name_free(ctx: EngineContext, account_id: int, name: str, bundle_id: int | None = None) -> None:
    stmt = select(Bundle.id).where(Bundle.account_id == account_id, Bundle.live_name == name)
    if bundle_id is not None:
        stmt = stmt.where(Bundle.id != bundle_id)
    if ctx.session.scalar(stmt) is not None:
        raise InvalidParameterValue(f"A bundle with name {name} already exists for this account (parameter name)")


def _clean(recipe: dict[str, Any]) -> dict[str, Any]:
    """The recipe without empty entries, keys in a stable order."""
    return {k: recipe[k] for k in RECIPE_KEYS if recipe.get(k) not in (None, [], {}, "")}


def using_user_data(ctx: EngineContext, userdata_id: int) -> list[str]:
    """Names of the live bundles whose current recipe deploys this registered user data (recipes hold
    the row ids of what they name)."""
    rows = ctx.session.execute(
        select(Bundle.name, BundleVersion.recipe)
        .join(BundleVersion, (BundleVersion.bundle_id == Bundle.id) & (BundleVersion.version == Bundle.version))
        .where(Bundle.removed.is_(None), BundleVersion.recipe.contains('"userdataid"')))
    return [name for name, recipe in rows if json.loads(recipe).get("userdataid") == userdata_id]


def _set_tags(ctx: EngineContext, bundle: Bundle, tags: dict[str, str]) -> None:
    s = ctx.session
    s.execute(sql_delete(BundleTag).where(BundleTag.bundle_id == bundle.id))
    for key, value in tags.items():
        s.add(BundleTag(bundle_id=bundle.id, tag_key=key, tag_value=value))


def create(ctx: EngineContext, owner: Account, name: str, *, description: str | None, visibility: str,
           recipe: dict[str, Any]) -> Bundle:
    s = ctx.session
    name = _check_name(name)
    _name_free(ctx, owner.id, name)
    bundle = Bundle(name=name, live_name=name, description=description, account_id=owner.id,
                    domain_id=owner.domain_id, visibility=visibility, version=1)
    s.add(bundle)
    s.flush()
    recipe = _clean(recipe)
    s.add(BundleVersion(bundle_id=bundle.id, version=1, recipe=json.dumps(recipe),
                        user_id=ctx.caller.user_id if ctx.caller else None))
    _set_tags(ctx, bundle, recipe.get("tags") or {})
    ctx.event("BUNDLE.CREATE", f"Created bundle {name}", account_id=owner.id, domain_id=owner.domain_id,
              resource_type="Bundle", resource_uuid=bundle.uuid)
    s.flush()
    return bundle


def update(ctx: EngineContext, bundle: Bundle, *, name: str | None, description: str | None,
           visibility: str, recipe: dict[str, Any]) -> Bundle:
    """A new version: the bundle's version moves by compare-and-set, so two updates can't both win."""
    s = ctx.session
    values: dict[str, Any] = {"version": bundle.version + 1, "updated": utcnow(), "visibility": visibility}
    if name is not None:
        name = _check_name(name)
        _name_free(ctx, bundle.account_id, name, bundle.id)
        values.update(name=name, live_name=name)
    if description is not None:
        values["description"] = description
    done = s.execute(sql_update(Bundle).where(Bundle.id == bundle.id, Bundle.version == bundle.version,
                                          Bundle.removed.is_(None)).values(**values))
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise ResourceInUse(f"Bundle {bundle.name} was changed meanwhile by another request; try again")
    recipe = _clean(recipe)
    s.add(BundleVersion(bundle_id=bundle.id, version=values["version"], recipe=json.dumps(recipe),
                        user_id=ctx.caller.user_id if ctx.caller else None))
    _set_tags(ctx, bundle, recipe.get("tags") or {})
    s.flush()
    s.refresh(bundle)
    ctx.event("BUNDLE.UPDATE", f"Updated bundle {bundle.name} to version {bundle.version}",
              account_id=bundle.account_id, domain_id=bundle.domain_id, resource_type="Bundle",
              resource_uuid=bundle.uuid)
    return bundle


def delete(ctx: EngineContext, bundle: Bundle) -> None:
    """Soft delete: VMs keep pointing at the bundle and its versions, and the name is free again."""
    s = ctx.session
    s.execute(sql_update(Bundle).where(Bundle.id == bundle.id).values(removed=utcnow(), live_name=None))
    s.execute(sql_delete(BundleTag).where(BundleTag.bundle_id == bundle.id))
    ctx.event("BUNDLE.DELETE", f"Deleted bundle {bundle.name}", account_id=bundle.account_id,
              domain_id=bundle.domain_id, resource_type="Bundle", resource_uuid=bundle.uuid)
    s.flush()


def recipe_of(ctx: EngineContext, bundle: Bundle, version: int | None = None) -> dict[str, Any]:
    """A version's recipe (the current one by default)."""
    want = bundle.version if version is None else version
    text = ctx.session.scalar(select(BundleVersion.recipe).where(BundleVersion.bundle_id == bundle.id,
                                                                 BundleVersion.version == want))
    if text is None:
        raise InvalidParameterValue(f"Bundle {bundle.name} has no version {want} (parameter version)")
    return dict(json.loads(text))


def find_by_name(ctx: EngineContext, caller: Caller, name: str) -> Bundle:
    """The live bundle called ``name`` the caller may deploy: its own account's first, else the one
    shared with it (public, or shared with its domain)."""
    s = ctx.session
    own = s.scalar(select(Bundle).where(Bundle.account_id == caller.account_id, Bundle.live_name == name))
    if own is not None:
        return own
    shared = list(s.scalars(select(Bundle).where(Bundle.live_name == name, Bundle.removed.is_(None),
                                                 bundle_shared_clause(caller)).limit(2)))
    if not shared:
        raise InvalidParameterValue(f"Couldn't find bundle {name} (parameter bundle)")
    if len(shared) > 1:
        raise InvalidParameterValue(f"More than one bundle called {name} is shared with you: pass bundleid instead")
    return shared[0]


__all__ = ["RECIPE_KEYS", "VISIBILITIES", "create", "delete", "find_by_name", "recipe_of", "update",
           "visibility_of"]
