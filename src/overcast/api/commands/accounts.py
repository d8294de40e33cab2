"""Account commands."""

from __future__ import annotations

import collections
import functools
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import aliased

from overcast.access.acl import resolve_owner_filters, visible_accounts_clause
from overcast.access.caller import Caller
from overcast.access.identity import Identity
from overcast.access.roles import ADMINS, ALL_ROLES
from overcast.api.context import CallContext
from overcast.api.declare import (
    BOOLEAN, INTEGER, LIST, MAP, STRING, UUID, Access, Command, ListResult, ObjectResult, Param, Result,
    Success, SuccessResponse, api_command,
)  # fmt: skip
from overcast.api.listing import keyword_filter, page_bounds, page_total
from overcast.api.responses.identity import AccountResponse, accounts_payload
from overcast.db.models import Account, Domain, Role, User
from overcast.errors import InvalidParameterValue

#: Made once: building an alias costs more than the query that uses it.
_ACCOUNT_DOMAIN = aliased(Domain, name="account_domain")
_ACCOUNT_ROLE = aliased(Role, name="account_role")
_ACCOUNT_USER = aliased(User, name="account_user")

RELATED = ("createAccount", "disableAccount", "enableAccount", "lockAccount", "updateAccount", "listAccounts")


def account_result(ctx: CallContext, account: Account) -> ObjectResult:
    ident = ctx.services.identity(ctx)
    return ObjectResult(accounts_payload(ctx.session, [account], lambda u: ident.may_see_keys(ctx.me, u))[0])


class ByIdOrName(Command):
    """Commands that name an account by ``id`` or by ``account`` + ``domainid``."""

    # Checked when bound, so an async command (disableAccount) is refused before it is queued.
    id = Param(UUID, entity=Account, acl=Access.OPERATE, related=RELATED, description="Account id")
    account = Param(STRING, description="Account name")
    domain = Param(UUID, "domainid", entity=Domain, acl=Access.OPERATE, description="Domain ID of the account")

    def target(self, ctx: CallContext) -> Account:
        if self.id is not None:
            return self.id  # type: ignore[no-any-return]
        if not self.account:
            raise InvalidParameterValue("Please specify either the account id, or the account name and domainid")
        domain = self.domain or ctx.session.get(Domain, ctx.me.domain_id)
        acct = ctx.session.scalar(select(Account).where(
            Account.name == self.account, Account.domain_id == domain.id, Account.removed.is_(None)))
        if acct is None:
            raise InvalidParameterValue(f"Unable to find account by name {self.account} in domain {domain.name}")
        return acct


class UserFields(Command):
    """The fields of a new user, shared by createAccount and createUser."""

    username = Param(STRING, required=True, description="Unique username.")
    password = Param(STRING, required=True, sensitive=True, description="Clear text password (stored with"
                     " a salted scrypt hash).")
    email = Param(STRING, required=True, description="email")
    firstname = Param(STRING, required=True, description="firstname")
    lastname = Param(STRING, required=True, description="lastname")
    timezone = Param(STRING, description="Specifies a timezone for this command. For more information on"
                     " the timezone parameter, see Time Zone Format.")
    user_uuid = Param(STRING, "userid", description="User UUID, required for adding account from external"
                      " provisioning system")


@api_command("createAccount", response=AccountResponse, roles=ADMINS, event_type="ACCOUNT.CREATE",
             description="Creates an account")
