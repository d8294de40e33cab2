"""First start: the ROOT domain, the default roles, the system account and the admin account."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from overcast.access.passwords import hash_password, new_api_key
from overcast.access.roles import AccountType, RoleType
from overcast.db.models import Account, Domain, Role, RolePermission, User

logger = logging.getLogger(__name__)

DEFAULT_ROLES = [
    ("Root Admin", RoleType.ADMIN, "Default root admin role"),
    ("Resource Admin", RoleType.RESOURCE_ADMIN, "Default resource admin role"),
    ("Domain Admin", RoleType.DOMAIN_ADMIN, "Default domain admin role"),
    ("User", RoleType.USER, "Default user role"),
]


def bootstrap(s: Session) -> tuple[str, str] | None:
    """Seed an empty database. Returns the admin's (api key, secret key) when it seeded, else None.

    Idempotent: a database that already has its ROOT domain is left alone.
    """
    if s.scalar(select(Domain.id).where(Domain.id == 1)) is not None:
        return None
    root = Domain(id=1, name="ROOT", path="/", level=0, parent_id=None)
    s.add(root)
    s.flush()
    roles: dict[RoleType, Role] = {}
    for index, (name, rtype, desc) in enumerate(DEFAULT_ROLES, start=1):
        role = Role(id=index, name=name, role_type=rtype.value, description=desc, is_default=True)
        s.add(role)
        roles[rtype] = role
    s.flush()
    s.add(RolePermission(role_id=roles[RoleType.ADMIN].id, rule="*", permission="allow", sort_order=0,
                         description="Root admins may call every API"))
    system = Account(id=1, name="system", domain_id=1, account_type=AccountType.ADMIN,
                     role_id=roles[RoleType.ADMIN].id, is_default=True)
    admin = Account(id=2, name="admin", domain_id=1, account_type=AccountType.ADMIN,
                    role_id=roles[RoleType.ADMIN].id, is_default=True)
    s.add_all([system, admin])
    s.flush()
    s.add(User(id=1, account_id=1, username="system", password_hash=None, firstname="system",
               lastname="cloud", state="enabled", is_default=True))
    api_key, secret = new_api_key(), new_api_key()
    s.add(User(id=2, account_id=2, username="admin", password_hash=hash_password("password"),
               firstname="Admin", lastname="User", email="admin@localhost", is_default=True,
               api_key=api_key, secret_key=secret))
    s.flush()
    _advance_sequences(s)
    logger.warning("Seeded the admin account: user 'admin' with password 'password'. Change it now"
                   " (updateUser id=<admin user id> password=... currentpassword=password).")
    return api_key, secret


def admin_keys(s: Session) -> tuple[str | None, str | None]:
    user = s.get(User, 2)
    return (user.api_key, user.secret_key) if user is not None else (None, None)


def _advance_sequences(s: Session) -> None:
    """PostgreSQL sequences do not move for explicit ids; point them past the seeded rows."""
    if s.get_bind().dialect.name != "postgresql":
        return
    from sqlalchemy import text

    for table in ("domain", "role", "account", "user"):
        s.execute(text(
            f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), (SELECT max(id) FROM \"{table}\"))"))
