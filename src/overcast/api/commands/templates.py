"""Templates and ISOs: registering, listing by filter, sharing, copying, extracting, deleting; ISOs on VMs.

On this cloud a registered template is Ready at once in its zones (the download pipeline comes with the
image stores). Listing follows CloudStack's TemplateFilter rules and answers one object per template and
zone.
"""

from __future__ import annotations

import json
import uuid as uuidlib
from typing import Any

from sqlalchemy import and_, false, or_, select, true

from overcast.access.acl import resolve_owner_filters, visible_accounts_clause
from overcast.access.roles import ADMINS, ALL_ROLES, ROOT_ADMIN
from overcast.api.commands.vms import owner_account, vm_result
from overcast.api.context import CallContext
from overcast.api.declare import (
    BOOLEAN, INTEGER, LIST, MAP, STRING, UUID, Access, Command, ListResult, ObjectResult, Param, Result, Success,
    SuccessResponse, api_command,
)  # fmt: skip
from overcast.api.listing import keyword_filter, page_bounds, run_page
from overcast.api.params import details_map
from overcast.api.responses.templates import (
    ExtractIsoResponse,
    ExtractVolumeResponse,
    GetUploadParamsResponse,
    ExtractResponse,
    IsoPermissionsResponse,
    IsoResponse,
    TemplatePermissionsResponse,
    TemplateResponse,
    template_payload,
)
from overcast.api.responses.vms import UserVmResponse
from overcast.api.serialize import cs_date
from overcast.db.models import (
    Account,
    Cluster,
    Domain,
    GuestOs,
    GuestOsCategory,
    ImageStore,
    LaunchPermission,
    ResourceTag,
    Snapshot,
    StoragePool,
    Template,
    TemplateZone,
    VirtualMachine,
    Volume,
    Zone,
)
from overcast.engine.deploy import template_usable
from overcast.engine.templates import (
    TEMPLATE_FILTERS,
    TemplateService,
    TemplateSpec,
    canonical_hypervisor,
    image_store_of,
    ready_ref,
    require_format,
    require_hypervisor,
    template_rows,
    utcnow,
    validate_checksum,
    validate_url,
    zone_refs,
)
from overcast.engine.template_downloads import copy_now, remove_objects, simulated_store
from overcast.errors import InvalidParameterValue, ParamError, PermissionDenied, ResourceUnavailable
from overcast.plugins.storage import ImageStoreError

TEMPLATE_RELATED = ("registerTemplate", "listTemplates", "updateTemplate", "deleteTemplate", "copyTemplate")
ISO_RELATED = ("registerIso", "listIsos", "updateIso", "deleteIso", "copyIso")
ARCHES = ("x86_64", "aarch64")


# -- shared helpers -----------------------------------------------------------------------------



def is_iso(t: Template) -> bool:
    return t.format == "ISO"


def check_kind(t: Template, iso: bool) -> None:
    if iso and not is_iso(t):
        raise InvalidParameterValue("Please specify a valid iso.", uuids=[(t.uuid, "isoId")])
    if not iso and is_iso(t):
        raise InvalidParameterValue("Please specify a valid template.", uuids=[(t.uuid, "templateId")])


def payload(ctx: CallContext, rows: list[tuple[Template, TemplateZone | None]]) -> list[dict[str, Any]]:
    return template_payload(ctx.session, rows, ctx.me)


def one(ctx: CallContext, t: Template, zone: Zone | None = None) -> ObjectResult:
    ctx.session.flush()
    rows = template_rows(ctx, t, [zone] if zone is not None else None)
    return ObjectResult(payload(ctx, rows[:1])[0])


def zone_list(zone: Any, zones: list[Any] | None, *, one_name: str = "zoneid", many_name: str = "zoneids"
              ) -> list[Zone] | None:
    """The zones of a zoneid/zoneids pair; None for all zones (-1)."""
    if zone is not None and zones:
        raise ParamError(f"Both {one_name} and {many_name} cannot be specified at the same time")
    if zone is None and not zones:
        raise ParamError(f"Either {one_name} or {many_name} is required. Both cannot be null.")
    if zones:
        if len(zones) > 1 and -1 in zones:
            raise ParamError(f"Parameter {many_name} cannot combine all zones (-1) option with other zones")
        if zones == [-1]:
            return None
        seen: dict[int, Zone] = {}
        for z in zones:
            seen.setdefault(z.id, z)
        return list(seen.values())
    return None if zone == -1 else [zone]


def check_template_visible(ctx: CallContext, t: Template) -> None:
    """May the caller see (list, use) this template? Public, its own, shared with it, or an admin's reach."""
    ctx.acl.check(ctx.me, t, Access.LIST)


def resolve_owner(ctx: CallContext, account: str | None, domain: Domain | None) -> Account:
    """The owner of a new template: the caller's account, or (admins) ``account`` in ``domainid``."""
    return owner_account(ctx, account, domain)


def featured_for(ctx: CallContext, value: bool | None) -> bool:
    """isfeatured is a root admin's choice; CloudStack drops it silently for anyone else."""
    return bool(value) and ctx.me.is_root_admin


# -- listing ----------------------------------------------------------------------------------


