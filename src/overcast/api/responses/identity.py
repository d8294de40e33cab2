"""Response objects of domains, accounts, users, roles and keys."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from overcast.access.identity import domain_wire_path
from overcast.access.roles import AccountType, RoleType
from overcast.api.declare import Field, ResponseObject
from overcast.api.serialize import cs_date
from overcast.db.models import Account, Domain, Role, RolePermission, User

F = Field


class DomainResponse(ResponseObject):
    object_name = "domain"
    fields = (
        F("id", "string", "the ID of the domain"),
        F("name", "string", "the name of the domain"),
        F("level", "integer", "the level of the domain"),
        F("parentdomainid", "string", "the domain ID of the parent domain"),
        F("parentdomainname", "string", "the domain name of the parent domain"),
        F("haschild", "boolean", "whether the domain has one or more sub-domains"),
        F("path", "string", "the path of the domain"),
        F("networkdomain", "string", "the network domain"),
        F("state", "string", "the state of the domain"),
        F("created", "date", "the date when this domain was created"),
    )

    @staticmethod
    def of(d: Domain, *, parent: Domain | None, has_child: bool) -> dict[str, Any]:
        return {
            "id": d.uuid, "name": d.name, "level": d.level,
            "parentdomainid": parent.uuid if parent else None,
            "parentdomainname": parent.name if parent else None,
            "haschild": has_child, "path": domain_wire_path(d), "networkdomain": d.network_domain,
            "state": d.state, "created": cs_date(d.created),
        }  # fmt: skip

    @classmethod
    def many(cls, s: Session, domains: list[Domain]) -> list[dict[str, Any]]:
        ids = {d.parent_id for d in domains if d.parent_id}
        parents = {p.id: p for p in s.scalars(select(Domain).where(Domain.id.in_(ids)))} if ids else {}
        with_children = set(s.scalars(select(Domain.parent_id).where(
            Domain.parent_id.in_([d.id for d in domains]), Domain.removed.is_(None)))) if domains else set()
        return [cls.of(d, parent=parents.get(d.parent_id or 0), has_child=d.id in with_children) for d in domains]


class UserResponse(ResponseObject):
    object_name = "user"
    fields = (
        F("id", "string", "the user ID"),
        F("username", "string", "the user name"),
        F("firstname", "string", "the user firstname"),
        F("lastname", "string", "the user lastname"),
        F("email", "string", "the user email address"),
        F("created", "date", "the date and time the user account was created"),
        F("state", "string", "the user state"),
        F("account", "string", "the account name of the user"),
        F("accountid", "string", "the account ID of the user"),
        F("accounttype", "integer", "the account type of the user"),
        F("roleid", "string", "the ID of the role"),
        F("rolename", "string", "the name of the role"),
        F("roletype", "string", "the type of the role"),
        F("domainid", "string", "the domain ID of the user"),
        F("domain", "string", "the domain name of the user"),
        F("timezone", "string", "the timezone user was created in"),
        F("apikey", "string", "the api key of the user"),
        F("secretkey", "string", "the secret key of the user (deprecated: use getUserKeys)"),
        F("isdefault", "boolean", "true if user is default, false otherwise"),
        F("usersource", "string", "the source type of the user in lowercase, such as native, ldap, saml2"),
        F("iscallerchilddomain", "boolean", "the boolean value representing if the updating target is in caller's child domain"),
    )

    @staticmethod
    def of(u: User, a: Account, d: Domain, role: Role | None, *, show_keys: bool) -> dict[str, Any]:
        rtype = RoleType(role.role_type) if role else AccountType(a.account_type).default_role_type
        return {
            "id": u.uuid, "username": u.username, "firstname": u.firstname, "lastname": u.lastname,
            "email": u.email, "created": cs_date(u.created), "state": u.state, "account": a.name,
            "accountid": a.uuid, "accounttype": a.account_type,
            "roleid": role.uuid if role else None, "rolename": role.name if role else None,
            "roletype": rtype.value, "domainid": d.uuid, "domain": d.name, "timezone": u.timezone,
            "apikey": u.api_key if show_keys else None, "secretkey": u.secret_key if show_keys else None,
            "isdefault": u.is_default, "usersource": u.source.lower(),
        }  # fmt: skip


class AccountResponse(ResponseObject):
    object_name = "account"
    fields = (
        F("id", "string", "the id of the account"),
        F("name", "string", "the name of the account"),
        F("accounttype", "integer", "account type (admin, domain-admin, user)"),
        F("roleid", "string", "the ID of the role"),
        F("rolename", "string", "the name of the role"),
        F("roletype", "string", "the type of the role (Admin, ResourceAdmin, DomainAdmin, User)"),
        F("domainid", "string", "id of the Domain the account belongs to"),
        F("domain", "string", "name of the Domain the account belongs to"),
        F("domainpath", "string", "path of the Domain the account belongs to"),
        F("state", "string", "the state of the account"),
        F("networkdomain", "string", "the network domain"),
        F("created", "date", "the date when this account was created"),
        F("isdefault", "boolean", "true if account is default, false otherwise"),
        F("groups", "list", "the list of acl groups that account belongs to"),
        F("user", "list", "the list of users associated with account", response=UserResponse),
    )

    @staticmethod
    def of(a: Account, d: Domain, role: Role | None, users: list[dict[str, Any]]) -> dict[str, Any]:
        rtype = RoleType(role.role_type) if role else AccountType(a.account_type).default_role_type
        return {
            "id": a.uuid, "name": a.name, "accounttype": a.account_type,
            "roleid": role.uuid if role else None, "rolename": role.name if role else None,
            "roletype": rtype.value, "domainid": d.uuid, "domain": d.name, "domainpath": domain_wire_path(d),
            "state": a.state, "networkdomain": a.network_domain, "created": cs_date(a.created),
            "isdefault": a.is_default, "groups": [], "user": users,
        }  # fmt: skip


def users_payload(s: Session, users: Iterable[User], may_see_keys: Any) -> list[dict[str, Any]]:
    """Wire dicts for users, loading their accounts, domains and roles in three queries."""
    users = list(users)
    if not users:
        return []
    accounts = {a.id: a for a in s.scalars(select(Account).where(Account.id.in_({u.account_id for u in users})))}
    domains = {d.id: d for d in s.scalars(select(Domain).where(Domain.id.in_({a.domain_id for a in accounts.values()})))}
    role_ids = {a.role_id for a in accounts.values() if a.role_id}
    roles = {r.id: r for r in s.scalars(select(Role).where(Role.id.in_(role_ids)))} if role_ids else {}
    out = []
    for u in users:
        a = accounts[u.account_id]
        out.append(UserResponse.of(u, a, domains[a.domain_id], roles.get(a.role_id or 0),
                                   show_keys=may_see_keys(u)))
    return out


#: Built once, with an expanding IN: constructing a statement costs more than running it.
_USERS_OF_ACCOUNTS = (select(User).where(User.account_id.in_(bindparam("account_ids", expanding=True)),
                                         User.removed.is_(None)).order_by(User.id))


def accounts_payload(s: Session, accounts: list[Account], may_see_keys: Any, *,
                     domains: dict[int, Domain] | None = None, roles: dict[int, Role] | None = None,
                     users: dict[int, list[User]] | None = None) -> list[dict[str, Any]]:
    """Wire dicts for accounts with their users. The accounts' domains, roles and (live) users, by
    id, ordered by id, are loaded unless the caller already has them; users share their account's."""
    if not accounts:
        return []
    ids = [a.id for a in accounts]
    if domains is None:
        domains = {d.id: d for d in s.scalars(select(Domain).where(Domain.id.in_({a.domain_id for a in accounts})))}
    if roles is None:
        role_ids = {a.role_id for a in accounts if a.role_id}
        roles = {r.id: r for r in s.scalars(select(Role).where(Role.id.in_(role_ids)))} if role_ids else {}
    if users is None:
        users = {i: [] for i in ids}
        for u in s.scalars(_USERS_OF_ACCOUNTS, {"account_ids": ids}):
            users[u.account_id].append(u)
    out = []
    for a in accounts:
        d, r = domains[a.domain_id], roles.get(a.role_id or 0)
        out.append(AccountResponse.of(a, d, r, [UserResponse.of(u, a, d, r, show_keys=may_see_keys(u))
                                                for u in users[a.id]]))
    return out


