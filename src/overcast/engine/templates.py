"""Templates and ISOs on this cloud: registration, zones, copies, deletion, templates from volumes.

There is no download pipeline yet (it comes with the image-store work): a registered template is
Ready at once in each of its zones, one ``template_zone_ref`` row per zone on the zone's image store.
A template counts once against its owner's ``template`` limit, whatever the number of zones, and its size
(when known: templates made from volumes and snapshots) once against ``secondary_storage``, as
``updateResourceCount`` recounts them. A download pipeline that learns a size later must count it too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

from sqlalchemy import delete, select

from overcast.db.models import (
    Account,
    GuestOs,
    ImageStore,
    Role,
    StoragePool,
    Template,
    TemplatePool,
    TemplateZone,
    VirtualMachine,
    Zone,
)
from overcast.engine.context import EngineContext
from overcast.engine.tags import remove_tags
from overcast.engine.limits import Limits, ResourceType
from overcast.errors import InvalidParameterValue, ParamError, PermissionDenied

#: Storage.ImageFormat
IMAGE_FORMATS = ("QCOW2", "RAW", "VHD", "ISO", "OVA", "VHDX", "BAREMETAL", "EXTERNAL", "VMDK", "VDI", "TAR", "ZIP",
                 "DIR")  # fmt: skip
#: Hypervisor.HypervisorType, without None (CloudStack's spelling, Parralels included).
HYPERVISOR_TYPES = ("XenServer", "KVM", "VMware", "Hyperv", "VirtualBox", "Parralels", "BareMetal", "Simulator",
                    "Ovm", "Ovm3", "LXC", "Custom", "External", "Any")  # fmt: skip
#: Storage.TemplateType values a caller may ask for.
TEMPLATE_TYPES = ("USER", "VNF", "SYSTEM", "ROUTING", "BUILTIN")
#: VirtualMachineTemplate.TemplateFilter
TEMPLATE_FILTERS = ("featured", "self", "selfexecutable", "sharedexecutable", "executable", "community", "all",
                    "shared")  # fmt: skip
#: Digest algorithms a ``{ALGO}`` checksum prefix may name, and their length in hex digits.
CHECKSUM_LENGTHS = {"MD5": 32, "SHA-1": 40, "SHA-224": 56, "SHA-256": 64, "SHA-384": 96, "SHA-512": 128}
_HEX = re.compile(r"^[0-9a-fA-F]+$")


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def canonical_hypervisor(name: str | None) -> str | None:
    """CloudStack's spelling of a hypervisor type name given in any case, None if unknown."""
    if not name:
        return None
    return next((h for h in HYPERVISOR_TYPES if h.lower() == name.strip().lower()), None)


def require_hypervisor(name: str) -> str:
    hv = canonical_hypervisor(name)
    if hv is None or hv == "Any":
        raise InvalidParameterValue(
            f"Hypervisor Type: {name} is invalid. Supported Hypervisor types are: "
            + ", ".join(h for h in HYPERVISOR_TYPES if h != "Any"))
    return hv


def require_format(value: str) -> str:
    fmt = value.strip().upper()
    if fmt not in IMAGE_FORMATS:
        raise ParamError(f"Image format: {value} is incorrect. Supported formats are {', '.join(IMAGE_FORMATS)}")
    return fmt