class CreateAccount(UserFields):
    account = Param(STRING, description="Name of the account to be created. The user will be added to this"
                    " newly created account. If no account is specified, the username will be used as the"
                    " account name.")
    account_type = Param(INTEGER, "accounttype", description="Type of the account. Specify 0 for user, 1"
                         " for root admin, and 2 for domain admin")
    role = Param(UUID, "roleid", entity=Role, since="4.9.0", related=("createRole", "listRoles"),
                 description="Creates the account under the specified role.")
    domain = Param(UUID, "domainid", entity=Domain, acl=Access.OPERATE,
                   description="Creates the user under the specified domain.")
    network_domain = Param(STRING, "networkdomain", description="Network domain for the account's networks")
    account_details = Param(MAP, "accountdetails", description="details for the account used to store"
                            " specific parameters")
    account_uuid = Param(STRING, "accountid", description="Account UUID, required for adding account from"
                         " external provisioning system")

    def execute(self, ctx: CallContext) -> Result:
        account, _ = ctx.services.identity(ctx).create_account(
            ctx.me, username=self.username, password=self.password, email=self.email,
            firstname=self.firstname, lastname=self.lastname, domain=self.domain,
            account_name=self.account, account_type=self.account_type, role=self.role,
            network_domain=self.network_domain, timezone=self.timezone,
            account_uuid=self.account_uuid, user_uuid=self.user_uuid,
        )  # fmt: skip
        return account_result(ctx, account)


@api_command("updateAccount", response=AccountResponse, roles=ADMINS, event_type="ACCOUNT.UPDATE",
             description="Updates account information for the authenticated user")
class UpdateAccount(ByIdOrName):
    new_name = Param(STRING, "newname", description="new name for the account")
    network_domain = Param(STRING, "networkdomain", description="Network domain for the account's networks")
    role = Param(UUID, "roleid", entity=Role, description="The UUID of the dynamic role to set for the account")
    account_details = Param(MAP, "accountdetails", description="Details for the account used to store"
                            " specific parameters")

    def execute(self, ctx: CallContext) -> Result:
        account = ctx.services.identity(ctx).update_account(
            ctx.me, self.target(ctx), new_name=self.new_name, network_domain=self.network_domain, role=self.role)
        return account_result(ctx, account)


@api_command("deleteAccount", response=SuccessResponse, roles=ADMINS, is_async=True, idempotent=True,
             event_type="ACCOUNT.DELETE", description="Deletes an account and all its users (and their"
             " resources)")
class DeleteAccount(Command):
    id = Param(UUID, required=True, entity=Account, acl=Access.OPERATE, related=RELATED,
               description="Account id")

    def instance(self) -> tuple[str | None, str | None]:
        return "Account", self.id.uuid

    def execute(self, ctx: CallContext) -> Result:
        ctx.services.identity(ctx).delete_account(ctx.me, self.id)
        return Success()


@api_command("disableAccount", response=AccountResponse, roles=ADMINS, is_async=True, idempotent=True,
             event_type="ACCOUNT.DISABLE", description="Disables an account")
class DisableAccount(ByIdOrName):
    lock = Param(BOOLEAN, required=True, description="If true, only lock the account; else disable the"
                 " account")

    def instance(self) -> tuple[str | None, str | None]:
        return "Account", self.id.uuid if self.id is not None else None

    def execute(self, ctx: CallContext) -> Result:
        account = ctx.services.identity(ctx).set_account_state(
            ctx.me, self.target(ctx), "locked" if self.lock else "disabled")
        return account_result(ctx, account)


@api_command("enableAccount", response=AccountResponse, roles=ADMINS, event_type="ACCOUNT.ENABLE",
             description="Enables an account")
class EnableAccount(ByIdOrName):
    def execute(self, ctx: CallContext) -> Result:
        return account_result(ctx, ctx.services.identity(ctx).set_account_state(ctx.me, self.target(ctx), "enabled"))


@api_command("lockAccount", response=AccountResponse, roles=ADMINS, event_type="ACCOUNT.LOCK",
             description="This deprecated function used to locks an account. Look for the API"
             " DisableAccount instead")
class LockAccount(Command):
    account = Param(STRING, required=True, description="Locks the specified account.")
    domain = Param(UUID, "domainid", required=True, entity=Domain, acl=Access.OPERATE,
                   description="Locks the specified account on this domain.")

    def execute(self, ctx: CallContext) -> Result:
        # A declared subclass: ByIdOrName itself has no params, so constructing it raised AttributeError.
        target = EnableAccount({"account": self.account, "domain": self.domain}).target(ctx)
        return account_result(ctx, ctx.services.identity(ctx).set_account_state(ctx.me, target, "locked"))