class TemplateListing(Command):
    """Shared by listTemplates and listIsos: CloudStack's searchForTemplatesInternal."""

    all_marker = frozenset({"zoneid"})
    iso: bool = False
    id = Param(UUID, description="the ID of the template or ISO")
    name = Param(STRING, description="the name of the template or ISO")
    zone = Param(UUID, "zoneid", entity=Zone, description="list templates or ISOs by zoneId")
    hypervisor = Param(STRING, description="the hypervisor for which to restrict the search")
    show_removed = Param(BOOLEAN, "showremoved", description="show removed templates or ISOs as well")
    is_ready = Param(BOOLEAN, "isready", since="4.21.0", description="list templates or ISOs that are ready to be"
                     " deployed")
    arch = Param(STRING, choices=ARCHES, since="4.20", description="the CPU arch of the template or ISO. Valid"
                 " options are: x86_64, aarch64")
    os_category = Param(UUID, "oscategoryid", entity=GuestOsCategory, since="4.21.0",
                        description="the ID of the OS category of the template or ISO")
    tags = Param(MAP, description="List resources by tags (key/value pairs)")
    account = Param(STRING, description="list resources by account. Must be used with the domainId parameter.")
    domain = Param(UUID, "domainid", entity=Domain, description="list only resources belonging to the domain"
                   " specified")
    is_recursive = Param(BOOLEAN, "isrecursive", description="defaults to false, but if true, lists all resources"
                         " from the parent specified by the domainId till leaves.")

    def filter_value(self) -> str:
        raise NotImplementedError

    def execute(self, ctx: CallContext) -> Result:
        me, s = ctx.me, ctx.session
        flt = self.filter_value()
        if flt == "all" and me.is_normal_user:
            raise InvalidParameterValue("Filter all can be specified by admin only")
        show_removed = bool(getattr(self, "show_removed", None))
        ref_on = TemplateZone.template_id == Template.id
        if not show_removed:
            ref_on = and_(ref_on, TemplateZone.removed.is_(None))
        stmt = select(Template, TemplateZone).outerjoin(TemplateZone, ref_on)
        stmt = stmt.where(Template.format == "ISO") if self.iso else stmt.where(Template.format != "ISO")
        if not show_removed:
            stmt = stmt.where(Template.removed.is_(None), Template.state.in_(
                ("Active", "UploadAbandoned", "UploadError", "NotUploaded", "UploadInProgress")))
        if not self.iso and s.scalar(select(Cluster.id).where(Cluster.removed.is_(None)).limit(1)) is None:
            return ListResult([], 0)  # no hypervisor in the cloud: CloudStack lists no templates
        if self.id:
            stmt = stmt.where(Template.id == self.by_id(ctx).id)
        else:
            stmt = self.scoped(ctx, stmt, flt)
        if self.zone is not None and self.zone != -1:
            stmt = stmt.where(TemplateZone.zone_id == self.zone.id)
        stmt = stmt.order_by(Template.sort_key, Template.id, TemplateZone.zone_id)
        offset, limit = page_bounds(ctx, self.page, self.page_size)
        paged = stmt.offset(offset)
        if limit is not None:
            paged = paged.limit(limit)
        rows, count = run_page(ctx, paged, stmt, offset, limit, entities=False)
        return ListResult(payload(ctx, [(r[0], r[1]) for r in rows]), count)

    def by_id(self, ctx: CallContext) -> Template:
        t = ctx.session.scalar(select(Template).where(Template.uuid == self.id))
        if t is None:
            raise ParamError(f"Unable to execute API command {self.name.lower()} due to invalid value. Invalid"
                             f" parameter id value={self.id} due to incorrect long value format, or entity does not"
                             " exist or due to incorrect parameter annotation for the field in api cmd class.")
        if self.iso and not is_iso(t):
            raise InvalidParameterValue("Specified Template Id is not an ISO", uuids=[(t.uuid, "templateId")])
        if not self.iso and is_iso(t):
            raise InvalidParameterValue(f"Incorrect format {t.format} of the specified template id",
                                        uuids=[(t.uuid, "templateId")])
        check_template_visible(ctx, t)
        return t

    def scoped(self, ctx: CallContext, stmt: Any, flt: str) -> Any:
        me = ctx.me
        domain, account = resolve_owner_filters(ctx.acl, me, domain=self.domain, account_name=self.account)
        if account is not None:
            permitted: list[int] | None = [account.id]
        elif me.is_normal_user or (flt != "all" and domain is None):
            permitted = [me.account_id]
        else:
            permitted = None
        owned = Template.account_id.in_(permitted) if permitted is not None else true()
        if permitted is None and domain is not None:
            sub = select(Domain.id).where(Domain.path.startswith(domain.path)) if self.is_recursive \
                else select(Domain.id).where(Domain.id == domain.id)
            owned = Template.domain_id.in_(sub)
        if permitted is None and not me.is_root_admin:
            owned = and_(owned, Template.account_id.in_(select(Account.id).where(visible_accounts_clause(me))))
        grants = select(LaunchPermission.template_id)
        if permitted is not None:
            grants = grants.where(LaunchPermission.account_id.in_(permitted))
        elif not me.is_root_admin:
            grants = grants.where(LaunchPermission.account_id.in_(select(Account.id).where(visible_accounts_clause(me))))
        shared = Template.id.in_(grants)
        public = Template.is_public.is_(True)
        if flt == "featured":
            cond = and_(public, Template.featured.is_(True))
        elif flt == "community":
            cond = and_(public, Template.featured.is_(False))
        elif flt in ("self", "selfexecutable"):
            cond = owned
        elif flt in ("sharedexecutable", "shared"):
            cond = shared
        elif flt == "executable":
            cond = or_(public, owned, shared)
        else:  # all
            cond = true() if me.is_root_admin and domain is None else or_(public, owned)
        stmt = stmt.where(cond)
        if not self.iso and flt in ("featured", "selfexecutable"):
            stmt = stmt.where(Template.template_type != "SYSTEM")
        only_ready = flt in ("featured", "community", "selfexecutable", "sharedexecutable", "executable")
        if self.is_ready is not None:
            only_ready = self.is_ready
        if only_ready:
            stmt = stmt.where(or_(TemplateZone.state == "Ready", Template.format == "BAREMETAL",
                                  and_(Template.format == "ISO", Template.template_type == "PERHOST")))
        if not self.iso:
            hypervisors = select(Cluster.hypervisor_type).where(Cluster.removed.is_(None))
            stmt = stmt.where(Template.hypervisor_type.in_(hypervisors))
        if self.ids:
            stmt = stmt.where(Template.uuid.in_(self.ids))
        if self.keyword:
            stmt = stmt.where(keyword_filter(self.keyword, Template.name))
        elif self.name:
            stmt = stmt.where(Template.name == self.name)
        if self.hypervisor:
            hv = canonical_hypervisor(self.hypervisor)
            stmt = stmt.where(Template.hypervisor_type == hv) if hv else stmt.where(false())
        if self.arch:
            stmt = stmt.where(Template.arch == self.arch)
        if self.os_category:
            stmt = stmt.where(Template.guest_os_id.in_(select(GuestOs.id).where(GuestOs.category_id == self.os_category.id)))
        for attr, col in (("bootable", Template.bootable), ("is_public", Template.is_public)):
            value = getattr(self, attr, None)
            if value is not None:
                stmt = stmt.where(col.is_(value))
        ttype = getattr(self, "template_type", None)
        if ttype:
            stmt = stmt.where(Template.template_type == ttype)
        for entry in self.tags or []:
            key, value = entry.get("key"), entry.get("value")
            if key is None:
                raise InvalidParameterValue("tags[i].key is required (parameter tags)")
            sub = select(ResourceTag.resource_id).where(ResourceTag.resource_type == ("ISO" if self.iso else "Template"),
                                                        ResourceTag.tag_key == key)
            if value is not None:
                sub = sub.where(ResourceTag.tag_value == value)
            stmt = stmt.where(Template.id.in_(sub))
        return stmt


FILTER_TEXT = ("possible values are \"featured\", \"self\", \"selfexecutable\",\"sharedexecutable\",\"executable\","
               " and \"community\". * featured : templates that have been marked as featured and public. * self :"
               " templates that have been registered or created by the calling user. * selfexecutable : same as"
               " self, but only returns templates that can be used to deploy a new VM. * sharedexecutable :"
               " templates ready to be deployed that have been granted to the calling user by another user. *"
               " executable : templates that are owned by the calling user, or public templates, that can be used"
               " to deploy a VM. * community : templates that have been marked as public but not featured. * all :"
               " all templates (only usable by admins).")


@api_command("listTemplates", response=TemplateResponse, roles=ALL_ROLES, is_list=True,
             description="List all public, private, and privileged templates.")
class ListTemplates(TemplateListing):
    template_filter = Param(STRING, "templatefilter", required=True, choices=TEMPLATE_FILTERS,
                            description=FILTER_TEXT)
    ids = Param(LIST, item_type=UUID, since="4.9", description="the IDs of the templates, mutually exclusive with id")
    template_type = Param(STRING, "templatetype", choices=("USER", "VNF", "SYSTEM", "ROUTING", "BUILTIN", "PERHOST"),
                          since="4.19.0", description="the type of the template")

    def filter_value(self) -> str:
        return str(self.template_filter)


@api_command("listIsos", response=IsoResponse, roles=ALL_ROLES, is_list=True,
             description="Lists all available ISO files.")
class ListIsos(TemplateListing):
    iso = True
    iso_filter = Param(STRING, "isofilter", choices=TEMPLATE_FILTERS, description=FILTER_TEXT.replace("templates",
                       "ISOs") + " Default: selfexecutable")
    bootable = Param(BOOLEAN, description="true if the ISO is bootable, false otherwise")
    is_public = Param(BOOLEAN, "ispublic", description="true if the ISO is publicly available to all users, false"
                      " otherwise.")

    ids = None  # listIsos has no ids parameter

    def filter_value(self) -> str:
        return str(self.iso_filter or "selfexecutable")


# -- registering ----------------------------------------------------------------------------------


def _spec_common(cmd: Any, ctx: CallContext, *, fmt: str, hypervisor: str | None, os_: GuestOs | None) -> TemplateSpec:
    return TemplateSpec(
        name=cmd.name, display_text=cmd.display_text or cmd.name, format=fmt, hypervisor=hypervisor,
        url=validate_url(cmd.url), guest_os=os_, checksum=validate_checksum(cmd.checksum),
        is_public=bool(cmd.is_public), featured=featured_for(ctx, cmd.is_featured),
        extractable=bool(cmd.is_extractable), password_enabled=bool(cmd.password_enabled),
        dynamically_scalable=bool(cmd.is_dynamically_scalable), direct_download=bool(cmd.direct_download),
        arch=cmd.arch or "x86_64",
    )  # fmt: skip


class TemplateProperties(Command):
    """What registerTemplate and getUploadParamsForTemplate declare alike: the new template's properties
    and owner."""

    bits = Param(INTEGER, description="32 or 64 bits support. 64 by default")
    is_featured = Param(BOOLEAN, "isfeatured", description="true if this template is a featured template, false"
                        " otherwise")
    is_public = Param(BOOLEAN, "ispublic", description="true if the template is available to all accounts; default"
                      " is true")
    password_enabled = Param(BOOLEAN, "passwordenabled", description="true if the template supports the password"
                             " reset feature; default is false")
    sshkey_enabled = Param(BOOLEAN, "sshkeyenabled", description="true if the template supports the sshkey upload"
                           " feature; default is false")
    is_extractable = Param(BOOLEAN, "isextractable", description="true if the template or its derivatives are"
                           " extractable; default is false")
    requires_hvm = Param(BOOLEAN, "requireshvm", description="true if this template requires HVM")
    is_dynamically_scalable = Param(BOOLEAN, "isdynamicallyscalable", description="true if template contains XS/VMWare"
                                    " tools inorder to support dynamic scaling of VM cpu/memory")
    is_routing = Param(BOOLEAN, "isrouting", authorized=ADMINS, description="true if the template type is routing"
                       " i.e., if template is used to deploy router")
    template_tag = Param(STRING, "templatetag", description="the tag for this template.")
    arch = Param(STRING, choices=ARCHES, since="4.20", description="the CPU arch of the template. Valid options are:"
                 " x86_64, aarch64")
    account = Param(STRING, description="an optional accountName. Must be used with domainId.")
    domain = Param(UUID, "domainid", entity=Domain, description="an optional domainId. If the account parameter is"
                   " used, domainId must also be used.")


