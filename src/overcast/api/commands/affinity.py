"""Affinity group commands (create, delete, list, types, a VM's groups) and instance group commands."""

from __future__ import annotations

from sqlalchemy import select

from overcast.access.acl import resolve_owner_filters, scope_owned
from overcast.access.roles import ALL_ROLES
from overcast.api.commands.vms import RELATED, VmCommand, owner_account, vm_result
from overcast.api.context import CallContext
from overcast.api.declare import (
    BOOLEAN, LIST, STRING, UUID, Access, Command, ListResult, ObjectResult, Param, Result, Success,
    SuccessResponse, api_command,
)  # fmt: skip
from overcast.api.listing import fetch_page, keyword_filter, page_bounds
from overcast.api.responses.affinity import (
    AffinityGroupResponse,
    AffinityGroupTypeResponse,
    InstanceGroupResponse,
    affinity_group_payload,
    instance_group_payload,
)
from overcast.api.responses.vms import UserVmResponse
from overcast.db.models import Account, AffinityGroup, AffinityGroupVm, Domain, InstanceGroup, VirtualMachine
from overcast.engine import affinity
from overcast.errors import InvalidParameterValue

AG_RELATED = ("createAffinityGroup", "listAffinityGroups", "deleteAffinityGroup")
IG_RELATED = ("createInstanceGroup", "listInstanceGroups", "updateInstanceGroup", "deleteInstanceGroup")


def _list_owner_params() -> tuple[Param, Param, Param, Param, Param]:
    """account, domainid, isrecursive, listall, projectid of a list of tenant resources."""
    return (
        Param(STRING, description="list resources by account. Must be used with the domainId parameter."),
        Param(UUID, "domainid", entity=Domain, description="list only resources belonging to the domain specified"),
        Param(BOOLEAN, "isrecursive", description="defaults to false, but if true, lists all resources from the"
              " parent specified by the domainId till leaves."),
        Param(BOOLEAN, "listall", description="If set to false, list only resources belonging to the command's"
              " caller; if set to true - list resources that the caller is authorized to see. Default value is"
              " false"),
        Param(UUID, "projectid", description="list objects by project; if projectid=-1 lists All VMs"),
    )


# -- affinity groups ------------------------------------------------------------------------------


@api_command("createAffinityGroup", response=AffinityGroupResponse, roles=ALL_ROLES, is_async=True,
             creates_entity=True, idempotent=True, event_type="AG.CREATE",
             description="Creates an affinity/anti-affinity group")
class CreateAffinityGroup(Command):
    name = Param(STRING, required=True, description="name of the affinity group")
    type = Param(STRING, required=True, description="Type of the affinity group from the available affinity/anti-"
                 "affinity group types: host anti-affinity, host affinity (see listAffinityGroupTypes)")
    description = Param(STRING, length=4096, description="optional description of the affinity group")
    account = Param(STRING, description="an account for the affinity group. Must be used with domainId.")
    domain = Param(UUID, "domainid", entity=Domain, acl=Access.LIST, description="domainId of the account owning"
                   " the affinity group")

    def prepare(self, ctx: CallContext) -> str | None:
        owner = owner_account(ctx, self.account, self.domain)
        group = affinity.create_affinity_group(ctx, owner, self.name, self.type, self.description, event=False)
        self.raw_group_uuid = group.uuid
        return group.uuid

    def instance(self) -> tuple[str | None, str | None]:
        return "AffinityGroup", getattr(self, "raw_group_uuid", None)

    def execute(self, ctx: CallContext) -> Result:
        assert ctx.job is not None
        group = ctx.created(AffinityGroup, "affinity group")
        affinity.affinity_group_created(ctx, group)
        return ObjectResult(affinity_group_payload(ctx.session, [group])[0])


@api_command("deleteAffinityGroup", response=SuccessResponse, roles=ALL_ROLES, is_async=True, idempotent=True,
             event_type="AG.DELETE", description="Deletes affinity group")
