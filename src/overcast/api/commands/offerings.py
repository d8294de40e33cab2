"""Offerings and catalogues: service, disk and network offerings, guest OS types, hypervisors.

Offerings may be limited to domains and zones (comma-separated internal ids on the row): an offering limited
to domains is visible inside them (and their subdomains), as CloudStack's list filters do.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, literal, or_, select, true

from overcast.access.roles import ALL_ROLES, ROOT_ADMIN, RoleType
from overcast.api.context import CallContext
from overcast.api.declare import (
    Command, BOOLEAN, INTEGER, LIST, LONG, MAP, STRING, UUID, Access, ListResult, ObjectResult, Param, Result, Success,
    SuccessResponse, api_command,
)  # fmt: skip
from overcast.api.listing import fetch_page, keyword_filter
from overcast.api.params import details_map
from overcast.api.responses.offerings import (
    DiskOfferingResponse,
    GuestOsResponse,
    HypervisorCapabilitiesResponse,
    HypervisorResponse,
    NetworkOfferingResponse,
    OsCategoryResponse,
    ServiceOfferingResponse,
    disk_offering_payload,
    guest_os_payload,
    network_offering_payload,
    service_offering_payload,
    split_ids,
)
from overcast.db.models import (
    Cluster,
    DiskOffering,
    Domain,
    GuestOs,
    GuestOsCategory,
    HypervisorCapability,
    Network,
    NetworkOffering,
    ServiceOffering,
    VirtualMachine,
    Volume,
    Zone,
)
from overcast.engine.catalog_seed import add_service_offering
from overcast.engine.templates import canonical_hypervisor
from overcast.errors import InvalidParameterValue, ParamError, PermissionDenied

GIB = 1024**3
#: Who manages compute and disk offerings (CloudStack: Admin and DomainAdmin).
OFFERING_ADMINS = frozenset({RoleType.ADMIN, RoleType.DOMAIN_ADMIN})
STORAGE_TYPES = ("shared", "local")
PROVISIONING_TYPES = ("thin", "sparse", "fat")
CACHE_MODES = ("none", "writeback", "writethrough", "hypervisor_default")
SYSTEM_VM_TYPES = ("domainrouter", "consoleproxy", "secondarystoragevm", "internalloadbalancervm")
PLANNERS = ("FirstFitPlanner", "UserDispersingPlanner", "UserConcentratedPodPlanner", "ImplicitDedicationPlanner",
            "SkipHeuristicsPlanner")
#: Network.Service names and the provider each defaults to.
SERVICES = {"Dhcp": "VirtualRouter", "Dns": "VirtualRouter", "UserData": "VirtualRouter",
            "SourceNat": "VirtualRouter", "StaticNat": "VirtualRouter", "Firewall": "VirtualRouter",
            "PortForwarding": "VirtualRouter", "Lb": "VirtualRouter", "Vpn": "VirtualRouter",
            "Gateway": "VirtualRouter", "SecurityGroup": "SecurityGroupProvider", "NetworkACL": "VpcVirtualRouter",
            "Connectivity": "Ovs"}  # fmt: skip
PROVIDERS = ("VirtualRouter", "VpcVirtualRouter", "SecurityGroupProvider", "InternalLbVm", "ConfigDrive", "Ovs",
             "Netscaler", "F5BigIp", "JuniperSRX", "PaloAlto", "Nsx", "Tungsten", "BigSwitchBcf", "NiciraNvp")


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


# -- domain and zone restrictions -----------------------------------------------------------------


def _contains(col: Any, ident: int) -> Any:
    """SQL: the comma-separated id list ``col`` holds ``ident``."""
    return (literal(",") + col + literal(",")).like(f"%,{ident},%")


def public_or_contains(col: Any, ids: set[int]) -> Any:
    return or_(col.is_(None), col == "", *[_contains(col, i) for i in sorted(ids)])


def ancestor_ids(ctx: CallContext, path: str) -> set[int]:
    parts = [p for p in path.split("/") if p]
    prefixes = ["/"] + ["/" + "".join(p + "/" for p in parts[: i + 1]) for i in range(len(parts))]
    return set(ctx.session.scalars(select(Domain.id).where(Domain.path.in_(prefixes))))


def subtree_ids(ctx: CallContext, path: str) -> set[int]:
    return set(ctx.session.scalars(select(Domain.id).where(Domain.path.startswith(path), Domain.removed.is_(None))))


def domain_visible(ctx: CallContext, col: Any, *, recursive: bool = False) -> Any:
    """Offerings the caller may see: public ones and those of its domain or an ancestor (and, for a
    domain admin listing recursively, of its subdomains)."""
    me = ctx.me
    if me.is_root_admin:
        return true()
    ids = ancestor_ids(ctx, me.domain_path)
    if recursive and me.is_domain_admin:
        ids |= subtree_ids(ctx, me.domain_path)
    return public_or_contains(col, ids)


def id_list(rows: list[Any] | None) -> str | None:
    ids = sorted({r.id for r in rows or [] if r != -1})
    return ",".join(str(i) for i in ids) or None


def domains_for_offering(ctx: CallContext, domains: list[Domain] | None, what: str) -> str | None:
    """The domain restriction of a new offering, checked against the caller's reach."""
    me = ctx.me
    doms = [d for d in domains or [] if d != -1]
    if me.is_root_admin:
        return id_list(doms)
    if not doms:
        raise InvalidParameterValue(f"Unable to create public {what} by admin: {me.user_uuid} because it is"
                                    " domain-admin (parameter domainid)")
    for d in doms:
        if not d.path.startswith(me.domain_path):
            raise InvalidParameterValue(f"Unable to create {what} by another domain-admin: {me.user_uuid} for"
                                        f" domain: {d.uuid} (parameter domainid)")
    return id_list(doms)


def update_common(ctx: CallContext, row: Any, cmd: Any) -> None:
    """What updateServiceOffering and updateDiskOffering change alike: name, displaytext, sortkey,
    domainid, zoneid and state."""
    if cmd.name is not None:
        if not cmd.name.strip():
            raise InvalidParameterValue("Parameter name can't be empty")
        row.name = cmd.name
    if cmd.display_text is not None:
        row.display_text = cmd.display_text or row.name
    if cmd.sort_key is not None:
        row.sort_key = cmd.sort_key
    if cmd.domains is not None:
        row.domain_ids = parse_domain_text(ctx, cmd.domains, "domainid")
        if row.domain_ids is None and not ctx.me.is_root_admin:
            raise InvalidParameterValue("Domain admins can't make offerings public (parameter domainid)")
    if cmd.zones is not None:
        row.zone_ids = parse_zone_text(ctx, cmd.zones, "zoneid")
    if cmd.state is not None:
        row.state = cmd.state


def check_manage(ctx: CallContext, row: Any, what: str, verb: str = "update") -> None:
    """A domain admin manages only offerings limited to domains inside its subtree."""
    me = ctx.me
    if me.is_root_admin:
        return
    ids = split_ids(row.domain_ids)
    if not ids:
        raise InvalidParameterValue(f"Unable to {verb} public {what} by id {row.uuid} because it is domain-admin")
    paths = list(ctx.session.scalars(select(Domain.path).where(Domain.id.in_(ids))))
    if any(not p.startswith(me.domain_path) for p in paths):
        raise InvalidParameterValue(f"Unable to {verb} {what} by id {row.uuid} by domain-admin {me.user_uuid}: it"
                                    " belongs to domains outside the caller's")


def parse_domain_text(ctx: CallContext, text: str, param: str) -> str | None:
    """updateXOffering's domainid: comma-separated domain UUIDs, or ``public``."""
    if text.strip().lower() == "public":
        if not ctx.me.is_root_admin:
            raise InvalidParameterValue(f"Domain admins can't make offerings public (parameter {param})")
        return None
    doms = []
    for raw in [p.strip() for p in text.split(",") if p.strip()]:
        d = ctx.session.scalar(select(Domain).where(Domain.uuid == raw.lower(), Domain.removed.is_(None)))
        if d is None:
            raise InvalidParameterValue(f"Unable to find domain by id {raw} (parameter {param})")
        if not ctx.me.is_root_admin and not d.path.startswith(ctx.me.domain_path):
            raise PermissionDenied(f"Caller does not have permission to operate on domain id={d.uuid}",
                                   uuids=[(d.uuid, "domainId")])
        doms.append(d)
    return id_list(doms)


