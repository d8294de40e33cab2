"""Listing and changing resource limits, and recounting what accounts and domains use from the real
rows (updateResourceCount). Enforcement itself is :mod:`overcast.engine.limits` (atomic UPDATEs).

A recount locks the count row first (``SELECT ... FOR UPDATE``) and only then counts, in a new
statement: a deploy that bumped the count before holds the row until it commits, so its VM is seen;
one that comes after waits for the recount and adds to the new value. Nothing is lost either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, literal, select, update

from overcast.access.acl import AccessChecker
from overcast.access.caller import Caller
from overcast.api.declare import Access
from overcast.db.models import (
    Account,
    Domain,
    Network,
    PublicIp,
    ResourceCount,
    ResourceLimit,
    Snapshot,
    Template,
    VirtualMachine,
    Volume,
    resource_owner_key,
)
from overcast.engine.context import EngineContext
from overcast.engine.limits import Limits, ResourceType
from overcast.errors import InvalidParameterValue, PermissionDenied

#: VM states whose VMs hold no user_vm/cpu/memory counts (released on destroy or failed deploy).
_VM_RELEASED = ("Destroyed", "Expunging", "Error")
#: Volume states of volumes that gave their counts back (unless a VM still holds them: the ROOT volume
#: of a destroyed VM keeps its counts until the VM is expunged).
_VOLUME_RELEASED = ("Destroy", "Expunging", "Expunged")
SYSTEM_ACCOUNT_ID = 1


@dataclass
class LimitRow:
    """One line of listResourceLimits: a stored limit or the default that applies."""

    rtype: ResourceType
    max: int
    account: Account | None = None
    domain: Domain | None = None
    id: int | None = None


def resource_type_of(number: int | None, name: str | None) -> ResourceType | None:
    """The type named by ``resourcetype`` (ordinal) or ``resourcetypename``; 431 for unknown ones."""
    rtype = None
    if number is not None:
        try:
            rtype = ResourceType(number)
        except ValueError:
            raise InvalidParameterValue(f"Invalid resource type {number} given.  Please specify a valid resource"
                                        " type. (parameter resourcetype)") from None
    if name is not None:
        by_name = next((rt for rt in ResourceType if rt.name == name.strip().lower()), None)
        if by_name is None:
            raise InvalidParameterValue(f"Invalid resource type name {name} given. Please specify a valid resource"
                                        f" type name: {', '.join(rt.name for rt in ResourceType)} (parameter"
                                        " resourcetypename)")
        if rtype is not None and rtype != by_name:
            raise InvalidParameterValue("resourcetype and resourcetypename name different resource types")
        rtype = by_name
    return rtype


# -- listing --------------------------------------------------------------------------------------


def account_limits(ctx: EngineContext, account: Account, rtype: ResourceType | None) -> list[LimitRow]:
    limits = Limits(ctx.session)
    types = [rtype] if rtype is not None else list(ResourceType)
    stored = {r.resource_type: r for r in ctx.session.scalars(select(ResourceLimit).where(
        ResourceLimit.account_id == account.id, ResourceLimit.domain_id.is_(None)))}
    return [LimitRow(rt, limits.limit_for_account(account, rt), account=account,
                     id=stored[rt.name].id if rt.name in stored else None) for rt in types]


def domain_limits(ctx: EngineContext, domain: Domain, rtype: ResourceType | None) -> list[LimitRow]:
    limits = Limits(ctx.session)
    types = [rtype] if rtype is not None else list(ResourceType)
    stored = {r.resource_type: r for r in ctx.session.scalars(select(ResourceLimit).where(
        ResourceLimit.domain_id == domain.id, ResourceLimit.account_id.is_(None)))}
    return [LimitRow(rt, limits.limit_for_domain(domain, rt), domain=domain,
                     id=stored[rt.name].id if rt.name in stored else None) for rt in types]


def limit_by_id(ctx: EngineContext, caller: Caller, limit_id: int) -> list[LimitRow]:
    s = ctx.session
    row = s.get(ResourceLimit, limit_id)
    if row is None:
        return []
    checker = AccessChecker(s)
    rtype = ResourceType[row.resource_type]
    if row.account_id is not None:
        account = s.get(Account, row.account_id)
        assert account is not None
        checker.check_account(caller, account, Access.LIST)
        return [LimitRow(rtype, Limits(s).limit_for_account(account, rtype), account=account, id=row.id)]
    domain = s.get(Domain, row.domain_id)
    assert domain is not None
    checker.check_domain(caller, domain, Access.LIST)
    return [LimitRow(rtype, row.max, domain=domain, id=row.id)]


# -- updating -------------------------------------------------------------------------------------


def update_limit(ctx: EngineContext, caller: Caller, rtype: ResourceType, max_value: int | None, *,
                 account: Account | None = None, domain: Domain | None = None) -> LimitRow:
    """updateResourceLimit, with CloudStack's rules: -1 is unlimited; root admin accounts stay
    unlimited; domain admins may not change their own account or domain; ROOT has no limits; a domain
    limit may not exceed its parent's."""
    s = ctx.session
    checker = AccessChecker(s)
    value = -1 if max_value is None else max_value
    if value < -1:
        raise InvalidParameterValue("Please specify either '-1' for an infinite limit, or a limit that is at least"
                                    " '0'. (parameter max)")
    limits = Limits(s)
    if account is not None:
        if account.id == SYSTEM_ACCOUNT_ID:
            raise InvalidParameterValue("Can't update system account")
        if limits.is_root_admin(account) and value != -1:
            raise InvalidParameterValue("Only -1 limit is supported for Root Admin accounts")
        if account.id == caller.account_id and caller.is_domain_admin:
            raise PermissionDenied(f"Unable to update resource limit for their own account {account.uuid},"
                                   " permission denied", uuids=[(account.uuid, "accountId")])
        checker.check_account(caller, account, Access.OPERATE)
        limits.set_limit(rtype, value, account_id=account.id)
        row = LimitRow(rtype, value, account=account)
        target_type, target_uuid, text = "Account", account.uuid, f"account {account.name}"
    elif domain is not None:
        checker.check_domain(caller, domain, Access.OPERATE)
        if domain.parent_id is None:
            raise PermissionDenied(f"Cannot update resource limit for ROOT domain {domain.uuid}, permission denied",
                                   uuids=[(domain.uuid, "domainId")])
        if domain.id == caller.domain_id and caller.is_domain_admin:
            raise PermissionDenied(f"Unable to update resource limit for domain {domain.uuid}, permission denied",
                                   uuids=[(domain.uuid, "domainId")])
        parent = s.get(Domain, domain.parent_id)
        assert parent is not None
        parent_max = limits.limit_for_domain(parent, rtype)
        if parent_max >= 0 and value > parent_max:
            raise InvalidParameterValue(
                f"Domain {domain.name}(id: {parent.uuid}) has maximum allowed resource limit {parent_max} for"
                f" {rtype.name}, please specify a value less than or equal to {parent_max}")
        limits.set_limit(rtype, value, domain_id=domain.id)
        row = LimitRow(rtype, value, domain=domain)
        target_type, target_uuid, text = "Domain", domain.uuid, f"domain {domain.name}"
    else:
        raise InvalidParameterValue("AccountId or domainId have to be specified in order to update resource limit")
    row.id = s.scalar(select(ResourceLimit.id).where(
        ResourceLimit.resource_type == rtype.name,
        ResourceLimit.owner_key == resource_owner_key(account.id if account is not None else None,
                                                      domain.id if domain is not None else None)))
    owner_account = account.id if account is not None else caller.account_id
    owner_domain = account.domain_id if account is not None else domain.id  # type: ignore[union-attr]
    ctx.event("RESOURCE.LIMIT.UPDATE", f"Setting the {rtype.name} limit of {text} to {value}",
              account_id=owner_account, domain_id=owner_domain, resource_type=target_type, resource_uuid=target_uuid)
    return row


