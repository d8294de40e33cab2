"""Access decisions: who may see or change which row, and list scoping done in SQL.

The rules, as CloudStack's (and stricter where CloudStack had holes):

* A root admin reaches everything.
* A domain admin reaches rows owned inside its domain subtree, and never an account (or its users,
  keys, passwords) whose role is more privileged than its own (CVE-2024-42062, CVE-2025-47713,
  CVE-2025-47849): privilege is compared by role type rank.
* A user reaches rows of its own account only; it may read its own domain.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from overcast.access.caller import Caller
from overcast.access.roles import AccountType, RoleType
from overcast.api.declare import Access
from overcast.db.models import (
    Account,
    Bundle,
    Domain,
    LaunchPermission,
    Template,
    Network,
    Nic,
    Role,
    SecurityGroup,
    SecurityGroupRule,
    User,
    VirtualMachine,
)
from overcast.errors import PermissionDenied


def in_subtree(path: str, ancestor_path: str) -> bool:
    return path.startswith(ancestor_path)


class AccessChecker:
    """Checks one caller's access to rows. Stateless; needs a session for owner lookups."""

    def __init__(self, session: Session) -> None:
        self.session = session

    # -- privilege of accounts ---------------------------------------------------------------
    def role_type_of(self, account: Account) -> RoleType:
        if account.role_id is not None:
            role = self.session.get(Role, account.role_id)
            if role is not None:
                return RoleType(role.role_type)
        return AccountType(account.account_type).default_role_type

    def domain_of(self, domain_id: int) -> Domain:
        domain = self.session.get(Domain, domain_id)
        assert domain is not None
        return domain

    def check_account(self, caller: Caller, account: Account, access: Access) -> None:
        if caller.is_root_admin:
            return
        if account.id == caller.account_id:
            return
        if caller.is_domain_admin:
            domain = self.domain_of(account.domain_id)
            if in_subtree(domain.path, caller.domain_path):
                if self.role_type_of(account).rank <= caller.role_type.rank:
                    return
        # Name the account by its id only: a caller holding a foreign uuid learns nothing more from it.
        raise PermissionDenied(
            f"Account {caller.account_name} does not have permission to access account id={account.uuid}"
            if access is not Access.LIST
            else f"Caller cannot access account id={account.uuid}",
            uuids=[(account.uuid, "accountId")],
        )

    def check_domain(self, caller: Caller, domain: Domain, access: Access) -> None:
        if caller.is_root_admin:
            return
        if caller.is_domain_admin and in_subtree(domain.path, caller.domain_path):
            return
        if access is Access.LIST and domain.id == caller.domain_id:
            return
        raise PermissionDenied(
            f"Caller does not have permission to operate on domain id={domain.uuid}",
            uuids=[(domain.uuid, "domainId")],
        )

    def check_owned(self, caller: Caller, account_id: int, access: Access) -> None:
        """Access to a row owned by an account (any tenant resource)."""
        if caller.is_root_admin or account_id == caller.account_id:
            return
        account = self.session.get(Account, account_id)
        if account is None:
            raise PermissionDenied("Owner account does not exist")
        self.check_account(caller, account, access)

    def template_shared(self, caller: Caller, template: Template) -> bool:
        if template.is_public:
            return True
        return self.session.scalar(select(LaunchPermission.id).where(
            LaunchPermission.template_id == template.id, LaunchPermission.account_id == caller.account_id)) is not None

    def check(self, caller: Caller, row: Any, access: Access) -> None:
        if isinstance(row, Account):
            self.check_account(caller, row, access)
        elif isinstance(row, Domain):
            self.check_domain(caller, row, access)
        elif isinstance(row, User):
            if row.id == caller.user_id:
                return
            self.check_owned(caller, row.account_id, access)
        elif isinstance(row, Role):
            if access is not Access.LIST and not caller.is_root_admin:
                raise PermissionDenied("Only root admins may change roles")
        elif isinstance(row, Template) and access is not Access.OPERATE and self.template_shared(caller, row):
            return  # public templates and ISOs, and those shared with the caller, may be seen and used
        elif isinstance(row, Bundle) and access is not Access.OPERATE and bundle_shared(caller, row):
            return  # public bundles, and bundles shared with the caller's domain, may be seen and deployed
        elif isinstance(row, Network) and row.acl_type == "Domain":
            self.check_domain_network(caller, row, access)
        elif isinstance(row, Nic):  # a NIC is its VM's
            vm_owner = self.session.scalar(select(VirtualMachine.account_id).where(VirtualMachine.id == row.vm_id))
            self.check_owned(caller, vm_owner if vm_owner is not None else -1, access)
        elif isinstance(row, SecurityGroupRule):  # a rule is its group's
            sg_owner = self.session.scalar(select(SecurityGroup.account_id).where(
                SecurityGroup.id == row.security_group_id))
            self.check_owned(caller, sg_owner if sg_owner is not None else -1, access)
        elif hasattr(row, "account_id"):
            self.check_owned(caller, row.account_id, access)


    def check_domain_network(self, caller: Caller, net: Network, access: Access) -> None:
        """A shared network of a domain (and, with subdomain access, its subdomains; ROOT's is zone-wide):
        its accounts may see and use it; admins of the domain (or above) may change it."""
        if caller.is_root_admin:
            return
        domain = self.domain_of(net.domain_id)
        if caller.is_domain_admin and in_subtree(domain.path, caller.domain_path):
            return
        if access is not Access.OPERATE and (
                caller.domain_id == net.domain_id or (net.subdomain_access and in_subtree(caller.domain_path,
                                                                                          domain.path))):
            return
        raise PermissionDenied(
            f"Account {caller.account_name} does not have permission to operate on network id={net.uuid}"
            if access is Access.OPERATE else
            f"Account {caller.account_name} does not have permission to use network id={net.uuid}",
            uuids=[(net.uuid, "networkId")],
        )


