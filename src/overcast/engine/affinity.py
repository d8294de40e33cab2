"""Affinity groups (host affinity / anti-affinity, honoured by the planner) and instance groups."""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from overcast.db.models import (
    Account,
    AffinityGroup,
    AffinityGroupVm,
    InstanceGroup,
    InstanceGroupVm,
    VirtualMachine,
    utcnow,
)
from overcast.engine.context import EngineContext
from overcast.errors import InvalidParameterValue, PermissionDenied

#: The affinity group types (CloudStack's processors users may use; the planner implements both).
AFFINITY_TYPES = ("host anti-affinity", "host affinity")


# -- affinity groups ------------------------------------------------------------------------------


def create_affinity_group(ctx: EngineContext, owner: Account, name: str | None, group_type: str | None,
                          description: str | None, *, event: bool = True) -> AffinityGroup:
    """A new group of ``owner``. ``event=False``: the caller records AG.CREATE (:func:`affinity_group_created`)."""
    s = ctx.session
    if group_type not in AFFINITY_TYPES:
        raise InvalidParameterValue(f"Unable to create affinity group, invalid affinity group type: {group_type}."
                                    f" Valid values are {','.join(AFFINITY_TYPES)}")
    if name is None or not name.strip():
        raise InvalidParameterValue("Unable to create affinity group, the name can't be empty (parameter name)")
    taken = f"Unable to create affinity group, a group with name {name} already exists."
    if s.scalar(select(AffinityGroup.id).where(AffinityGroup.account_id == owner.id,
                                               func.lower(AffinityGroup.name) == name.lower())) is not None:
        raise InvalidParameterValue(taken)
    group = AffinityGroup(name=name, group_type=group_type, description=description, account_id=owner.id,
                          domain_id=owner.domain_id, acl_type="Account")
    try:
        with s.begin_nested():
            s.add(group)
            s.flush()
    except IntegrityError:  # a concurrent request took the name first
        raise InvalidParameterValue(taken) from None
    if event:
        affinity_group_created(ctx, group)
    return group


def affinity_group_created(ctx: EngineContext, group: AffinityGroup) -> None:
    ctx.event("AG.CREATE", f"Creating affinity group {group.name}", account_id=group.account_id,
              domain_id=group.domain_id, resource_type="AffinityGroup", resource_uuid=group.uuid)


def delete_affinity_group(ctx: EngineContext, group: AffinityGroup) -> None:
    """Delete the group; its VMs leave it (as CloudStack does), wherever they run."""
    s = ctx.session
    s.execute(delete(AffinityGroupVm).where(AffinityGroupVm.group_id == group.id)
              .execution_options(synchronize_session=False))
    ctx.event("AG.DELETE", f"Deleting affinity group {group.name}", account_id=group.account_id,
              domain_id=group.domain_id, resource_type="AffinityGroup", resource_uuid=group.uuid)
    s.delete(group)
    s.flush()


def set_vm_affinity_groups(ctx: EngineContext, vm: VirtualMachine, groups: list[AffinityGroup]) -> VirtualMachine:
    """updateVMAffinityGroup: the stopped VM is in exactly ``groups`` (all of its owner)."""
    s = ctx.session
    if vm.state != "Stopped":
        raise InvalidParameterValue(
            f"Unable update affinity groups of the virtual machine {vm.display_name or vm.name} in state {vm.state};"
            " make sure the virtual machine is stopped and not in an error state before updating.",
            uuids=[(vm.uuid, "virtualMachineId")])
    for group in groups:
        if group.account_id != vm.account_id:
            raise PermissionDenied(f"Affinity Group {group.name} does not belong to the VM's account",
                                   uuids=[(group.uuid, "affinityGroupId")])
    wanted = {g.id for g in groups}
    current = set(s.scalars(select(AffinityGroupVm.group_id).where(AffinityGroupVm.vm_id == vm.id)))
    if current - wanted:
        s.execute(delete(AffinityGroupVm).where(AffinityGroupVm.vm_id == vm.id,
                                                AffinityGroupVm.group_id.in_(current - wanted))
                  .execution_options(synchronize_session=False))
    for group_id in sorted(wanted - current):
        s.add(AffinityGroupVm(group_id=group_id, vm_id=vm.id))
    ctx.event("VM.AG.UPDATE", f"Updating affinity groups of Vm. Vm Id: {vm.uuid}", account_id=vm.account_id,
              domain_id=vm.domain_id, resource_type="VirtualMachine", resource_uuid=vm.uuid)
    s.flush()
    return vm


def affinity_group_by_name(ctx: EngineContext, owner: Account, name: str) -> AffinityGroup:
    group = ctx.session.scalar(select(AffinityGroup).where(AffinityGroup.account_id == owner.id,
                                                           AffinityGroup.name == name))
    if group is None:
        raise InvalidParameterValue(f"Unable to find affinity group by name {name}")
    return group


# -- instance groups ------------------------------------------------------------------------------


def _group_name_taken(ctx: EngineContext, account_id: int, name: str, *, other_than: int | None = None) -> bool:
    stmt = select(InstanceGroup.id).where(InstanceGroup.account_id == account_id, InstanceGroup.removed.is_(None),
                                          func.lower(InstanceGroup.name) == name.lower())
    if other_than is not None:
        stmt = stmt.where(InstanceGroup.id != other_than)
    return ctx.session.scalar(stmt) is not None


def create_instance_group(ctx: EngineContext, owner: Account, name: str | None) -> InstanceGroup:
    if name is None or not name.strip():
        raise InvalidParameterValue("Unable to create vm group, the name can't be empty (parameter name)")
    if _group_name_taken(ctx, owner.id, name):
        raise InvalidParameterValue(f"Unable to create vm group, a group with name {name} already exists for"
                                    f" account {owner.name}")
    group = InstanceGroup(name=name, account_id=owner.id, domain_id=owner.domain_id)
    ctx.session.add(group)
    ctx.session.flush()
    ctx.event("VMGROUP.CREATE", f"Creating instance group {name}", account_id=owner.id, domain_id=owner.domain_id,
              resource_type="InstanceGroup", resource_uuid=group.uuid)
    return group


def rename_instance_group(ctx: EngineContext, group: InstanceGroup, name: str | None) -> InstanceGroup:
    if name is None:
        return group
    if not name.strip():
        raise InvalidParameterValue("Unable to update vm group, the name can't be empty (parameter name)")
    if _group_name_taken(ctx, group.account_id, name, other_than=group.id):
        raise InvalidParameterValue(f"Unable to update vm group, a group with name {name} already exists for"
                                    " account")
    group.name = name
    ctx.event("VMGROUP.UPDATE", f"Renaming instance group to {name}", account_id=group.account_id,
              domain_id=group.domain_id, resource_type="InstanceGroup", resource_uuid=group.uuid)
    ctx.session.flush()
    return group


def delete_instance_group(ctx: EngineContext, group: InstanceGroup) -> None:
    """Remove the group; its VMs stay, without a group."""
    s = ctx.session
    s.execute(delete(InstanceGroupVm).where(InstanceGroupVm.group_id == group.id)
              .execution_options(synchronize_session=False))
    group.removed = utcnow()
    ctx.event("VMGROUP.DELETE", f"Deleting instance group {group.name}", account_id=group.account_id,
              domain_id=group.domain_id, resource_type="InstanceGroup", resource_uuid=group.uuid)
    s.flush()


__all__ = ["AFFINITY_TYPES", "affinity_group_by_name", "affinity_group_created", "create_affinity_group", "create_instance_group",
           "delete_affinity_group", "delete_instance_group", "rename_instance_group", "set_vm_affinity_groups"]