@api_command("registerTemplate", response=TemplateResponse, roles=ALL_ROLES, event_type="TEMPLATE.CREATE",
             description="Registers an existing template into the CloudStack cloud.")
class RegisterTemplate(TemplateProperties):
    all_marker = frozenset({"zoneid", "zoneids"})
    name = Param(STRING, required=True, description="the name of the template")
    display_text = Param(STRING, "displaytext", required=True, length=4096, description="The display text of the"
                         " template, defaults to name if not specified or set to empty.")
    url = Param(STRING, required=True, length=2048, description="the URL of where the template is hosted."
                " Possible URL include http:// and https://")
    format = Param(STRING, required=True, description="the format for the template. Possible values include QCOW2,"
                   " RAW, VHD and OVA.")
    hypervisor = Param(STRING, required=True, description="the target hypervisor for the template")
    os_type = Param(UUID, "ostypeid", entity=GuestOs, description="the ID of the OS Type that best represents the OS"
                    " of this template. Not applicable with VMware, as we honour what is defined in the template")
    zone = Param(UUID, "zoneid", entity=Zone, description="the ID of the zone the template is to be hosted on")
    zones = Param(LIST, "zoneids", item_type=UUID, entity=Zone, since="4.10.0", description="A list of zone ids where"
                  " the template will be hosted. Use this parameter if the template needs to be registered to"
                  " multiple zones in one go. Use zoneid if the template needs to be registered to only one zone."
                  "Passing only -1 to this will cause the template to be registered as a cross zone template and will"
                  " be copied to all zones. ")
    checksum = Param(STRING, description="the checksum value of this template. The parameter containing the checksum"
                     " will be considered a MD5sum if it is not prefixed and just a plain ascii/utf8 representation of a"
                     " hexadecimal string. If it is required to use another algorithm the hexadecimal string is to be"
                     " prefixed with a string of the form, \"{<algorithm>}\", not including the double quotes. In this"
                     " <algorithm> is the exact string representing the java supported algorithm, i.e. MD5 or SHA-256."
                     " Note that java does not contain an algorithm called SHA256 or one called sha-256, only SHA-256.")
    details = Param(MAP, description="Template details in key/value pairs using format details[i].keyname=keyvalue."
                    " Example: details[0].hypervisortoolsversion=xenserver61")
    direct_download = Param(BOOLEAN, "directdownload", since="4.11", description="true if template should bypass"
                            " Secondary Storage and be downloaded to Primary Storage on deployment")
    template_type = Param(STRING, "templatetype", since="4.19.0", description="the type of the template. Valid"
                          " options are: USER/VNF (for all users) and SYSTEM/ROUTING/BUILTIN (for admins only).")

    def execute(self, ctx: CallContext) -> Result:
        zones = zone_list(self.zone, self.zones)
        hypervisor = require_hypervisor(self.hypervisor)
        if self.direct_download and hypervisor not in ("KVM", "Custom"):
            raise ParamError("Parameter directdownload is only allowed for KVM or Custom templates")
        if self.os_type is None:
            raise ParamError("Please provide a guest OS type")
        owner = resolve_owner(ctx, self.account, self.domain)
        ttype = template_type_for(ctx, self.template_type, self.is_routing)
        fmt = require_format(self.format)
        if fmt == "ISO":
            raise InvalidParameterValue("ISO is not a template format (parameter format): register ISOs with"
                                        " registerIso")
        spec = _spec_common(self, ctx, fmt=fmt, hypervisor=hypervisor, os_=self.os_type)
        spec.bits = self.bits if self.bits is not None else 64
        if spec.bits not in (32, 64):
            raise InvalidParameterValue("Parameter bits must be 32 or 64")
        spec.sshkey_enabled = bool(self.sshkey_enabled)
        spec.requires_hvm = True if self.requires_hvm is None else self.requires_hvm
        spec.template_tag, spec.template_type = self.template_tag, ttype
        spec.details = details_map(self.details)
        template, targets = TemplateService(ctx).register(owner, spec, zones)
        items = payload(ctx, template_rows(ctx, template, targets))
        return ListResult(items, len(items))


def template_type_for(ctx: CallContext, value: str | None, is_routing: bool | None) -> str:
    if is_routing:
        return "ROUTING"
    if not value:
        return "USER"
    ttype = value.strip().upper()
    if ttype not in ("USER", "VNF", "SYSTEM", "ROUTING", "BUILTIN"):
        raise InvalidParameterValue(f"Invalid template type {value} (parameter templatetype); valid types are USER,"
                                    " VNF, SYSTEM, ROUTING and BUILTIN")
    if ttype not in ("USER", "VNF") and not ctx.me.is_admin:
        raise InvalidParameterValue(f"Users can not register template with template type {ttype}.")
    return ttype


@api_command("registerIso", response=IsoResponse, roles=ALL_ROLES, event_type="ISO.CREATE",
             description="Registers an existing ISO into the CloudStack Cloud.")
class RegisterIso(Command):
    all_marker = frozenset({"zoneid"})
    name = Param(STRING, required=True, description="the name of the ISO")
    display_text = Param(STRING, "displaytext", required=True, length=4096, description="the display text of the ISO,"
                         " defaults to the 'name'")
    url = Param(STRING, required=True, length=2048, description="the URL to where the ISO is currently being hosted")
    zone = Param(UUID, "zoneid", required=True, entity=Zone, description="the ID of the zone you wish to register the"
                 " ISO to.")
    bootable = Param(BOOLEAN, description="true if this ISO is bootable. If not passed explicitly its assumed to be"
                     " true")
    os_type = Param(UUID, "ostypeid", entity=GuestOs, description="the ID of the OS type that best represents the OS"
                    " of this ISO. If the ISO is bootable this parameter needs to be passed")
    is_featured = Param(BOOLEAN, "isfeatured", description="true if you want this ISO to be featured")
    is_public = Param(BOOLEAN, "ispublic", description="true if you want to register the ISO to be publicly available"
                      " to all users, false otherwise.")
    is_extractable = Param(BOOLEAN, "isextractable", description="true if the ISO or its derivatives are extractable;"
                           " default is false")
    password_enabled = Param(BOOLEAN, "passwordenabled", since="4.19.0", description="true if password reset feature"
                             " is supported; default is false")
    is_dynamically_scalable = Param(BOOLEAN, "isdynamicallyscalable", description="true if ISO contains XS/VMWare"
                                    " tools inorder to support dynamic scaling of VM CPU/memory")
    checksum = Param(STRING, description="the checksum value of this ISO. The parameter containing the checksum will"
                     " be considered a MD5sum if it is not prefixed and just a plain ascii/utf8 representation of a"
                     " hexadecimal string. If it is required to use another algorithm the hexadecimal string is to be"
                     " prefixed with a string of the form, \"{<algorithm>}\", not including the double quotes.")
    direct_download = Param(BOOLEAN, "directdownload", since="4.13", description="true if ISO should bypass"
                            " Secondary Storage and be downloaded to Primary Storage on deployment")
    arch = Param(STRING, choices=ARCHES, since="4.20", description="the CPU arch of the ISO. Valid options are:"
                 " x86_64, aarch64")
    account = Param(STRING, description="an optional account name. Must be used with domainId.")
    domain = Param(UUID, "domainid", entity=Domain, description="an optional domainId. If the account parameter is"
                   " used, domainId must also be used.")

    def execute(self, ctx: CallContext) -> Result:
        bootable = True if self.bootable is None else self.bootable
        if bootable and self.os_type is None:
            raise InvalidParameterValue("Please pass a valid GuestOS Id")
        owner = resolve_owner(ctx, self.account, self.domain)
        spec = _spec_common(self, ctx, fmt="ISO", hypervisor=None, os_=self.os_type if bootable else None)
        spec.bootable = bootable
        zones = None if self.zone == -1 else [self.zone]
        template, targets = TemplateService(ctx).register(owner, spec, zones)
        items = payload(ctx, template_rows(ctx, template, targets))
        return ListResult(items, len(items))


# -- browser uploads ------------------------------------------------------------------------------