# -- list scoping ------------------------------------------------------------------------------


def privileged_role_types(caller: Caller) -> list[str]:
    """Role types a caller may see accounts of (its own rank and below)."""
    return [r.value for r in RoleType if r.rank <= caller.role_type.rank]


def scope_owned(
    stmt: Select[Any],
    caller: Caller,
    *,
    account_col: Any,
    domain_col: Any,
    list_all: bool = False,
    is_recursive: bool = False,
    domain: Domain | None = None,
    account: Account | None = None,
) -> Select[Any]:
    """Restrict a list query of tenant rows to what the caller may see and asked for.

    Mirrors CloudStack's list-criteria: a normal user sees its own account only; an admin sees its
    own rows unless it passes ``listall``, ``domainid`` (with ``isrecursive`` for the subtree) or
    ``account``. The caller's reach is always enforced; a domain or account outside it is refused.
    """
    if account is not None:
        return stmt.where(account_col == account.id)
    if caller.is_normal_user:
        return stmt.where(account_col == caller.account_id)
    if not caller.is_root_admin:
        # A domain admin's subtree holds accounts more privileged than it (a root admin's, in ROOT):
        # their rows are out of its reach, as the accounts themselves are (CVE-2025-47849).
        stmt = stmt.where(account_col.in_(select(Account.id).where(visible_accounts_clause(caller))))
    if domain is not None:
        if is_recursive or list_all:
            return stmt.where(domain_col.in_(select(Domain.id).where(Domain.path.startswith(domain.path))))
        return stmt.where(domain_col == domain.id)
    if list_all:
        if caller.is_root_admin:
            return stmt
        return stmt.where(
            domain_col.in_(select(Domain.id).where(Domain.path.startswith(caller.domain_path)))
        )
    return stmt.where(account_col == caller.account_id)


def bundle_shared(caller: Caller, bundle: Bundle) -> bool:
    """A bundle another account may list and deploy: public, or shared with the caller's domain."""
    return bundle.visibility == "Public" or (bundle.visibility == "Domain" and bundle.domain_id == caller.domain_id)


def bundle_shared_clause(caller: Caller) -> Any:
    """SQL condition on Bundle rows: :func:`bundle_shared`."""
    return or_(Bundle.visibility == "Public", (Bundle.visibility == "Domain") & (Bundle.domain_id == caller.domain_id))


def resolve_owner_filters(
    checker: AccessChecker, caller: Caller, *, domain: Domain | None, account_name: str | None
) -> tuple[Domain | None, Account | None]:
    """Check ``domainid``/``account`` list parameters and turn the account name into a row."""
    if domain is not None:
        checker.check_domain(caller, domain, Access.LIST)
    if not account_name:
        return domain, None
    domain_id = domain.id if domain is not None else caller.domain_id
    acct = checker.session.scalar(
        select(Account).where(
            Account.name == account_name, Account.domain_id == domain_id, Account.removed.is_(None)
        )
    )
    if acct is None:
        from overcast.errors import InvalidParameterValue

        raise InvalidParameterValue(f"Unable to find account {account_name} in the specified domain")
    checker.check_account(caller, acct, Access.LIST)
    return domain, acct


def visible_accounts_clause(caller: Caller) -> Any:
    """SQL condition on Account rows: the caller may see these accounts at all."""
    if caller.is_root_admin:
        return None
    if caller.is_normal_user:
        return Account.id == caller.account_id
    # Domain admins: the subtree, and only accounts not above their own privilege.
    ranks = privileged_role_types(caller)
    return or_(
        Account.id == caller.account_id,
        Account.domain_id.in_(select(Domain.id).where(Domain.path.startswith(caller.domain_path)))
        & Account.role_id.in_(select(Role.id).where(Role.role_type.in_(ranks))),
    )


__all__ = [
    "AccessChecker",
    "bundle_shared",
    "bundle_shared_clause",
    "resolve_owner_filters",
    "scope_owned",
    "visible_accounts_clause",
]
