"""User commands, including API keys."""

from __future__ import annotations

from sqlalchemy import select

from overcast.access.acl import resolve_owner_filters, visible_accounts_clause
from overcast.access.roles import ADMINS, ALL_ROLES
from overcast.api.commands.accounts import UserFields, users_of
from overcast.api.context import CallContext
from overcast.api.declare import (
    BOOLEAN, INTEGER, STRING, UUID, Access, Command, ListResult, ObjectResult, Param, Result, Success,
    SuccessResponse, api_command,
)  # fmt: skip
from overcast.api.listing import fetch_page, keyword_filter
from overcast.api.responses.identity import UserKeysResponse, UserResponse
from overcast.db.models import Account, Domain, User
from overcast.errors import InvalidParameterValue, PermissionDenied

RELATED = ("createUser", "disableUser", "enableUser", "getUser", "listUsers", "lockUser", "updateUser")


def user_result(ctx: CallContext, user: User) -> ObjectResult:
    return ObjectResult(users_of(ctx, [user])[0])


def user_param(description: str, *, acl: Access | None = Access.OPERATE) -> Param:
    return Param(UUID, "id", required=True, entity=User, acl=acl, related=RELATED, description=description)


@api_command("createUser", response=UserResponse, roles=ADMINS, event_type="USER.CREATE",
             description="Creates a user for an account that already exists")
class CreateUser(UserFields):
    account = Param(STRING, required=True, description="Creates the user under the specified account. If"
                    " no account is specified, the username will be used as the account name.")
    domain = Param(UUID, "domainid", entity=Domain, acl=Access.OPERATE, description="Creates the user under"
                   " the specified domain. Has to be accompanied with the account parameter")

    def execute(self, ctx: CallContext) -> Result:
        domain = self.domain or ctx.session.get(Domain, ctx.me.domain_id)
        account = ctx.session.scalar(select(Account).where(
            Account.name == self.account, Account.domain_id == domain.id, Account.removed.is_(None)))
        if account is None:
            raise InvalidParameterValue(f"Unable to find account {self.account} in domain {domain.name}")
        user = ctx.services.identity(ctx).create_user(
            ctx.me, account, username=self.username, password=self.password, email=self.email,
            firstname=self.firstname, lastname=self.lastname, timezone=self.timezone, uuid=self.user_uuid)
        return user_result(ctx, user)


@api_command("updateUser", response=UserResponse, roles=ALL_ROLES, event_type="USER.UPDATE",
             description="Updates a user account")
class UpdateUser(Command):
    id = user_param("User uuid")
    username = Param(STRING, description="Unique username")
    password = Param(STRING, sensitive=True, description="Clear text password (stored with a salted scrypt"
                     " hash). Users changing their own password must give currentpassword too.")
    current_password = Param(STRING, "currentpassword", sensitive=True, since="4.14",
                             description="Current password that was being used by the user. You must"
                             " inform the current password when updating the password.")
    email = Param(STRING, description="email")
    firstname = Param(STRING, description="first name")
    lastname = Param(STRING, description="last name")
    timezone = Param(STRING, description="Specifies a timezone for this command. For more information on"
                     " the timezone parameter, see Time Zone Format.")
    user_api_key = Param(STRING, "userapikey", sensitive=True, description="The API key for the user. Must"
                         " be specified with userSecretKey")
    user_secret_key = Param(STRING, "usersecretkey", sensitive=True, description="The secret key for the"
                            " user. Must be specified with userApiKey")

    def execute(self, ctx: CallContext) -> Result:
        user = ctx.services.identity(ctx).update_user(
            ctx.me, self.id, username=self.username, password=self.password,
            current_password=self.current_password, email=self.email, firstname=self.firstname,
            lastname=self.lastname, timezone=self.timezone, api_key=self.user_api_key,
            secret_key=self.user_secret_key,
        )  # fmt: skip
        return user_result(ctx, user)


@api_command("deleteUser", response=SuccessResponse, roles=ADMINS, event_type="USER.DELETE",
             description="Deletes a user for an account")
class DeleteUser(Command):
    id = user_param("id of the user to be deleted")

    def execute(self, ctx: CallContext) -> Result:
        ctx.services.identity(ctx).delete_user(ctx.me, self.id)
        return Success()


@api_command("disableUser", response=UserResponse, roles=ADMINS, is_async=True, idempotent=True,
             event_type="USER.DISABLE", description="Disables a user account")
class DisableUser(Command):
    id = user_param("Disables user by user ID.")

    def instance(self) -> tuple[str | None, str | None]:
        return "User", self.id.uuid

    def execute(self, ctx: CallContext) -> Result:
        return user_result(ctx, ctx.services.identity(ctx).set_user_state(ctx.me, self.id, "disabled"))


@api_command("enableUser", response=UserResponse, roles=ADMINS, event_type="USER.ENABLE",
             description="Enables a user account")
class EnableUser(Command):
    id = user_param("Enables user by user ID.")

    def execute(self, ctx: CallContext) -> Result:
        return user_result(ctx, ctx.services.identity(ctx).set_user_state(ctx.me, self.id, "enabled"))