class DeleteAffinityGroup(Command):
    id = Param(UUID, entity=AffinityGroup, acl=Access.OPERATE, related=AG_RELATED,
               description="The ID of the affinity group. Mutually exclusive with name parameter")
    name = Param(STRING, description="The name of the affinity group. Mutually exclusive with ID parameter")
    account = Param(STRING, description="the account of the affinity group. Must be specified with domain ID")
    domain = Param(UUID, "domainid", entity=Domain, acl=Access.LIST, description="the domain ID of account owning"
                   " the affinity group")

    def instance(self) -> tuple[str | None, str | None]:
        return "AffinityGroup", self.id.uuid if self.id is not None else None

    def execute(self, ctx: CallContext) -> Result:
        if self.id is not None and self.name:
            raise InvalidParameterValue("Either the affinity group Id or group name can be passed, not both")
        if self.id is not None:
            group = self.id
        elif self.name:
            owner = owner_account(ctx, self.account, self.domain)
            group = ctx.session.scalar(select(AffinityGroup).where(AffinityGroup.account_id == owner.id,
                                                                   AffinityGroup.name == self.name))
            if group is None:
                raise InvalidParameterValue(f"Unable to find affinity group {self.name}")
            ctx.acl.check(ctx.me, group, Access.OPERATE)
        else:
            raise InvalidParameterValue("Either the affinity group Id or group name must be specified to delete the"
                                        " group")
        affinity.delete_affinity_group(ctx, group)
        return Success()


@api_command("listAffinityGroups", response=AffinityGroupResponse, roles=ALL_ROLES, is_list=True,
             description="Lists affinity groups")
class ListAffinityGroups(Command):
    id = Param(UUID, related=AG_RELATED, description="list the affinity group by the ID provided")
    name = Param(STRING, description="lists affinity groups by name")
    type = Param(STRING, description="lists affinity groups by type")
    vm = Param(UUID, "virtualmachineid", entity=VirtualMachine, acl=Access.LIST, related=RELATED,
               description="lists affinity groups by virtual machine ID")
    account, domain, is_recursive, list_all, project = _list_owner_params()

    def execute(self, ctx: CallContext) -> Result:
        me = ctx.me
        domain, account = resolve_owner_filters(ctx.acl, me, domain=self.domain, account_name=self.account)
        list_all = bool(self.list_all) or self.project == -1
        if self.vm is not None and account is None and domain is None:
            list_all = True  # the VM's groups, whoever of the caller's reach owns them
        stmt = scope_owned(select(AffinityGroup).order_by(AffinityGroup.id), me,
                           account_col=AffinityGroup.account_id, domain_col=AffinityGroup.domain_id,
                           list_all=list_all, is_recursive=bool(self.is_recursive), domain=domain, account=account)
        if self.id:
            stmt = stmt.where(AffinityGroup.uuid == self.id)
        if self.name is not None:
            stmt = stmt.where(AffinityGroup.name == self.name)
        if self.type is not None:
            stmt = stmt.where(AffinityGroup.group_type == self.type)
        if self.vm is not None:
            stmt = stmt.where(AffinityGroup.id.in_(select(AffinityGroupVm.group_id).where(
                AffinityGroupVm.vm_id == self.vm.id)))
        kw = keyword_filter(self.keyword, AffinityGroup.name, AffinityGroup.description)
        if kw is not None:
            stmt = stmt.where(kw)
        rows, count = fetch_page(ctx, stmt, self)
        return ListResult(affinity_group_payload(ctx.session, rows), count)


@api_command("listAffinityGroupTypes", response=AffinityGroupTypeResponse, roles=ALL_ROLES, is_list=True,
             description="Lists affinity group types available")
class ListAffinityGroupTypes(Command):
    def execute(self, ctx: CallContext) -> Result:
        types = [t for t in affinity.AFFINITY_TYPES if not self.keyword or self.keyword.lower() in t]
        offset, limit = page_bounds(ctx, self.page, self.page_size)
        page = types[offset:offset + limit if limit is not None else None]
        return ListResult([{"type": t} for t in page], len(types))


@api_command("updateVMAffinityGroup", response=UserVmResponse, roles=ALL_ROLES, is_async=True, idempotent=True,
             event_type="VM.AG.UPDATE", description="Updates the affinity/anti-affinity group associations of a"
             " virtual machine. The VM has to be stopped and restarted for the new properties to take effect.")