@api_command("listAccounts", response=AccountResponse, roles=ALL_ROLES, is_list=True,
             description="Lists accounts and provides detailed account information for listed accounts")
class ListAccounts(Command):
    id = Param(UUID, entity=Account, related=RELATED, description="List account by account ID")
    name = Param(STRING, description="List account by account name")
    account_type = Param(INTEGER, "accounttype", description="List accounts by account type.")
    state = Param(STRING, description="List accounts by state. Valid states are enabled, disabled, and locked.")
    domain = Param(UUID, "domainid", entity=Domain, description="list only resources belonging to the"
                   " domain specified")
    is_recursive = Param(BOOLEAN, "isrecursive", description="defaults to false, but if true, lists all"
                         " resources from the parent specified by the domainId till leaves.")
    list_all = Param(BOOLEAN, "listall", description="If set to false, list only resources belonging to"
                     " the command's caller; if set to true - list resources that the caller is authorized"
                     " to see. Default value is false")
    details = Param(LIST, description="comma separated list of account details requested, value can be a"
                    " list of [ all, resource, min]")
    is_cleanup_required = Param(BOOLEAN, "iscleanuprequired", description="list accounts by cleanuprequired"
                                " attribute (values are true or false)")

    def execute(self, ctx: CallContext) -> Result:
        me = ctx.me
        domain, _ = resolve_owner_filters(ctx.acl, me, domain=self.domain, account_name=None)
        scope = None
        if self.id is None and me.is_admin:
            # The caller's own domain is known from its credentials: no query for it.
            scope = (domain.id, domain.path) if domain is not None else (me.domain_id, me.domain_path)
        offset, limit = page_bounds(ctx, self.page, self.page_size)
        # A caller that may see every user's keys needs no access check per user, so the page is read
        # as plain rows, without building ORM objects (half the query's cost); others get the ORM
        # rows the checks look up.
        plain = Identity.sees_all_keys(me)
        paged, stmt = _accounts_page(
            plain, me, self.id.id if self.id is not None else None, scope,
            bool(self.is_recursive or self.list_all), self.name or None, self.account_type, self.state or None,
            self.keyword or None, offset, limit)
        accounts: list[Any] = []
        domains: dict[int, Any] = {}
        roles: dict[int, Any] = {}
        users: dict[int, list[Any]] = {}
        result = ctx.session.connection().execute(paged) if plain else ctx.session.execute(paged)
        for account, dom, role, user in (_plain_rows(result) if plain else result):  # an account per user
            if account.id not in users:
                accounts.append(account)
                users[account.id] = []
                if dom is not None:
                    domains[dom.id] = dom
                if role is not None:
                    roles[role.id] = role
            if user is not None:
                users[account.id].append(user)
        count = page_total(ctx, stmt, len(accounts), offset, limit)
        ident = ctx.services.identity(ctx)
        may_see_keys = (lambda u: True) if plain else (lambda u: ident.may_see_keys(me, u))
        return ListResult(accounts_payload(ctx.session, accounts, may_see_keys, domains=domains, roles=roles,
                                           users=users), count)


