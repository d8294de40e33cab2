"""Core tables: identity, sessions, jobs, nodes, events and settings.

Rows have an internal integer ``id`` and a public ``uuid``; only UUIDs cross the API. Tenant rows carry
``account_id`` and ``domain_id`` so list queries scope in SQL. Deletion of accounts, users, domains and
roles is soft (``removed`` set), as in CloudStack, so history and events keep pointing somewhere.
"""

from __future__ import annotations

import uuid as uuidlib
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Integer primary keys: BIGINT on servers, INTEGER on SQLite (where only INTEGER autoincrements).
BigId = BigInteger().with_variant(Integer(), "sqlite")
#: Text of any length: TEXT holds only 64 KiB on MariaDB/MySQL, so LONGTEXT there.
LongText = Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


def utcnow() -> datetime:
    """The current UTC time, naive, second precision (what every timestamp column stores)."""
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def new_uuid() -> str:
    return str(uuidlib.uuid4())


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Domain(Base):
    __tablename__ = "domain"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(40), unique=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(255))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("domain.id"), index=True)
    #: "/" for ROOT, "/a/b/" below it; subtree queries use ``path LIKE '/a/%'``.
    path: Mapped[str] = mapped_column(String(700), index=True)
    level: Mapped[int] = mapped_column(Integer, default=0)
    network_domain: Mapped[str | None] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(32), default="Active")
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    removed: Mapped[datetime | None] = mapped_column(DateTime)


class Role(Base):
    __tablename__ = "role"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(40), unique=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(255))
    #: Admin, ResourceAdmin, DomainAdmin, User (CloudStack's RoleType).
    role_type: Mapped[str] = mapped_column(String(32))
    description: Mapped[str | None] = mapped_column(Text)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    is_public: Mapped[bool] = mapped_column(Boolean, default=True)
    state: Mapped[str] = mapped_column(String(32), default="ENABLED")
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    removed: Mapped[datetime | None] = mapped_column(DateTime)


class RolePermission(Base):
    __tablename__ = "role_permission"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(40), unique=True, default=new_uuid)
    role_id: Mapped[int] = mapped_column(ForeignKey("role.id"), index=True)
    #: An API name or a wildcard such as ``list*`` or ``*``.
    rule: Mapped[str] = mapped_column(String(255))
    permission: Mapped[str] = mapped_column(String(8))  # allow | deny
    description: Mapped[str | None] = mapped_column(Text)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)


class Account(Base):
    __tablename__ = "account"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(40), unique=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(255), index=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domain.id"), index=True)
    #: CloudStack's Account.Type ordinal: 0 user, 1 root admin, 2 domain admin, 3 resource domain
    #: admin, 4 read-only admin, 5 project.
    account_type: Mapped[int] = mapped_column(Integer)
    role_id: Mapped[int | None] = mapped_column(ForeignKey("role.id"))
    #: enabled, disabled, locked
    state: Mapped[str] = mapped_column(String(32), default="enabled")
    network_domain: Mapped[str | None] = mapped_column(String(255))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    removed: Mapped[datetime | None] = mapped_column(DateTime)


class User(Base):
    __tablename__ = "user"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(40), unique=True, default=new_uuid)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"), index=True)
    username: Mapped[str] = mapped_column(String(255), index=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    firstname: Mapped[str | None] = mapped_column(String(255))
    lastname: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(255))
    timezone: Mapped[str | None] = mapped_column(String(64))
    #: enabled, disabled, locked
    state: Mapped[str] = mapped_column(String(32), default="enabled")
    api_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    secret_key: Mapped[str | None] = mapped_column(String(255))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(32), default="UNKNOWN")
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    removed: Mapped[datetime | None] = mapped_column(DateTime)


