"""Objects on image stores that are not templates: snapshot backups (CloudStack's ``snapshot_store_ref``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from overcast.db.models.core import Base, BigId, utcnow


class SnapshotStoreRef(Base):
    """Where a volume snapshot's backup lives: one row per snapshot and image store."""

    __tablename__ = "snapshot_store_ref"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    snapshot_id: Mapped[int] = mapped_column(ForeignKey("snapshot.id"), index=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("image_store.id"), index=True)
    volume_id: Mapped[int | None] = mapped_column(BigId)
    #: The object's path in the store (``snapshots/<account id>/<volume id>/<snapshot uuid>.<ext>``).
    install_path: Mapped[str] = mapped_column(String(1024))
    #: Bytes stored (the object's size).
    physical_size: Mapped[int] = mapped_column(BigInteger, default=0)
    #: The disk's format in the object: QCOW2 or RAW.
    format: Mapped[str] = mapped_column(String(16), default="RAW")
    #: Creating, Ready, Destroyed, Failed
    state: Mapped[str] = mapped_column(String(32), default="Creating")
    error_str: Mapped[str | None] = mapped_column(Text)
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    removed: Mapped[datetime | None] = mapped_column(DateTime)


__all__ = ["SnapshotStoreRef"]