def parse_zone_text(ctx: CallContext, text: str, param: str) -> str | None:
    if text.strip().lower() == "all":
        return None
    zones = []
    for raw in [p.strip() for p in text.split(",") if p.strip()]:
        z = ctx.session.scalar(select(Zone).where(Zone.uuid == raw.lower(), Zone.removed.is_(None)))
        if z is None:
            raise InvalidParameterValue(f"Unable to find zone by id {raw} (parameter {param})")
        zones.append(z)
    return id_list(zones)


def check_name(name: str, display_text: str | None, what: str) -> None:
    if not name or not name.strip():
        raise InvalidParameterValue(f"Failed to create {what}: specify the name that has non-zero length")
    if display_text is not None and not display_text.strip():
        raise InvalidParameterValue(f"Failed to create {what} {name}: specify the display text that has non-zero"
                                    " length")


def choice(value: str | None, allowed: tuple[str, ...], param: str, default: str) -> str:
    if value is None:
        return default
    match = next((a for a in allowed if a.lower() == value.strip().lower()), None)
    if match is None:
        raise InvalidParameterValue(f"Invalid {param} {value} specified, valid types are: "
                                    + ", ".join(f"'{a}'" for a in allowed) + f" (parameter {param})")
    return match


def check_iops(min_iops: int | None, max_iops: int | None, customized_iops: bool | None) -> None:
    if customized_iops and (min_iops is not None or max_iops is not None):
        raise InvalidParameterValue("Min/Max IOPS can't be given when customizediops is true: the volume request"
                                    " gives them (parameters miniops, maxiops)")
    for value, name in ((min_iops, "miniops"), (max_iops, "maxiops")):
        if value is not None and value < 0:
            raise InvalidParameterValue(f"The {name} value must be a positive number (parameter {name})")
    if min_iops is not None and max_iops is not None and min_iops > max_iops:
        raise InvalidParameterValue("The Min IOPS must be less than or equal to the Max IOPS.")


# -- service offerings ----------------------------------------------------------------------------


@api_command("createServiceOffering", response=ServiceOfferingResponse, roles=OFFERING_ADMINS,
             event_type="SERVICE.OFFERING.CREATE", description="Creates a service offering.")
class CreateServiceOffering(Command):
    name = Param(STRING, required=True, description="the name of the service offering")
    display_text = Param(STRING, "displaytext", required=True, length=4096, description="The display text of the"
                         " service offering, defaults to 'name'.")
    cpu_number = Param(INTEGER, "cpunumber", description="the CPU number of the service offering")
    cpu_speed = Param(INTEGER, "cpuspeed", description="the CPU speed of the service offering in MHz.")
    memory = Param(INTEGER, description="the total memory of the service offering in MB")
    customized = Param(BOOLEAN, since="4.13", description="Whether service offering is custom or not")
    min_cpu = Param(INTEGER, "mincpunumber", since="4.13", description="The minimum number of CPUs to be set with"
                    " Custom Computer Offering")
    max_cpu = Param(INTEGER, "maxcpunumber", since="4.13", description="The maximum number of CPUs to be set with"
                    " Custom Computer Offering")
    min_memory = Param(INTEGER, "minmemory", since="4.13", description="The minimum memory size of the custom"
                       " service offering in MB")
    max_memory = Param(INTEGER, "maxmemory", since="4.13", description="The maximum memory size of the custom"
                       " service offering in MB")
    offer_ha = Param(BOOLEAN, "offerha", description="the HA for the service offering")
    limit_cpu_use = Param(BOOLEAN, "limitcpuuse", description="restrict the CPU usage to committed service offering")
    is_volatile = Param(BOOLEAN, "isvolatile", description="true if the virtual machine needs to be volatile so that"
                        " on every reboot of VM, original root disk is dettached then destroyed and a fresh root disk"
                        " is created and attached to VM")
    host_tags = Param(STRING, "hosttags", description="the host tag for this service offering.")
    tags = Param(STRING, description="the tags for this service offering.")
    storage_type = Param(STRING, "storagetype", description="the storage type of the service offering. Values are"
                         " local and shared.")
    provisioning_type = Param(STRING, "provisioningtype", description="provisioning type used to create volumes."
                              " Valid values are thin, sparse, fat.")
    cache_mode = Param(STRING, "cachemode", since="4.14", description="the cache mode to use for this disk offering."
                       " none, writeback, writethrough or hypervisor_default. hypervisor_default is default.")
    is_system = Param(BOOLEAN, "issystem", description="is this a system vm offering")
    system_vm_type = Param(STRING, "systemvmtype", description="the system VM type. Possible types are"
                           " \"domainrouter\", \"consoleproxy\" and \"secondarystoragevm\".")
    network_rate = Param(INTEGER, "networkrate", description="data transfer rate in megabits per second allowed."
                         " Supported only for non-System offering and system offerings having \"domainrouter\""
                         " systemvmtype")
    deployment_planner = Param(STRING, "deploymentplanner", description="The deployment planner heuristics used to"
                               " deploy a VM of this offering. If null, value of global config vm.deployment.planner"
                               " is used")
    domains = Param(LIST, "domainid", item_type=UUID, entity=Domain, description="the ID of the containing domain(s),"
                    " null for public offerings")
    zones = Param(LIST, "zoneid", item_type=UUID, entity=Zone, since="4.13", description="the ID of the containing"
                  " zone(s), null for public offerings")
    root_disk_size = Param(LONG, "rootdisksize", since="4.15", description="the Root disk size in GB.")
    dynamic_scaling = Param(BOOLEAN, "dynamicscalingenabled", since="4.16", description="true if virtual machine"
                            " needs to be dynamically scalable of cpu or memory")
    customized_iops = Param(BOOLEAN, "customizediops", since="4.4", description="whether compute offering iops is"
                            " custom or not")
    min_iops = Param(LONG, "miniops", since="4.4", description="min iops of the compute offering")
    max_iops = Param(LONG, "maxiops", since="4.4", description="max iops of the compute offering")
    encrypt_root = Param(BOOLEAN, "encryptroot", since="4.18", description="VMs using this offering require root"
                         " volume encryption")
    details = Param(MAP, "serviceofferingdetails", since="4.2.0", description="details for planner, used to store"
                    " specific parameters")

    def execute(self, ctx: CallContext) -> Result:
        me, s = ctx.me, ctx.session
        what = "service offering"
        check_name(self.name, self.display_text, what)
        cpu, speed, memory = self.cpu_number, self.cpu_speed, self.memory
        customized = self.customized if self.customized is not None else (cpu is None and memory is None)
        mins = (self.min_cpu, self.max_cpu, self.min_memory, self.max_memory)
        name = self.name
        if customized:
            if cpu is not None or memory is not None:
                raise InvalidParameterValue("For creating a custom compute offering cpu and memory all should be null")
            if any(v is not None for v in mins) and not all(v is not None for v in (*mins, speed)):
                raise InvalidParameterValue("For creating a custom compute offering min/max cpu and min/max memory/cpu"
                                            " speed should all be null or all specified")
            if all(v is not None for v in mins):
                assert self.min_cpu is not None and self.max_cpu is not None
                assert self.min_memory is not None and self.max_memory is not None
                if self.min_cpu <= 0 or self.max_cpu <= 0 or self.min_cpu > self.max_cpu:
                    raise InvalidParameterValue(f"Failed to create service offering {name}: specify the minimum or"
                                                " maximum cpu number value between 1 and 2147483647, minimum first")
                if self.min_memory < 32 or self.min_memory > self.max_memory:
                    raise InvalidParameterValue(f"Failed to create service offering {name}: specify the memory value"
                                                " between 32 and 2147483647 MB, minimum first")
        else:
            if any(v is not None for v in mins):
                raise InvalidParameterValue("mincpunumber, maxcpunumber, minmemory and maxmemory apply to custom"
                                            " offerings only (customized=true)")
            if cpu is None or memory is None:
                raise InvalidParameterValue("For creating a fixed compute offering give cpunumber, cpuspeed and"
                                            " memory (or customized=true)")
            if cpu <= 0:
                raise InvalidParameterValue(f"Failed to create service offering {name}: specify the cpu number value"
                                            " between 1 and 2147483647")
            if speed is None or speed < 0:
                raise InvalidParameterValue(f"Failed to create service offering {name}: specify the cpu speed value"
                                            " between 0 and 2147483647")
            if memory < 32:
                raise InvalidParameterValue(f"Failed to create service offering {name}: specify the memory value"
                                            " between 32 and 2147483647 MB")
        if speed is not None and speed < 0:
            raise InvalidParameterValue(f"Failed to create service offering {name}: specify the cpu speed value"
                                        " between 1 and 2147483647")
        if self.is_system and not me.is_root_admin:
            raise PermissionDenied("Only ROOT admins can create system offerings (parameter issystem)")
        vm_type = None
        if self.system_vm_type is not None:
            if not self.is_system:
                raise InvalidParameterValue("systemvmtype applies to system offerings only (issystem=true)")
            vm_type = choice(self.system_vm_type, SYSTEM_VM_TYPES, "systemvmtype", "domainrouter")
        elif self.is_system:
            vm_type = "domainrouter"
        if self.network_rate is not None and self.is_system and vm_type != "domainrouter":
            raise InvalidParameterValue("Network rate can be specified only for non-System offering and system"
                                        " offerings having \"domainrouter\" systemvmtype")
        planner = None
        if self.deployment_planner:
            planner = next((p for p in PLANNERS if p.lower() == self.deployment_planner.lower()), None)
            if planner is None:
                raise InvalidParameterValue(f"Invalid name for Deployment Planner specified: {self.deployment_planner}"
                                            " (parameter deploymentplanner)")
        if self.root_disk_size is not None and self.root_disk_size <= 0:
            raise InvalidParameterValue(f"The Root disk size is of {self.root_disk_size} GB but it must be greater"
                                        " than 0 (parameter rootdisksize)")
        check_iops(self.min_iops, self.max_iops, self.customized_iops)
        storage = choice(self.storage_type, STORAGE_TYPES, "storagetype", "shared")
        provisioning = choice(self.provisioning_type, PROVISIONING_TYPES, "provisioningtype", "thin")
        cache = choice(self.cache_mode, CACHE_MODES, "cachemode", "none")
        domain_ids = domains_for_offering(ctx, self.domains, what)
        zone_ids = id_list(self.zones)
        offering = add_service_offering(
            s, name=name, display_text=self.display_text or name, cpu=cpu, speed=speed, ram_size=memory,
            storage_type=storage, tags=self.tags or None, customized=customized, min_cpu=self.min_cpu,
            max_cpu=self.max_cpu, min_memory=self.min_memory, max_memory=self.max_memory,
            ha_enabled=bool(self.offer_ha), limit_cpu_use=bool(self.limit_cpu_use), is_volatile=bool(self.is_volatile),
            host_tag=self.host_tags or None, is_system=bool(self.is_system), system_vm_type=vm_type,
            network_rate=self.network_rate, deployment_planner=planner,
            dynamic_scaling_enabled=True if self.dynamic_scaling is None else self.dynamic_scaling,
            root_disk_size=(self.root_disk_size or 0) * GIB, domain_ids=domain_ids, zone_ids=zone_ids,
            details=json.dumps(details_map(self.details)) if self.details else None,
        )  # fmt: skip
        disk = s.get(DiskOffering, offering.disk_offering_id)
        assert disk is not None
        disk.provisioning_type, disk.cache_mode = provisioning, cache
        disk.min_iops, disk.max_iops, disk.customized_iops = self.min_iops, self.max_iops, bool(self.customized_iops)
        disk.encrypt, disk.domain_ids, disk.zone_ids = bool(self.encrypt_root), domain_ids, zone_ids
        ctx.event("SERVICE.OFFERING.CREATE", f"Service offering {name} created", resource_type="ServiceOffering",
                  resource_uuid=offering.uuid)
        s.flush()
        return ObjectResult(service_offering_payload(s, [offering])[0])


