"""Account commands."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from overcast.access.acl import resolve_owner_filters, visible_accounts_clause
from overcast.access.roles import ADMINS, ALL_ROLES
from overcast.api.context import CallContext
from overcast.api.declare import (
    BOOLEAN, INTEGER, LIST, MAP, STRING, UUID, Access, Command, ListResult, ObjectResult, Param, Result,
    Success, SuccessResponse, api_command,
)  # fmt: skip
from overcast.api.listing import fetch_page, keyword_filter
from overcast.api.responses.identity import AccountResponse, accounts_payload
from overcast.db.models import Account, Domain, Role, User
from overcast.errors import InvalidParameterValue

RELATED = ("createAccount", "disableAccount", "enableAccount", "lockAccount", "updateAccount", "listAccounts")


def account_result(ctx: CallContext, account: Account) -> ObjectResult:
    ident = ctx.services.identity(ctx)
    return ObjectResult(accounts_payload(ctx.session, [account], lambda u: ident.may_see_keys(ctx.me, u))[0])


class ByIdOrName(Command):
    """Commands that name an account by ``id`` or by ``account`` + ``domainid``."""

    id = Param(UUID, entity=Account, related=RELATED, description="Account id")
    account = Param(STRING, description="Account name")
    domain = Param(UUID, "domainid", entity=Domain, description="Domain ID of the account")

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
    domain = Param(UUID, "domainid", required=True, entity=Domain, description="Locks the specified"
                   " account on this domain.")

    def execute(self, ctx: CallContext) -> Result:
        target = ByIdOrName({"account": self.account, "domain": self.domain}).target(ctx)
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
        stmt = select(Account).where(Account.removed.is_(None)).order_by(Account.id)
        visible = visible_accounts_clause(me)
        if visible is not None:
            stmt = stmt.where(visible)
        domain, _ = resolve_owner_filters(ctx.acl, me, domain=self.domain, account_name=None)
        if self.id is not None:
            stmt = stmt.where(Account.id == self.id.id)
        elif me.is_admin:
            scope = domain or ctx.session.get(Domain, me.domain_id)
            if self.is_recursive or self.list_all:
                stmt = stmt.where(Account.domain_id.in_(
                    select(Domain.id).where(Domain.path.startswith(scope.path))))
            else:
                stmt = stmt.where(Account.domain_id == scope.id)
        if self.name:
            stmt = stmt.where(Account.name == self.name)
        if self.account_type is not None:
            stmt = stmt.where(Account.account_type == self.account_type)
        if self.state:
            stmt = stmt.where(Account.state == self.state.lower())
        kw = keyword_filter(self.keyword, Account.name)
        if kw is not None:
            stmt = stmt.where(kw)
        rows, count = fetch_page(ctx, stmt, self)
        ident = ctx.services.identity(ctx)
        return ListResult(accounts_payload(ctx.session, rows, lambda u: ident.may_see_keys(me, u)), count)


def users_of(ctx: CallContext, users: list[User]) -> list[dict[str, Any]]:
    from overcast.api.responses.identity import users_payload

    ident = ctx.services.identity(ctx)
    return users_payload(ctx.session, users, lambda u: ident.may_see_keys(ctx.me, u))