# -- recounting -----------------------------------------------------------------------------------


def _vm_rows(accounts: Any) -> Any:
    return (VirtualMachine.account_id.in_(accounts), VirtualMachine.removed.is_(None),
            VirtualMachine.state.not_in(_VM_RELEASED))


def _volume_rows(accounts: Any) -> Any:
    return (Volume.account_id.in_(accounts), Volume.removed.is_(None),
            Volume.state.not_in(_VOLUME_RELEASED) | Volume.vm_id.is_not(None))


def _usage(rtype: ResourceType, accounts: Any) -> Any:
    """A SELECT of what the accounts (a subquery of account ids) use of ``rtype``, from the rows."""
    zero = literal(0)
    if rtype is ResourceType.user_vm:
        return select(func.count(VirtualMachine.id)).where(*_vm_rows(accounts))
    if rtype is ResourceType.cpu:
        return select(func.coalesce(func.sum(VirtualMachine.cpu), zero)).where(*_vm_rows(accounts))
    if rtype is ResourceType.memory:
        return select(func.coalesce(func.sum(VirtualMachine.memory), zero)).where(*_vm_rows(accounts))
    if rtype is ResourceType.volume:
        return select(func.count(Volume.id)).where(*_volume_rows(accounts))
    if rtype is ResourceType.primary_storage:
        return select(func.coalesce(func.sum(Volume.size), zero)).where(*_volume_rows(accounts))
    if rtype is ResourceType.snapshot:
        return select(func.count(Snapshot.id)).where(Snapshot.account_id.in_(accounts), Snapshot.removed.is_(None))
    if rtype is ResourceType.template:
        return select(func.count(Template.id)).where(Template.account_id.in_(accounts), Template.removed.is_(None))
    if rtype is ResourceType.secondary_storage:
        snaps = select(func.coalesce(func.sum(Snapshot.size), zero)).where(
            Snapshot.account_id.in_(accounts), Snapshot.removed.is_(None)).scalar_subquery()
        tmpls = select(func.coalesce(func.sum(Template.size), zero)).where(
            Template.account_id.in_(accounts), Template.removed.is_(None)).scalar_subquery()
        return select(snaps + tmpls)
    if rtype is ResourceType.public_ip:
        return select(func.count(PublicIp.id)).where(PublicIp.account_id.in_(accounts))
    if rtype is ResourceType.network:
        return select(func.count(Network.id)).where(Network.account_id.in_(accounts), Network.removed.is_(None),
                                                    Network.guest_type == "Isolated", Network.is_system.is_(False))
    return select(zero)  # vpc, project: Overcast has none