@api_command("updateServiceOffering", response=ServiceOfferingResponse, roles=OFFERING_ADMINS,
             event_type="SERVICE.OFFERING.EDIT", description="Updates a service offering.")
class UpdateServiceOffering(Command):
    id = Param(UUID, required=True, entity=ServiceOffering, description="the ID of the service offering to be"
               " updated")
    name = Param(STRING, description="the name of the service offering to be updated")
    display_text = Param(STRING, "displaytext", length=4096, description="the display text of the service offering"
                         " to be updated")
    sort_key = Param(INTEGER, "sortkey", description="sort key of the service offering, integer")
    domains = Param(STRING, "domainid", length=4096, since="4.13", description="the ID of the containing domain(s)"
                    " as comma separated string, public for public offerings")
    zones = Param(STRING, "zoneid", length=4096, since="4.13", description="the ID of the containing zone(s) as comma"
                  " separated string, all for all zones offerings")
    host_tags = Param(STRING, "hosttags", since="4.16", description="comma-separated list of host tags for the"
                      " service offering.")
    storage_tags = Param(STRING, "storagetags", since="4.16", description="comma-separated list of tags for the"
                         " service offering, tags should match with existing storage pool tags")
    state = Param(STRING, choices=("Active", "Inactive"), since="4.19", description="state of the service offering")

    def execute(self, ctx: CallContext) -> Result:
        s = ctx.session
        o: ServiceOffering = self.id
        check_manage(ctx, o, "service offering")
        disk = s.get(DiskOffering, o.disk_offering_id)
        update_common(ctx, o, self)
        if self.host_tags is not None:
            o.host_tag = self.host_tags or None
        if disk is not None:
            if self.storage_tags is not None:
                disk.tags = self.storage_tags or None
            disk.domain_ids, disk.zone_ids = o.domain_ids, o.zone_ids
        ctx.event("SERVICE.OFFERING.EDIT", f"Service offering {o.name} updated", resource_type="ServiceOffering",
                  resource_uuid=o.uuid)
        s.flush()
        return ObjectResult(service_offering_payload(s, [o])[0])


@api_command("deleteServiceOffering", response=SuccessResponse, roles=OFFERING_ADMINS,
             event_type="SERVICE.OFFERING.DELETE", description="Deletes a service offering.")
class DeleteServiceOffering(Command):
    id = Param(UUID, required=True, entity=ServiceOffering, description="the ID of the service offering")

    def execute(self, ctx: CallContext) -> Result:
        o: ServiceOffering = self.id
        check_manage(ctx, o, "service offering", "delete")
        if o.is_system and o.system_vm_type and o.name.startswith("System Offering For"):
            raise InvalidParameterValue("Default system offerings can not be deleted")
        o.removed, o.state = now(), "Inactive"
        disk = ctx.session.get(DiskOffering, o.disk_offering_id)
        if disk is not None and disk.compute_only:
            disk.removed, disk.state = now(), "Inactive"
        ctx.event("SERVICE.OFFERING.DELETE", f"Service offering {o.name} deleted", resource_type="ServiceOffering",
                  resource_uuid=o.uuid)
        return Success()


@api_command("listServiceOfferings", response=ServiceOfferingResponse, roles=ALL_ROLES, is_list=True,
             description="Lists all available service offerings.")