def validate_checksum(value: str | None) -> str | None:
    """A checksum as CloudStack takes it: plain hex (MD5) or ``{ALGORITHM}hex`` (``{SHA-256}ab12...``)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    algorithm, digest = "MD5", text
    if text.startswith("{"):
        end = text.find("}")
        if end < 0:
            raise InvalidParameterValue(f"Invalid checksum {value}: a prefix is written {{ALGORITHM}}, e.g."
                                        " {SHA-256}")
        algorithm, digest = text[1:end], text[end + 1:]
        if algorithm not in CHECKSUM_LENGTHS:
            raise InvalidParameterValue(
                f"Checksum algorithm {algorithm} is not supported (parameter checksum); use one of "
                + ", ".join(CHECKSUM_LENGTHS) + " exactly as written, e.g. {SHA-256}")
    if not _HEX.match(digest) or len(digest) != CHECKSUM_LENGTHS[algorithm]:
        raise InvalidParameterValue(f"Invalid checksum {value}: expected {CHECKSUM_LENGTHS[algorithm]} hexadecimal"
                                    f" digits of a {algorithm} digest (parameter checksum)")
    return text


def checksum_value(stored: str | None) -> str | None:
    """The digest without its ``{ALGORITHM}`` prefix (DigestHelper.getHashValueFromChecksumValue)."""
    if not stored:
        return None
    if stored.startswith("{") and "}" in stored:
        return stored[stored.index("}") + 1:]
    return stored


def validate_url(url: str, param: str = "url") -> str:
    text = url.strip()
    if "file://" in text.lower():
        raise InvalidParameterValue("File:// type urls are currently unsupported")
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidParameterValue(f"Unsupported scheme for url: {text} (parameter {param}); use http:// or"
                                    " https://")
    if not parts.hostname:
        raise InvalidParameterValue(f"Please specify a valid URL. URL: {text} has no host (parameter {param})")
    return text


def region_store_exists(ctx: EngineContext) -> bool:
    return ctx.session.scalar(select(ImageStore.id).where(
        ImageStore.scope == "REGION", ImageStore.removed.is_(None), ImageStore.role == "Image").limit(1)) is not None


def check_zone_writable(ctx: EngineContext, zone: Zone) -> None:
    """A zone with image stores, all of them read-only, takes no new templates (one without any is
    simulated: its templates are ready at once)."""
    if image_store_of(ctx, zone.id) is None and ctx.session.scalar(select(ImageStore.id).where(
            ImageStore.zone_id == zone.id, ImageStore.removed.is_(None), ImageStore.role == "Image").limit(1)):
        raise InvalidParameterValue(f"Every image store of zone {zone.name} is read-only: no template or ISO can be"
                                    " registered there (parameter zoneid)")


def image_store_of(ctx: EngineContext, zone_id: int) -> ImageStore | None:
    """The image store a new template of ``zone_id`` goes to: the one every new object goes to
    (:func:`overcast.engine.storage_ops.usable_image_store`)."""
    from overcast.engine.storage_ops import usable_image_store

    return usable_image_store(ctx, zone_id)


def install_path(template: Template) -> str:
    return f"template/tmpl/{template.account_id}/{template.id}"


def active_zones(ctx: EngineContext) -> list[Zone]:
    return list(ctx.session.scalars(select(Zone).where(Zone.removed.is_(None)).order_by(Zone.id)))


def zone_refs(ctx: EngineContext, template: Template) -> list[TemplateZone]:
    return list(ctx.session.scalars(select(TemplateZone).where(
        TemplateZone.template_id == template.id, TemplateZone.removed.is_(None)).order_by(TemplateZone.zone_id)))


def ready_ref(ctx: EngineContext, template: Template, zone_id: int) -> TemplateZone | None:
    return ctx.session.scalar(select(TemplateZone).where(
        TemplateZone.template_id == template.id, TemplateZone.zone_id == zone_id, TemplateZone.removed.is_(None),
        TemplateZone.state == "Ready").limit(1))


def region_store(ctx: EngineContext) -> ImageStore | None:
    return ctx.session.scalar(select(ImageStore).where(ImageStore.scope == "REGION", ImageStore.removed.is_(None),
                                                       ImageStore.role == "Image").order_by(ImageStore.id).limit(1))


def add_to_zone(ctx: EngineContext, template: Template, zone: Zone, store: ImageStore | None = None, *,
                claim: bool = False) -> TemplateZone:
    """Make ``template`` available in ``zone`` on ``store`` (default: the zone's image store). Idempotent.

    On a real image store the ref starts NOT_DOWNLOADED and the download workers fetch the bytes
    (:mod:`overcast.engine.template_downloads`); on none, or a simulated one, it is Ready at once.
    ``claim``: the ref starts DOWNLOAD_IN_PROGRESS, claimed by this node, which moves the bytes itself
    (copyTemplate's job, with template_downloads.copy_now).
    """
    from overcast.engine.template_downloads import needs_download

    s = ctx.session
    existing = s.scalar(select(TemplateZone).where(TemplateZone.template_id == template.id,
                                                   TemplateZone.zone_id == zone.id).order_by(TemplateZone.id).limit(1))
    if store is None:
        store = image_store_of(ctx, zone.id)
    real = needs_download(template, store)
    if existing is not None:
        if existing.removed is not None or existing.state not in ("Ready", "Creating", "Allocated"):
            existing.removed, existing.error_str, existing.created = None, None, utcnow()
            if real:
                existing.state, existing.download_state, existing.download_pct = "Allocated", "NOT_DOWNLOADED", 0
                existing.download_node, existing.download_attempts = None, 0
                if claim:
                    existing.state, existing.download_state = "Creating", "DOWNLOAD_IN_PROGRESS"
                    existing.download_node, existing.download_attempts = _node_id(ctx), 1
            else:
                existing.state, existing.download_state, existing.download_pct = "Ready", "DOWNLOADED", 100
        if real and not claim:
            wake_downloads(ctx)
        return existing
    if real:
        ref = TemplateZone(template_id=template.id, zone_id=zone.id, store_id=store.id if store else None,
                           state="Allocated", download_state="NOT_DOWNLOADED", download_pct=0, size=0, physical_size=0)
        if claim:
            ref.state, ref.download_state = "Creating", "DOWNLOAD_IN_PROGRESS"
            ref.download_node, ref.download_attempts = _node_id(ctx), 1
        else:
            wake_downloads(ctx)
    else:
        ref = TemplateZone(template_id=template.id, zone_id=zone.id, store_id=store.id if store else None,
                           state="Ready", download_state="DOWNLOADED", download_pct=100,
                           install_path=install_path(template), size=template.size,
                           physical_size=template.physical_size)
    s.add(ref)
    s.flush()
    return ref


def _node_id(ctx: EngineContext) -> str:
    return str(ctx.services.node_id)  # type: ignore[attr-defined]


def wake_downloads(ctx: EngineContext) -> None:
    """Nudge this process's download workers once the current transaction commits."""
    from sqlalchemy import event

    services = getattr(ctx, "services", None)
    downloads = getattr(services, "downloads", None)
    if downloads is not None and not ctx.session.info.get("wake_downloads"):
        ctx.session.info["wake_downloads"] = True

        def after_commit(session: object) -> None:
            ctx.session.info.pop("wake_downloads", None)
            downloads.wake()

        event.listen(ctx.session, "after_commit", after_commit, once=True)


def check_zone_usable(ctx: EngineContext, zone: Zone) -> None:
    me = ctx.caller
    if zone.allocation_state == "Disabled" and not (me and me.is_root_admin):
        raise PermissionDenied(f"Cannot perform this operation, Zone {zone.name} is currently disabled")


@dataclass
class TemplateSpec:
    """What registerTemplate / registerIso / createTemplate give for a new template."""

    name: str
    display_text: str
    format: str
    hypervisor: str | None
    url: str | None = None
    guest_os: GuestOs | None = None
    bits: int = 64
    is_public: bool = False
    featured: bool = False
    extractable: bool = False
    password_enabled: bool = False
    sshkey_enabled: bool = False
    requires_hvm: bool = True
    dynamically_scalable: bool = False
    bootable: bool = True
    direct_download: bool = False
    checksum: str | None = None
    template_tag: str | None = None
    template_type: str = "USER"
    arch: str = "x86_64"
    details: dict[str, str] = field(default_factory=dict)
    size: int = 0
    source_template_id: int | None = None


class TemplateService:
    """Template and ISO operations for one caller (an API call or a job)."""

    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self.s = ctx.session

    def _event(self, template: Template, event_type: str, text: str) -> None:
        iso = template.format == "ISO"
        self.ctx.event(event_type, text, account_id=template.account_id, domain_id=template.domain_id,
                       resource_type="Iso" if iso else "Template", resource_uuid=template.uuid)

    # -- creating -------------------------------------------------------------------------------
    def allowed_public(self, owner: Account, is_public: bool) -> None:
        me = self.ctx.me
        if is_public and not me.is_admin and not self.ctx.setting("allow.public.user.templates", scope="account",
                                                                  scope_id=owner.id):
            raise InvalidParameterValue("Only private templates/ISO can be created.")

    def new(self, owner: Account, spec: TemplateSpec) -> Template:
        """The template row, counted against the owner's template limit (no zones yet)."""
        s = self.s
        reserved = s.scalar(select(Template.id).where(
            Template.template_type == "SYSTEM", Template.removed.is_(None),
            (Template.name == spec.name) | (Template.display_text == spec.display_text)).limit(1))
        if reserved is not None and spec.template_type != "SYSTEM":
            raise InvalidParameterValue("Cannot use reserved names for templates")
        Limits(s).consume(owner, [(ResourceType.template, 1), (ResourceType.secondary_storage, spec.size)])
        template = Template(
            name=spec.name, display_text=spec.display_text, format=spec.format, template_type=spec.template_type,
            hypervisor_type=spec.hypervisor, bits=spec.bits, url=spec.url, checksum=spec.checksum,
            is_public=spec.is_public, featured=spec.featured, extractable=spec.extractable,
            password_enabled=spec.password_enabled, sshkey_enabled=spec.sshkey_enabled,
            requires_hvm=spec.requires_hvm, dynamically_scalable=spec.dynamically_scalable, bootable=spec.bootable,
            direct_download=spec.direct_download, guest_os_id=spec.guest_os.id if spec.guest_os else None,
            account_id=owner.id, domain_id=owner.domain_id, template_tag=spec.template_tag, arch=spec.arch,
            details=json.dumps(spec.details) if spec.details else None, size=spec.size, physical_size=spec.size,
            source_template_id=spec.source_template_id, state="Active",
        )  # fmt: skip
        s.add(template)
        s.flush()
        return template

    def register(self, owner: Account, spec: TemplateSpec, zones: list[Zone] | None) -> tuple[Template, list[Zone]]:
        """registerTemplate / registerIso: ``zones`` None means every zone (a cross-zone template)."""
        me = self.ctx.me
        region = region_store_exists(self.ctx)
        if zones is None and not region and not self._root_owner(owner):
            raise InvalidParameterValue("Template registered for 'All zones' can only be owned a Root Admin account."
                                        " Please select specific zone(s).")
        self.allowed_public(owner, spec.is_public)
        if not me.is_root_admin:
            spec.featured = False
        for zone in zones or []:
            check_zone_usable(self.ctx, zone)
            if not region:
                check_zone_writable(self.ctx, zone)
        cross = zones is None or region
        targets = active_zones(self.ctx) if cross else list(zones or [])
        if not cross:
            targets = [z for z in targets if z.allocation_state != "Disabled" or me.is_root_admin]
        template = self.new(owner, spec)
        template.cross_zones = cross
        store = region_store(self.ctx) if region else None
        for zone in targets:
            add_to_zone(self.ctx, template, zone, store)
        iso = spec.format == "ISO"
        self._event(template, "ISO.CREATE" if iso else "TEMPLATE.CREATE",
                    f"Successfully registered {'ISO' if iso else 'template'} {template.name}. Id: {template.uuid}")
        self.s.flush()
        return template, targets

    def prepare_upload(self, owner: Account, spec: TemplateSpec, zone: Zone) -> tuple[Template, ImageStore]:
        """getUploadParamsForTemplate / Iso: the template, NotUploaded, with refs waiting for the file on
        the zone's image store (a region-wide store, when there is one, serves every zone)."""
        from overcast.engine.template_downloads import simulated_store

        check_zone_usable(self.ctx, zone)
        self.allowed_public(owner, spec.is_public)
        if not self.ctx.me.is_root_admin:
            spec.featured = False
        region = region_store(self.ctx)
        store = region or image_store_of(self.ctx, zone.id)
        if store is None or simulated_store(store):
            raise InvalidParameterValue(f"Zone {zone.name} has no image store that can receive uploads (parameter"
                                        " zoneid)" + (": its image store is simulated" if store else ""))
        if store.readonly:
            raise InvalidParameterValue(f"The image store {store.name} of zone {zone.name} is read-only")
        template = self.new(owner, spec)
        template.state, template.cross_zones = "NotUploaded", region is not None
        for z in active_zones(self.ctx) if region is not None else [zone]:
            self.s.add(TemplateZone(template_id=template.id, zone_id=z.id, store_id=store.id, state="Allocated",
                                    download_state="NOT_UPLOADED", download_pct=0, size=0, physical_size=0))
        iso = spec.format == "ISO"
        self._event(template, "ISO.CREATE" if iso else "TEMPLATE.CREATE",
                    f"Registered {'ISO' if iso else 'template'} {template.name} for upload. Id: {template.uuid}")
        self.s.flush()
        return template, store

    def _root_owner(self, owner: Account) -> bool:
        if owner.role_id is not None:
            role_type = self.s.scalar(select(Role.role_type).where(Role.id == owner.role_id))
            if role_type is not None:
                return bool(role_type == "Admin")
        return owner.account_type in (1, 4)  # Admin, ReadOnlyAdmin

    # -- zones ----------------------------------------------------------------------------------
    def copy(self, template: Template, dest_zones: list[Zone], source_zone: Zone | None) -> list[Zone]:
        what = "iso" if template.format == "ISO" else "template"
        if source_zone is not None:
            if any(z.id == source_zone.id for z in dest_zones):
                raise InvalidParameterValue("Please specify different source and destination zones.")
            if ready_ref(self.ctx, template, source_zone.id) is None:
                raise InvalidParameterValue(f"There is no {what} {template.uuid} ready on image store in zone"
                                            f" {source_zone.name}.")
        elif not any(r.state == "Ready" for r in zone_refs(self.ctx, template)):
            raise InvalidParameterValue(f"There is no {what} {template.uuid} ready on image store.")
        if template.cross_zones:
            return dest_zones  # a cross-zone template is in every zone already
        for zone in dest_zones:
            check_zone_usable(self.ctx, zone)
            add_to_zone(self.ctx, template, zone, claim=True)
        self._event(template, "ISO.COPY" if what == "iso" else "TEMPLATE.COPY",
                    f"Copied {what} {template.name} to zone(s) {', '.join(z.name for z in dest_zones)}")
        self.s.flush()
        return dest_zones

    def prepare(self, template: Template, zone: Zone, pool: StoragePool | None) -> None:
        """Seed the template on the primary storage pools of ``zone`` (or on ``pool``)."""
        if ready_ref(self.ctx, template, zone.id) is None:
            raise InvalidParameterValue(f"Template {template.name} is not ready in zone {zone.name}")
        pools = [pool] if pool is not None else list(self.s.scalars(select(StoragePool).where(
            StoragePool.zone_id == zone.id, StoragePool.removed.is_(None)).order_by(StoragePool.id)))
        for p in pools:
            if p.zone_id != zone.id:
                raise InvalidParameterValue(f"Storage pool {p.name} is not in zone {zone.name} (parameter storageid)")
            ref = self.s.scalar(select(TemplatePool).where(TemplatePool.template_id == template.id,
                                                           TemplatePool.pool_id == p.id))
            if ref is None:
                self.s.add(TemplatePool(template_id=template.id, pool_id=p.id, state="Ready"))
            else:
                ref.state = "Ready"
        self.s.flush()
        from overcast.engine.storage_ops import fill_template_caches

        fill_template_caches(self.ctx, template, pools)  # the bytes, when the template has a file

    # -- deleting -------------------------------------------------------------------------------
    def users(self, template: Template, zone: Zone | None) -> list[VirtualMachine]:
        col = VirtualMachine.iso_id if template.format == "ISO" else VirtualMachine.template_id
        stmt = select(VirtualMachine).where(col == template.id, VirtualMachine.removed.is_(None))
        if zone is not None:
            stmt = stmt.where(VirtualMachine.zone_id == zone.id)
        return list(self.s.scalars(stmt.order_by(VirtualMachine.id)))

    def delete(self, template: Template, zone: Zone | None, *, forced: bool = False) -> None:
        iso = template.format == "ISO"
        users = self.users(template, zone)
        if iso:
            if users:
                raise InvalidParameterValue("Unable to delete iso, as it's used by other vms")
        elif users and not forced:
            raise InvalidParameterValue(
                f"Unable to delete template with id: {template.uuid} because VM instances: ["
                + ",".join(f"{vm.display_name or vm.name} ({vm.uuid})" for vm in users) + "] are using it.")
        refs = zone_refs(self.ctx, template)
        if zone is not None:
            mine = [r for r in refs if r.zone_id == zone.id]
            if not mine:
                raise InvalidParameterValue(f"{'ISO' if iso else 'Template'} {template.name} is not in zone"
                                            f" {zone.name} (parameter zoneid)")
        else:
            mine = refs
        now = utcnow()
        for ref in mine:
            ref.removed, ref.state = now, "Destroyed"
        pools = delete(TemplatePool).where(TemplatePool.template_id == template.id)
        if zone is not None:
            pools = pools.where(TemplatePool.pool_id.in_(select(StoragePool.id).where(StoragePool.zone_id == zone.id)))
        self.s.execute(pools.execution_options(synchronize_session=False))
        if len(mine) == len(refs):
            template.removed, template.state = now, "Inactive"
            remove_tags(self.s, "ISO" if template.format == "ISO" else "Template", template.id)
            owner = self.s.get(Account, template.account_id)
            if owner is not None:
                Limits(self.s).release(owner, [(ResourceType.template, 1),
                                               (ResourceType.secondary_storage, template.size)])
        self._event(template, "ISO.DELETE" if iso else "TEMPLATE.DELETE",
                    f"Deleted {'ISO' if iso else 'template'} {template.name}"
                    + (f" from zone {zone.name}" if zone is not None else ""))
        self.s.flush()


def template_rows(ctx: EngineContext, template: Template, zones: Iterable[Zone] | None = None
                  ) -> list[tuple[Template, TemplateZone | None]]:
    """(template, zone ref) pairs for responses: one per zone (``zones`` limits them)."""
    refs = zone_refs(ctx, template)
    if zones is not None:
        wanted = {z.id for z in zones}
        refs = [r for r in refs if r.zone_id in wanted]
    if not refs:
        return [(template, None)]
    return [(template, r) for r in refs]


__all__ = [
    "CHECKSUM_LENGTHS", "HYPERVISOR_TYPES", "IMAGE_FORMATS", "TEMPLATE_FILTERS", "TEMPLATE_TYPES", "TemplateService",
    "TemplateSpec", "add_to_zone", "canonical_hypervisor", "checksum_value", "image_store_of", "ready_ref",
    "require_format", "require_hypervisor", "template_rows", "validate_checksum", "validate_url", "zone_refs",
]  # fmt: skip
