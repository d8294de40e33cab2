"""Resource limit commands: listResourceLimits, updateResourceLimit, updateResourceCount."""

from __future__ import annotations

from sqlalchemy import select

from overcast.access.roles import ADMINS, ALL_ROLES
from overcast.api.context import CallContext
from overcast.api.declare import (
    BOOLEAN, INTEGER, LONG, STRING, UUID, Access, Command, ListResult, ObjectResult, Param, Result, api_command,
)  # fmt: skip
from overcast.api.listing import page_bounds
from overcast.api.responses.limits import ResourceCountResponse, ResourceLimitResponse, count_payload, limit_payload
from overcast.db.models import Account, Domain
from overcast.engine import resource_limits as rl
from overcast.errors import InvalidParameterValue

TYPE_HELP = ("Type of resource. Values are 0, 1, 2, 3, 4, 6, 7, 8, 9, 10 and 11. 0 - Instance. Number of"
             " instances a user can create. 1 - IP. Number of public IP addresses an account can own. 2 - Volume."
             " Number of disk volumes an account can own. 3 - Snapshot. Number of snapshots an account can own."
             " 4 - Template. Number of templates an account can register/create. 5 - Project. Number of projects"
             " an account can own. 6 - Network. Number of networks an account can own. 7 - VPC. Number of VPC an"
             " account can own. 8 - CPU. Number of CPU an account can allocate for their resources. 9 - Memory."
             " Amount of RAM an account can allocate for their resources. 10 - PrimaryStorage. Total primary"
             " storage space (in GiB) a user can use. 11 - SecondaryStorage. Total secondary storage space (in"
             " GiB) a user can use.")


def _domains(ctx: CallContext, rows: list[rl.LimitRow] | list[rl.CountRow]) -> dict[int, Domain]:
    ids = {r.account.domain_id for r in rows if r.account is not None}
    return {d.id: d for d in ctx.session.scalars(select(Domain).where(Domain.id.in_(ids)))} if ids else {}


def _account_in(ctx: CallContext, name: str, domain: Domain | None) -> Account:
    if domain is None:
        raise InvalidParameterValue("Account must be specified with domainId parameter")
    account = ctx.session.scalar(select(Account).where(Account.name == name, Account.domain_id == domain.id,
                                                       Account.removed.is_(None)))
    if account is None:
        raise InvalidParameterValue(f"Unable to find account by name {name} in domain {domain.uuid}")
    return account


@api_command("listResourceLimits", response=ResourceLimitResponse, roles=ALL_ROLES, is_list=True,
             description="Lists resource limits.")
class ListResourceLimits(Command):
    id = Param(LONG, description="Lists resource limits by ID.")
    resource_type = Param(INTEGER, "resourcetype", description=TYPE_HELP)
    resource_type_name = Param(STRING, "resourcetypename", since="4.12", description="Type of resource (wins over"
                               " resourceType if both are provided). Values are: user_vm, public_ip, volume,"
                               " snapshot, template, project, network, vpc, cpu, memory, primary_storage,"
                               " secondary_storage")
    tag = Param(STRING, since="4.20.0", description="Tag for the resource type")
    account = Param(STRING, description="list resources by account. Must be used with the domainId parameter.")
    domain = Param(UUID, "domainid", entity=Domain, description="list only resources belonging to the domain"
                   " specified")
    is_recursive = Param(BOOLEAN, "isrecursive", description="defaults to false, but if true, lists all"
                         " resources from the parent specified by the domainId till leaves.")
    list_all = Param(BOOLEAN, "listall", description="If set to false, list only resources belonging to the"
                     " command's caller; if set to true - list resources that the caller is authorized to see."
                     " Default value is false")
    project = Param(UUID, "projectid", description="Lists resource limits by project")

    def execute(self, ctx: CallContext) -> Result:
        me, s = ctx.me, ctx.session
        rtype = rl.resource_type_of(self.resource_type, self.resource_type_name)
        rows: list[rl.LimitRow]
        if self.tag:
            rows = []  # Overcast has no tagged (host/storage tag) limits
        elif self.id is not None:
            rows = [r for r in rl.limit_by_id(ctx, me, self.id) if rtype is None or r.rtype == rtype]
        elif not me.is_admin:
            acct = s.get(Account, me.account_id)
            assert acct is not None
            rows = rl.account_limits(ctx, acct, rtype)
        elif self.account:
            acct = _account_in(ctx, self.account, self.domain or s.get(Domain, me.domain_id))
            ctx.acl.check_account(me, acct, Access.LIST)
            rows = rl.account_limits(ctx, acct, rtype)
        elif self.domain is not None:
            ctx.acl.check_domain(me, self.domain, Access.LIST)
            rows = rl.domain_limits(ctx, self.domain, rtype)
        else:
            acct = s.get(Account, me.account_id)
            assert acct is not None
            rows = rl.account_limits(ctx, acct, rtype)
        offset, limit = page_bounds(ctx, self.page, self.page_size)
        page = rows[offset:offset + limit if limit is not None else None]
        return ListResult(limit_payload(page, _domains(ctx, page)), len(rows))