class ListServiceOfferings(Command):
    all_marker = frozenset({"zoneid"})
    id = Param(UUID, description="ID of the service offering")
    name = Param(STRING, description="name of the service offering")
    domain = Param(UUID, "domainid", entity=Domain, description="the ID of the domain associated with the service"
                   " offering")
    is_recursive = Param(BOOLEAN, "isrecursive", description="defaults to false, but if true, lists all resources from"
                         " the parent specified by the domainId till leaves.")
    is_system = Param(BOOLEAN, "issystem", description="is this a system vm offering")
    system_vm_type = Param(STRING, "systemvmtype", description="the system VM type. Possible types are"
                           " \"consoleproxy\", \"secondarystoragevm\" or \"domainrouter\".")
    vm = Param(UUID, "virtualmachineid", entity=VirtualMachine, description="the ID of the virtual machine. Pass this"
               " in if you want to see the available service offering that a virtual machine can be changed to.")
    zone = Param(UUID, "zoneid", entity=Zone, since="4.13", description="id of zone disk offering is associated with")
    cpu_number = Param(INTEGER, "cpunumber", since="4.15", description="the CPU number that listed offerings must"
                       " support")
    cpu_speed = Param(INTEGER, "cpuspeed", since="4.15", description="the CPU speed that listed offerings must support")
    memory = Param(INTEGER, since="4.15", description="the RAM memory that listed offering must support")
    storage_type = Param(STRING, "storagetype", since="4.19", description="listed offerings support root disk"
                         " encryption")
    encrypt_root = Param(BOOLEAN, "encryptroot", since="4.18", description="listed offerings support root disk"
                         " encryption")
    state = Param(STRING, since="4.19", description="Filter by state of the service offering. Defaults to 'Active'."
                  " If set to 'all' shows both Active & Inactive offerings.")

    def execute(self, ctx: CallContext) -> Result:
        me, s = ctx.me, ctx.session
        if self.is_system and not me.is_root_admin:
            raise InvalidParameterValue("Only ROOT admins can access system's offering")
        stmt = select(ServiceOffering).join(DiskOffering, DiskOffering.id == ServiceOffering.disk_offering_id).where(
            ServiceOffering.removed.is_(None))
        state = (self.state or "Active").capitalize()
        if state not in ("Active", "Inactive", "All"):
            raise InvalidParameterValue(f"Invalid state {self.state} (parameter state); use Active, Inactive or all")
        if state != "All":
            stmt = stmt.where(ServiceOffering.state == state)
        stmt = stmt.where(domain_visible(ctx, ServiceOffering.domain_ids, recursive=bool(self.is_recursive)))
        if self.domain is not None:
            ctx.acl.check_domain(me, self.domain, Access.LIST)
            stmt = stmt.where(_contains(ServiceOffering.domain_ids, self.domain.id))
        stmt = stmt.where(ServiceOffering.is_system.is_(bool(self.is_system)))
        if self.system_vm_type:
            stmt = stmt.where(ServiceOffering.system_vm_type == self.system_vm_type)
        if self.id:
            stmt = stmt.where(ServiceOffering.uuid == self.id)
        if self.name:
            stmt = stmt.where(ServiceOffering.name == self.name)
        kw = keyword_filter(self.keyword, ServiceOffering.name, ServiceOffering.display_text)
        if kw is not None:
            stmt = stmt.where(kw)
        if self.zone is not None and self.zone != -1:
            stmt = stmt.where(public_or_contains(ServiceOffering.zone_ids, {self.zone.id}))
        if self.storage_type:
            stmt = stmt.where(DiskOffering.storage_type == self.storage_type.lower())
        if self.encrypt_root is not None:
            stmt = stmt.where(DiskOffering.encrypt.is_(self.encrypt_root))
        for value, fixed, low, high in ((self.cpu_number, ServiceOffering.cpu, ServiceOffering.min_cpu,
                                         ServiceOffering.max_cpu),
                                        (self.memory, ServiceOffering.ram_size, ServiceOffering.min_memory,
                                         ServiceOffering.max_memory)):
            if value is not None:
                stmt = stmt.where(or_(fixed == value, and_(fixed.is_(None), or_(
                    low.is_(None), and_(low <= value, high >= value)))))
        if self.cpu_speed is not None:
            stmt = stmt.where(or_(ServiceOffering.speed == self.cpu_speed, ServiceOffering.speed.is_(None)))
        if self.vm is not None:
            stmt = self.changeable_to(ctx, stmt, self.vm)
        stmt = stmt.order_by(ServiceOffering.sort_key, ServiceOffering.id)
        rows, count = fetch_page(ctx, stmt, self)
        return ListResult(service_offering_payload(s, rows), count)

    @staticmethod
    def changeable_to(ctx: CallContext, stmt: Any, vm: VirtualMachine) -> Any:
        """Offerings ``vm`` could change to: not its own (unless custom), same root storage type, and when it
        runs, no smaller and of the same dynamic scaling."""
        s = ctx.session
        ctx.acl.check_owned(ctx.me, vm.account_id, Access.LIST)
        current = s.get(ServiceOffering, vm.service_offering_id)
        if current is None:
            return stmt
        if not current.customized:
            stmt = stmt.where(ServiceOffering.id != current.id)
        root = s.scalar(select(Volume).where(Volume.vm_id == vm.id, Volume.volume_type == "ROOT",
                                             Volume.removed.is_(None)))
        disk = s.get(DiskOffering, current.disk_offering_id)
        storage = disk.storage_type if disk else None
        if root is not None and root.disk_offering_id:
            root_disk = s.get(DiskOffering, root.disk_offering_id)
            storage = root_disk.storage_type if root_disk else storage
        if storage:
            stmt = stmt.where(DiskOffering.storage_type == storage)
        if vm.state == "Running":
            stmt = stmt.where(or_(ServiceOffering.cpu.is_(None), ServiceOffering.cpu >= vm.cpu),
                              or_(ServiceOffering.speed.is_(None), ServiceOffering.speed >= vm.speed),
                              or_(ServiceOffering.ram_size.is_(None), ServiceOffering.ram_size >= vm.memory),
                              ServiceOffering.dynamic_scaling_enabled.is_(current.dynamic_scaling_enabled))
        return stmt


# -- disk offerings -------------------------------------------------------------------------------


@api_command("createDiskOffering", response=DiskOfferingResponse, roles=OFFERING_ADMINS,
             event_type="DISK.OFFERING.CREATE", description="Creates a disk offering.")
class CreateDiskOffering(Command):
    name = Param(STRING, required=True, description="name of the disk offering")
    display_text = Param(STRING, "displaytext", required=True, length=4096, description="An alternate display text of"
                         " the disk offering, defaults to 'name'.")
    disk_size = Param(LONG, "disksize", description="size of the disk offering in GB (1GB = 1,073,741,824 bytes)")
    customized = Param(BOOLEAN, description="whether disk offering size is custom or not")
    tags = Param(STRING, length=4096, description="tags for the disk offering")
    storage_type = Param(STRING, "storagetype", description="the storage type of the disk offering. Values are local"
                         " and shared.")
    provisioning_type = Param(STRING, "provisioningtype", description="provisioning type used to create volumes."
                              " Valid values are thin, sparse, fat.")
    cache_mode = Param(STRING, "cachemode", since="4.14", description="the cache mode to use for this disk offering."
                       " none, writeback, writethrough or hypervisor_default. hypervisor_default is default.")
    customized_iops = Param(BOOLEAN, "customizediops", description="whether disk offering iops is custom or not")
    min_iops = Param(LONG, "miniops", description="min iops of the disk offering")
    max_iops = Param(LONG, "maxiops", description="max iops of the disk offering")
    display_offering = Param(BOOLEAN, "displayoffering", since="4.4", description="an optional field, whether to"
                             " display the offering to the end user or not.")
    domains = Param(LIST, "domainid", item_type=UUID, entity=Domain, description="the ID of the containing domain(s),"
                    " null for public offerings")
    zones = Param(LIST, "zoneid", item_type=UUID, entity=Zone, since="4.13", description="the ID of the containing"
                  " zone(s), null for public offerings")
    encrypt = Param(BOOLEAN, since="4.18", description="Volumes using this offering should be encrypted")

    def execute(self, ctx: CallContext) -> Result:
        s = ctx.session
        check_name(self.name, self.display_text, "disk offering")
        customized = bool(self.customized)
        if not customized and self.disk_size is None:
            raise InvalidParameterValue("Disksize is required for a non-customized disk offering")
        if customized and self.disk_size is not None:
            raise InvalidParameterValue("Disksize is not allowed for a customized disk offering")
        if self.disk_size is not None:
            if self.disk_size < 1:
                raise InvalidParameterValue("Please specify a disk size of at least 1 GB.")
            if self.disk_size > 1024 * 1024:
                raise InvalidParameterValue(f"The maximum size for a disk is {1024 * 1024} GB.")
        check_iops(self.min_iops, self.max_iops, self.customized_iops)
        offering = DiskOffering(
            name=self.name, display_text=self.display_text or self.name, disk_size=(self.disk_size or 0) * GIB,
            customized=customized, tags=self.tags or None,
            storage_type=choice(self.storage_type, STORAGE_TYPES, "storagetype", "shared"),
            provisioning_type=choice(self.provisioning_type, PROVISIONING_TYPES, "provisioningtype", "thin"),
            cache_mode=choice(self.cache_mode, CACHE_MODES, "cachemode", "none"),
            customized_iops=bool(self.customized_iops), min_iops=self.min_iops, max_iops=self.max_iops,
            display_offering=True if self.display_offering is None else self.display_offering,
            domain_ids=domains_for_offering(ctx, self.domains, "disk offering"), zone_ids=id_list(self.zones),
            encrypt=bool(self.encrypt), compute_only=False,
        )  # fmt: skip
        s.add(offering)
        s.flush()
        ctx.event("DISK.OFFERING.CREATE", f"Disk offering {offering.name} created", resource_type="DiskOffering",
                  resource_uuid=offering.uuid)
        return ObjectResult(disk_offering_payload(s, [offering])[0])


def _not_compute_only(d: DiskOffering) -> None:
    if d.compute_only:
        raise InvalidParameterValue(f"Disk offering {d.uuid} is the root disk offering of a service offering: change"
                                    " it through the service offering (parameter id)")


@api_command("updateDiskOffering", response=DiskOfferingResponse, roles=OFFERING_ADMINS,
             event_type="DISK.OFFERING.EDIT", description="Updates a disk offering.")