@api_command("lockUser", response=UserResponse, roles=ADMINS, event_type="USER.LOCK",
             description="Locks a user account")
class LockUser(Command):
    id = user_param("Locks user by user ID.")

    def execute(self, ctx: CallContext) -> Result:
        return user_result(ctx, ctx.services.identity(ctx).set_user_state(ctx.me, self.id, "locked"))


@api_command("listUsers", response=UserResponse, roles=ALL_ROLES, is_list=True,
             description="Lists user accounts")
class ListUsers(Command):
    id = Param(UUID, entity=User, related=RELATED, description="List user by ID.")
    username = Param(STRING, description="List user by the username")
    account = Param(STRING, description="list resources by account. Must be used with the domainId parameter.")
    account_type = Param(INTEGER, "accounttype", description="List users by account type.")
    state = Param(STRING, description="List users by state of the user account.")
    domain = Param(UUID, "domainid", entity=Domain, description="list only resources belonging to the"
                   " domain specified")
    is_recursive = Param(BOOLEAN, "isrecursive", description="defaults to false, but if true, lists all"
                         " resources from the parent specified by the domainId till leaves.")
    list_all = Param(BOOLEAN, "listall", description="If set to false, list only resources belonging to"
                     " the command's caller; if set to true - list resources that the caller is authorized"
                     " to see. Default value is false")
    user_source = Param(STRING, "usersource", since="4.19", description="List users by their authentication"
                        " source. Valid values are: native, ldap, saml2 and saml2disabled.")

    def execute(self, ctx: CallContext) -> Result:
        me = ctx.me
        domain, account = resolve_owner_filters(ctx.acl, me, domain=self.domain, account_name=self.account)
        stmt = (select(User).join(Account, Account.id == User.account_id)
                .where(User.removed.is_(None), Account.removed.is_(None)).order_by(User.id))
        visible = visible_accounts_clause(me)
        if visible is not None:
            stmt = stmt.where(visible)
        if self.id is not None:
            stmt = stmt.where(User.id == self.id.id)
        elif account is not None:
            stmt = stmt.where(User.account_id == account.id)
        elif me.is_admin:
            scope = domain or ctx.session.get(Domain, me.domain_id)
            if self.is_recursive or self.list_all:
                stmt = stmt.where(Account.domain_id.in_(select(Domain.id).where(Domain.path.startswith(scope.path))))
            else:
                stmt = stmt.where(Account.domain_id == scope.id)
        if self.username:
            stmt = stmt.where(User.username == self.username)
        if self.account_type is not None:
            stmt = stmt.where(Account.account_type == self.account_type)
        if self.state:
            stmt = stmt.where(User.state == self.state.lower())
        if self.user_source:
            stmt = stmt.where(User.source == self.user_source.upper())
        kw = keyword_filter(self.keyword, User.username, User.firstname, User.lastname, User.email)
        if kw is not None:
            stmt = stmt.where(kw)
        rows, count = fetch_page(ctx, stmt, self)
        return ListResult(users_of(ctx, rows), count)


@api_command("getUser", response=UserResponse, roles=ALL_ROLES,
             description="Find user account by API key")
class GetUser(Command):
    user_api_key = Param(STRING, "userapikey", required=True, sensitive=True, description="API key of the user")

    def execute(self, ctx: CallContext) -> Result:
        user = ctx.session.scalar(select(User).where(User.api_key == self.user_api_key, User.removed.is_(None)))
        ident = ctx.services.identity(ctx)
        if user is None or not ident.may_see_keys(ctx.me, user):
            raise InvalidParameterValue("Unable to find user by the given API key")
        return user_result(ctx, user)


@api_command("registerUserKeys", response=UserKeysResponse, roles=ALL_ROLES, event_type="REGISTER.USER.KEY",
             description="This command allows a user to register for the developer API, returning a"
             " secret key and an API key. This request is made through the integration API port, so it is"
             " a privileged command and must be made on behalf of a user. It is up to the implementer just"
             " how the username and password are entered, and then how that translates to an integration"
             " API request. Both secret key and API key should be returned to the user")
class RegisterUserKeys(Command):
    id = user_param("User id")

    def execute(self, ctx: CallContext) -> Result:
        user = ctx.services.identity(ctx).register_keys(ctx.me, self.id)
        return ObjectResult({"apikey": user.api_key, "secretkey": user.secret_key})


@api_command("getUserKeys", response=UserKeysResponse, roles=ALL_ROLES, since="4.10.0",
             description="This command allows the user to query the secret and API keys for the account")
class GetUserKeys(Command):
    id = user_param("ID of the user whose keys are required")

    def execute(self, ctx: CallContext) -> Result:
        if not ctx.services.identity(ctx).may_see_keys(ctx.me, self.id):
            raise PermissionDenied("Caller may not read the keys of this user")
        return ObjectResult({"apikey": self.id.api_key, "secretkey": self.id.secret_key})


__all__ = ["CreateUser", "DeleteUser", "DisableUser", "EnableUser", "GetUser", "GetUserKeys",
           "ListUsers", "LockUser", "RegisterUserKeys", "UpdateUser"]