class UpdateVMAffinityGroup(VmCommand):
    id = Param(UUID, required=True, entity=VirtualMachine, acl=Access.OPERATE, related=RELATED,
               description="The ID of the virtual machine")
    group_ids = Param(LIST, "affinitygroupids", item_type=UUID, entity=AffinityGroup, acl=Access.USE,
                      description="comma separated list of affinity groups id that are going to be applied to the"
                      " virtual machine. Should be passed only when vm is created from a zone with Basic Network"
                      " support. Mutually exclusive with securitygroupnames parameter. Without it and without"
                      " affinitygroupnames, the VM leaves all its groups")
    group_names = Param(LIST, "affinitygroupnames", description="comma separated list of affinity groups names"
                        " that are going to be applied to the virtual machine. Mutually exclusive with"
                        " affinitygroupids parameter")

    def execute(self, ctx: CallContext) -> Result:
        vm = self.id
        if self.group_ids is not None and self.group_names is not None:
            raise InvalidParameterValue("affinitygroupids parameter is mutually exclusive with affinitygroupnames"
                                        " parameter")
        groups = list(self.group_ids or [])
        if self.group_names is not None:
            owner = ctx.session.get(Account, vm.account_id)
            assert owner is not None
            groups = [affinity.affinity_group_by_name(ctx, owner, n) for n in self.group_names]
        affinity.set_vm_affinity_groups(ctx, vm, groups)
        return vm_result(ctx, vm)


# -- instance groups ------------------------------------------------------------------------------


@api_command("createInstanceGroup", response=InstanceGroupResponse, roles=ALL_ROLES, event_type="VMGROUP.CREATE",
             description="Creates a vm group")
class CreateInstanceGroup(Command):
    name = Param(STRING, required=True, description="the name of the instance group")
    account = Param(STRING, description="the account of the instance group. The account parameter must be used"
                    " with the domainId parameter.")
    domain = Param(UUID, "domainid", entity=Domain, acl=Access.LIST, description="the domain ID of account owning"
                   " the instance group")

    def execute(self, ctx: CallContext) -> Result:
        owner = owner_account(ctx, self.account, self.domain)
        group = affinity.create_instance_group(ctx, owner, self.name)
        return ObjectResult(instance_group_payload(ctx.session, [group])[0])


@api_command("updateInstanceGroup", response=InstanceGroupResponse, roles=ALL_ROLES, event_type="VMGROUP.UPDATE",
             description="Updates a vm group")
class UpdateInstanceGroup(Command):
    id = Param(UUID, required=True, entity=InstanceGroup, acl=Access.OPERATE, related=IG_RELATED,
               description="Instance group ID")
    name = Param(STRING, description="new instance group name")

    def execute(self, ctx: CallContext) -> Result:
        group = affinity.rename_instance_group(ctx, self.id, self.name)
        return ObjectResult(instance_group_payload(ctx.session, [group])[0])


@api_command("deleteInstanceGroup", response=SuccessResponse, roles=ALL_ROLES, event_type="VMGROUP.DELETE",
             description="Deletes a vm group")
class DeleteInstanceGroup(Command):
    id = Param(UUID, required=True, entity=InstanceGroup, acl=Access.OPERATE, related=IG_RELATED,
               description="the ID of the instance group")

    def execute(self, ctx: CallContext) -> Result:
        affinity.delete_instance_group(ctx, self.id)
        return Success()


@api_command("listInstanceGroups", response=InstanceGroupResponse, roles=ALL_ROLES, is_list=True,
             description="Lists vm groups")
class ListInstanceGroups(Command):
    id = Param(UUID, related=IG_RELATED, description="list instance groups by ID")
    name = Param(STRING, description="list instance groups by name")
    account, domain, is_recursive, list_all, project = _list_owner_params()

    def execute(self, ctx: CallContext) -> Result:
        me = ctx.me
        domain, account = resolve_owner_filters(ctx.acl, me, domain=self.domain, account_name=self.account)
        stmt = scope_owned(select(InstanceGroup).where(InstanceGroup.removed.is_(None)).order_by(InstanceGroup.id),
                           me, account_col=InstanceGroup.account_id, domain_col=InstanceGroup.domain_id,
                           list_all=bool(self.list_all) or self.project == -1,
                           is_recursive=bool(self.is_recursive), domain=domain, account=account)
        if self.id:
            stmt = stmt.where(InstanceGroup.uuid == self.id)
        if self.name is not None:
            stmt = stmt.where(InstanceGroup.name == self.name)
        kw = keyword_filter(self.keyword, InstanceGroup.name)
        if kw is not None:
            stmt = stmt.where(kw)
        rows, count = fetch_page(ctx, stmt, self)
        return ListResult(instance_group_payload(ctx.session, rows), count)


__all__ = ["CreateAffinityGroup", "CreateInstanceGroup", "DeleteAffinityGroup", "DeleteInstanceGroup",
           "ListAffinityGroupTypes", "ListAffinityGroups", "ListInstanceGroups", "UpdateInstanceGroup",
           "UpdateVMAffinityGroup"]