class UpdateDiskOffering(Command):
    id = Param(UUID, required=True, entity=DiskOffering, description="ID of the disk offering")
    name = Param(STRING, description="updates name of the disk offering with this value")
    display_text = Param(STRING, "displaytext", length=4096, description="updates alternate display text of the disk"
                         " offering with this value")
    sort_key = Param(INTEGER, "sortkey", description="sort key of the disk offering, integer")
    display_offering = Param(BOOLEAN, "displayoffering", since="4.4", description="an optional field, whether to"
                             " display the offering to the end user or not.")
    domains = Param(STRING, "domainid", length=4096, since="4.13", description="the ID of the containing domain(s)"
                    " as comma separated string, public for public offerings")
    zones = Param(STRING, "zoneid", length=4096, since="4.13", description="the ID of the containing zone(s) as comma"
                  " separated string, all for all zones offerings")
    tags = Param(STRING, length=4096, since="4.15", description="comma-separated list of tags for the disk offering,"
                 " tags should match with existing storage pool tags")
    state = Param(STRING, choices=("Active", "Inactive"), since="4.19", description="state of the disk offering")

    def execute(self, ctx: CallContext) -> Result:
        d: DiskOffering = self.id
        _not_compute_only(d)
        check_manage(ctx, d, "disk offering")
        update_common(ctx, d, self)
        if self.display_offering is not None:
            d.display_offering = self.display_offering
        if self.tags is not None:
            d.tags = self.tags or None
        ctx.event("DISK.OFFERING.EDIT", f"Disk offering {d.name} updated", resource_type="DiskOffering",
                  resource_uuid=d.uuid)
        ctx.session.flush()
        return ObjectResult(disk_offering_payload(ctx.session, [d])[0])


@api_command("deleteDiskOffering", response=SuccessResponse, roles=OFFERING_ADMINS,
             event_type="DISK.OFFERING.DELETE", description="Updates a disk offering.")
class DeleteDiskOffering(Command):
    id = Param(UUID, required=True, entity=DiskOffering, description="ID of the disk offering")

    def execute(self, ctx: CallContext) -> Result:
        d: DiskOffering = self.id
        _not_compute_only(d)
        check_manage(ctx, d, "disk offering", "delete")
        d.removed, d.state = now(), "Inactive"
        ctx.event("DISK.OFFERING.DELETE", f"Disk offering {d.name} deleted", resource_type="DiskOffering",
                  resource_uuid=d.uuid)
        return Success()


@api_command("listDiskOfferings", response=DiskOfferingResponse, roles=ALL_ROLES, is_list=True,
             description="Lists all available disk offerings.")
class ListDiskOfferings(Command):
    all_marker = frozenset({"zoneid"})
    id = Param(UUID, description="ID of the disk offering")
    name = Param(STRING, description="name of the disk offering")
    domain = Param(UUID, "domainid", entity=Domain, description="the ID of the domain of the disk offering.")
    is_recursive = Param(BOOLEAN, "isrecursive", description="defaults to false, but if true, lists all resources from"
                         " the parent specified by the domainId till leaves.")
    zone = Param(UUID, "zoneid", entity=Zone, since="4.13", description="id of zone disk offering is associated with")
    volume = Param(UUID, "volumeid", entity=Volume, since="4.17", description="The ID of the volume, tags of the"
                   " volume are used to filter the offerings")
    storage_type = Param(STRING, "storagetype", since="4.19", description="the storage type of the disk offering."
                         " Values are local and shared.")
    encrypt = Param(BOOLEAN, since="4.18", description="listed offerings support disk encryption")
    state = Param(STRING, since="4.19", description="Filter by state of the disk offering. Defaults to 'Active'. If"
                  " set to 'all' shows both Active & Inactive offerings.")

    def execute(self, ctx: CallContext) -> Result:
        me, s = ctx.me, ctx.session
        stmt = select(DiskOffering).where(DiskOffering.removed.is_(None), DiskOffering.compute_only.is_(False))
        state = (self.state or "Active").capitalize()
        if state not in ("Active", "Inactive", "All"):
            raise InvalidParameterValue(f"Invalid state {self.state} (parameter state); use Active, Inactive or all")
        if state != "All":
            stmt = stmt.where(DiskOffering.state == state)
        stmt = stmt.where(domain_visible(ctx, DiskOffering.domain_ids, recursive=bool(self.is_recursive)))
        if not me.is_root_admin:
            stmt = stmt.where(DiskOffering.display_offering.is_(True))
        if self.domain is not None:
            ctx.acl.check_domain(me, self.domain, Access.LIST)
            stmt = stmt.where(_contains(DiskOffering.domain_ids, self.domain.id))
        if self.id:
            stmt = stmt.where(DiskOffering.uuid == self.id)
        if self.name:
            stmt = stmt.where(DiskOffering.name == self.name)
        kw = keyword_filter(self.keyword, DiskOffering.name, DiskOffering.display_text)
        if kw is not None:
            stmt = stmt.where(kw)
        if self.zone is not None and self.zone != -1:
            stmt = stmt.where(public_or_contains(DiskOffering.zone_ids, {self.zone.id}))
        if self.storage_type:
            stmt = stmt.where(DiskOffering.storage_type == self.storage_type.lower())
        if self.encrypt is not None:
            stmt = stmt.where(DiskOffering.encrypt.is_(self.encrypt))
        if self.volume is not None:
            vol: Volume = self.volume
            ctx.acl.check_owned(me, vol.account_id, Access.LIST)
            if vol.disk_offering_id:
                stmt = stmt.where(DiskOffering.id != vol.disk_offering_id)
                current = s.get(DiskOffering, vol.disk_offering_id)
                if current is not None:
                    stmt = stmt.where(DiskOffering.storage_type == current.storage_type)
        stmt = stmt.order_by(DiskOffering.sort_key, DiskOffering.id)
        rows, count = fetch_page(ctx, stmt, self)
        return ListResult(disk_offering_payload(s, rows), count)


# -- network offerings ----------------------------------------------------------------------------


def _service_pattern(name: str) -> str:
    return f'%"{name}":%'


@api_command("listNetworkOfferings", response=NetworkOfferingResponse, roles=ALL_ROLES, is_list=True,
             description="Lists all available network offerings.")
class ListNetworkOfferings(Command):
    all_marker = frozenset({"zoneid"})
    id = Param(UUID, description="list network offerings by ID")
    name = Param(STRING, description="list network offerings by name")
    display_text = Param(STRING, "displaytext", description="list network offerings by display text")
    traffic_type = Param(STRING, "traffictype", description="list by traffic type")
    is_default = Param(BOOLEAN, "isdefault", description="true if need to list only default network offerings."
                       " Default value is false")
    specify_vlan = Param(BOOLEAN, "specifyvlan", description="the tags for the network offering.")
    availability = Param(STRING, description="the availability of network offering. Default value is required")
    guest_ip_type = Param(STRING, "guestiptype", description="list network offerings by guest type: shared, l2 or"
                          " isolated")
    state = Param(STRING, description="list network offerings by state")
    supported_services = Param(LIST, "supportedservices", description="list network offerings supporting certain"
                               " services")
    source_nat_supported = Param(BOOLEAN, "sourcenatsupported", description="true if need to list only netwok"
                                 " offerings where source NAT is supported, false otherwise")
    specify_ip_ranges = Param(BOOLEAN, "specifyipranges", description="true if need to list only network offerings"
                              " which support specifying ip ranges")
    for_vpc = Param(BOOLEAN, "forvpc", description="the network offering can be used only for network creation"
                    " inside the VPC")
    zone = Param(UUID, "zoneid", entity=Zone, description="list network offerings available for network creation in"
                 " specific zone")
    domain = Param(UUID, "domainid", entity=Domain, since="4.13", description="list network offerings available for"
                   " network creation in specific domain")
    tags = Param(STRING, length=4096, description="list network offerings by tags")
    is_tagged = Param(BOOLEAN, "istagged", description="true if offering has tags specified")
    network = Param(UUID, "networkid", entity=Network, description="the ID of the network. Pass this in if you want"
                    " to see the available network offering that a network can be changed to.")

    def execute(self, ctx: CallContext) -> Result:
        me, s = ctx.me, ctx.session
        n = NetworkOffering
        stmt = select(n).where(n.removed.is_(None), n.system_only.is_(False))
        stmt = stmt.where(domain_visible(ctx, n.domain_ids))
        if self.domain is not None:
            ctx.acl.check_domain(me, self.domain, Access.LIST)
            stmt = stmt.where(public_or_contains(n.domain_ids, ancestor_ids(ctx, self.domain.path)))
        if self.id:
            stmt = stmt.where(n.uuid == self.id)
        if self.name:
            stmt = stmt.where(n.name == self.name)
        if self.display_text:
            stmt = stmt.where(n.display_text == self.display_text)
        kw = keyword_filter(self.keyword, n.name, n.display_text)
        if kw is not None:
            stmt = stmt.where(kw)
        for value, col in ((self.traffic_type, n.traffic_type), (self.availability, n.availability),
                           (self.guest_ip_type, n.guest_ip_type), (self.state, n.state)):
            if value:
                stmt = stmt.where(col.in_({value, value.capitalize(), value.upper()}))
        for flag, col in ((self.is_default, n.is_default), (self.specify_vlan, n.specify_vlan),
                          (self.specify_ip_ranges, n.specify_ip_ranges), (self.for_vpc, n.for_vpc)):
            if flag is not None:
                stmt = stmt.where(col.is_(flag))
        for service in self.supported_services or []:
            name = next((k for k in SERVICES if k.lower() == service.lower()), None)
            if name is None:
                raise InvalidParameterValue(f"Invalid service {service} (parameter supportedservices)")
            stmt = stmt.where(n.services.like(_service_pattern(name)))
        if self.source_nat_supported is not None:
            cond = n.services.like(_service_pattern("SourceNat"))
            stmt = stmt.where(cond if self.source_nat_supported else ~cond)
        if self.zone is not None and self.zone != -1:
            stmt = stmt.where(public_or_contains(n.zone_ids, {self.zone.id}))
        if self.tags:
            stmt = stmt.where(n.tags == self.tags)
        if self.is_tagged is not None:
            stmt = stmt.where(n.tags.is_not(None) if self.is_tagged else n.tags.is_(None))
        if self.network is not None:
            net: Network = self.network
            current = s.get(NetworkOffering, net.network_offering_id)
            stmt = stmt.where(n.id != net.network_offering_id, n.state == "Enabled")
            if current is not None:
                stmt = stmt.where(n.guest_ip_type == current.guest_ip_type)
        stmt = stmt.order_by(n.id)
        rows, count = fetch_page(ctx, stmt, self)
        return ListResult(network_offering_payload(s, rows), count)


