"""Allocating a VM (the synchronous half of deployVirtualMachine): validate, reserve counts, create the
VM row, its volumes and NICs. Starting it is :meth:`overcast.engine.vms.VmOps.start`."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from sqlalchemy import func, select

from overcast.db.models import (
    Account,
    AffinityGroup,
    AffinityGroupVm,
    Cluster,
    DiskOffering,
    Host,
    InstanceGroup,
    InstanceGroupVm,
    LaunchPermission,
    SecurityGroup,
    SecurityGroupVm,
    ServiceOffering,
    SshKeyPair,
    Template,
    TemplateZone,
    VirtualMachine,
    Volume,
    Zone,
)
from overcast.engine.context import EngineContext
from overcast.engine.limits import GIB, Limits, ResourceType
from overcast.engine.networks import NetworkService
from overcast.engine.offerings import check_offering_scope
from overcast.engine.vms import NetworkRequest, new_password, shape
from overcast.errors import InvalidParameterValue, PermissionDenied, ResourceUnavailable

_HOSTNAME = re.compile(r"^[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


@dataclass
class DeployRequest:
    account: Account
    zone: Zone
    template: Template
    offering: ServiceOffering
    disk_offering: DiskOffering | None = None
    size_gb: int | None = None
    root_disk_size_gb: int | None = None
    name: str | None = None
    display_name: str | None = None
    group: str | None = None
    networks: list[NetworkRequest] = field(default_factory=list)
    ip_address: str | None = None
    keypairs: list[str] = field(default_factory=list)
    user_data: str | None = None
    userdata_id: int | None = None
    userdata_details: str | None = None
    affinity_groups: list[AffinityGroup] = field(default_factory=list)
    security_groups: list[SecurityGroup] = field(default_factory=list)
    details: dict[str, str] = field(default_factory=dict)
    cpu: int | None = None
    speed: int | None = None
    memory: int | None = None
    hypervisor: str | None = None
    host: Host | None = None
    display_vm: bool = True
    dynamically_scalable: bool | None = None
    boot_type: str | None = None
    boot_mode: str | None = None
    password: str | None = None


def template_usable(ctx: EngineContext, template: Template, account: Account) -> bool:
    if template.is_public or template.account_id == account.id:
        return True
    me = ctx.caller
    if me is not None and me.is_root_admin:
        return True
    return ctx.session.scalar(select(LaunchPermission.id).where(
        LaunchPermission.template_id == template.id, LaunchPermission.account_id == account.id)) is not None


def allocate(ctx: EngineContext, req: DeployRequest) -> VirtualMachine:
    s = ctx.session
    account, zone, template, offering = req.account, req.zone, req.template, req.offering
    me = ctx.caller
    is_root = bool(me and me.is_root_admin)
    if zone.allocation_state != "Enabled" and not is_root:
        raise PermissionDenied(f"Cannot perform this operation, Zone {zone.name} is currently disabled")
    if offering.state != "Active" or offering.removed is not None or offering.is_system:
        raise InvalidParameterValue(f"Service offering {offering.name} can't be used for deployments")
    check_offering_scope(ctx, offering, account, zone, "Service offering", "serviceofferingid")
    if req.disk_offering is not None:
        check_offering_scope(ctx, req.disk_offering, account, zone, "Disk offering", "diskofferingid")
    # Usability first, and by id: a private template's name is its owner's to know.
    if not template_usable(ctx, template, account):
        raise PermissionDenied(f"Account {account.name} can't use template id={template.uuid}",
                               uuids=[(template.uuid, "templateId")])
    if template.removed is not None or template.state != "Active":
        raise InvalidParameterValue(f"Template {template.name} is not active")
    if template.format == "ISO" and not template.bootable:
        raise InvalidParameterValue(f"ISO {template.name} is not bootable")
    from_iso = template.format == "ISO"
    if from_iso and req.disk_offering is None:
        raise InvalidParameterValue("Installing from ISO requires a disk offering to be specified for the root disk."
                                    " (parameter diskofferingid)")
    ready = s.scalar(select(TemplateZone.id).where(
        TemplateZone.template_id == template.id, TemplateZone.state == "Ready", TemplateZone.removed.is_(None),
        (TemplateZone.zone_id == zone.id)))
    if ready is None:
        raise InvalidParameterValue(f"Template {template.name} is not ready in zone {zone.name}",
                                    uuids=[(template.uuid, "templateId")])
    hypervisor = template.hypervisor_type if template.hypervisor_type not in (None, "None", "Any") else None
    hypervisor = hypervisor or req.hypervisor or s.scalar(
        select(Cluster.hypervisor_type).where(Cluster.zone_id == zone.id, Cluster.removed.is_(None)).order_by(Cluster.id))
    if hypervisor is None:
        raise ResourceUnavailable(f"Zone {zone.name} has no cluster to run VMs on")
    cpu, speed, memory = shape(offering, req.cpu, req.speed, req.memory)

    name = req.name
    if name is not None:
        if not _HOSTNAME.match(name):
            raise InvalidParameterValue(
                "Invalid value for name: instance name can not be longer than 63 characters. Only ASCII letters"
                " a~z, A~Z, digits 0~9, hyphen are allowed. Must start with a letter and end with a letter or"
                " a digit")
        clash = s.scalar(select(VirtualMachine.id).where(
            func.lower(VirtualMachine.name) == name.lower(), VirtualMachine.account_id == account.id,
            VirtualMachine.zone_id == zone.id, VirtualMachine.removed.is_(None)))
        if clash is not None:
            raise InvalidParameterValue(f"The vm with hostName {name} already exists for account {account.name}"
                                        f" in zone {zone.name}")

    for kp in req.keypairs:
        if s.scalar(select(SshKeyPair.id).where(SshKeyPair.account_id == account.id, SshKeyPair.name == kp)) is None:
            raise InvalidParameterValue(f"A key pair with name '{kp}' was not found for account {account.name}")

    # Sizes.
    root_size = template.size or 0
    if req.root_disk_size_gb is not None:
        if req.root_disk_size_gb <= 0:
            raise InvalidParameterValue("rootdisksize must be a positive number of GB")
        root_size = req.root_disk_size_gb * GIB
    elif offering.root_disk_size:
        root_size = offering.root_disk_size
    if root_size <= 0:
        root_size = 2 * GIB  # templates of unknown size: CloudStack's simulator answers 2 GB too
    data_size = 0
    if req.disk_offering is not None:
        do = req.disk_offering
        if do.removed is not None or do.state != "Active":
            raise InvalidParameterValue(f"Disk offering {do.name} is not active")
        if do.customized:
            if not req.size_gb or req.size_gb <= 0:
                raise InvalidParameterValue(f"Disk offering {do.name} is custom: pass size (GB)")
            data_size = req.size_gb * GIB
        else:
            data_size = do.disk_size
    if from_iso:  # the disk offering is the root disk's: a blank disk the ISO installs on
        root_size, data_size = data_size, 0
    volumes = 1 + (1 if req.disk_offering is not None and not from_iso else 0)
    Limits(s).consume(account, [
        (ResourceType.user_vm, 1), (ResourceType.cpu, cpu), (ResourceType.memory, memory),
        (ResourceType.volume, volumes), (ResourceType.primary_storage, root_size + data_size),
    ])  # fmt: skip

    # Networks: the named ones, else the account's default in this zone.
    nets = NetworkService(s)
    requests = list(req.networks)
    if not requests:
        requests = [NetworkRequest(nets.default_network(account, zone), req.ip_address)]
    elif req.ip_address and requests[0].ip is None:
        requests[0].ip = req.ip_address
    for nr in requests:
        if nr.network.zone_id != zone.id:
            raise InvalidParameterValue(f"Network {nr.network.name} is not in zone {zone.name}")

    vm = VirtualMachine(
        name=name or "", display_name=req.display_name or name, instance_name="", state="Stopped",
        account_id=account.id, domain_id=account.domain_id, user_id=me.user_id if me else 1,
        zone_id=zone.id, template_id=template.id, guest_os_id=template.guest_os_id,
        service_offering_id=offering.id, hypervisor_type=hypervisor, cpu=cpu, speed=speed, memory=memory,
        ha_enabled=offering.ha_enabled, display_vm=req.display_vm,
        dynamically_scalable=req.dynamically_scalable if req.dynamically_scalable is not None
        else template.dynamically_scalable and offering.dynamic_scaling_enabled,
        user_data=req.user_data, userdata_id=req.userdata_id, userdata_details=req.userdata_details,
        keypairs=",".join(req.keypairs) or None, details=json.dumps(req.details) if req.details else None,
        boot_type=(req.boot_type or "BIOS").upper(), boot_mode=(req.boot_mode or "LEGACY").upper(),
        iso_id=template.id if template.format == "ISO" else None,
    )  # fmt: skip
    s.add(vm)
    s.flush()
    if not vm.name:
        vm.name = f"VM-{vm.uuid}"
        vm.display_name = vm.display_name or vm.name
    vm.instance_name = f"i-{account.id}-{vm.id}-{ctx.setting('instance.name')}"
    if template.password_enabled:
        vm.password = req.password or new_password()

    disk_offering_of_root = req.disk_offering if from_iso else s.get(DiskOffering, offering.disk_offering_id)
    s.add(Volume(name=f"ROOT-{vm.id}", account_id=account.id, domain_id=account.domain_id, zone_id=zone.id,
                 vm_id=vm.id, device_id=0, volume_type="ROOT", state="Allocated", size=root_size,
                 disk_offering_id=disk_offering_of_root.id if disk_offering_of_root else None,
                 template_id=template.id if template.format != "ISO" else None,
                 format=template.format if template.format != "ISO" else "QCOW2"))
    if req.disk_offering is not None and not from_iso:
        s.add(Volume(name=f"DATA-{vm.id}", account_id=account.id, domain_id=account.domain_id, zone_id=zone.id,
                     vm_id=vm.id, device_id=1, volume_type="DATADISK", state="Allocated", size=data_size,
                     disk_offering_id=req.disk_offering.id, format="QCOW2"))
    for device, nr in enumerate(requests):
        nets.add_nic(nr.network, vm_id=vm.id, device_id=device, is_default=device == 0, requested_ip=nr.ip)

    uses_sg = zone.network_type == "Basic" or zone.security_group_enabled
    groups = list(req.security_groups)
    if req.security_groups and not uses_sg:
        raise InvalidParameterValue("Security groups can only be used in zones with security groups enabled")
    if uses_sg and not groups:
        groups = [default_security_group(ctx, account)]
    for sg in groups:
        s.add(SecurityGroupVm(security_group_id=sg.id, vm_id=vm.id))
    for ag in req.affinity_groups:
        if ag.account_id != account.id:
            raise InvalidParameterValue(f"Affinity group {ag.name} does not belong to account {account.name}")
        s.add(AffinityGroupVm(group_id=ag.id, vm_id=vm.id))
    if req.group:
        add_to_group(ctx, vm, req.group)
    ctx.event("VM.CREATE", f"Deploying Vm. Vm Id: {vm.uuid}", account_id=account.id, domain_id=account.domain_id,
              resource_type="VirtualMachine", resource_uuid=vm.uuid)
    s.flush()
    return vm


def default_security_group(ctx: EngineContext, account: Account) -> SecurityGroup:
    from overcast.engine.securitygroups import default_security_group as default_group

    return default_group(ctx, account)


def add_to_group(ctx: EngineContext, vm: VirtualMachine, name: str) -> InstanceGroup:
    s = ctx.session
    group = s.scalar(select(InstanceGroup).where(InstanceGroup.account_id == vm.account_id,
                                                 InstanceGroup.name == name, InstanceGroup.removed.is_(None)))
    if group is None:
        group = InstanceGroup(name=name, account_id=vm.account_id, domain_id=vm.domain_id)
        s.add(group)
        s.flush()
    existing = s.scalar(select(InstanceGroupVm).where(InstanceGroupVm.vm_id == vm.id))
    if existing is None:
        s.add(InstanceGroupVm(group_id=group.id, vm_id=vm.id))
    else:
        existing.group_id = group.id
    s.flush()
    return group


__all__ = ["DeployRequest", "add_to_group", "allocate", "default_security_group", "template_usable"]
