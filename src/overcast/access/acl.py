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

from sqlalchemy import Select, false, or_, select
from sqlalchemy.orm import Session

from overcast.access.caller import Caller
from overcast.access.roles import AccountType, RoleType
from overcast.api.declare import Access
from overcast.db.models import Account, Domain, Role, User
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
        raise PermissionDenied(
            f"Account {caller.account_name} does not have permission to access account {account.name}"
            if access is not Access.LIST
            else f"Caller cannot access account {account.name}",
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
            f"Caller does not have permission to operate on domain {domain.name}",
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
        elif hasattr(row, "account_id"):
            self.check_owned(caller, row.account_id, access)


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
    "false",
    "resolve_owner_filters",
    "scope_owned",
    "visible_accounts_clause",
]