def upload_params(ctx: CallContext, t: Template) -> ObjectResult:
    """The signed, expiring POST target of a template or ISO waiting for its file (api/transfer.py)."""
    import base64
    from datetime import UTC, datetime, timedelta

    from overcast.api.transfer import upload_parts
    from overcast.storage.signed import public_base, server_secret, signature

    services = ctx.services
    secret = server_secret(services, ctx.session)
    minutes = int(ctx.setting("upload.operation.timeout"))
    expires = (datetime.now(UTC) + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")
    metadata = base64.urlsafe_b64encode(json.dumps({"id": t.uuid, "format": t.format}).encode()).rstrip(b"=")
    path = f"/upload/{t.uuid}"
    sig = signature(secret, *upload_parts(metadata.decode(), path, expires))
    return ObjectResult({"id": t.uuid, "postURL": public_base(services) + path, "metadata": metadata.decode(),
                         "expires": expires, "signature": sig})


@api_command("getUploadParamsForTemplate", response=GetUploadParamsResponse, roles=ALL_ROLES,
             event_type="TEMPLATE.CREATE", description="upload an existing template into the CloudStack cloud.")
class GetUploadParamsForTemplate(TemplateProperties):
    name = Param(STRING, required=True, description="the name of the volume/template/iso")
    display_text = Param(STRING, "displaytext", required=True, length=4096, description="The display text of the"
                         " template. This is usually used for display purposes.")
    format = Param(STRING, required=True, description="the format for the volume/template/iso. Possible values"
                   " include QCOW2, OVA, and VHD.")
    hypervisor = Param(STRING, required=True, description="the target hypervisor for the template")
    zone = Param(UUID, "zoneid", required=True, entity=Zone, description="the ID of the zone the"
                 " volume/template/iso is to be hosted on")
    os_type = Param(UUID, "ostypeid", entity=GuestOs, description="the ID of the OS Type that best represents the OS"
                    " of this template.")
    checksum = Param(STRING, description="the checksum value of this volume/template/iso The parameter containing"
                     " the checksum will be considered a MD5sum if it is not prefixed and just a plain ascii/utf8"
                     " representation of a hexadecimal string. If it is required to use another algorithm the"
                     " hexadecimal string is to be prefixed with a string of the form, \"{<algorithm>}\", not"
                     " including the double quotes.")
    details = Param(MAP, description="Template details in key/value pairs.")
    template_type = Param(STRING, "templatetype", since="4.22.0", description="the type of the template. Valid"
                          " options are: USER/VNF (for all users) and SYSTEM/ROUTING/BUILTIN (for admins only).")

    def execute(self, ctx: CallContext) -> Result:
        if self.zone == -1:
            raise InvalidParameterValue("Please specify a zone for the upload (parameter zoneid); -1 (all zones) is"
                                        " not allowed")
        hypervisor = require_hypervisor(self.hypervisor)
        fmt = require_format(self.format)
        if fmt == "ISO":
            raise InvalidParameterValue("ISO is not a template format (parameter format): upload ISOs with"
                                        " getUploadParamsForIso")
        if self.os_type is None:
            raise ParamError("Please provide a guest OS type")
        owner = resolve_owner(ctx, self.account, self.domain)
        spec = TemplateSpec(
            name=self.name, display_text=self.display_text or self.name, format=fmt, hypervisor=hypervisor,
            guest_os=self.os_type, checksum=validate_checksum(self.checksum), is_public=bool(self.is_public),
            featured=featured_for(ctx, self.is_featured), extractable=bool(self.is_extractable),
            password_enabled=bool(self.password_enabled), sshkey_enabled=bool(self.sshkey_enabled),
            requires_hvm=True if self.requires_hvm is None else self.requires_hvm,
            dynamically_scalable=bool(self.is_dynamically_scalable), template_tag=self.template_tag,
            template_type=template_type_for(ctx, self.template_type, self.is_routing),
            details=details_map(self.details), arch=self.arch or "x86_64",
            bits=self.bits if self.bits is not None else 64,
        )  # fmt: skip
        if spec.bits not in (32, 64):
            raise InvalidParameterValue("Parameter bits must be 32 or 64")
        template, _ = TemplateService(ctx).prepare_upload(owner, spec, self.zone)
        return upload_params(ctx, template)


@api_command("getUploadParamsForIso", response=GetUploadParamsResponse, roles=ALL_ROLES, event_type="ISO.CREATE",
             description="upload an existing ISO into the CloudStack cloud.")
class GetUploadParamsForIso(Command):
    name = Param(STRING, required=True, description="the name of the volume/template/iso")
    display_text = Param(STRING, "displaytext", length=4096, description="the display text of the ISO. This is"
                         " usually used for display purposes.")
    format = Param(STRING, required=True, description="the format for the volume/template/iso. Possible values"
                   " include QCOW2, OVA, and VHD.")
    zone = Param(UUID, "zoneid", required=True, entity=Zone, description="the ID of the zone the"
                 " volume/template/iso is to be hosted on")
    bootable = Param(BOOLEAN, description="true if this ISO is bootable. If not passed explicitly its assumed to be"
                     " true")
    os_type = Param(UUID, "ostypeid", entity=GuestOs, description="the ID of the OS type that best represents the OS"
                    " of this ISO. If the ISO is bootable this parameter needs to be passed")
    checksum = Param(STRING, description="the checksum value of this volume/template/iso")
    is_featured = Param(BOOLEAN, "isfeatured", description="true if you want this ISO to be featured")
    is_public = Param(BOOLEAN, "ispublic", description="true if you want to register the ISO to be publicly available"
                      " to all users, false otherwise.")
    is_extractable = Param(BOOLEAN, "isextractable", description="true if the ISO or its derivatives are extractable;"
                           " default is false")
    account = Param(STRING, description="an optional accountName. Must be used with domainId.")
    domain = Param(UUID, "domainid", entity=Domain, description="an optional domainId. If the account parameter is"
                   " used, domainId must also be used.")

    def execute(self, ctx: CallContext) -> Result:
        if self.zone == -1:
            raise InvalidParameterValue("Please specify a zone for the upload (parameter zoneid); -1 (all zones) is"
                                        " not allowed")
        if require_format(self.format) != "ISO":
            raise InvalidParameterValue(f"Invalid format {self.format} for an ISO upload (parameter format): use ISO")
        bootable = True if self.bootable is None else self.bootable
        if bootable and self.os_type is None:
            raise InvalidParameterValue("Please pass a valid GuestOS Id")
        owner = resolve_owner(ctx, self.account, self.domain)
        spec = TemplateSpec(
            name=self.name, display_text=self.display_text or self.name, format="ISO", hypervisor=None,
            guest_os=self.os_type if bootable else None, checksum=validate_checksum(self.checksum),
            is_public=bool(self.is_public), featured=featured_for(ctx, self.is_featured),
            extractable=bool(self.is_extractable), bootable=bootable,
        )  # fmt: skip
        template, _ = TemplateService(ctx).prepare_upload(owner, spec, self.zone)
        return upload_params(ctx, template)


# -- updating -------------------------------------------------------------------------------------


class UpdateTemplateOrIso(Command):
    iso: bool = False
    name = Param(STRING, description="the name of the image file")
    display_text = Param(STRING, "displaytext", length=4096, description="the display text of the image")
    bootable = Param(BOOLEAN, description="true if image is bootable, false otherwise; available only for updateIso"
                     " API")
    os_type = Param(UUID, "ostypeid", entity=GuestOs, description="the ID of the OS type that best represents the OS"
                    " of this image.")
    force_update_os_type = Param(BOOLEAN, "forceupdateostype", since="4.21", description="Force OS type update."
                                 " Warning: Updating OS type will update the guest OS configuration for all the"
                                 " existing Instances deployed with this template/iso, which may affect their"
                                 " behavior.")
    format = Param(STRING, description="the format for the image")
    password_enabled = Param(BOOLEAN, "passwordenabled", description="true if the image supports the password reset"
                             " feature; default is false")
    sshkey_enabled = Param(BOOLEAN, "sshkeyenabled", description="true if the template supports the sshkey upload"
                           " feature; default is false")
    requires_hvm = Param(BOOLEAN, "requireshvm", description="true if the template requires HVM, false otherwise")
    is_dynamically_scalable = Param(BOOLEAN, "isdynamicallyscalable", description="true if template/ISO contains"
                                    " XS/VMWare tools inorder to support dynamic scaling of VM cpu/memory")
    is_routing = Param(BOOLEAN, "isrouting", authorized=ADMINS, description="true if the template type is routing"
                       " i.e., if template is used to deploy router")
    sort_key = Param(INTEGER, "sortkey", authorized=ADMINS, description="sort key of the template, integer")
    details = Param(MAP, description="Details in key/value pairs using format details[i].keyname=keyvalue. Example:"
                    " details[0].hypervisortoolsversion=xenserver61")
    cleanup_details = Param(BOOLEAN, "cleanupdetails", description="optional boolean field, which indicates if"
                            " details should be cleaned up or not (if set to true, details removed for this resource,"
                            " details field ignored; if false or not set, no action)")
    arch = Param(STRING, choices=ARCHES, since="4.20", description="the CPU arch of the template/ISO. Valid options"
                 " are: x86_64, aarch64")

    def execute(self, ctx: CallContext) -> Result:
        t: Template = self.id
        check_kind(t, self.iso)
        if self.name is not None:
            if not self.name.strip():
                raise InvalidParameterValue("Parameter name can't be empty")
            t.name = self.name
        if self.display_text is not None:
            t.display_text = self.display_text or t.name
        if self.bootable is not None:
            t.bootable = self.bootable
        if self.os_type is not None and self.os_type.id != t.guest_os_id:
            t.guest_os_id = self.os_type.id
            if self.force_update_os_type:
                col = VirtualMachine.iso_id if self.iso else VirtualMachine.template_id
                for vm in ctx.session.scalars(select(VirtualMachine).where(col == t.id,
                                                                           VirtualMachine.removed.is_(None))):
                    vm.guest_os_id = self.os_type.id
        if self.format is not None:
            fmt = require_format(self.format)
            if (fmt == "ISO") != self.iso:
                raise InvalidParameterValue(f"Format {fmt} can't be given to {'an ISO' if self.iso else 'a template'}")
            t.format = fmt
        for attr, col in (("password_enabled", "password_enabled"), ("sshkey_enabled", "sshkey_enabled"),
                          ("requires_hvm", "requires_hvm"), ("is_dynamically_scalable", "dynamically_scalable"),
                          ("sort_key", "sort_key"), ("arch", "arch")):
            value = getattr(self, attr, None)
            if value is not None:
                setattr(t, col, value)
        if self.is_routing is not None and not self.iso:
            t.template_type = "ROUTING" if self.is_routing else ("USER" if t.template_type == "ROUTING" else
                                                                 t.template_type)
        ttype = getattr(self, "template_type", None)
        if ttype:
            t.template_type = template_type_for(ctx, ttype, None)
        tag = getattr(self, "template_tag", None)
        if tag is not None:
            t.template_tag = tag or None
        if self.cleanup_details:
            t.details = None
        elif self.details is not None:
            current = json.loads(t.details or "{}")
            current.update(details_map(self.details))
            t.details = json.dumps(current)
        if not self.iso:
            ctx.event("TEMPLATE.UPDATE", f"Updated template {t.name}", account_id=t.account_id,
                      domain_id=t.domain_id, resource_type="Template", resource_uuid=t.uuid)
        return one(ctx, t)


@api_command("updateTemplate", response=TemplateResponse, roles=ALL_ROLES, event_type="TEMPLATE.UPDATE",
             description="Updates attributes of a template.")
class UpdateTemplate(UpdateTemplateOrIso):
    id = Param(UUID, required=True, entity=Template, acl=Access.OPERATE, related=TEMPLATE_RELATED,
               description="the ID of the image file")
    template_type = Param(STRING, "templatetype", authorized=ROOT_ADMIN, since="4.19.0", description="the type of"
                          " the template. Valid options are: USER/VNF (for all users) and SYSTEM/ROUTING/BUILTIN (for"
                          " admins only).")
    template_tag = Param(STRING, "templatetag", authorized=ADMINS, since="4.20.0", description="the tag for this"
                         " template.")


@api_command("updateIso", response=IsoResponse, roles=ALL_ROLES, description="Updates an ISO file.")
class UpdateIso(UpdateTemplateOrIso):
    iso = True
    id = Param(UUID, required=True, entity=Template, acl=Access.OPERATE, related=ISO_RELATED,
               description="the ID of the image file")


# -- deleting -------------------------------------------------------------------------------------


@api_command("deleteTemplate", response=SuccessResponse, roles=ALL_ROLES, is_async=True, idempotent=True,
             event_type="TEMPLATE.DELETE", description="Deletes a template from the system. All virtual machines"
             " using the deleted template will not be affected.")
class DeleteTemplate(Command):
    all_marker = frozenset({"zoneid"})
    id = Param(UUID, required=True, entity=Template, acl=Access.OPERATE, related=TEMPLATE_RELATED,
               description="the ID of the template")
    zone = Param(UUID, "zoneid", entity=Zone, description="the ID of zone of the template")
    forced = Param(BOOLEAN, since="4.9+", description="Force delete a template.")
    is_system = Param(BOOLEAN, "issystem", authorized=ROOT_ADMIN, since="4.20.0", description="Necessary if the"
                      " template's type is system.")

    def instance(self) -> tuple[str | None, str | None]:
        return "Template", self.id.uuid

    def execute(self, ctx: CallContext) -> Result:
        t: Template = self.id
        check_kind(t, False)
        if t.template_type == "SYSTEM" and not self.is_system:
            raise InvalidParameterValue(f"Template {t.name} is a system template: pass issystem=true to delete it")
        TemplateService(ctx).delete(t, self.zone if self.zone != -1 else None, forced=bool(self.forced))
        remove_objects(ctx, t)
        return Success()


@api_command("deleteIso", response=SuccessResponse, roles=ALL_ROLES, is_async=True, idempotent=True,
             event_type="ISO.DELETE", description="Deletes an ISO file.")
class DeleteIso(Command):
    all_marker = frozenset({"zoneid"})
    id = Param(UUID, required=True, entity=Template, acl=Access.OPERATE, related=ISO_RELATED,
               description="the ID of the ISO file")
    zone = Param(UUID, "zoneid", entity=Zone, description="the ID of the zone of the ISO file. If not specified, the"
                 " ISO will be deleted from all the zones")

    def instance(self) -> tuple[str | None, str | None]:
        return "Iso", self.id.uuid

    def execute(self, ctx: CallContext) -> Result:
        check_kind(self.id, True)
        TemplateService(ctx).delete(self.id, self.zone if self.zone != -1 else None)
        remove_objects(ctx, self.id)
        return Success()


# -- permissions ----------------------------------------------------------------------------------


class UpdatePermissions(Command):
    iso: bool = False
    accounts = Param(LIST, description="a comma delimited list of accounts within caller's domain. If specified,"
                     " \"op\" parameter has to be passed in.")
    op = Param(STRING, description="permission operator (add, remove, reset)")
    is_public = Param(BOOLEAN, "ispublic", description="true for public template/iso, false for private templates/isos")
    is_featured = Param(BOOLEAN, "isfeatured", description="true for featured template/iso, false otherwise")
    is_extractable = Param(BOOLEAN, "isextractable", description="true if the template/iso is extractable, false"
                           " other wise. Can be set only by root admin")

    def execute(self, ctx: CallContext) -> Result:
        me, s = ctx.me, ctx.session
        t: Template = self.id
        media = "iso" if self.iso else "template"
        if self.iso and not is_iso(t):
            raise InvalidParameterValue("Please provide a valid iso")
        if not self.iso and is_iso(t):
            raise InvalidParameterValue("Please provide a valid template")
        if t.template_type in ("SYSTEM", "PERHOST"):
            raise InvalidParameterValue(f"Update template permissions is an invalid operation on template {t.name}")
        owner = s.get(Account, t.account_id)
        assert owner is not None
        if self.is_public and not me.is_admin and not ctx.setting("allow.public.user.templates", scope="account",
                                                                   scope_id=owner.id):
            raise InvalidParameterValue(f"Only private {media}s can be created.")
        op = self.op.lower() if self.op else None
        if self.accounts is not None and op not in ("add", "remove", "reset"):
            raise InvalidParameterValue(
                "Invalid operation on accounts, the operation must be either 'add' or 'remove' in order to modify"
                f" launch permissions.  Given operation is: '{self.op}'")
        if op is not None and op not in ("add", "remove", "reset"):
            raise InvalidParameterValue(f"Invalid value {self.op} for parameter op; allowed: add, remove, reset")
        if t.account_id != me.account_id and not me.is_admin:
            raise InvalidParameterValue(f"Unable to grant permission to account {me.account_name} as it is neither"
                                        " admin nor owner or the template")
        if self.is_featured and not me.is_root_admin:
            raise PermissionDenied(f"Only ROOT admins can mark a {media} featured (parameter isfeatured)")
        if op in ("add", "remove") and not self.accounts:
            raise InvalidParameterValue(f"Operation {op} requires accounts or projectIds to be passed in")
        if self.is_public is not None:
            t.is_public = self.is_public
        if self.is_featured is not None:
            t.featured = self.is_featured
        if self.is_extractable is not None:
            t.extractable = self.is_extractable
        domain = s.get(Domain, owner.domain_id)
        assert domain is not None
        if op == "add":
            for name in self.accounts:
                acct = s.scalar(select(Account).where(Account.name == name, Account.domain_id == domain.id,
                                                      Account.removed.is_(None)))
                if acct is None:
                    raise InvalidParameterValue(
                        f"Unable to grant a launch permission to account {name} in domain id={domain.uuid}, account"
                        " not found.  No permissions updated, please verify the account names and retry.")
                if acct.id == owner.id:
                    continue  # the owner has it already
                if s.scalar(select(LaunchPermission.id).where(LaunchPermission.template_id == t.id,
                                                              LaunchPermission.account_id == acct.id)) is None:
                    s.add(LaunchPermission(template_id=t.id, account_id=acct.id))
        elif op == "remove":
            ids = list(s.scalars(select(Account.id).where(Account.name.in_(self.accounts),
                                                          Account.domain_id == domain.id)))
            if ids:
                s.execute(LaunchPermission.__table__.delete().where(LaunchPermission.template_id == t.id,
                                                                    LaunchPermission.account_id.in_(ids)))
        elif op == "reset":
            t.is_public, t.featured = False, False
            s.execute(LaunchPermission.__table__.delete().where(LaunchPermission.template_id == t.id))
        s.flush()
        return Success()


@api_command("updateTemplatePermissions", response=SuccessResponse, roles=ALL_ROLES,
             description="Updates a template visibility permissions. A public template is visible to all accounts"
             " within the same domain. A private template is visible only to the owner of the template. A privileged"
             " template is a private template with account permissions added. Only accounts specified under the"
             " template permissions are visible to them.")
class UpdateTemplatePermissions(UpdatePermissions):
    id = Param(UUID, required=True, entity=Template, acl=Access.OPERATE, related=TEMPLATE_RELATED,
               description="the template ID")


@api_command("updateIsoPermissions", response=SuccessResponse, roles=ALL_ROLES,
             description="Updates ISO permissions")
class UpdateIsoPermissions(UpdatePermissions):
    iso = True
    id = Param(UUID, required=True, entity=Template, acl=Access.OPERATE, related=ISO_RELATED,
               description="the template ID")


class ListPermissions(Command):
    iso: bool = False

    def execute(self, ctx: CallContext) -> Result:
        s = ctx.session
        t: Template = self.id
        if self.iso and not is_iso(t):
            raise InvalidParameterValue("Please provide a valid iso")
        if not self.iso and is_iso(t):
            raise InvalidParameterValue("Please provide a valid template")
        check_template_visible(ctx, t)
        names = list(s.scalars(select(Account.name).join(LaunchPermission, LaunchPermission.account_id == Account.id)
                               .where(LaunchPermission.template_id == t.id).order_by(LaunchPermission.id)))
        owner = s.get(Account, t.account_id)
        if not t.is_public and owner is not None:
            names.append(owner.name)
        domain = s.get(Domain, t.domain_id)
        return ObjectResult({"id": t.uuid, "ispublic": t.is_public, "domainid": domain.uuid if domain else None,
                             "account": names})


@api_command("listTemplatePermissions", response=TemplatePermissionsResponse, roles=ALL_ROLES, read_only=True,
             description="List template visibility and all accounts that have permissions to view this template.")
class ListTemplatePermissions(ListPermissions):
    id = Param(UUID, required=True, entity=Template, acl=Access.LIST, related=TEMPLATE_RELATED,
               description="the template ID")


@api_command("listIsoPermissions", response=IsoPermissionsResponse, roles=ALL_ROLES, read_only=True,
             description="List iso visibility and all accounts that have permissions to view this iso.")
class ListIsoPermissions(ListPermissions):
    iso = True
    id = Param(UUID, required=True, entity=Template, acl=Access.LIST, related=ISO_RELATED,
               description="the template ID")


# -- copying, preparing, extracting ---------------------------------------------------------------


class CopyTemplateOrIso(Command):
    iso: bool = False
    dest_zone = Param(UUID, "destzoneid", entity=Zone, description="ID of the zone the template is being copied to.")
    dest_zones = Param(LIST, "destzoneids", item_type=UUID, entity=Zone, since="4.19.0", description="A list of IDs of"
                       " the zones that the template needs to be copied to.Specify this list if the template needs to"
                       " copied to multiple zones in one go. Do not specify destzoneid and destzoneids together,"
                       " however one of them is required.")
    source_zone = Param(UUID, "sourcezoneid", entity=Zone, description="ID of the zone the template is currently"
                        " hosted on. If not specified and template is cross-zone, then we will sync this template to"
                        " region wide image store.")

    def instance(self) -> tuple[str | None, str | None]:
        return ("Iso" if self.iso else "Template"), self.id.uuid

    def execute(self, ctx: CallContext) -> Result:
        t: Template = self.id
        check_kind(t, self.iso)
        if self.dest_zone is not None and self.dest_zones:
            raise ParamError("Both destzoneid and destzoneids cannot be specified at the same time")
        zones = list(self.dest_zones or ([self.dest_zone] if self.dest_zone is not None else []))
        if not zones:
            raise ParamError("Either destzoneid or destzoneids parameters have to be specified.")
        if any(z == -1 for z in zones) or self.source_zone == -1:
            raise InvalidParameterValue("Please specify a valid destination zone.")
        done = TemplateService(ctx).copy(t, zones, self.source_zone)
        if not t.cross_zones:
            errors = copy_now(ctx, t)
            if errors:
                raise ResourceUnavailable(f"Failed to copy {'ISO' if self.iso else 'template'} {t.name}: "
                                          + "; ".join(errors))
        return one(ctx, t, done[0])


@api_command("copyTemplate", response=TemplateResponse, roles=ALL_ROLES, is_async=True, idempotent=True,
             event_type="TEMPLATE.COPY", description="Copies a template from one zone to another.")
class CopyTemplate(CopyTemplateOrIso):
    id = Param(UUID, required=True, entity=Template, acl=Access.OPERATE, related=TEMPLATE_RELATED,
               description="Template ID.")


@api_command("copyIso", response=IsoResponse, roles=ALL_ROLES, is_async=True, idempotent=True, event_type="ISO.COPY",
             description="Copies an iso from one zone to another.")
class CopyIso(CopyTemplateOrIso):
    iso = True
    id = Param(UUID, required=True, entity=Template, acl=Access.OPERATE, related=ISO_RELATED,
               description="Template ID.")


@api_command("prepareTemplate", response=TemplateResponse, roles=ROOT_ADMIN,
             description="load template into primary storage")
class PrepareTemplate(Command):
    zone = Param(UUID, "zoneid", required=True, entity=Zone, description="zone ID of the template to be prepared in"
                 " primary storage(s).")
    template = Param(UUID, "templateid", required=True, entity=Template, related=TEMPLATE_RELATED,
                     description="template ID of the template to be prepared in primary storage(s).")
    storage = Param(UUID, "storageid", entity=StoragePool, since="4.11.0", description="storage pool ID of the primary"
                    " storage pool to which the template should be prepared. If it is not provided the template is"
                    " prepared on all the available primary storage pools.")

    def execute(self, ctx: CallContext) -> Result:
        if self.zone == -1:
            raise InvalidParameterValue("Please specify a valid zone (parameter zoneid)")
        check_kind(self.template, False)
        TemplateService(ctx).prepare(self.template, self.zone, self.storage)
        return one(ctx, self.template, self.zone)


def extract_url(ctx: CallContext, store: ImageStore, path: str, filename: str) -> str:
    """A time-limited URL of an object on an image store: presigned by the store (S3) when it can,
    else a signed link to this server's /download route (api/transfer.py)."""
    import time

    from overcast.storage.signed import make_token, public_base, server_secret

    ttl = int(ctx.setting("extract.url.expiration.interval"))
    url = ctx.services.image_store(store).download_url(path, ttl)
    if url:
        return url
    secret = server_secret(ctx.services, ctx.session)
    token = make_token(secret, {"store": store.id, "path": path, "name": filename}, int(time.time()) + ttl)
    return f"{public_base(ctx.services)}/download/{token}"


class ExtractCommand(Command):
    iso: bool = False
    mode = Param(STRING, required=True, description="the mode of extraction - HTTP_DOWNLOAD or FTP_UPLOAD")
    url = Param(STRING, length=2048, description="the url to which the ISO would be extracted")
    zone = Param(UUID, "zoneid", entity=Zone, description="the ID of the zone where the ISO is originally located")

    def instance(self) -> tuple[str | None, str | None]:
        return ("Iso" if self.iso else "Template"), self.id.uuid

    def execute(self, ctx: CallContext) -> Result:
        me, s = ctx.me, ctx.session
        t: Template = self.id
        check_kind(t, self.iso)
        check_template_visible(ctx, t)
        what = "ISO" if self.iso else "template"
        mode = (self.mode or "").upper()
        if mode not in ("HTTP_DOWNLOAD", "FTP_UPLOAD"):
            raise InvalidParameterValue(f"Please specify a valid extract Mode (parameter mode): {self.mode}; use"
                                        " HTTP_DOWNLOAD")
        if mode == "FTP_UPLOAD":
            raise InvalidParameterValue("Extraction mode FTP_UPLOAD is not supported (parameter mode); use"
                                        " HTTP_DOWNLOAD")
        if t.template_type == "SYSTEM":
            raise InvalidParameterValue(f"Unable to extract the {what}. It is not supported yet")
        if not t.extractable and not me.is_root_admin:
            raise InvalidParameterValue(f"Unable to extract {what} id={t.uuid} as it's not extractable")
        if self.zone is not None and self.zone != -1:
            ref = ready_ref(ctx, t, self.zone.id)
            if ref is None:
                raise InvalidParameterValue(f"The {what} {t.name} is not available in zone {self.zone.name}")
        else:
            ref = next((r for r in zone_refs(ctx, t) if r.state == "Ready"), None)
            if ref is None:
                raise InvalidParameterValue(f"The {what} {t.name} is not ready in any zone")
        zone = s.get(Zone, ref.zone_id)
        store = s.get(ImageStore, ref.store_id) if ref.store_id else None
        if store is None:
            raise InvalidParameterValue(f"There is no image store holding {what} {t.name} in zone {zone.name}")
        ext = "iso" if self.iso else t.format.lower()
        if simulated_store(store):  # nothing was stored: the simulator's kind of URL
            url = f"{store.url.rstrip('/')}/{ref.install_path or ''}/{t.uuid}.{ext}"
        else:
            url = extract_url(ctx, store, ref.install_path or "", f"{t.name}.{ext}")
        owner = s.get(Account, t.account_id)
        ctx.event("ISO.EXTRACT" if self.iso else "TEMPLATE.EXTRACT", f"Extracted {what} {t.name}",
                  account_id=t.account_id, domain_id=t.domain_id, resource_type="Iso" if self.iso else "Template",
                  resource_uuid=t.uuid)
        return ObjectResult({
            "id": t.uuid, "name": t.name, "extractId": str(uuidlib.uuid4()), "accountid": owner.uuid if owner else None,
            "state": "DOWNLOAD_URL_CREATED", "status": "DOWNLOAD_URL_CREATED", "uploadpercentage": 100,
            "zoneid": zone.uuid, "zonename": zone.name, "extractMode": "HTTP_DOWNLOAD", "url": url,
            "storagetype": "Image", "created": cs_date(utcnow()),
        })  # fmt: skip


@api_command("extractTemplate", response=ExtractResponse, roles=ALL_ROLES, is_async=True, idempotent=True,
             event_type="TEMPLATE.EXTRACT", description="Extracts a template")
class ExtractTemplate(ExtractCommand):
    id = Param(UUID, required=True, entity=Template, acl=Access.LIST, related=TEMPLATE_RELATED,
               description="the ID of the template")


@api_command("extractIso", response=ExtractIsoResponse, roles=ALL_ROLES, is_async=True, idempotent=True,
             event_type="ISO.EXTRACT", description="Extracts an ISO")
class ExtractIso(ExtractCommand):
    iso = True
    id = Param(UUID, required=True, entity=Template, acl=Access.LIST, related=ISO_RELATED,
               description="the ID of the ISO file")


@api_command("extractVolume", response=ExtractVolumeResponse, roles=ALL_ROLES, is_async=True, idempotent=True,
             event_type="VOLUME.EXTRACT", description="Extracts volume")
class ExtractVolume(Command):
    """The volume's file on primary storage is copied to the zone's image store
    (volumes/<account id>/<volume id>/...), then answered as a time-limited URL (extract_url)."""

    id = Param(UUID, required=True, entity=Volume, acl=Access.OPERATE, description="the ID of the volume")
    mode = Param(STRING, required=True, description="the mode of extraction - HTTP_DOWNLOAD or FTP_UPLOAD")
    zone = Param(UUID, "zoneid", required=True, entity=Zone, description="the ID of the zone where the volume is"
                 " located")
    url = Param(STRING, length=2048, description="the url to which the volume would be extracted")

    def instance(self) -> tuple[str | None, str | None]:
        return "Volume", self.id.uuid

    def execute(self, ctx: CallContext) -> Result:
        from overcast.engine.storage_ops import volume_file
        from overcast.plugins.storage import read_chunks

        s, me = ctx.session, ctx.me
        vol: Volume = self.id
        mode = (self.mode or "").upper()
        if mode != "HTTP_DOWNLOAD":
            raise InvalidParameterValue(f"Extraction mode {self.mode} is not supported (parameter mode); use"
                                        " HTTP_DOWNLOAD")
        if self.zone == -1 or vol.zone_id != self.zone.id:
            raise InvalidParameterValue(f"Volume {vol.name} is not in the zone given (parameter zoneid)")
        if vol.state != "Ready":
            raise InvalidParameterValue(f"Volume {vol.name} is in state {vol.state}; only a Ready volume can be"
                                        " extracted")
        vm = s.get(VirtualMachine, vol.vm_id) if vol.vm_id else None
        if vm is not None and vm.state != "Stopped":
            raise InvalidParameterValue(f"Volume {vol.name} is attached to VM {vm.display_name or vm.name}, which is"
                                        f" {vm.state}; stop the VM first")
        if vol.volume_type == "ROOT" and vol.template_id and not me.is_root_admin:
            source = s.get(Template, vol.template_id)
            if source is not None and not source.extractable:
                raise PermissionDenied(f"The volume {vol.name} is not allowed to be extracted: its template is not"
                                       " extractable")
        pool = s.get(StoragePool, vol.pool_id) if vol.pool_id else None
        store = image_store_of(ctx, vol.zone_id)
        if store is None or simulated_store(store):
            raise InvalidParameterValue(f"Zone {self.zone.name} has no image store to extract volumes to"
                                        + (" (its image store is simulated)" if store else ""))
        source_file = volume_file(ctx.services, vol, pool) if pool is not None else None
        if source_file is None or not source_file.is_file():
            raise InvalidParameterValue(f"Volume {vol.name} has no data on primary storage yet")
        ext = (vol.format or "raw").lower()
        path = f"volumes/{vol.account_id}/{vol.id}/{vol.uuid}.{ext}"
        zone, owner = self.zone, s.get(Account, vol.account_id)
        ctx.checkpoint()  # no transaction while the bytes move
        driver = ctx.services.image_store(store)
        try:
            driver.put(path, read_chunks(open(source_file, "rb")))
        except ImageStoreError as exc:
            raise ResourceUnavailable(f"Copying volume {vol.name} to image store {store.name} failed: {exc}"
                                      ) from None
        url = extract_url(ctx, store, path, f"{vol.name}.{ext}")
        ctx.event("VOLUME.EXTRACT", f"Extracted volume {vol.name}", account_id=vol.account_id,
                  domain_id=vol.domain_id, resource_type="Volume", resource_uuid=vol.uuid)
        return ObjectResult({
            "id": vol.uuid, "name": vol.name, "extractId": str(uuidlib.uuid4()),
            "accountid": owner.uuid if owner else None, "state": "DOWNLOAD_URL_CREATED",
            "status": "DOWNLOAD_URL_CREATED", "uploadpercentage": 100, "zoneid": zone.uuid, "zonename": zone.name,
            "extractMode": "HTTP_DOWNLOAD", "url": url, "storagetype": "Image", "created": cs_date(utcnow()),
        })  # fmt: skip


# -- templates from volumes and snapshots ---------------------------------------------------------


@api_command("createTemplate", response=TemplateResponse, roles=ALL_ROLES, is_async=True, creates_entity=True,
             idempotent=True, event_type="TEMPLATE.CREATE", description="Creates a template of a virtual machine."
             " The virtual machine must be in a STOPPED state. A template created from this command is automatically"
             " designated as a private template visible to the account that created it.")
class CreateTemplate(Command):
    name = Param(STRING, required=True, description="the name of the template")
    display_text = Param(STRING, "displaytext", required=True, length=4096, description="The display text of the"
                         " template, defaults to the 'name'.")
    os_type = Param(UUID, "ostypeid", required=True, entity=GuestOs, description="the ID of the OS Type that best"
                    " represents the OS of this template.")
    volume = Param(UUID, "volumeid", entity=Volume, acl=Access.OPERATE, description="the ID of the disk volume the"
                   " template is being created from. Either this parameter, or snapshotId has to be passed in")
    snapshot = Param(UUID, "snapshotid", entity=Snapshot, acl=Access.OPERATE, description="the ID of the snapshot the"
                     " template is being created from. Either this parameter, or volumeId has to be passed in")
    zone = Param(UUID, "zoneid", entity=Zone, since="4.19.0", description="the zone for the template. Can be"
                 " specified with snapshot only")
    bits = Param(INTEGER, description="32 or 64 bit")
    is_featured = Param(BOOLEAN, "isfeatured", description="true if this template is a featured template, false"
                        " otherwise")
    is_public = Param(BOOLEAN, "ispublic", description="true if this template is a public template, false otherwise")
    password_enabled = Param(BOOLEAN, "passwordenabled", description="true if the template supports the password"
                             " reset feature; default is false")
    sshkey_enabled = Param(BOOLEAN, "sshkeyenabled", description="true if the template supports the sshkey upload"
                           " feature; default is false")
    requires_hvm = Param(BOOLEAN, "requireshvm", description="true if the template requires HVM, false otherwise")
    is_dynamically_scalable = Param(BOOLEAN, "isdynamicallyscalable", description="true if template contains XS/VMWare"
                                    " tools inorder to support dynamic scaling of VM cpu/memory")
    template_tag = Param(STRING, "templatetag", description="the tag for this template.")
    details = Param(MAP, description="Template details in key/value pairs using format details[i].keyname=keyvalue."
                    " Example: details[0].hypervisortoolsversion=xenserver61")
    arch = Param(STRING, choices=ARCHES, since="4.20.2", description="the CPU arch of the template. Valid options"
                 " are: x86_64, aarch64. Defaults to x86_64")
    account = Param(STRING, since="4.19.0", description="an optional accountName. Must be used with domainId.")
    domain = Param(UUID, "domainid", entity=Domain, since="4.19.0", description="an optional domainId. If the account"
                   " parameter is used, domainId must also be used.")

    def instance(self) -> tuple[str | None, str | None]:
        return "Template", None

    def prepare(self, ctx: CallContext) -> str | None:
        s = ctx.session
        if self.volume is not None and self.snapshot is not None:
            raise InvalidParameterValue("Failed to create private template record, please specify only one of volume"
                                        f" ID ({self.volume.uuid}) and snapshot ID ({self.snapshot.uuid})")
        if self.volume is None and self.snapshot is None:
            raise InvalidParameterValue("Failed to create private template record, need to specify snapshotId or"
                                        " volumeId")
        if self.zone is not None and self.volume is not None:
            raise InvalidParameterValue("Parameter zoneid can be given with snapshotid only")
        volume: Volume | None = self.volume
        if self.snapshot is not None:
            snap: Snapshot = self.snapshot
            if snap.state != "BackedUp":
                raise InvalidParameterValue(f"Snapshot id={snap.uuid} is not in BackedUp state yet and can't be used"
                                            " for template creation")
            volume = s.get(Volume, snap.volume_id)
            zone = self.zone if self.zone not in (None, -1) else s.get(Zone, snap.zone_id)
            size = snap.size or (volume.size if volume else 0)
        else:
            assert volume is not None
            if volume.state != "Ready":
                raise InvalidParameterValue(f"Volume {volume.name} is not in Ready state but {volume.state}; a template"
                                            " can only be created from a Ready volume")
            zone = s.get(Zone, volume.zone_id)
            size = volume.size
        vm = s.get(VirtualMachine, volume.vm_id) if volume is not None and volume.vm_id else None
        if self.snapshot is None and vm is not None and vm.state != "Stopped":
            raise InvalidParameterValue(f"Unable to create private template for volume: {volume.name}; volume is"
                                        " attached to a non-stopped VM, please stop the VM first")
        assert zone is not None
        source = s.get(Template, volume.template_id) if volume is not None and volume.template_id else None
        hypervisor = (vm.hypervisor_type if vm else None) or (source.hypervisor_type if source else None)
        if hypervisor is None and volume is not None and volume.pool_id:
            pool = s.get(StoragePool, volume.pool_id)
            hypervisor = pool.hypervisor_type if pool else None
        owner = resolve_owner(ctx, self.account, self.domain)
        service = TemplateService(ctx)
        is_public = bool(self.is_public)
        service.allowed_public(owner, is_public)
        spec = TemplateSpec(
            name=self.name, display_text=self.display_text or self.name,
            format=(volume.format if volume is not None and volume.format else "RAW").upper(),
            hypervisor=hypervisor or "Simulator", guest_os=self.os_type,
            bits=self.bits if self.bits is not None else 64, is_public=is_public,
            featured=featured_for(ctx, self.is_featured), password_enabled=bool(self.password_enabled),
            sshkey_enabled=bool(self.sshkey_enabled), requires_hvm=bool(self.requires_hvm),
            dynamically_scalable=bool(self.is_dynamically_scalable), template_tag=self.template_tag,
            details=details_map(self.details), arch=self.arch or "x86_64", size=size,
            source_template_id=source.id if source else None,
        )  # fmt: skip
        if spec.format == "ISO":
            spec.format = "RAW"
        t = service.new(owner, spec)
        store_ref = TemplateZone(template_id=t.id, zone_id=zone.id, state="Creating",
                                 download_state="DOWNLOAD_IN_PROGRESS", download_pct=0,
                                 install_path=f"template/tmpl/{t.account_id}/{t.id}", size=size, physical_size=size)
        store = image_store_of(ctx, zone.id)
        store_ref.store_id = store.id if store else None
        s.add(store_ref)
        s.flush()
        return t.uuid

    def execute(self, ctx: CallContext) -> Result:
        s = ctx.session
        t = ctx.created(Template, "template")
        from overcast.engine.storage_ops import make_template_file

        make_template_file(ctx, t, volume=self.volume if self.snapshot is None else None, snapshot=self.snapshot)
        for ref in s.scalars(select(TemplateZone).where(TemplateZone.template_id == t.id,
                                                        TemplateZone.removed.is_(None))):
            ref.state, ref.download_state, ref.download_pct = "Ready", "DOWNLOADED", 100
        ctx.event("TEMPLATE.CREATE", f"Created template {t.name}. Id: {t.uuid}", account_id=t.account_id,
                  domain_id=t.domain_id, resource_type="Template", resource_uuid=t.uuid)
        return one(ctx, t)


# -- ISOs on VMs ----------------------------------------------------------------------------------


class IsoVmCommand(Command):
    def instance(self) -> tuple[str | None, str | None]:
        return "VirtualMachine", self.vm.uuid

    def check_vm(self, vm: VirtualMachine) -> None:
        if vm.state not in ("Running", "Stopped"):
            raise InvalidParameterValue("Please specify a VM that is either Stopped or Running.")


@api_command("attachIso", response=UserVmResponse, roles=ALL_ROLES, is_async=True, idempotent=True,
             event_type="ISO.ATTACH", description="Attaches an ISO to a virtual machine.")
class AttachIso(IsoVmCommand):
    id = Param(UUID, required=True, entity=Template, acl=Access.USE, related=ISO_RELATED,
               description="the ID of the ISO file")
    vm = Param(UUID, "virtualmachineid", required=True, entity=VirtualMachine, acl=Access.OPERATE,
               description="the ID of the virtual machine")
    forced = Param(BOOLEAN, since="4.16.0", description="If true, ejects existing ISO before attaching on VMware."
                   " Default: false")

    def execute(self, ctx: CallContext) -> Result:
        s = ctx.session
        iso: Template = self.id
        vm: VirtualMachine = self.vm
        if not is_iso(iso):
            raise InvalidParameterValue(f"Unable to find an ISO with id {iso.uuid}", uuids=[(iso.uuid, "isoId")])
        check_template_visible(ctx, iso)
        owner = s.get(Account, vm.account_id)
        assert owner is not None
        if not template_usable(ctx, iso, owner) and not (iso.account_id == owner.id):
            raise PermissionDenied(f"Account {owner.name} can't use ISO {iso.name}", uuids=[(iso.uuid, "isoId")])
        self.check_vm(vm)
        if ready_ref(ctx, iso, vm.zone_id) is None:
            raise InvalidParameterValue(f"ISO {iso.name} is not ready in the zone of VM {vm.display_name or vm.name}")
        if vm.iso_id is not None and vm.iso_id != iso.id and not self.forced:
            current = s.get(Template, vm.iso_id)
            raise InvalidParameterValue(f"VM {vm.display_name or vm.name} already has ISO"
                                        f" {current.name if current else vm.iso_id} attached: detach it first, or pass"
                                        " forced=true")
        vm.iso_id = iso.id
        ctx.event("ISO.ATTACH", f"Attached ISO {iso.name} to VM {vm.uuid}", account_id=vm.account_id,
                  domain_id=vm.domain_id, resource_type="Iso", resource_uuid=iso.uuid)
        return vm_result(ctx, vm)


@api_command("detachIso", response=UserVmResponse, roles=ALL_ROLES, is_async=True, idempotent=True,
             event_type="ISO.DETACH", description="Detaches any ISO file (if any) currently attached to a virtual"
             " machine.")
class DetachIso(IsoVmCommand):
    vm = Param(UUID, "virtualmachineid", required=True, entity=VirtualMachine, acl=Access.OPERATE,
               description="The ID of the virtual machine")
    forced = Param(BOOLEAN, since="4.16.0", description="If true, ejects the ISO before detaching on VMware. Default:"
                   " false")

    def execute(self, ctx: CallContext) -> Result:
        vm: VirtualMachine = self.vm
        if vm.iso_id is None:
            raise InvalidParameterValue("The specified VM has no ISO attached to it.")
        self.check_vm(vm)
        iso = ctx.session.get(Template, vm.iso_id)
        vm.iso_id = None
        ctx.event("ISO.DETACH", f"Detached ISO from VM {vm.uuid}", account_id=vm.account_id, domain_id=vm.domain_id,
                  resource_type="Iso", resource_uuid=iso.uuid if iso else None)
        return vm_result(ctx, vm)


__all__ = ["ListIsos", "ListTemplates", "RegisterIso", "RegisterTemplate"]
