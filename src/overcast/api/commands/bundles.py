"""Bundles (an Overcast extension): createBundle, listBundles, updateBundle, deleteBundle, deployBundle.

A bundle is a named recipe for ``deployVirtualMachine``. ``deployBundle`` *is* deployVirtualMachine
(a subclass taking every one of its parameters, which override the recipe): the same allocation, the
same job, the same response; the VM records the bundle and the recipe version it came from.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from overcast.access.acl import bundle_shared_clause, resolve_owner_filters, scope_owned
from overcast.access.roles import ALL_ROLES
from overcast.api.commands.vms import DeployVirtualMachine, check_network_use, owner_account
from overcast.api.context import CallContext
from overcast.api.declare import (
    INTEGER, LIST, LONG, MAP, STRING, UUID, Access, Command, ListResult, ObjectResult, Param, Result,
    Success, SuccessResponse, api_command,
)  # fmt: skip
from overcast.api.listing import OwnedList, keyword_filter, page_bounds, run_page
from overcast.api.params import details_map
from overcast.api.responses.bundles import BundleResponse, bundle_payload
from overcast.api.responses.vms import UserVmResponse
from overcast.db.models import (
    Account,
    AffinityGroup,
    Bundle,
    BundleTag,
    BundleVersion,
    DiskOffering,
    Domain,
    Network,
    ServiceOffering,
    SshKeyPair,
    Template,
    UserData,
    VirtualMachine,
    Zone,
)
from overcast.engine import bundles
from overcast.engine.deploy import template_usable
from overcast.engine.offerings import check_offering_scope
from overcast.engine.tags import create_tags, tag_pairs
from overcast.engine.userdata import Effective, effective, parse_params, validate_for
from overcast.errors import InvalidParameterValue, PermissionDenied

BUNDLE_RELATED = ("createBundle", "listBundles", "updateBundle")


def operable(ctx: CallContext, rows: list[Bundle]) -> set[int]:
    """Ids of the bundles the caller may change (and so see the user data of)."""
    out = set()
    for b in rows:
        try:
            ctx.acl.check_owned(ctx.me, b.account_id, Access.OPERATE)
        except PermissionDenied:
            continue
        out.add(b.id)
    return out


def bundle_result(ctx: CallContext, bundle: Bundle) -> ObjectResult:
    recipe = bundles.recipe_of(ctx, bundle)
    return ObjectResult(bundle_payload(ctx.session, [(bundle, bundle.version, recipe)], operable(ctx, [bundle]))[0])


def check_recipe(ctx: CallContext, owner: Account, r: dict[str, Any]) -> None:
    """What can be checked before a deployment, for the bundle's owner (deployBundle checks it all again
    for the deploying account, through deployVirtualMachine)."""
    s = ctx.session
    if r.get("userdata") and r.get("userdataid"):
        raise InvalidParameterValue("A bundle takes userdata or userdataid, not both")
    zone = s.get(Zone, r["zoneid"]) if r.get("zoneid") else None
    if r.get("templateid"):
        template = s.get(Template, r["templateid"])
        if template is None or not template_usable(ctx, template, owner):
            raise PermissionDenied(f"Account {owner.name} can't use template id={template.uuid if template else '?'}"
                                   " (parameter templateid)")
    if r.get("serviceofferingid"):
        check_offering_scope(ctx, s.get(ServiceOffering, r["serviceofferingid"]), owner, zone, "Service offering",
                             "serviceofferingid")
    disk = s.get(DiskOffering, r["diskofferingid"]) if r.get("diskofferingid") else None
    if disk is not None:
        check_offering_scope(ctx, disk, owner, zone, "Disk offering", "diskofferingid")
    if r.get("size") is not None and (disk is None or not disk.customized):
        raise InvalidParameterValue("size can only be given with a custom disk offering (parameter size)")
    for nid in r.get("networkids", []):
        net = s.get(Network, nid)
        if net is None or net.removed is not None:
            raise InvalidParameterValue("A network of the recipe no longer exists (parameter networkids)")
        check_network_use(ctx, net, owner)
        if zone is not None and net.zone_id != zone.id:
            raise InvalidParameterValue(f"Network {net.name} is not in zone {zone.name} (parameter networkids)")
    for kp in r.get("keypairs", []):
        if s.scalar(select(SshKeyPair.id).where(SshKeyPair.account_id == owner.id, SshKeyPair.name == kp)) is None:
            raise InvalidParameterValue(f"A key pair with name '{kp}' was not found for account {owner.name}"
                                        " (parameter keypairs)")
    for gid in r.get("affinitygroupids", []):
        group = s.get(AffinityGroup, gid)
        if group is None or group.account_id != owner.id:
            raise InvalidParameterValue(f"Affinity group {group.name if group else gid} does not belong to account"
                                        f" {owner.name} (parameter affinitygroupids)")
    values = r.get("userdatadetails") or {}
    if values:
        registered = s.get(UserData, r["userdataid"]) if r.get("userdataid") else None
        declared = parse_params(registered.params) if registered is not None else []
        unknown = sorted(set(values) - set(declared))
        if unknown:
            raise InvalidParameterValue(f"Variables {', '.join(unknown)} are not declared by the recipe's registered"
                                        " user data (parameter userdatadetails)")


class RecipeParams(Command):
    """The recipe's parameters, shared by createBundle and updateBundle (the deployVirtualMachine names)."""

    zone = Param(UUID, "zoneid", entity=Zone, description="the availability zone to deploy in")
    template = Param(UUID, "templateid", entity=Template, acl=Access.USE, description="the template (or ISO) to"
                     " deploy")
    offering = Param(UUID, "serviceofferingid", entity=ServiceOffering, description="the service offering")
    disk_offering = Param(UUID, "diskofferingid", entity=DiskOffering, description="the disk offering of the data"
                          " disk (of the root disk for an ISO)")
    size = Param(LONG, min_value=1, description="the data disk size in GB, for a custom disk offering")
    root_disk_size = Param(LONG, "rootdisksize", min_value=1, description="the root disk size in GB")
    network_ids = Param(LIST, "networkids", item_type=UUID, entity=Network, acl=Access.USE,
                        description="the networks, the first one the default; none: the deploying account's"
                        " default network in the zone")
    keypairs = Param(LIST, description="names of SSH key pairs (looked up in the deploying account)")
    user_data = Param(STRING, "userdata", length=1048576, sensitive=True, description="base64 user data, checked"
                      " as deployVirtualMachine checks it (up to 4KB by GET, 1MB by POST, vm.userdata.max.length)")
    userdata_id = Param(UUID, "userdataid", entity=UserData, acl=Access.USE, description="registered user data"
                        " (registerUserData), instead of userdata")
    userdata_details = Param(MAP, "userdatadetails", description="values of the registered user data's"
                             " variables: userdatadetails[0].<name>=<value>")
    affinity_group_ids = Param(LIST, "affinitygroupids", item_type=UUID, entity=AffinityGroup, acl=Access.USE,
                               description="affinity groups, by id")
    affinity_group_names = Param(LIST, "affinitygroupnames", description="affinity groups, by name (the"
                                 " deploying account's groups of these names)")
    tags = Param(MAP, description="tags of the bundle (listBundles filters by them), given to every VM deployed"
                 " from it: tags[0].key=k&tags[0].value=v")
    details = Param(MAP, description="VM details (as deployVirtualMachine's details)")
    description = Param(STRING, length=4096, description="what the bundle is for")
    visibility = Param(STRING, choices=bundles.VISIBILITIES, description="Private (default: the owner), Domain"
                       " (every account of the owner's domain may list and deploy it) or Public (every account;"
                       " admins only)")

    def recipe(self, ctx: CallContext, owner: Account, base: dict[str, Any]) -> dict[str, Any]:
        r = dict(base)
        for key, row in (("zoneid", self.zone), ("templateid", self.template), ("serviceofferingid", self.offering),
                         ("diskofferingid", self.disk_offering), ("userdataid", self.userdata_id)):
            if row is not None:
                r[key] = row.id
        for key, value in (("size", self.size), ("rootdisksize", self.root_disk_size),
                           ("keypairs", self.keypairs), ("affinitygroupnames", self.affinity_group_names)):
            if value is not None:
                r[key] = value
        if self.network_ids is not None:
            r["networkids"] = [n.id for n in self.network_ids]
        if self.affinity_group_ids is not None:
            r["affinitygroupids"] = [g.id for g in self.affinity_group_ids]
        user_data = validate_for(ctx, self.user_data, http_method=ctx.http_method)
        if user_data is not None:
            r["userdata"] = user_data
        if self.userdata_details is not None:
            r["userdatadetails"] = details_map(self.userdata_details)
        if self.tags is not None:
            pairs = tag_pairs(self.tags, value_required=True)
            if len({k.lower() for k, _ in pairs}) != len(pairs):
                raise InvalidParameterValue("Invalid value for parameter tags: a key is given twice")
            r["tags"] = dict(pairs)  # type: ignore[arg-type]
        if self.details is not None:
            r["details"] = details_map(self.details)
        check_recipe(ctx, owner, r)
        return r