@api_command("updateResourceLimit", response=ResourceLimitResponse, roles=ADMINS, event_type="RESOURCE.LIMIT.UPDATE",
             description="Updates resource limits for an account or domain.")
class UpdateResourceLimit(Command):
    resource_type = Param(INTEGER, "resourcetype", required=True, description=TYPE_HELP)
    max = Param(LONG, description="Maximum resource limit. -1 means no limit (the default); storage limits are in"
                " GiB")
    account = Param(STRING, description="Update resource for a specified account. Must be used with the domainId"
                    " parameter.")
    domain = Param(UUID, "domainid", entity=Domain, description="Update resource limits for all accounts in"
                   " specified domain. If used with the account parameter, updates resource limits for a specified"
                   " account in specified domain.")
    tag = Param(STRING, since="4.20.0", description="Tag for the resource type")

    def execute(self, ctx: CallContext) -> Result:
        rtype = rl.resource_type_of(self.resource_type, None)
        assert rtype is not None
        if self.tag:
            raise InvalidParameterValue(f"Resource limit with a tag is not supported for resource type"
                                        f" {int(rtype)}")
        account = _account_in(ctx, self.account, self.domain) if self.account else None
        row = rl.update_limit(ctx, ctx.me, rtype, self.max, account=account,
                              domain=None if account is not None else self.domain)
        return ObjectResult(limit_payload([row], _domains(ctx, [row]))[0])


@api_command("updateResourceCount", response=ResourceCountResponse, roles=ADMINS,
             description="Recalculate and update resource count for an account or domain. This also executes"
             " some cleanup tasks before calculating resource counts.")
class UpdateResourceCount(Command):
    domain = Param(UUID, "domainid", required=True, entity=Domain, description="If account parameter specified"
                   " then updates resource counts for a specified account in this domain else update resource"
                   " counts for all accounts & child domains in specified domain.")
    account = Param(STRING, description="Update resource count for a specified account. Must be used with the"
                    " domainId parameter.")
    resource_type = Param(INTEGER, "resourcetype", description="Type of resource to update. If specifies valid"
                          " values are 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 11. If not specified will update all"
                          " resource counts")
    tag = Param(STRING, since="4.20.0", description="Tag for the resource type")

    def execute(self, ctx: CallContext) -> Result:
        rtype = rl.resource_type_of(self.resource_type, None)
        if self.tag:
            raise InvalidParameterValue(f"Resource count with a tag is not supported for resource type"
                                        f" {int(rtype) if rtype is not None else ''}".rstrip())
        account = _account_in(ctx, self.account, self.domain) if self.account else None
        rows = rl.recount(ctx, ctx.me, self.domain, account, rtype)
        return ListResult(count_payload(rows, _domains(ctx, rows)), len(rows))


__all__ = ["ListResourceLimits", "UpdateResourceCount", "UpdateResourceLimit"]
