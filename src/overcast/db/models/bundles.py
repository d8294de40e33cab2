"""Bundles (named deployment recipes, an Overcast extension) and registered user data (CloudStack 4.18+).

A bundle's recipe is versioned: every update writes a new ``bundle_version`` row and bumps
``bundle.version``; a VM records the bundle and the version it was deployed from
(``vm_instance.bundle_id`` / ``bundle_version``), and old versions stay readable.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from overcast.db.models.core import Base, BigId, LongText, new_uuid, utcnow

__all__ = ["Bundle", "BundleTag", "BundleVersion", "UserData"]


class Bundle(Base):
    """A recipe owned by an account. ``visibility``: Private (the owner), Domain (every account of the
    owner's domain may list and deploy it) or Public (every account; set by admins)."""

    __tablename__ = "bundle"
    __table_args__ = (
        # A live bundle's name is unique in its account; a deleted one frees its name (live_name NULL).
        UniqueConstraint("account_id", "live_name", name="uq_bundle_account_live_name"),
        Index("ix_bundle_domain_visibility", "domain_id", "visibility"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(40), unique=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(255))
    #: ``name`` while the bundle is live, NULL once deleted.
    live_name: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"), index=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domain.id"))
    visibility: Mapped[str] = mapped_column(String(16), default="Private")
    #: The current version (1 at creation); updated by compare-and-set.
    version: Mapped[int] = mapped_column(Integer, default=1)
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    removed: Mapped[datetime | None] = mapped_column(DateTime)


class BundleVersion(Base):
    """One version of a bundle's recipe: a JSON object (internal row ids, user data, tags, details)."""

    __tablename__ = "bundle_version"
    __table_args__ = (UniqueConstraint("bundle_id", "version", name="uq_bundle_version_bundle_version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    bundle_id: Mapped[int] = mapped_column(ForeignKey("bundle.id"))
    version: Mapped[int] = mapped_column(Integer)
    recipe: Mapped[str] = mapped_column(LongText)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class BundleTag(Base):
    """The tags of a bundle's current version, for ``listBundles tags[i].key/value`` filtering in SQL."""

    __tablename__ = "bundle_tag"
    __table_args__ = (Index("ix_bundle_tag_key_value", "tag_key", "tag_value"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    bundle_id: Mapped[int] = mapped_column(ForeignKey("bundle.id"), index=True)
    tag_key: Mapped[str] = mapped_column(String(255))
    tag_value: Mapped[str] = mapped_column(String(255))


class UserData(Base):
    """Registered user data (CloudStack's ``user_data``): base64 content and its declared variables."""

    __tablename__ = "user_data"
    __table_args__ = (
        UniqueConstraint("account_id", "name", name="uq_user_data_account_name"),
        UniqueConstraint("account_id", "content_hash", name="uq_user_data_account_content_hash"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(40), unique=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(255))
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"), index=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domain.id"))
    #: Base64, re-padded (as validated).
    user_data: Mapped[str] = mapped_column(LongText)
    #: SHA-256 of ``user_data``: "same content already exists" is a unique constraint.
    content_hash: Mapped[str] = mapped_column(String(64))
    #: Comma-separated variable names (``params``), or NULL.
    params: Mapped[str | None] = mapped_column(Text)
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