@api_command("createBundle", response=BundleResponse, roles=ALL_ROLES, event_type="BUNDLE.CREATE",
             description="Creates a bundle: a named recipe for deployVirtualMachine (zone, template, offerings,"
             " networks, key pairs, user data, affinity groups, tags, details), deployed with deployBundle."
             " An Overcast extension.")
class CreateBundle(RecipeParams):
    name = Param(STRING, required=True, description="the name of the bundle, unique in its account")
    account = Param(STRING, description="an optional account for the bundle. Must be used with domainId.")
    domain = Param(UUID, "domainid", entity=Domain, acl=Access.LIST, description="an optional domainId for the"
                   " bundle. If the account parameter is used, domainId must also be used.")

    def execute(self, ctx: CallContext) -> Result:
        owner = owner_account(ctx, self.account, self.domain)
        ctx.acl.check_owned(ctx.me, owner.id, Access.OPERATE)
        visibility = bundles.visibility_of(ctx.me, self.visibility)
        bundle = bundles.create(ctx, owner, self.name, description=self.description, visibility=visibility,
                                recipe=self.recipe(ctx, owner, {}))
        return bundle_result(ctx, bundle)


@api_command("updateBundle", response=BundleResponse, roles=ALL_ROLES, event_type="BUNDLE.UPDATE",
             description="Updates a bundle: every update makes a new version of the recipe (the parameters given"
             " replace those of the current version); VMs already deployed keep the version they came from."
             " An Overcast extension.")