@api_command("createNetworkOffering", response=NetworkOfferingResponse, roles=ROOT_ADMIN,
             event_type="NETWORK.OFFERING.CREATE", description="Creates a network offering.")
class CreateNetworkOffering(Command):
    name = Param(STRING, required=True, description="the name of the network offering")
    display_text = Param(STRING, "displaytext", required=True, description="the display text of the network offering,"
                         " defaults to the value of 'name'.")
    traffic_type = Param(STRING, "traffictype", required=True, description="the traffic type for the network offering."
                         " Supported type in current release is GUEST only")
    guest_ip_type = Param(STRING, "guestiptype", required=True, description="guest type of the network offering:"
                          " Shared or Isolated")
    supported_services = Param(LIST, "supportedservices", description="services supported by the network offering")
    service_providers = Param(MAP, "serviceproviderlist", description="provider to service mapping. If not specified,"
                              " the provider for the service will be mapped to the default provider on the physical"
                              " network")
    specify_vlan = Param(BOOLEAN, "specifyvlan", description="true if network offering supports vlans")
    specify_ip_ranges = Param(BOOLEAN, "specifyipranges", description="true if network offering supports specifying ip"
                              " ranges; defaulted to false if not specified")
    conserve_mode = Param(BOOLEAN, "conservemode", description="true if the network offering is IP conserve mode"
                          " enabled")
    availability = Param(STRING, description="the availability of network offering. The default value is Optional."
                         " Another value is Required, which will make it as the default network offering for new"
                         " networks ")
    network_rate = Param(INTEGER, "networkrate", description="data transfer rate in megabits per second allowed")
    is_persistent = Param(BOOLEAN, "ispersistent", description="true if network offering supports persistent networks;"
                          " defaulted to false if not specified")
    egress_default_policy = Param(BOOLEAN, "egressdefaultpolicy", description="true if guest network default egress"
                                  " policy is allow; false if default egress policy is deny")
    for_vpc = Param(BOOLEAN, "forvpc", description="true if network offering is meant to be used for VPC, false"
                    " otherwise.")
    tags = Param(STRING, length=4096, description="the tags for the network offering.")
    domains = Param(LIST, "domainid", item_type=UUID, entity=Domain, since="4.13", description="the ID of the"
                    " containing domain(s), null for public offerings")
    zones = Param(LIST, "zoneid", item_type=UUID, entity=Zone, since="4.13", description="the ID of the containing"
                  " zone(s), null for public offerings")
    enable = Param(BOOLEAN, since="4.16", description="set to true if the offering is to be enabled during creation."
                   " Default is false")

    def execute(self, ctx: CallContext) -> Result:
        s = ctx.session
        check_name(self.name, self.display_text, "network offering")
        if self.traffic_type.strip().lower() != "guest":
            raise InvalidParameterValue(f"Invalid value {self.traffic_type} for traffictype: only traffic type Guest is"
                                        " supported")
        guest = next((g for g in ("Isolated", "Shared", "L2") if g.lower() == self.guest_ip_type.strip().lower()), None)
        if guest is None:
            raise InvalidParameterValue(f"Invalid \"type\" parameter is given: {self.guest_ip_type}; can have Shared,"
                                        " Isolated and L2 values (parameter guestiptype)")
        availability = choice(self.availability, ("Required", "Optional"), "availability", "Optional")
        services: dict[str, list[str]] = {}
        for raw in self.supported_services or []:
            name = next((k for k in SERVICES if k.lower() == raw.lower()), None)
            if name is None:
                raise InvalidParameterValue(f"Invalid service {raw} (parameter supportedservices)")
            services[name] = []
        for entry in self.service_providers or []:
            svc, provider = entry.get("service"), entry.get("provider")
            name = next((k for k in SERVICES if svc and k.lower() == svc.lower()), None)
            if name is None or name not in services:
                raise InvalidParameterValue(f"Service {svc} is not in supportedservices (parameter"
                                            " serviceproviderlist)")
            prov = next((p for p in PROVIDERS if provider and p.lower() == provider.lower()), None)
            if prov is None:
                raise InvalidParameterValue(f"Invalid service provider: {provider} (parameter serviceproviderlist)")
            services[name].append(prov)
        for name, provs in services.items():
            if not provs:
                provs.append("VpcVirtualRouter" if self.for_vpc and SERVICES[name] == "VirtualRouter" else SERVICES[name])
        if guest == "L2" and set(services) - {"UserData"}:
            raise InvalidParameterValue("L2 network offerings support no services but UserData (parameter"
                                        " supportedservices)")
        if guest == "Shared" and "SourceNat" in services:
            raise InvalidParameterValue("SourceNat service is not supported for Shared networks (parameter"
                                        " supportedservices)")
        if availability == "Required" and not (guest == "Isolated" and "SourceNat" in services):
            raise InvalidParameterValue("Availability can be Required only for Isolated network offerings with"
                                        " SourceNat service (parameter availability)")
        if guest == "Shared" and self.specify_vlan is False:
            raise InvalidParameterValue("For shared network offerings specifyvlan must be true")
        if self.network_rate is not None and self.network_rate < 0:
            raise InvalidParameterValue("Network rate must be a positive number (parameter networkrate)")
        offering = NetworkOffering(
            name=self.name, display_text=self.display_text or self.name, traffic_type="Guest", guest_ip_type=guest,
            specify_vlan=bool(self.specify_vlan) or guest == "Shared", specify_ip_ranges=bool(self.specify_ip_ranges)
            or guest == "Shared", conserve_mode=True if self.conserve_mode is None else self.conserve_mode,
            is_default=False, is_persistent=bool(self.is_persistent),
            egress_default_policy=True if self.egress_default_policy is None else self.egress_default_policy,
            availability=availability, for_vpc=bool(self.for_vpc), network_rate=self.network_rate,
            services=json.dumps(services), tags=self.tags or None, domain_ids=id_list(self.domains),
            zone_ids=id_list(self.zones), state="Enabled" if self.enable else "Disabled",
        )  # fmt: skip
        s.add(offering)
        s.flush()
        ctx.event("NETWORK.OFFERING.CREATE", f"Network offering {offering.name} created",
                  resource_type="NetworkOffering", resource_uuid=offering.uuid)
        return ObjectResult(network_offering_payload(s, [offering])[0])