class Session(Base):
    """A login session: the JSESSIONID cookie names it, the session key guards it against CSRF."""

    __tablename__ = "login_session"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    session_key: Mapped[str] = mapped_column(String(64))
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class AsyncJob(Base):
    """A durable async job. ``status``: 0 pending/in progress, 1 succeeded, 2 failed, 3 cancelled."""

    __tablename__ = "async_job"
    __table_args__ = (
        Index("ix_async_job_status_id", "status", "id"),
        Index("ix_async_job_sync_key_status", "sync_key", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(40), unique=True, default=new_uuid)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"), index=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domain.id"))
    command: Mapped[str] = mapped_column(String(255))
    #: The validated parameters, as JSON (sensitive ones included: jobs need them to run). Of any length:
    #: a deployment's parameters hold up to 1 MB of user data.
    params: Mapped[str] = mapped_column(LongText)
    status: Mapped[int] = mapped_column(Integer, default=0)
    proc_status: Mapped[int] = mapped_column(Integer, default=0)
    result_code: Mapped[int] = mapped_column(Integer, default=0)
    result_type: Mapped[str | None] = mapped_column(String(16))
    result: Mapped[str | None] = mapped_column(Text)
    instance_type: Mapped[str | None] = mapped_column(String(64))
    instance_uuid: Mapped[str | None] = mapped_column(String(40))
    #: Jobs with the same key run one at a time, in id order (CloudStack's sync objects).
    sync_key: Mapped[str | None] = mapped_column(String(128))
    #: The node running the job; NULL while it waits.
    claimed_by: Mapped[str | None] = mapped_column(String(64), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: The Scheduled event recorded when the job was queued; later events of the job point to it.
    start_event_id: Mapped[int | None] = mapped_column(BigId)
    #: A parked job: its command did its work and waits for something ("vm-ready:<uuid>") with no
    #: worker holding it; ``wait_until`` is the deadline. Waking clears it and sets ``resumed``
    #: ("ready" or "timeout"), and a worker runs the command's resume() hook.
    waiting_for: Mapped[str | None] = mapped_column(String(80), index=True)
    wait_until: Mapped[datetime | None] = mapped_column(DateTime)
    resumed: Mapped[str | None] = mapped_column(String(16))
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    completed: Mapped[datetime | None] = mapped_column(DateTime)


class ManagementNode(Base):
    """A running ``overcast serve`` process; jobs of a node whose heartbeat stops are taken over."""

    __tablename__ = "management_node"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    uuid: Mapped[str] = mapped_column(String(40), unique=True, default=new_uuid)
    started: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_heartbeat: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    stopped: Mapped[datetime | None] = mapped_column(DateTime)


class TaskLease(Base):
    """Who runs a periodic task now: a node holds the lease until ``expires`` (one runner cluster-wide)."""

    __tablename__ = "task_lease"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    owner: Mapped[str | None] = mapped_column(String(64))
    expires: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_run: Mapped[datetime | None] = mapped_column(DateTime)


class Event(Base):
    __tablename__ = "event"
    __table_args__ = (Index("ix_event_account_created", "account_id", "created"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(40), unique=True, default=new_uuid)
    event_type: Mapped[str] = mapped_column(String(64), index=True)
    #: Created, Scheduled, Started, Completed
    state: Mapped[str] = mapped_column(String(32))
    level: Mapped[str] = mapped_column(String(16), default="INFO")
    description: Mapped[str] = mapped_column(Text)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"))
    domain_id: Mapped[int] = mapped_column(ForeignKey("domain.id"), index=True)
    resource_type: Mapped[str | None] = mapped_column(String(64))
    resource_uuid: Mapped[str | None] = mapped_column(String(40))
    #: The id of the Scheduled/Started event this one continues, as CloudStack's startid.
    start_id: Mapped[int | None] = mapped_column(BigId)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)


class ConfigValue(Base):
    """A global setting's value at one scope. Defaults live in code, only overrides are stored."""

    __tablename__ = "configuration"
    __table_args__ = (UniqueConstraint("name", "scope", "scope_id", name="uq_configuration_scope"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255))
    #: global, zone, cluster, storagepool, account, domain, ...
    scope: Mapped[str] = mapped_column(String(32), default="global")
    #: Internal id of the scoped row; 0 for global.
    scope_id: Mapped[int] = mapped_column(BigId, default=0)
    value: Mapped[str | None] = mapped_column(Text)
    updated: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


__all__ = [
    "Account",
    "AsyncJob",
    "Base",
    "BigId",
    "LongText",
    "ConfigValue",
    "Domain",
    "Event",
    "ManagementNode",
    "NAMING_CONVENTION",
    "Role",
    "RolePermission",
    "Session",
    "TaskLease",
    "User",
    "new_uuid",
    "utcnow",
]