class UpdateBundle(RecipeParams):
    id = Param(UUID, required=True, entity=Bundle, acl=Access.OPERATE, related=BUNDLE_RELATED,
               description="the ID of the bundle")
    name = Param(STRING, description="a new name for the bundle")
    unset = Param(LIST, description="recipe parameters to remove from the new version, e.g."
                  " diskofferingid,userdata")

    def execute(self, ctx: CallContext) -> Result:
        bundle = self.id
        owner = ctx.session.get(Account, bundle.account_id)
        assert owner is not None
        base = bundles.recipe_of(ctx, bundle)
        for key in self.unset or []:
            if key.lower() not in bundles.RECIPE_KEYS:
                raise InvalidParameterValue(f"Invalid value {key} for parameter unset: use recipe parameters"
                                            f" ({', '.join(bundles.RECIPE_KEYS)})")
            base.pop(key.lower(), None)
        visibility = bundles.visibility_of(ctx.me, self.visibility, bundle.visibility)
        bundles.update(ctx, bundle, name=self.name, description=self.description, visibility=visibility,
                       recipe=self.recipe(ctx, owner, base))
        return bundle_result(ctx, bundle)


@api_command("deleteBundle", response=SuccessResponse, roles=ALL_ROLES, event_type="BUNDLE.DELETE",
             description="Deletes a bundle. VMs deployed from it keep it (and its versions) as their origin."
             " An Overcast extension.")
class DeleteBundle(Command):
    id = Param(UUID, required=True, entity=Bundle, acl=Access.OPERATE, related=BUNDLE_RELATED,
               description="the ID of the bundle")

    def execute(self, ctx: CallContext) -> Result:
        bundles.delete(ctx, self.id)
        return Success()