@api_command("updateNetworkOffering", response=NetworkOfferingResponse, roles=ROOT_ADMIN,
             event_type="NETWORK.OFFERING.EDIT", description="Updates a network offering.")
class UpdateNetworkOffering(Command):
    id = Param(UUID, entity=NetworkOffering, description="the id of the network offering")
    name = Param(STRING, description="the name of the network offering")
    display_text = Param(STRING, "displaytext", description="the display text of the network offering")
    availability = Param(STRING, description="the availability of network offering. The value is Required makes this"
                         " network offering default for Guest Virtual Networks. Only one network offering can have"
                         " the value Required ")
    state = Param(STRING, description="update state for the network offering")
    tags = Param(STRING, length=4096, since="4.4", description="the tags for the network offering.")
    domains = Param(STRING, "domainid", length=4096, since="4.13", description="the ID of the containing domain(s) as"
                    " comma separated string, public for public offerings")
    zones = Param(STRING, "zoneid", length=4096, since="4.13", description="the ID of the containing zone(s) as comma"
                  " separated string, all for all zones offerings")

    def execute(self, ctx: CallContext) -> Result:
        s = ctx.session
        if self.id is None:
            raise ParamError("Unable to execute API command updatenetworkoffering due to missing parameter id")
        o: NetworkOffering = self.id
        if o.system_only:
            raise InvalidParameterValue(f"Can't update system only network offering {o.name}")
        if self.name is not None:
            if not self.name.strip():
                raise InvalidParameterValue("Parameter name can't be empty")
            o.name = self.name
        if self.display_text is not None:
            o.display_text = self.display_text or o.name
        if self.availability is not None:
            availability = choice(self.availability, ("Required", "Optional"), "availability", "Optional")
            if availability == "Required" and not (o.guest_ip_type == "Isolated" and "SourceNat" in json.loads(
                    o.services or "{}")):
                raise InvalidParameterValue("Availability can be Required only for Isolated network offerings with"
                                            " SourceNat service (parameter availability)")
            o.availability = availability
        if self.state is not None:
            o.state = choice(self.state, ("Enabled", "Disabled"), "state", "Enabled")
        if self.tags is not None:
            o.tags = self.tags or None
        if self.domains is not None:
            o.domain_ids = parse_domain_text(ctx, self.domains, "domainid")
        if self.zones is not None:
            o.zone_ids = parse_zone_text(ctx, self.zones, "zoneid")
        ctx.event("NETWORK.OFFERING.EDIT", f"Network offering {o.name} updated", resource_type="NetworkOffering",
                  resource_uuid=o.uuid)
        s.flush()
        return ObjectResult(network_offering_payload(s, [o])[0])


@api_command("deleteNetworkOffering", response=SuccessResponse, roles=ROOT_ADMIN,
             event_type="NETWORK.OFFERING.DELETE", description="Deletes a network offering.")
class DeleteNetworkOffering(Command):
    id = Param(UUID, required=True, entity=NetworkOffering, description="the ID of the network offering")

    def execute(self, ctx: CallContext) -> Result:
        s = ctx.session
        o: NetworkOffering = self.id
        if o.is_default:
            raise InvalidParameterValue("Default network offering can't be deleted")
        used = s.scalar(select(Network.id).where(Network.network_offering_id == o.id,
                                                 Network.removed.is_(None)).limit(1))
        if used is not None:
            raise InvalidParameterValue(f"Can't delete network offering {o.name} as it is used by networks. To make"
                                        " the network offering unavailable, disable it")
        o.removed, o.state = now(), "Inactive"
        ctx.event("NETWORK.OFFERING.DELETE", f"Network offering {o.name} deleted", resource_type="NetworkOffering",
                  resource_uuid=o.uuid)
        return Success()


# -- guest OS types -------------------------------------------------------------------------------


@api_command("listOsTypes", response=GuestOsResponse, roles=ALL_ROLES, is_list=True,
             description="Lists all supported OS types for this cloud.")
class ListOsTypes(Command):
    id = Param(UUID, description="list by Os type Id")
    ids = Param(LIST, item_type=UUID, since="4.21.0", description="list by Os type Ids")
    os_category = Param(UUID, "oscategoryid", entity=GuestOsCategory, description="list by Os Category id")
    description = Param(STRING, description="list os by description")
    for_display = Param(BOOLEAN, "fordisplay", since="4.18.1", description="list resources by display flag (admins"
                        " only: users see the displayed ones)")

    def execute(self, ctx: CallContext) -> Result:
        s = ctx.session
        stmt = select(GuestOs).where(GuestOs.removed.is_(None))
        if self.id:
            stmt = stmt.where(GuestOs.uuid == self.id)
        if self.ids:
            stmt = stmt.where(GuestOs.uuid.in_(self.ids))
        if self.os_category is not None:
            stmt = stmt.where(GuestOs.category_id == self.os_category.id)
        if self.description:
            stmt = stmt.where(keyword_filter(self.description, GuestOs.display_name))
        kw = keyword_filter(self.keyword, GuestOs.display_name)
        if kw is not None:
            stmt = stmt.where(kw)
        if self.for_display is not None and ctx.me.is_admin:
            stmt = stmt.where(GuestOs.display.is_(self.for_display))
        elif not ctx.me.is_admin:
            stmt = stmt.where(GuestOs.display.is_(True))
        rows, count = fetch_page(ctx, stmt.order_by(GuestOs.id), self)
        return ListResult(guest_os_payload(s, rows), count)


@api_command("listOsCategories", response=OsCategoryResponse, roles=ALL_ROLES, is_list=True,
             description="Lists all supported OS categories for this cloud.")
class ListOsCategories(Command):
    id = Param(UUID, description="list Os category by id")
    name = Param(STRING, since="3.0.1", description="list os category by name")
    is_featured = Param(BOOLEAN, "isfeatured", since="4.21.0", description="List available OS categories by featured"
                        " or not")

    def execute(self, ctx: CallContext) -> Result:
        c = GuestOsCategory
        stmt = select(c)
        if self.id:
            stmt = stmt.where(c.uuid == self.id)
        if self.name:
            stmt = stmt.where(c.name == self.name)
        if self.is_featured is not None:
            stmt = stmt.where(c.featured.is_(self.is_featured))
        kw = keyword_filter(self.keyword, c.name)
        if kw is not None:
            stmt = stmt.where(kw)
        rows, count = fetch_page(ctx, stmt.order_by(c.sort_key, c.id), self)
        return ListResult([{"id": r.uuid, "name": r.name, "isfeatured": r.featured} for r in rows], count)


def _os_name_taken(ctx: CallContext, name: str, exclude: int | None = None) -> bool:
    stmt = select(GuestOs.id).where(GuestOs.display_name == name, GuestOs.removed.is_(None))
    if exclude is not None:
        stmt = stmt.where(GuestOs.id != exclude)
    return ctx.session.scalar(stmt.limit(1)) is not None


@api_command("addGuestOs", response=GuestOsResponse, roles=ROOT_ADMIN, is_async=True, since="4.4.0",
             event_type="GUEST.OS.ADD", description="Add a new guest OS type")
class AddGuestOs(Command):
    os_category = Param(UUID, "oscategoryid", required=True, entity=GuestOsCategory, description="ID of Guest OS"
                        " category")
    os_display_name = Param(STRING, "osdisplayname", required=True, description="Unique display name for Guest OS")
    name = Param(STRING, description="Optional name for Guest OS")
    for_display = Param(BOOLEAN, "fordisplay", since="4.18.1", description="whether this guest OS is available for"
                        " end users")

    def execute(self, ctx: CallContext) -> Result:
        s = ctx.session
        name = self.os_display_name.strip()
        if not name:
            raise InvalidParameterValue("Parameter osdisplayname can't be empty")
        if _os_name_taken(ctx, name):
            raise InvalidParameterValue(f"The specified Guest OS name : {name} already exists. Please specify a unique"
                                        " name")
        os_ = GuestOs(category_id=self.os_category.id, display_name=name, is_user_defined=True,
                      display=True if self.for_display is None else self.for_display)
        s.add(os_)
        s.flush()
        ctx.event("GUEST.OS.ADD", f"Added guest OS {name}", resource_type="GuestOs", resource_uuid=os_.uuid)
        return ObjectResult(guest_os_payload(s, [os_])[0])


@api_command("updateGuestOs", response=GuestOsResponse, roles=ROOT_ADMIN, is_async=True, since="4.4.0",
             event_type="GUEST.OS.UPDATE", description="Updates the information about Guest OS")