@functools.lru_cache(maxsize=256)
def _accounts_page(plain: bool, me: Caller, account_id: int | None, scope: tuple[int, str] | None,
                   subtree: bool, name: str | None, account_type: int | None, state: str | None,
                   keyword: str | None, offset: int, limit: int | None) -> tuple[Select[Any], Select[Any]]:
    """listAccounts' queries: the page (its accounts, each with its domain, role and users, in one
    query: ORM objects, or with ``plain`` columns for :func:`_plain_rows`) and the filtered accounts
    (for the count).

    A pure function of its arguments, kept: a repeated listing reuses the statements, skipping their
    construction and SQLAlchemy's cache key, which cost more than running them.
    """
    stmt = select(Account).where(Account.removed.is_(None)).order_by(Account.id)
    visible = visible_accounts_clause(me)
    if visible is not None:
        stmt = stmt.where(visible)
    if account_id is not None:
        stmt = stmt.where(Account.id == account_id)
    elif scope is not None:
        scope_id, scope_path = scope
        if subtree:
            stmt = stmt.where(Account.domain_id.in_(select(Domain.id).where(Domain.path.startswith(scope_path))))
        else:
            stmt = stmt.where(Account.domain_id == scope_id)
    if name:
        stmt = stmt.where(Account.name == name)
    if account_type is not None:
        stmt = stmt.where(Account.account_type == account_type)
    if state:
        stmt = stmt.where(Account.state == state.lower())
    kw = keyword_filter(keyword, Account.name)
    if kw is not None:
        stmt = stmt.where(kw)
    page = stmt.offset(offset)
    if limit is not None:
        page = page.limit(limit)
    if plain:
        a, d, r, u = page.subquery("account_page"), _PLAIN_DOMAIN, _PLAIN_ROLE, _PLAIN_USER
        paged = (select(*(a.c[c] for c in _ROW_COLUMNS[Account]), *(d.c[c] for c in _ROW_COLUMNS[Domain]),
                        *(r.c[c] for c in _ROW_COLUMNS[Role]), *(u.c[c] for c in _ROW_COLUMNS[User]))
                 .select_from(a)
                 .outerjoin(d, d.c.id == a.c.domain_id)
                 .outerjoin(r, r.c.id == a.c.role_id)
                 .outerjoin(u, (u.c.account_id == a.c.id) & u.c.removed.is_(None))
                 .order_by(a.c.id, u.c.id))
        return paged, stmt
    account = aliased(Account, page.subquery("account_page"))
    # Aliases: the filters' subqueries on domain and role must not correlate with these joins.
    dom, role, user = _ACCOUNT_DOMAIN, _ACCOUNT_ROLE, _ACCOUNT_USER
    paged = (select(account, dom, role, user)
             .outerjoin(dom, dom.id == account.domain_id)
             .outerjoin(role, role.id == account.role_id)
             .outerjoin(user, (user.account_id == account.id) & user.removed.is_(None))
             .order_by(account.id, user.id))
    return paged, stmt


def _row_type(model: Any) -> tuple[Any, tuple[str, ...]]:
    """A named tuple with ``model``'s attribute names (read like its ORM objects), and its columns."""
    attrs = [(prop.key, prop.columns[0].name) for prop in model.__mapper__.column_attrs]
    return collections.namedtuple(f"{model.__name__}Row", [k for k, _ in attrs]), tuple(c for _, c in attrs)


_ROW_TYPES: dict[Any, Any] = {}
_ROW_COLUMNS: dict[Any, tuple[str, ...]] = {}
for _model in (Account, Domain, Role, User):
    _ROW_TYPES[_model], _ROW_COLUMNS[_model] = _row_type(_model)
_PLAIN_DOMAIN = Domain.__table__.alias("account_domain")
_PLAIN_ROLE = Role.__table__.alias("account_role")
_PLAIN_USER = User.__table__.alias("account_user")


def _plain_rows(result: Any) -> Iterator[tuple[Any, Any, Any, Any]]:
    """(account, domain, role, user) of each row of a ``plain`` page query, as named tuples (None for
    an outer join that found nothing)."""
    parts = []
    start = 0
    for model in (Account, Domain, Role, User):
        end = start + len(_ROW_COLUMNS[model])
        parts.append((_ROW_TYPES[model]._make, start, end, start + _ROW_COLUMNS[model].index("id")))
        start = end
    for row in result:
        yield tuple(make(row[i:j]) if row[k] is not None else None  # type: ignore[return-value]
                    for make, i, j, k in parts)


def users_of(ctx: CallContext, users: list[User]) -> list[dict[str, Any]]:
    from overcast.api.responses.identity import users_payload

    ident = ctx.services.identity(ctx)
    return users_payload(ctx.session, users, lambda u: ident.may_see_keys(ctx.me, u))