@api_command("listBundles", response=BundleResponse, roles=ALL_ROLES, is_list=True,
             description="Lists bundles: the caller's own and those shared with it (its domain's, and public"
             " ones); with account/domainid/listall, those bundles' owners' as other list commands. An Overcast"
             " extension.")
class ListBundles(OwnedList):
    id = Param(UUID, related=BUNDLE_RELATED, description="the ID of the bundle")
    name = Param(STRING, description="the name of the bundle")
    version = Param(INTEGER, min_value=1, description="with id: show this version of the recipe instead of the"
                    " current one")
    visibility = Param(STRING, choices=bundles.VISIBILITIES, description="list only bundles of this visibility")
    tags = Param(MAP, description="list bundles with these tags (key/value pairs)")

    def execute(self, ctx: CallContext) -> Result:
        me = ctx.me
        if self.version is not None and not self.id:
            raise InvalidParameterValue("version needs id (parameter version)")
        domain, account = resolve_owner_filters(ctx.acl, me, domain=self.domain, account_name=self.account)
        owned = scope_owned(select(Bundle.id), me, account_col=Bundle.account_id, domain_col=Bundle.domain_id,
                            list_all=bool(self.list_all) or self.project == -1,
                            is_recursive=bool(self.is_recursive), domain=domain, account=account)
        shown = BundleVersion.version == (self.version if self.version is not None else Bundle.version)
        stmt = (select(Bundle, BundleVersion.version, BundleVersion.recipe)
                .join(BundleVersion, (BundleVersion.bundle_id == Bundle.id) & shown)
                .where(Bundle.removed.is_(None)).order_by(Bundle.id))
        if domain is not None or account is not None:
            stmt = stmt.where(Bundle.id.in_(owned))
        else:
            stmt = stmt.where(Bundle.id.in_(owned) | bundle_shared_clause(me))
        if self.id:
            stmt = stmt.where(Bundle.uuid == self.id)
        if self.name is not None:
            stmt = stmt.where(Bundle.name == self.name)
        if self.visibility:
            stmt = stmt.where(Bundle.visibility == {v.lower(): v for v in bundles.VISIBILITIES}[self.visibility.lower()])
        for key, value in tag_pairs(self.tags, value_required=False):
            cond = (BundleTag.bundle_id == Bundle.id) & (BundleTag.tag_key == key)
            if value is not None:
                cond = cond & (BundleTag.tag_value == value)
            stmt = stmt.where(select(BundleTag.id).where(cond).exists())
        kw = keyword_filter(self.keyword, Bundle.name, Bundle.description)
        if kw is not None:
            stmt = stmt.where(kw)
        offset, limit = page_bounds(ctx, self.page, self.page_size)
        paged = stmt.offset(offset)
        if limit is not None:
            paged = paged.limit(limit)
        rows, count = run_page(ctx, paged, stmt, offset, limit, entities=False)
        items = [(b, version, json.loads(recipe)) for b, version, recipe in rows]
        return ListResult(bundle_payload(ctx.session, items, operable(ctx, [b for b, _, _ in items])), count)


def inherit_params(base: type[Command], *, optional: tuple[str, ...] = ()) -> Callable[[type[Command]], type[Command]]:
    """Give a command every parameter of ``base`` (those in ``optional`` no longer required), before
    :func:`api_command` collects them: one declaration, two commands."""

    def wrap(cls: type[Command]) -> type[Command]:
        for p in base.params.values():
            if p.name == "customjobid" or p.attr in vars(cls):
                continue
            setattr(cls, p.attr, dataclasses.replace(p, required=False) if p.name in optional else p)
        return cls

    return wrap


@api_command("deployBundle", response=UserVmResponse, roles=ALL_ROLES, is_async=True, creates_entity=True,
             idempotent=True, event_type="VM.CREATE",
             description="Deploys a VM from a bundle (by bundleid, or by name with bundle): deployVirtualMachine"
             " with the bundle's recipe, any of whose parameters may be overridden. The VM records the bundle and"
             " the recipe version. An Overcast extension.")