class UpdateGuestOs(Command):
    id = Param(UUID, required=True, entity=GuestOs, description="UUID of the Guest OS")
    os_display_name = Param(STRING, "osdisplayname", required=True, description="Unique display name for Guest OS")
    os_category = Param(UUID, "oscategoryid", entity=GuestOsCategory, since="4.21.0", description="the ID of the OS"
                        " category")
    for_display = Param(BOOLEAN, "fordisplay", since="4.18.1", description="whether this guest OS is available for"
                        " end users")

    def instance(self) -> tuple[str | None, str | None]:
        return "GuestOs", self.id.uuid

    def execute(self, ctx: CallContext) -> Result:
        os_: GuestOs = self.id
        if not os_.is_user_defined:
            raise InvalidParameterValue("Unable to modify system defined Guest OS")
        name = self.os_display_name.strip()
        if not name:
            raise InvalidParameterValue("Parameter osdisplayname can't be empty")
        if _os_name_taken(ctx, name, exclude=os_.id):
            raise InvalidParameterValue(f"The specified Guest OS name : {name} already exists. Please specify a unique"
                                        " name")
        os_.display_name = name
        if self.os_category is not None:
            os_.category_id = self.os_category.id
        if self.for_display is not None:
            os_.display = self.for_display
        ctx.event("GUEST.OS.UPDATE", f"Updated guest OS {name}", resource_type="GuestOs", resource_uuid=os_.uuid)
        ctx.session.flush()
        return ObjectResult(guest_os_payload(ctx.session, [os_])[0])


@api_command("removeGuestOs", response=SuccessResponse, roles=ROOT_ADMIN, is_async=True, since="4.4.0",
             event_type="GUEST.OS.REMOVE", description="Removes a Guest OS from listing.")
class RemoveGuestOs(Command):
    id = Param(UUID, required=True, entity=GuestOs, description="ID of the guest OS")

    def instance(self) -> tuple[str | None, str | None]:
        return "GuestOs", self.id.uuid

    def execute(self, ctx: CallContext) -> Result:
        os_: GuestOs = self.id
        if not os_.is_user_defined:
            raise InvalidParameterValue("Unable to remove system defined Guest OS")
        os_.removed = now()
        ctx.event("GUEST.OS.REMOVE", f"Removed guest OS {os_.display_name}", resource_type="GuestOs",
                  resource_uuid=os_.uuid)
        return Success()


# -- hypervisors ----------------------------------------------------------------------------------


def supported_hypervisors(ctx: CallContext) -> list[str]:
    """Hypervisor types of the installed drivers (``overcast.hypervisors`` plug-ins)."""
    from overcast.services import HYPERVISORS

    names = []
    for key in HYPERVISORS.names():
        try:
            names.append(HYPERVISORS.get(key).hypervisor_type)
        except Exception:  # noqa: BLE001 - a broken plug-in is left out of the list
            continue
    return sorted(set(names))


@api_command("listHypervisors", response=HypervisorResponse, roles=ALL_ROLES, is_list=True,
             description="List hypervisors")
class ListHypervisors(Command):
    all_marker = frozenset({"zoneid"})
    zone = Param(UUID, "zoneid", entity=Zone, description="the zone id for listing hypervisors.")

    def execute(self, ctx: CallContext) -> Result:
        stmt = select(Cluster.hypervisor_type).where(Cluster.removed.is_(None)).distinct()
        if self.zone is not None and self.zone != -1:
            stmt = stmt.where(Cluster.zone_id == self.zone.id)
        names = sorted(set(ctx.session.scalars(stmt)))
        if not names and (self.zone is None or self.zone == -1):
            names = supported_hypervisors(ctx)
        if self.keyword:
            names = [n for n in names if self.keyword.lower() in n.lower()]
        return ListResult([{"name": n} for n in names], len(names))


@api_command("listHypervisorCapabilities", response=HypervisorCapabilitiesResponse, roles=ROOT_ADMIN, is_list=True,
             since="3.0.0", description="Lists all hypervisor capabilities.")
class ListHypervisorCapabilities(Command):
    id = Param(UUID, description="ID of the hypervisor capability")
    hypervisor = Param(STRING, description="the hypervisor for which to restrict the search")

    def execute(self, ctx: CallContext) -> Result:
        h = HypervisorCapability
        stmt = select(h)
        if self.id:
            stmt = stmt.where(h.uuid == self.id)
        if self.hypervisor:
            stmt = stmt.where(h.hypervisor_type == (canonical_hypervisor(self.hypervisor) or self.hypervisor))
        kw = keyword_filter(self.keyword, h.hypervisor_type)
        if kw is not None:
            stmt = stmt.where(kw)
        rows, count = fetch_page(ctx, stmt.order_by(h.id), self)
        return ListResult([HypervisorCapabilitiesResponse.of(r) for r in rows], count)


@api_command("updateHypervisorCapabilities", response=HypervisorCapabilitiesResponse, roles=ROOT_ADMIN,
             since="3.0.0", description="Updates a hypervisor capabilities.")
class UpdateHypervisorCapabilities(Command):
    id = Param(UUID, entity=HypervisorCapability, description="ID of the hypervisor capability")
    hypervisor = Param(STRING, since="4.19.1", description="the hypervisor for which the hypervisor capabilities are"
                       " to be updated")
    hypervisor_version = Param(STRING, "hypervisorversion", since="4.19.1", description="the hypervisor version for"
                               " which the hypervisor capabilities are to be updated")
    max_guests_limit = Param(LONG, "maxguestslimit", description="the max number of Guest VMs per host for this"
                             " hypervisor.")
    max_data_volumes_limit = Param(INTEGER, "maxdatavolumeslimit", since="4.16.0", description="the maximum number of"
                                   " Data Volumes that can be attached to a VM for this hypervisor.")
    max_hosts_per_cluster = Param(INTEGER, "maxhostspercluster", since="4.16.0", description="the maximum number of"
                                  " the hypervisor hosts per cluster")
    security_group_enabled = Param(BOOLEAN, "securitygroupenabled", description="set true to enable security group"
                                   " for this hypervisor.")
    storage_motion_enabled = Param(BOOLEAN, "storagemotionenabled", since="4.16.0", description="set true to enable"
                                   " storage motion support for this hypervisor")
    vm_snapshot_enabled = Param(BOOLEAN, "vmsnapshotenabled", since="4.16.0", description="set true to enable VM"
                                " snapshots for this hypervisor")

    def execute(self, ctx: CallContext) -> Result:
        s = ctx.session
        row: HypervisorCapability | None = self.id
        if row is None:
            if not self.hypervisor:
                raise InvalidParameterValue("Please give id, or hypervisor and hypervisorversion")
            hv = canonical_hypervisor(self.hypervisor)
            if hv is None:
                raise InvalidParameterValue(f"Invalid hypervisor {self.hypervisor} (parameter hypervisor)")
            version = self.hypervisor_version or "default"
            row = s.scalar(select(HypervisorCapability).where(HypervisorCapability.hypervisor_type == hv,
                                                              HypervisorCapability.hypervisor_version == version))
            if row is None:
                base = s.scalar(select(HypervisorCapability).where(HypervisorCapability.hypervisor_type == hv,
                                                                   HypervisorCapability.hypervisor_version == "default"))
                row = HypervisorCapability(hypervisor_type=hv, hypervisor_version=version)
                if base is not None:
                    for col in ("max_guests_limit", "max_data_volumes_limit", "max_hosts_per_cluster",
                                "security_group_enabled", "storage_motion_supported", "vm_snapshot_enabled"):
                        setattr(row, col, getattr(base, col))
                s.add(row)
        for value, name, col in ((self.max_guests_limit, "maxguestslimit", "max_guests_limit"),
                                 (self.max_data_volumes_limit, "maxdatavolumeslimit", "max_data_volumes_limit"),
                                 (self.max_hosts_per_cluster, "maxhostspercluster", "max_hosts_per_cluster")):
            if value is not None:
                if value < 0:
                    raise InvalidParameterValue(f"Parameter {name} must not be negative")
                setattr(row, col, value)
        for flag, col in ((self.security_group_enabled, "security_group_enabled"),
                          (self.storage_motion_enabled, "storage_motion_supported"),
                          (self.vm_snapshot_enabled, "vm_snapshot_enabled")):
            if flag is not None:
                setattr(row, col, flag)
        s.flush()
        return ObjectResult(HypervisorCapabilitiesResponse.of(row))


__all__ = ["CreateServiceOffering", "ListDiskOfferings", "ListNetworkOfferings", "ListServiceOfferings"]