class UserKeysResponse(ResponseObject):
    object_name = "userkeys"
    fields = (
        F("apikey", "string", "the api key of the registered user"),
        F("secretkey", "string", "the secret key of the registered user"),
    )


class RoleResponse(ResponseObject):
    object_name = "role"
    fields = (
        F("id", "string", "the ID of the role"),
        F("name", "string", "the name of the role"),
        F("type", "string", "the type of the role"),
        F("description", "string", "the description of the role"),
        F("isdefault", "boolean", "true if role is default, false otherwise"),
        F("ispublic", "boolean", "Indicates whether the role will be visible to all users (public) or only to root admins (private)."),
        F("state", "string", "the state of the role"),
    )

    @staticmethod
    def of(r: Role) -> dict[str, Any]:
        return {"id": r.uuid, "name": r.name, "type": r.role_type, "description": r.description,
                "isdefault": r.is_default, "ispublic": r.is_public, "state": r.state}


class RolePermissionResponse(ResponseObject):
    object_name = "rolepermission"
    fields = (
        F("id", "string", "the ID of the role permission"),
        F("roleid", "string", "the ID of the role to which the role permission belongs"),
        F("rolename", "string", "the name of the role to which the role permission belongs"),
        F("rule", "string", "the api name or wildcard rule"),
        F("permission", "string", "the permission type of the api name or wildcard rule, allow/deny"),
        F("description", "string", "the description of the role permission"),
    )

    @staticmethod
    def of(p: RolePermission, role: Role) -> dict[str, Any]:
        return {"id": p.uuid, "roleid": role.uuid, "rolename": role.name, "rule": p.rule,
                "permission": p.permission, "description": p.description}


class LoginResponse(ResponseObject):
    fields = (
        F("username", "string", "Username"),
        F("userid", "string", "User ID"),
        F("domainid", "string", "Domain ID that the user belongs to"),
        F("timeout", "integer", "the time period before the session has expired"),
        F("account", "string", "the account name the user belongs to"),
        F("firstname", "string", "first name of the user"),
        F("lastname", "string", "last name of the user"),
        F("type", "string", "the account type (admin, domain-admin, read-only-admin, user)"),
        F("timezone", "string", "user time zone"),
        F("timezoneoffset", "string", "user time zoneoffset"),
        F("registered", "string", "Is user registered"),
        F("sessionkey", "string", "Session key that can be passed in subsequent Query command calls"),
        F("is2faenabled", "string", "Is two factor authentication enabled"),
        F("is2faverified", "string", "Is two factor authentication verified"),
    )


class LogoutResponse(ResponseObject):
    fields = (F("description", "string", "Response description"),)