@inherit_params(DeployVirtualMachine, optional=("zoneid", "templateid", "serviceofferingid"))
class DeployBundle(DeployVirtualMachine):
    bundle_id = Param(UUID, "bundleid", entity=Bundle, acl=Access.USE, related=BUNDLE_RELATED,
                      description="the ID of the bundle to deploy")
    bundle_name = Param(STRING, "bundle", description="the name of the bundle to deploy: the caller's own, else"
                        " one shared with it")

    def prepare(self, ctx: CallContext) -> str | None:
        s = ctx.session
        if (self.bundle_id is None) == (not self.bundle_name):
            raise InvalidParameterValue("Please pass the bundle to deploy: bundleid or bundle (its name), not both")
        bundle = self.bundle_id if self.bundle_id is not None else bundles.find_by_name(ctx, ctx.me, self.bundle_name)
        recipe = bundles.recipe_of(ctx, bundle)
        self.from_bundle, self.from_version, self.recipe = bundle, bundle.version, recipe

        def row(model: type[Any], key: str) -> Any:
            if not recipe.get(key):
                return None
            found = s.get(model, recipe[key])
            if found is None or getattr(found, "removed", None) is not None:
                raise InvalidParameterValue(f"The {key} of bundle {bundle.name} no longer exists: pass {key}")
            return found

        for attr, model, key in (("zone", Zone, "zoneid"), ("template", Template, "templateid"),
                                 ("offering", ServiceOffering, "serviceofferingid")):
            if getattr(self, attr) is None:
                setattr(self, attr, row(model, key))
                if getattr(self, attr) is None:
                    raise InvalidParameterValue(f"Bundle {bundle.name} gives no {key}: pass {key}")
        if self.disk_offering is None:
            self.disk_offering = row(DiskOffering, "diskofferingid")
            if self.size is None:
                self.size = recipe.get("size")
        if self.root_disk_size is None:
            self.root_disk_size = recipe.get("rootdisksize")
        if self.network_ids is None and self.ip_to_network is None and recipe.get("networkids"):
            self.network_ids = [s.get(Network, i) for i in recipe["networkids"]]
            if any(n is None or n.removed is not None for n in self.network_ids):
                raise InvalidParameterValue(f"A network of bundle {bundle.name} no longer exists: pass networkids")
        if self.keypair is None and self.keypairs is None:
            self.keypairs = recipe.get("keypairs")
        if self.affinity_group_ids is None and self.affinity_group_names is None:
            self.affinity_group_ids = [g for g in (s.get(AffinityGroup, i) for i in recipe.get("affinitygroupids", []))
                                       if g is not None] or None
            self.affinity_group_names = recipe.get("affinitygroupnames")
        if recipe.get("details"):
            self.details = [{**recipe["details"], **details_map(self.details)}]
        return super().prepare(ctx)

    def effective_user_data(self, ctx: CallContext) -> Effective:
        if self.user_data or self.userdata_id is not None:
            return super().effective_user_data(ctx)  # the caller's user data overrides the recipe's
        recipe = self.recipe
        registered = None
        if recipe.get("userdataid"):
            registered = ctx.session.get(UserData, recipe["userdataid"])
            if registered is None:
                raise InvalidParameterValue(f"The registered user data of bundle {self.from_bundle.name} no longer"
                                            " exists: pass userdata or userdataid")
        details = {**(recipe.get("userdatadetails") or {}), **details_map(self.userdata_details)}
        # The recipe's inline user data was validated when the bundle was written: not again here, so a
        # bundle written by POST deploys by GET too.
        return effective(ctx, self.template, user_data=recipe.get("userdata"), registered=registered,
                         details=details)

    def allocated(self, ctx: CallContext, vm: VirtualMachine) -> None:
        vm.bundle_id, vm.bundle_version = self.from_bundle.id, self.from_version
        tags = self.recipe.get("tags") or {}
        if tags:
            create_tags(ctx, "UserVm", [vm.uuid], list(tags.items()))


__all__ = ["CreateBundle", "DeleteBundle", "DeployBundle", "ListBundles", "UpdateBundle"]
