"""Authentication: API keys with signatures, login sessions, and the role check on commands."""

from __future__ import annotations

import fnmatch
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from overcast.access.caller import Caller
from overcast.access.identity import normalise_domain_path
from overcast.access.passwords import verify_password
from overcast.access.roles import AccountType, RoleType
from overcast.db.models import Account, Domain, Role, RolePermission, User, utcnow
from overcast.db.models import Session as LoginSession

#: CloudStack's text for every signature/session failure (clients match on it).
UNAUTHORIZED_TEXT = "unable to verify user credentials and/or request signature"


@dataclass(frozen=True, slots=True)
class KeyRecord:
    caller: Caller
    secret: str
    active: bool


def _caller_row(s: Session, where: Any) -> tuple[User, Account, Domain, Role | None] | None:
    row = s.execute(
        select(User, Account, Domain, Role)
        .join(Account, Account.id == User.account_id)
        .join(Domain, Domain.id == Account.domain_id)
        .outerjoin(Role, Role.id == Account.role_id)
        .where(where, User.removed.is_(None), Account.removed.is_(None))
    ).first()
    return None if row is None else (row[0], row[1], row[2], row[3])


def make_caller(user: User, account: Account, domain: Domain, role: Role | None) -> Caller:
    role_type = RoleType(role.role_type) if role else AccountType(account.account_type).default_role_type
    return Caller(
        user_id=user.id, user_uuid=user.uuid, username=user.username, account_id=account.id,
        account_uuid=account.uuid, account_name=account.name, account_type=account.account_type,
        role_id=account.role_id, role_type=role_type, domain_id=domain.id, domain_uuid=domain.uuid,
        domain_name=domain.name, domain_path=domain.path,
    )  # fmt: skip


def is_active(user: User, account: Account) -> bool:
    return user.state == "enabled" and account.state == "enabled"


class Authenticator:
    """Resolves credentials to callers. Caches API keys and role rules for ``ttl`` seconds; any
    identity change in this process clears the cache at once (other nodes see it within ``ttl``)."""

    def __init__(self, sessions: sessionmaker[Session], *, ttl: float = 2.0) -> None:
        self.sessions = sessions
        self.ttl = ttl
        self._lock = threading.Lock()
        self._keys: dict[str, tuple[float, KeyRecord | None]] = {}
        self._rules: dict[int, tuple[float, list[tuple[str, str]]]] = {}

    def invalidate(self) -> None:
        with self._lock:
            self._keys.clear()
            self._rules.clear()

    # -- API keys ----------------------------------------------------------------------------
    def by_api_key(self, api_key: str) -> KeyRecord | None:
        now = time.monotonic()
        hit = self._keys.get(api_key)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        with self.sessions() as s:
            row = _caller_row(s, User.api_key == api_key)
        record = None
        if row is not None and row[0].secret_key:
            user, account, domain, role = row
            record = KeyRecord(make_caller(user, account, domain, role), user.secret_key or "",
                               is_active(user, account))
        with self._lock:
            if len(self._keys) > 10000:
                self._keys.clear()
            self._keys[api_key] = (now, record)
        return record

    # -- sessions ----------------------------------------------------------------------------
    def login(self, s: Session, username: str, password: str, *, domain_path: str | None,
              domain_uuid: str | None) -> tuple[LoginSession, Caller, User] | None:
        if domain_uuid:
            domain = s.scalar(select(Domain).where(Domain.uuid == domain_uuid, Domain.removed.is_(None)))
        else:
            path = normalise_domain_path(domain_path)
            domain = s.scalar(select(Domain).where(Domain.path == path, Domain.removed.is_(None)))
        row = None
        if domain is not None:
            row = _caller_row(s, (User.username == username) & (Account.domain_id == domain.id))
        stored = row[0].password_hash if row else None
        ok = verify_password(password, stored)  # runs even for unknown users: no timing oracle
        if row is None or not ok or not is_active(row[0], row[1]):
            return None
        user, account, dom, role = row
        sess = LoginSession(id=secrets.token_urlsafe(24), user_id=user.id, session_key=secrets.token_urlsafe(20))
        s.add(sess)
        s.flush()
        return sess, make_caller(user, account, dom, role), user

    def by_session(self, s: Session, session_id: str, *, timeout: int) -> tuple[Caller, str] | None:
        sess = s.get(LoginSession, session_id)
        if sess is None:
            return None
        now = utcnow()
        if sess.last_seen < now - timedelta(seconds=timeout):
            s.delete(sess)
            return None
        row = _caller_row(s, User.id == sess.user_id)
        if row is None or not is_active(row[0], row[1]):
            return None
        if (now - sess.last_seen).total_seconds() > 30:
            sess.last_seen = now  # refresh rarely: every request writing would serialise reads
        return make_caller(*row), sess.session_key

    @staticmethod
    def session_key_ok(expected: str, cookie: str | None, param: str | None, mode: str) -> bool:
        def same(v: str | None) -> bool:
            return v is not None and hmac.compare_digest(v.encode(), expected.encode())

        if mode == "ParameterOnly":
            return same(param)
        if mode == "CookieOrParameter":
            return same(cookie) or same(param)
        return same(cookie) and same(param)

    # -- role permissions --------------------------------------------------------------------
    def rules_for(self, role_id: int) -> list[tuple[str, str]]:
        now = time.monotonic()
        hit = self._rules.get(role_id)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        with self.sessions() as s:
            rules = [(r, p) for r, p in s.execute(
                select(RolePermission.rule, RolePermission.permission)
                .where(RolePermission.role_id == role_id)
                .order_by(RolePermission.sort_order, RolePermission.id))]
        with self._lock:
            self._rules[role_id] = (now, rules)
        return rules

    def allowed(self, caller: Caller, command: str, default_roles: frozenset[RoleType]) -> bool:
        """The first matching rule of the caller's role decides; without one, the command's declared
        roles do (CloudStack's dynamic role checker, then its annotation checker)."""
        if caller.role_id is not None:
            for rule, permission in self.rules_for(caller.role_id):
                if fnmatch.fnmatchcase(command, rule):
                    return permission == "allow"
        return caller.role_type in default_roles


_PLAIN_EXPIRES = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}$")


def parse_expires(value: str) -> datetime | None:
    """A signature-version-3 ``expires`` value, in any of the forms CloudStack accepts."""
    text = value.strip()
    if _PLAIN_EXPIRES.match(text):  # the usual form, parsed as strptime would, at a tenth of its cost
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            pass
    for fmt in ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z"):
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