def _set_count(ctx: EngineContext, rtype: ResourceType, accounts: Any, *, account_id: int | None = None,
               domain_id: int | None = None) -> int:
    s = ctx.session
    limits = Limits(s)
    limits._ensure(rtype, account_id=account_id, domain_id=domain_id)
    where = (ResourceCount.resource_type == rtype.name,
             ResourceCount.owner_key == resource_owner_key(account_id, domain_id))
    s.execute(select(ResourceCount.id).where(*where).with_for_update())  # then count, in a new statement
    value = int(s.scalar(_usage(rtype, accounts)) or 0)
    s.execute(update(ResourceCount).where(*where).values(count=value).execution_options(synchronize_session=False))
    return value


@dataclass
class CountRow:
    rtype: ResourceType
    count: int
    account: Account | None = None
    domain: Domain | None = None


def recount(ctx: EngineContext, caller: Caller, domain: Domain, account: Account | None,
            rtype: ResourceType | None) -> list[CountRow]:
    """updateResourceCount: the counts of ``account`` (in ``domain``), or of ``domain`` and everything
    below it, recomputed from the rows; returns the counts of the account or domain asked for."""
    s = ctx.session
    checker = AccessChecker(s)
    checker.check_domain(caller, domain, Access.OPERATE)
    types = [rtype] if rtype is not None else list(ResourceType)
    if account is not None:
        if account.domain_id != domain.id:
            raise InvalidParameterValue(f"Account {account.name} is not in domain {domain.name}")
        checker.check_account(caller, account, Access.OPERATE)
        return [CountRow(rt, _set_count(ctx, rt, [account.id], account_id=account.id), account=account)
                for rt in types]
    subtree = list(s.scalars(select(Domain).where(Domain.path.startswith(domain.path), Domain.removed.is_(None))))
    subtree.sort(key=lambda d: len(d.path))  # as Limits.consume locks: per type, accounts, then domains top down
    account_ids = list(s.scalars(select(Account.id).where(Account.domain_id.in_([d.id for d in subtree]))
                                 .order_by(Account.id)))
    asked: list[CountRow] = []
    for rt in types:
        for aid in account_ids:
            _set_count(ctx, rt, [aid], account_id=aid)
        for d in subtree:
            accounts = select(Account.id).join(Domain, Domain.id == Account.domain_id).where(
                Domain.path.startswith(d.path))
            n = _set_count(ctx, rt, accounts, domain_id=d.id)
            if d.id == domain.id:
                asked.append(CountRow(rt, n, domain=d))
    return asked


__all__ = ["CountRow", "LimitRow", "account_limits", "domain_limits", "limit_by_id", "recount",
           "resource_type_of", "update_limit"]
