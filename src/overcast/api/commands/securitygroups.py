"""Security group commands: create, list, delete, and authorize or revoke ingress and egress rules."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import object_session

from overcast.access.acl import resolve_owner_filters, scope_owned
from overcast.access.roles import ALL_ROLES
from overcast.api.commands.vms import owner_account
from overcast.api.context import CallContext
from overcast.api.declare import (
    Command, BOOLEAN, INTEGER, LIST, MAP, STRING, UUID, Access, ListResult, ObjectResult, Param, Result, Success,
    SuccessResponse, api_command,
)  # fmt: skip
from overcast.api.listing import fetch_page, keyword_filter
from overcast.api.responses.securitygroups import SecurityGroupResponse, security_group_payload
from overcast.db.models import Domain, SecurityGroup, SecurityGroupRule, SecurityGroupVm, VirtualMachine
from overcast.engine import securitygroups as engine
from overcast.engine.tags import tag_filter
from overcast.errors import InvalidParameterValue

SG_RELATED = ("createSecurityGroup", "listSecurityGroups", "deleteSecurityGroup", "authorizeSecurityGroupIngress",
              "authorizeSecurityGroupEgress")


def group_by_name(ctx: CallContext, name: str, account: str | None, domain: Domain | None, param: str) -> SecurityGroup:
    """A group of the caller's account (or, for admins, of ``account`` in ``domain``) by name. The
    ``default`` group is made on first use, as deploys do."""
    owner = owner_account(ctx, account, domain)
    ctx.acl.check_owned(ctx.me, owner.id, Access.OPERATE)
    if name == engine.DEFAULT_GROUP:
        return engine.default_security_group(ctx, owner)
    sg = engine.find_group(ctx.session, owner, name)
    if sg is None:
        raise InvalidParameterValue(f"Unable to find security group {name} of account {owner.name} (parameter"
                                    f" {param})")
    return sg


@api_command("createSecurityGroup", response=SecurityGroupResponse, roles=ALL_ROLES, event_type="SG.CREATE",
             description="Creates a security group")
class CreateSecurityGroup(Command):
    name = Param(STRING, required=True, description="name of the security group")
    description = Param(STRING, length=4096, description="the description of the security group")
    account = Param(STRING, description="an optional account for the security group. Must be used with domainId.")
    domain = Param(UUID, "domainid", entity=Domain, acl=Access.LIST, description="an optional domainId for the"
                   " security group. If the account parameter is used, domainId must also be used.")

    def execute(self, ctx: CallContext) -> Result:
        owner = owner_account(ctx, self.account, self.domain)
        ctx.acl.check_owned(ctx.me, owner.id, Access.OPERATE)
        sg = engine.create_security_group(ctx, owner, self.name, self.description)
        return ObjectResult(security_group_payload(ctx.session, [sg])[0])


@api_command("deleteSecurityGroup", response=SuccessResponse, roles=ALL_ROLES, event_type="SG.DELETE",
             description="Deletes security group")
class DeleteSecurityGroup(Command):
    id = Param(UUID, entity=SecurityGroup, acl=Access.OPERATE, related=SG_RELATED, description="The ID of the"
               " security group. Mutually exclusive with name parameter")
    name = Param(STRING, description="The ID of the security group. Mutually exclusive with id parameter")
    account = Param(STRING, description="the account of the security group. Must be specified with domain ID")
    domain = Param(UUID, "domainid", entity=Domain, acl=Access.LIST, description="the domain ID of account owning"
                   " the security group")

    def execute(self, ctx: CallContext) -> Result:
        if self.id is None and not self.name:
            raise InvalidParameterValue("Either id or name parameter is required by deleteSecurityGroup command")
        if self.id is not None and self.name:
            raise InvalidParameterValue("name parameter is mutually exclusive with id parameter")
        if self.id is not None:
            sg = self.id
        else:
            owner = owner_account(ctx, self.account, self.domain)
            ctx.acl.check_owned(ctx.me, owner.id, Access.OPERATE)
            found = engine.find_group(ctx.session, owner, self.name)
            if found is None:
                raise InvalidParameterValue(f"Unable to find security group {self.name} of account {owner.name}"
                                            " (parameter name)")
            sg = found
        engine.delete_security_group(ctx, sg)
        return Success()


@api_command("listSecurityGroups", response=SecurityGroupResponse, roles=ALL_ROLES, is_list=True,
             description="Lists security groups")
class ListSecurityGroups(Command):
    id = Param(UUID, description="list the security group by the id provided")
    name = Param(STRING, "securitygroupname", description="lists security groups by name")
    vm = Param(UUID, "virtualmachineid", entity=VirtualMachine, acl=Access.LIST, description="lists security groups"
               " by virtual machine id")
    tags = Param(MAP, description="List resources by tags (key/value pairs)")
    account = Param(STRING, description="list resources by account. Must be used with the domainId parameter.")
    domain = Param(UUID, "domainid", entity=Domain, description="list only resources belonging to the domain"
                   " specified")
    is_recursive = Param(BOOLEAN, "isrecursive", description="defaults to false, but if true, lists all resources"
                         " from the parent specified by the domainId till leaves.")
    list_all = Param(BOOLEAN, "listall", description="If set to false, list only resources belonging to the"
                     " command's caller; if set to true - list resources that the caller is authorized to see."
                     " Default value is false")

    def execute(self, ctx: CallContext) -> Result:
        me, s = ctx.me, ctx.session
        domain, account = resolve_owner_filters(ctx.acl, me, domain=self.domain, account_name=self.account)
        stmt = scope_owned(select(SecurityGroup).order_by(SecurityGroup.id), me, account_col=SecurityGroup.account_id,
                           domain_col=SecurityGroup.domain_id, list_all=bool(self.list_all) or self.vm is not None,
                           is_recursive=bool(self.is_recursive), domain=domain, account=account)
        if self.id:
            stmt = stmt.where(SecurityGroup.uuid == self.id)
        if self.name:
            stmt = stmt.where(SecurityGroup.name == self.name)
        if self.vm is not None:
            stmt = stmt.where(SecurityGroup.id.in_(select(SecurityGroupVm.security_group_id).where(
                SecurityGroupVm.vm_id == self.vm.id)))
        stmt = stmt.where(*tag_filter("SecurityGroup", SecurityGroup.id, self.tags))
        kw = keyword_filter(self.keyword, SecurityGroup.name, SecurityGroup.description)
        if kw is not None:
            stmt = stmt.where(kw)
        rows, count = fetch_page(ctx, stmt, self)
        return ListResult(security_group_payload(s, rows), count)


class AuthorizeRule(Command):
    """authorizeSecurityGroupIngress / Egress: the group by id or by name (of the caller's account, or of
    ``account`` in ``domainid``); one rule per CIDR and per allowed group."""

    rule_type = engine.INGRESS
    group = Param(UUID, "securitygroupid", entity=SecurityGroup, acl=Access.OPERATE, related=SG_RELATED,
                  description="The ID of the security group. Mutually exclusive with securityGroupName parameter")
    group_name = Param(STRING, "securitygroupname", description="The name of the security group. Mutually exclusive"
                       " with securityGroupId parameter")
    protocol = Param(STRING, description="TCP is default. UDP is the other supported protocol")
    start_port = Param(INTEGER, "startport", description="start port for this ingress rule")
    end_port = Param(INTEGER, "endport", description="end port for this ingress rule")
    icmp_type = Param(INTEGER, "icmptype", description="type of the icmp message being sent")
    icmp_code = Param(INTEGER, "icmpcode", description="error code for this icmp message")
    cidrs = Param(LIST, "cidrlist", description="the cidr list associated. Multiple entries must be separated by a"
                  " single comma character (,).")
    user_groups = Param(MAP, "usersecuritygrouplist", description="user to security group mapping")
    account = Param(STRING, description="an optional account for the security group. Must be used with domainId.")
    domain = Param(UUID, "domainid", entity=Domain, acl=Access.LIST, description="an optional domainId for the"
                   " security group. If the account parameter is used, domainId must also be used.")

    def instance(self) -> tuple[str | None, str | None]:
        return "SecurityGroup", self.group.uuid if self.group is not None else None

    def execute(self, ctx: CallContext) -> Result:
        if self.group is None and not self.group_name:
            raise InvalidParameterValue(f"Either securitygroupid or securitygroupname is required by {self.name}"
                                        " command")
        if self.group is not None and self.group_name:
            raise InvalidParameterValue("securitygroupid and securitygroupname parameters are mutually exclusive")
        sg = self.group or group_by_name(ctx, self.group_name, self.account, self.domain, "securitygroupname")
        rules = engine.authorize(ctx, sg, self.rule_type, protocol=self.protocol, start_port=self.start_port,
                                 end_port=self.end_port, icmp_type=self.icmp_type, icmp_code=self.icmp_code,
                                 cidrs=self.cidrs, user_groups=self.user_groups)
        return ObjectResult(security_group_payload(ctx.session, [sg], only_rules=rules)[0])


@api_command("authorizeSecurityGroupIngress", response=SecurityGroupResponse, roles=ALL_ROLES, is_async=True,
             event_type="SG.AUTH.INGRESS", description="Authorizes a particular ingress rule for this security group")
class AuthorizeSecurityGroupIngress(AuthorizeRule):
    rule_type = engine.INGRESS


@api_command("authorizeSecurityGroupEgress", response=SecurityGroupResponse, roles=ALL_ROLES, is_async=True,
             event_type="SG.AUTH.EGRESS", since="3.0.0", description="Authorizes a particular egress rule for this"
             " security group")
class AuthorizeSecurityGroupEgress(AuthorizeRule):
    rule_type = engine.EGRESS


class RevokeRule(Command):
    rule_type = engine.INGRESS
    id = Param(UUID, required=True, entity=SecurityGroupRule, acl=Access.OPERATE, description="The ID of the rule")

    def instance(self) -> tuple[str | None, str | None]:
        s = object_session(self.id)
        uuid = s.scalar(select(SecurityGroup.uuid).where(SecurityGroup.id == self.id.security_group_id)) if s else None
        return "SecurityGroup", uuid

    def execute(self, ctx: CallContext) -> Result:
        engine.revoke(ctx, self.id, self.rule_type)
        return Success()


@api_command("revokeSecurityGroupIngress", response=SuccessResponse, roles=ALL_ROLES, is_async=True,
             event_type="SG.REVOKE.INGRESS", description="Deletes a particular ingress rule from this security group")
class RevokeSecurityGroupIngress(RevokeRule):
    rule_type = engine.INGRESS


@api_command("revokeSecurityGroupEgress", response=SuccessResponse, roles=ALL_ROLES, is_async=True,
             event_type="SG.REVOKE.EGRESS", since="3.0.0", description="Deletes a particular egress rule from this"
             " security group")
class RevokeSecurityGroupEgress(RevokeRule):
    rule_type = engine.EGRESS


__all__ = ["AuthorizeSecurityGroupEgress", "AuthorizeSecurityGroupIngress", "CreateSecurityGroup",
           "DeleteSecurityGroup", "ListSecurityGroups", "RevokeSecurityGroupEgress", "RevokeSecurityGroupIngress"]
