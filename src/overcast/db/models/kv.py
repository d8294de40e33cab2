"""Key-value storages (the Generic KV Storage extension, built in): the registry, the keys, the history.

One table per concept instead of the original's two Elasticsearch indices per storage: every storage's
keys live in ``kv_entry`` under (storage, key), every history record in ``kv_history``. The storage's
public id is ``uuid`` (for a VM storage, the VM's UUID).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Index, String, Text
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column

from overcast.db.models.core import Base, BigId, LongText, utcnow

__all__ = ["KvEntry", "KvHistory", "KvScroll", "KvStorage"]

#: A key: compared byte for byte everywhere. MariaDB's default collations fold case and ignore
#: trailing spaces ("PAD SPACE"), which would make "a", "A" and "a " one key.
KvKey = String(512).with_variant(mysql.VARCHAR(512, charset="utf8mb4", collation="utf8mb4_nopad_bin"),
                                 "mysql", "mariadb")


class KvStorage(Base):
    """A storage: ``kind`` ACCOUNT, VM or TEMP. Deletion is soft (``deleted``) until the purge task
    removes the row with its keys and history."""

    __tablename__ = "kv_storage"
    __table_args__ = (
        Index("ix_kv_storage_account_kind", "account_id", "kind", "id"),
        Index("ix_kv_storage_deleted", "deleted", "last_updated_ms"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    #: The public id; a VM storage's is its VM's UUID.
    uuid: Mapped[str] = mapped_column(String(40), unique=True)
    kind: Mapped[str] = mapped_column(String(8))
    #: The owner: the account of an ACCOUNT storage, the VM's account, the account that created a
    #: TEMP storage (the original recorded none for TEMP).
    account_id: Mapped[int | None] = mapped_column(ForeignKey("account.id"), index=True)
    domain_id: Mapped[int | None] = mapped_column(ForeignKey("domain.id"))
    vm_id: Mapped[int | None] = mapped_column(BigId, index=True)
    name: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    history_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    ttl_ms: Mapped[int | None] = mapped_column(BigInteger)
    #: Unix milliseconds after which a TEMP storage is gone (refused at once, purged later).
    expires_at_ms: Mapped[int | None] = mapped_column(BigInteger, index=True)
    secret_key: Mapped[str] = mapped_column(String(128))
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Unix milliseconds of the last registry change (0 when never changed, as the original).
    last_updated_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class KvEntry(Base):
    """One key of one storage."""

    __tablename__ = "kv_entry"

    storage_id: Mapped[int] = mapped_column(ForeignKey("kv_storage.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(KvKey, primary_key=True)
    value: Mapped[str] = mapped_column(LongText)


class KvHistory(Base):
    """One history record: ``operation`` set / delete / clear; ``key`` and ``value`` NULL as the
    original writes them (a clear has neither, a delete has no value)."""

    __tablename__ = "kv_history"
    __table_args__ = (Index("ix_kv_history_storage_time", "storage_id", "timestamp_ms", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    storage_id: Mapped[int] = mapped_column(ForeignKey("kv_storage.id", ondelete="CASCADE"))
    key: Mapped[str | None] = mapped_column(KvKey)
    value: Mapped[str | None] = mapped_column(LongText)
    operation: Mapped[str] = mapped_column(String(8))
    timestamp_ms: Mapped[int] = mapped_column(BigInteger)


class KvScroll(Base):
    """An open history scroll: the query it continues and where, until ``expires_at_ms``. Kept in the
    database so that any KV node can continue a scroll another started."""

    __tablename__ = "kv_scroll"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    storage_id: Mapped[int] = mapped_column(ForeignKey("kv_storage.id", ondelete="CASCADE"), index=True)
    #: The query as JSON (filters, sort, page size, the highest history id it may see).
    query: Mapped[str] = mapped_column(Text)
    position: Mapped[int] = mapped_column(BigInteger, default=0)
    expires_at_ms: Mapped[int] = mapped_column(BigInteger, index=True)
