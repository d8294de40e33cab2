"""Domains, accounts, users and roles: the identity services behind the access commands.

Every method takes the caller's session and :class:`Caller`, checks what the caller may do, changes
rows, and records the action event in the same transaction. Handlers only translate to the wire.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import String, func, literal, select, update
from sqlalchemy.orm import Session

from overcast.access.acl import AccessChecker
from overcast.access.caller import Caller
from overcast.access.passwords import hash_password, new_api_key, verify_password
from overcast.access.roles import AccountType, RoleType
from overcast.api.declare import Access
from overcast.db.models import Account, Domain, Role, RolePermission, User, utcnow
from overcast.errors import InvalidParameterValue, PermissionDenied, ResourceInUse

_RULE = re.compile(r"^[A-Za-z0-9*]+$")

ROOT_DOMAIN_ID = 1
SYSTEM_ACCOUNT_ID = 1
SYSTEM_USER_ID = 1


def domain_wire_path(domain: Domain) -> str:
    """The ``path`` CloudStack shows: ``ROOT`` or ``ROOT/a/b``."""
    return "ROOT" + domain.path.rstrip("/") if domain.path != "/" else "ROOT"


def normalise_domain_path(path: str | None) -> str:
    """A login ``domain`` parameter ("/", "a/b", "/a/b/", "ROOT/a") as an internal path."""
    if not path:
        return "/"
    parts = [p for p in path.strip().split("/") if p]
    if parts and parts[0].upper() == "ROOT":
        parts = parts[1:]
    return "/" + "".join(p + "/" for p in parts)


class Identity:
    """The identity services for one session (the command's transaction)."""

    def __init__(self, session: Session, events: Any) -> None:
        self.s = session
        self.events = events
        self.acl = AccessChecker(session)

    # -- helpers -----------------------------------------------------------------------------
    def _event(self, caller: Caller | None, etype: str, text: str, *, account_id: int | None = None,
               domain_id: int | None = None, rtype: str | None = None, ruuid: str | None = None) -> None:
        self.events.record(
            self.s, etype, text,
            account_id=account_id if account_id is not None else (caller.account_id if caller else SYSTEM_ACCOUNT_ID),
            domain_id=domain_id if domain_id is not None else (caller.domain_id if caller else ROOT_DOMAIN_ID),
            user_id=caller.user_id if caller else None, resource_type=rtype, resource_uuid=ruuid,
        )  # fmt: skip

    def role_by_type(self, role_type: RoleType) -> Role:
        role = self.s.scalar(
            select(Role).where(Role.role_type == role_type.value, Role.is_default.is_(True)).order_by(Role.id)
        )
        assert role is not None, f"default role {role_type} missing"
        return role

    def role_type_of(self, account: Account) -> RoleType:
        return self.acl.role_type_of(account)

    # -- domains -----------------------------------------------------------------------------
    def create_domain(self, caller: Caller, name: str, *, parent: Domain | None = None,
                      network_domain: str | None = None, uuid: str | None = None) -> Domain:
        parent = parent or self.s.get(Domain, caller.domain_id)
        assert parent is not None
        self.acl.check_domain(caller, parent, Access.OPERATE)
        if not caller.is_admin:
            raise PermissionDenied("Only admins may create domains")
        name = name.strip()
        if not name or "/" in name:
            raise InvalidParameterValue("Domain name must be non-empty and may not contain '/'")
        path = parent.path + name + "/"
        clash = self.s.scalar(
            select(Domain.id).where(func.lower(Domain.path) == path.lower(), Domain.removed.is_(None))
        )
        if clash is not None:
            raise InvalidParameterValue(f"Domain with name {name} already exists for the parent id={parent.uuid}")
        if uuid and self.s.scalar(select(Domain.id).where(Domain.uuid == uuid)) is not None:
            raise InvalidParameterValue(f"A domain with id {uuid} already exists")
        domain = Domain(name=name, parent_id=parent.id, path=path, level=parent.level + 1,
                        network_domain=network_domain, **({"uuid": uuid} if uuid else {}))
        self.s.add(domain)
        self.s.flush()
        self._event(caller, "DOMAIN.CREATE", f"Domain Name: {name}, Parent DomainId: {parent.uuid}",
                    domain_id=domain.id, rtype="Domain", ruuid=domain.uuid)
        return domain

    def update_domain(self, caller: Caller, domain: Domain, *, name: str | None = None,
                      network_domain: str | None = None) -> Domain:
        if domain.id == ROOT_DOMAIN_ID and name is not None and name != domain.name:
            raise InvalidParameterValue("Can't update the name of the ROOT domain")
        if domain.id == caller.domain_id and not caller.is_root_admin:
            raise PermissionDenied("A domain admin may not update its own domain")
        if name is not None and name != domain.name:
            name = name.strip()
            if not name or "/" in name:
                raise InvalidParameterValue("Domain name must be non-empty and may not contain '/'")
            parent = self.s.get(Domain, domain.parent_id)
            assert parent is not None
            new_path = parent.path + name + "/"
            clash = self.s.scalar(select(Domain.id).where(
                func.lower(Domain.path) == new_path.lower(), Domain.removed.is_(None), Domain.id != domain.id))
            if clash is not None:
                raise InvalidParameterValue(f"Domain with name {name} already exists for the parent id={parent.uuid}")
            old = domain.path
            # Re-root every descendant's path in one statement.
            self.s.execute(
                update(Domain).where(Domain.path.startswith(old), Domain.id != domain.id)
                .values(path=literal(new_path, String) + func.substr(Domain.path, len(old) + 1))
                .execution_options(synchronize_session=False)
            )
            domain.name, domain.path = name, new_path
        if network_domain is not None:
            domain.network_domain = network_domain or None
        self.s.flush()
        self._event(caller, "DOMAIN.UPDATE", f"Updating domain {domain.name}", domain_id=domain.id,
                    rtype="Domain", ruuid=domain.uuid)
        return domain

    def delete_domain(self, caller: Caller, domain: Domain, *, cleanup: bool) -> None:
        if domain.id == ROOT_DOMAIN_ID:
            raise PermissionDenied("Can't delete the ROOT domain")
        if domain.id == caller.domain_id:
            raise PermissionDenied("A caller may not delete its own domain")
        subtree = select(Domain.id).where(Domain.path.startswith(domain.path), Domain.removed.is_(None))
        children = self.s.scalar(select(func.count()).select_from(Domain).where(
            Domain.parent_id == domain.id, Domain.removed.is_(None)))
        accounts = list(self.s.scalars(select(Account).where(
            Account.domain_id.in_(subtree), Account.removed.is_(None))))
        if not cleanup and (children or accounts):
            raise ResourceInUse(
                f"Can't delete the domain {domain.name}: it has "
                f"{children} child domain(s) and {len(accounts)} account(s); use cleanup=true"
            )
        for account in accounts:
            # The subtree may hold accounts more privileged than the caller: cleanup is no way around
            # the check deleteAccount makes.
            self.acl.check_account(caller, account, Access.OPERATE)
        for account in accounts:
            self._remove_account(caller, account)
        now = utcnow()
        for d in self.s.scalars(select(Domain).where(Domain.id.in_(subtree))):
            d.removed, d.state = now, "Inactive"
            self._event(caller, "DOMAIN.DELETE", f"Deleting domain {d.name}", domain_id=d.id,
                        rtype="Domain", ruuid=d.uuid)
        self.s.flush()

    # -- accounts ----------------------------------------------------------------------------
    def resolve_role(self, caller: Caller, *, account_type: int | None, role: Role | None) -> tuple[int, Role]:
        if role is not None:
            rtype = RoleType(role.role_type)
            if account_type is not None and AccountType(account_type).default_role_type is not rtype:
                raise InvalidParameterValue("The accounttype does not match the role type of roleid")
            return AccountType.for_role_type(rtype), role
        if account_type is None:
            raise InvalidParameterValue("Please provide either roleid or accounttype")
        try:
            at = AccountType(account_type)
        except ValueError:
            raise InvalidParameterValue(f"Invalid account type {account_type}") from None
        if at is AccountType.PROJECT:
            raise InvalidParameterValue("Project accounts are created with createProject")
        return int(at), self.role_by_type(at.default_role_type)

    def create_account(self, caller: Caller, *, username: str, password: str, email: str | None,
                       firstname: str | None, lastname: str | None, domain: Domain | None = None,
                       account_name: str | None = None, account_type: int | None = None,
                       role: Role | None = None, network_domain: str | None = None,
                       timezone: str | None = None, account_uuid: str | None = None,
                       user_uuid: str | None = None) -> tuple[Account, User]:
        domain = domain or self.s.get(Domain, caller.domain_id)
        assert domain is not None
        self.acl.check_domain(caller, domain, Access.OPERATE)
        atype, role = self.resolve_role(caller, account_type=account_type, role=role)
        if RoleType(role.role_type).rank > caller.role_type.rank:
            raise PermissionDenied("Caller may not create an account with more privileges than its own")
        if not caller.is_root_admin and role.role_type == RoleType.ADMIN:
            raise PermissionDenied("Only root admins may create root admin accounts")
        if atype == AccountType.ADMIN and domain.id != ROOT_DOMAIN_ID:
            raise InvalidParameterValue("Root admin accounts can only be created in the ROOT domain")
        name = (account_name or username).strip()
        if not name:
            raise InvalidParameterValue("Account name must not be empty")
        if self.s.scalar(select(Account.id).where(
                Account.name == name, Account.domain_id == domain.id, Account.removed.is_(None))) is not None:
            raise InvalidParameterValue(f"The specified account: {name} already exists")
        for uid, model in ((account_uuid, Account), (user_uuid, User)):
            if uid and self.s.scalar(select(model.id).where(model.uuid == uid)) is not None:
                raise InvalidParameterValue(f"The specified id {uid} is already in use")
        account = Account(name=name, domain_id=domain.id, account_type=atype, role_id=role.id,
                          network_domain=network_domain, **({"uuid": account_uuid} if account_uuid else {}))
        self.s.add(account)
        self.s.flush()
        self._event(caller, "ACCOUNT.CREATE", f"Creating Account. Account Name: {name}",
                    account_id=account.id, domain_id=domain.id, rtype="Account", ruuid=account.uuid)
        user = self._add_user(caller, account, username=username, password=password, email=email,
                              firstname=firstname, lastname=lastname, timezone=timezone, uuid=user_uuid)
        return account, user

    def update_account(self, caller: Caller, account: Account, *, new_name: str | None = None,
                       network_domain: str | None = None, role: Role | None = None) -> Account:
        self.acl.check_account(caller, account, Access.OPERATE)
        if account.id == SYSTEM_ACCOUNT_ID:
            raise PermissionDenied("The system account can't be changed")
        if new_name and new_name != account.name:
            if self.s.scalar(select(Account.id).where(Account.name == new_name, Account.domain_id ==
                             account.domain_id, Account.removed.is_(None))) is not None:
                raise InvalidParameterValue(f"The specified account: {new_name} already exists")
            account.name = new_name
        if network_domain is not None:
            account.network_domain = network_domain or None
        if role is not None:
            if RoleType(role.role_type) is not self.role_type_of(account):
                raise InvalidParameterValue("The new role must be of the same role type as the old one")
            account.role_id = role.id
        self.s.flush()
        self._event(caller, "ACCOUNT.UPDATE", f"Updating account {account.name}", account_id=account.id,
                    domain_id=account.domain_id, rtype="Account", ruuid=account.uuid)
        return account

    def _guard_account(self, caller: Caller, account: Account, action: str) -> None:
        self.acl.check_account(caller, account, Access.OPERATE)
        if account.id == SYSTEM_ACCOUNT_ID:
            raise PermissionDenied(f"The system account can't be {action}d")
        if account.id == caller.account_id:
            raise PermissionDenied(f"A caller can't {action} its own account")

    def set_account_state(self, caller: Caller, account: Account, state: str) -> Account:
        self._guard_account(caller, account, {"enabled": "enable", "disabled": "disable", "locked": "lock"}[state])
        account.state = state
        etype = {"enabled": "ACCOUNT.ENABLE", "disabled": "ACCOUNT.DISABLE", "locked": "ACCOUNT.LOCK"}[state]
        # A disabled or locked account's sessions end now, not at their timeout.
        if state != "enabled":
            from overcast.db.models import Session as LoginSession

            users = select(User.id).where(User.account_id == account.id)
            self.s.execute(LoginSession.__table__.delete().where(LoginSession.user_id.in_(users)))
        self.s.flush()
        self._event(caller, etype, f"{state.capitalize()} account {account.name}", account_id=account.id,
                    domain_id=account.domain_id, rtype="Account", ruuid=account.uuid)
        return account

    def delete_account(self, caller: Caller, account: Account) -> None:
        self._guard_account(caller, account, "delete")
        self._remove_account(caller, account)

    def _remove_account(self, caller: Caller, account: Account) -> None:
        from overcast.db.models import Bundle
        from overcast.db.models import Session as LoginSession
        from overcast.engine.tags import remove_tags

        now = utcnow()
        users = list(self.s.scalars(select(User).where(User.account_id == account.id, User.removed.is_(None))))
        for user in users:
            user.removed, user.state, user.api_key, user.secret_key = now, "disabled", None, None
        if users:
            self.s.execute(LoginSession.__table__.delete().where(LoginSession.user_id.in_([u.id for u in users])))
        account.removed, account.state = now, "disabled"
        # Its bundles go with it: none stays shared with (or deployable by) anyone.
        self.s.execute(Bundle.__table__.update().where(Bundle.account_id == account.id, Bundle.removed.is_(None))
                       .values(removed=now, live_name=None))
        remove_tags(self.s, "User", [u.id for u in users])
        remove_tags(self.s, "Account", account.id)
        self.s.flush()
        self._event(caller, "ACCOUNT.DELETE", f"Deleting account {account.name}", account_id=account.id,
                    domain_id=account.domain_id, rtype="Account", ruuid=account.uuid)

    # -- users -------------------------------------------------------------------------------
    def _add_user(self, caller: Caller | None, account: Account, *, username: str, password: str,
                  email: str | None, firstname: str | None, lastname: str | None,
                  timezone: str | None = None, uuid: str | None = None) -> User:
        if not username.strip():
            raise InvalidParameterValue("Username must not be empty")
        if not password:
            raise InvalidParameterValue("Password must not be empty")
        # Usernames are unique within a domain, as CloudStack requires for login.
        clash = self.s.scalar(
            select(User.id).join(Account, Account.id == User.account_id).where(
                User.username == username, Account.domain_id == account.domain_id, User.removed.is_(None))
        )
        if clash is not None:
            raise InvalidParameterValue(f"The user {username} already exists in domain")
        user = User(account_id=account.id, username=username, password_hash=hash_password(password),
                    email=email, firstname=firstname, lastname=lastname, timezone=timezone,
                    **({"uuid": uuid} if uuid else {}))
        self.s.add(user)
        self.s.flush()
        self._event(caller, "USER.CREATE", f"Creating user {username}", account_id=account.id,
                    domain_id=account.domain_id, rtype="User", ruuid=user.uuid)
        return user

    def create_user(self, caller: Caller, account: Account, **kwargs: Any) -> User:
        self.acl.check_account(caller, account, Access.OPERATE)
        if account.removed is not None:
            raise InvalidParameterValue(f"Account {account.name} has been removed")
        return self._add_user(caller, account, **kwargs)

    def account_of(self, user: User) -> Account:
        account = self.s.get(Account, user.account_id)
        assert account is not None
        return account

    def check_user(self, caller: Caller, user: User, access: Access = Access.OPERATE) -> Account:
        """Caller may act on ``user``: itself, or a user of an account it may operate on."""
        account = self.account_of(user)
        if user.id == caller.user_id:
            return account
        if user.id == SYSTEM_USER_ID and not caller.is_root_admin:
            raise PermissionDenied("The system user can't be changed")
        if caller.is_normal_user:
            raise PermissionDenied(f"Caller may not act on user {user.username}",
                                   uuids=[(user.uuid, "userId")])
        self.acl.check_account(caller, account, access)
        return account

    def update_user(self, caller: Caller, user: User, *, username: str | None = None,
                    password: str | None = None, current_password: str | None = None,
                    email: str | None = None, firstname: str | None = None, lastname: str | None = None,
                    timezone: str | None = None, api_key: str | None = None,
                    secret_key: str | None = None) -> User:
        account = self.check_user(caller, user)
        if username is not None and username != user.username:
            clash = self.s.scalar(select(User.id).join(Account, Account.id == User.account_id).where(
                User.username == username, Account.domain_id == account.domain_id,
                User.removed.is_(None), User.id != user.id))
            if clash is not None:
                raise InvalidParameterValue(f"The user {username} already exists in domain")
            user.username = username
        if password is not None:
            if not password:
                raise InvalidParameterValue("Password must not be empty")
            # Changing your own password needs the current one (CloudStack 4.14+).
            if user.id == caller.user_id and not caller.is_root_admin:
                if current_password is None or not verify_password(current_password, user.password_hash):
                    raise InvalidParameterValue("Current password is incorrect or was not given (currentpassword)")
            user.password_hash = hash_password(password)
        for attr, value in (("email", email), ("firstname", firstname), ("lastname", lastname),
                            ("timezone", timezone)):
            if value is not None:
                setattr(user, attr, value)
        if (api_key is None) != (secret_key is None):
            raise InvalidParameterValue("Please provide both userapikey and usersecretkey, or neither")
        if api_key is not None and secret_key is not None:
            taken = self.s.scalar(select(User.id).where(User.api_key == api_key, User.id != user.id))
            if taken is not None:
                raise InvalidParameterValue("The api key is in use by another user")
            user.api_key, user.secret_key = api_key, secret_key
        self.s.flush()
        self._event(caller, "USER.UPDATE", f"Updating user {user.username}", account_id=account.id,
                    domain_id=account.domain_id, rtype="User", ruuid=user.uuid)
        return user

    def set_user_state(self, caller: Caller, user: User, state: str) -> User:
        account = self.check_user(caller, user)
        if user.id == caller.user_id:
            raise PermissionDenied("A caller can't change the state of its own user")
        user.state = state
        if state != "enabled":
            from overcast.db.models import Session as LoginSession

            self.s.execute(LoginSession.__table__.delete().where(LoginSession.user_id == user.id))
        self.s.flush()
        etype = {"enabled": "USER.ENABLE", "disabled": "USER.DISABLE", "locked": "USER.LOCK"}[state]
        self._event(caller, etype, f"User {user.username} {state}", account_id=account.id,
                    domain_id=account.domain_id, rtype="User", ruuid=user.uuid)
        return user

    def delete_user(self, caller: Caller, user: User) -> None:
        account = self.check_user(caller, user)
        if user.id == caller.user_id:
            raise PermissionDenied("A caller can't delete its own user")
        remaining = self.s.scalar(select(func.count()).select_from(User).where(
            User.account_id == account.id, User.removed.is_(None), User.id != user.id))
        if not remaining:
            raise InvalidParameterValue(
                f"The user {user.username} is the last user of account {account.name}; delete the account instead")
        from overcast.db.models import Session as LoginSession
        from overcast.engine.tags import remove_tags

        self.s.execute(LoginSession.__table__.delete().where(LoginSession.user_id == user.id))
        user.removed, user.state, user.api_key, user.secret_key = utcnow(), "disabled", None, None
        remove_tags(self.s, "User", user.id)
        self.s.flush()
        self._event(caller, "USER.DELETE", f"Deleting user {user.username}", account_id=account.id,
                    domain_id=account.domain_id, rtype="User", ruuid=user.uuid)

    def register_keys(self, caller: Caller, user: User) -> User:
        account = self.check_user(caller, user)
        user.api_key, user.secret_key = new_api_key(), new_api_key()
        self.s.flush()
        self._event(caller, "REGISTER.USER.KEY", f"Registering keys for user {user.username}",
                    account_id=account.id, domain_id=account.domain_id, rtype="User", ruuid=user.uuid)
        return user

    def may_see_keys(self, caller: Caller, user: User) -> bool:
        try:
            self.check_user(caller, user)
        except PermissionDenied:
            return False
        return True

    @staticmethod
    def sees_all_keys(caller: Caller) -> bool:
        """True when :meth:`may_see_keys` holds for every user whatever its account (so a listing
        needs no per-user check): a root admin that is not a normal user passes ``check_user`` at
        once. Keep in step with ``check_user`` and ``AccessChecker.check_account``."""
        return caller.is_root_admin and not caller.is_normal_user

    # -- roles -------------------------------------------------------------------------------
    def create_role(self, caller: Caller, *, name: str, role_type: RoleType | None, description: str | None,
                    clone_from: Role | None = None, is_public: bool = True) -> Role:
        if not caller.is_root_admin:
            raise PermissionDenied("Only root admins may create roles")
        if clone_from is not None and role_type is not None:
            raise InvalidParameterValue("Please provide either a role type or a role to clone, not both")
        if clone_from is None and role_type is None:
            raise InvalidParameterValue("Please provide a role type (type) or a role to clone (roleid)")
        self._unique_role_name(name)
        rtype = RoleType(clone_from.role_type) if clone_from is not None else role_type
        assert rtype is not None
        role = Role(name=name.strip(), role_type=rtype.value, description=description, is_public=is_public)
        self.s.add(role)
        self.s.flush()
        if clone_from is not None:
            for perm in self.permissions(clone_from):
                self.s.add(RolePermission(role_id=role.id, rule=perm.rule, permission=perm.permission,
                                          description=perm.description, sort_order=perm.sort_order))
            self.s.flush()
        self._event(caller, "ROLE.CREATE", f"Creating role {role.name}", rtype="Role", ruuid=role.uuid)
        return role

    def _unique_role_name(self, name: str, exclude: int | None = None) -> None:
        if not name or not name.strip():
            raise InvalidParameterValue("Role name must not be empty")
        stmt = select(Role.id).where(func.lower(Role.name) == name.strip().lower(), Role.removed.is_(None))
        if exclude is not None:
            stmt = stmt.where(Role.id != exclude)
        if self.s.scalar(stmt) is not None:
            raise InvalidParameterValue(f"A role with the name {name} already exists")

    def update_role(self, caller: Caller, role: Role, *, name: str | None, description: str | None,
                    role_type: RoleType | None, is_public: bool | None) -> Role:
        if not caller.is_root_admin:
            raise PermissionDenied("Only root admins may update roles")
        if role.is_default and (name is not None or role_type is not None):
            raise PermissionDenied("The name and type of a default role can't be changed")
        if name is not None:
            self._unique_role_name(name, exclude=role.id)
            role.name = name.strip()
        if role_type is not None and role_type.value != role.role_type:
            in_use = self.s.scalar(select(func.count()).select_from(Account).where(
                Account.role_id == role.id, Account.removed.is_(None)))
            if in_use:
                raise ResourceInUse("The type of a role in use by accounts can't be changed")
            role.role_type = role_type.value
        if description is not None:
            role.description = description
        if is_public is not None:
            role.is_public = is_public
        self.s.flush()
        self._event(caller, "ROLE.UPDATE", f"Updating role {role.name}", rtype="Role", ruuid=role.uuid)
        return role

    def delete_role(self, caller: Caller, role: Role) -> None:
        if not caller.is_root_admin:
            raise PermissionDenied("Only root admins may delete roles")
        if role.is_default:
            raise PermissionDenied("Default roles can't be deleted")
        in_use = self.s.scalar(select(func.count()).select_from(Account).where(
            Account.role_id == role.id, Account.removed.is_(None)))
        if in_use:
            raise ResourceInUse(f"Role {role.name} is in use by {in_use} account(s)")
        role.removed = utcnow()
        self.s.execute(RolePermission.__table__.delete().where(RolePermission.role_id == role.id))
        self.s.flush()
        self._event(caller, "ROLE.DELETE", f"Deleting role {role.name}", rtype="Role", ruuid=role.uuid)

    def permissions(self, role: Role) -> list[RolePermission]:
        return list(self.s.scalars(select(RolePermission).where(RolePermission.role_id == role.id)
                                   .order_by(RolePermission.sort_order, RolePermission.id)))

    def create_permission(self, caller: Caller, role: Role, *, rule: str, permission: str,
                          description: str | None) -> RolePermission:
        if not caller.is_root_admin:
            raise PermissionDenied("Only root admins may change role permissions")
        if not _RULE.match(rule):
            raise InvalidParameterValue("Rule must be an API name or a wildcard such as list* or *")
        if role.is_default and role.role_type == RoleType.ADMIN:
            raise PermissionDenied("The default root admin role's permissions can't be changed")
        order = self.s.scalar(select(func.coalesce(func.max(RolePermission.sort_order), -1)).where(
            RolePermission.role_id == role.id))
        perm = RolePermission(role_id=role.id, rule=rule, permission=permission.lower(),
                              description=description, sort_order=int(order or -1) + 1)
        self.s.add(perm)
        self.s.flush()
        self._event(caller, "ROLE.PERMISSION.CREATE", f"Creating role permission {rule} for role {role.name}",
                    rtype="RolePermission", ruuid=perm.uuid)
        return perm

    def reorder_permissions(self, caller: Caller, role: Role, order: list[RolePermission]) -> None:
        if not caller.is_root_admin:
            raise PermissionDenied("Only root admins may change role permissions")
        current = {p.id for p in self.permissions(role)}
        if {p.id for p in order} != current or len(order) != len(current):
            raise InvalidParameterValue("ruleorder must list every permission of the role exactly once")
        for index, perm in enumerate(order):
            perm.sort_order = index
        self.s.flush()
        self._event(caller, "ROLE.PERMISSION.UPDATE", f"Reordering permissions of role {role.name}",
                    rtype="Role", ruuid=role.uuid)

    def update_permission(self, caller: Caller, perm: RolePermission, *, permission: str) -> RolePermission:
        if not caller.is_root_admin:
            raise PermissionDenied("Only root admins may change role permissions")
        perm.permission = permission.lower()
        self.s.flush()
        self._event(caller, "ROLE.PERMISSION.UPDATE", f"Updating role permission {perm.rule}",
                    rtype="RolePermission", ruuid=perm.uuid)
        return perm

    def delete_permission(self, caller: Caller, perm: RolePermission) -> None:
        if not caller.is_root_admin:
            raise PermissionDenied("Only root admins may change role permissions")
        self.s.delete(perm)
        self.s.flush()
        self._event(caller, "ROLE.PERMISSION.DELETE", f"Deleting role permission {perm.rule}",
                    rtype="RolePermission", ruuid=perm.uuid)
