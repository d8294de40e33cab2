"""Catalogues: offerings, guest OS types, hypervisor capabilities, templates and ISOs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from overcast.db.models.core import Base, BigId, new_uuid, utcnow


class DiskOffering(Base):
    __tablename__ = "disk_offering"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(40), unique=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(255))
    display_text: Mapped[str | None] = mapped_column(String(4096))
    #: bytes; 0 with ``customized`` means the size comes with the request.
    disk_size: Mapped[int] = mapped_column(BigInteger, default=0)
    customized: Mapped[bool] = mapped_column(Boolean, default=False)
    #: shared or local
    storage_type: Mapped[str] = mapped_column(String(16), default="shared")
    tags: Mapped[str | None] = mapped_column(String(1024))
    provisioning_type: Mapped[str] = mapped_column(String(32), default="thin")
    min_iops: Mapped[int | None] = mapped_column(BigInteger)
    max_iops: Mapped[int | None] = mapped_column(BigInteger)
    customized_iops: Mapped[bool] = mapped_column(Boolean, default=False)
    cache_mode: Mapped[str | None] = mapped_column(String(16))
    display_offering: Mapped[bool] = mapped_column(Boolean, default=True)
    #: Offerings made for one service offering's root disk are not listed on their own.
    compute_only: Mapped[bool] = mapped_column(Boolean, default=False)
    encrypt: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Comma-separated internal ids of the domains / zones it is limited to (empty: public / all).
    domain_ids: Mapped[str | None] = mapped_column(String(1024))
    zone_ids: Mapped[str | None] = mapped_column(String(1024))
    state: Mapped[str] = mapped_column(String(16), default="Active")
    sort_key: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    removed: Mapped[datetime | None] = mapped_column(DateTime)


class ServiceOffering(Base):
    __tablename__ = "service_offering"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(40), unique=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(255))
    display_text: Mapped[str | None] = mapped_column(String(4096))
    #: NULL for custom offerings (the request gives them, within the min/max below).
    cpu: Mapped[int | None] = mapped_column(Integer)
    speed: Mapped[int | None] = mapped_column(Integer)
    #: MB
    ram_size: Mapped[int | None] = mapped_column(Integer)
    customized: Mapped[bool] = mapped_column(Boolean, default=False)
    min_cpu: Mapped[int | None] = mapped_column(Integer)
    max_cpu: Mapped[int | None] = mapped_column(Integer)
    min_memory: Mapped[int | None] = mapped_column(Integer)
    max_memory: Mapped[int | None] = mapped_column(Integer)
    ha_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    limit_cpu_use: Mapped[bool] = mapped_column(Boolean, default=False)
    host_tag: Mapped[str | None] = mapped_column(String(255))
    is_system: Mapped[bool] = mapped_column(Boolean, default=False)
    system_vm_type: Mapped[str | None] = mapped_column(String(32))
    network_rate: Mapped[int | None] = mapped_column(Integer)
    deployment_planner: Mapped[str | None] = mapped_column(String(255))
    dynamic_scaling_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    #: A volatile VM gets a fresh root disk from its template on every reboot.
    is_volatile: Mapped[bool] = mapped_column(Boolean, default=False)
    #: The disk offering of the root disk (storage type, tags, size).
    disk_offering_id: Mapped[int] = mapped_column(ForeignKey("disk_offering.id"))
    #: bytes; 0: the template's size
    root_disk_size: Mapped[int] = mapped_column(BigInteger, default=0)
    domain_ids: Mapped[str | None] = mapped_column(String(1024))
    zone_ids: Mapped[str | None] = mapped_column(String(1024))
    state: Mapped[str] = mapped_column(String(16), default="Active")
    details: Mapped[str | None] = mapped_column(Text)
    sort_key: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    removed: Mapped[datetime | None] = mapped_column(DateTime)


class NetworkOffering(Base):
    __tablename__ = "network_offering"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(40), unique=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(255), index=True)
    display_text: Mapped[str | None] = mapped_column(String(4096))
    traffic_type: Mapped[str] = mapped_column(String(32), default="Guest")
    #: Isolated, Shared, L2
    guest_ip_type: Mapped[str] = mapped_column(String(32))
    specify_vlan: Mapped[bool] = mapped_column(Boolean, default=False)
    specify_ip_ranges: Mapped[bool] = mapped_column(Boolean, default=False)
    conserve_mode: Mapped[bool] = mapped_column(Boolean, default=True)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    is_persistent: Mapped[bool] = mapped_column(Boolean, default=False)
    egress_default_policy: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Required: a network of this offering is created for accounts that have none; Optional otherwise.
    availability: Mapped[str] = mapped_column(String(16), default="Optional")
    for_vpc: Mapped[bool] = mapped_column(Boolean, default=False)
    system_only: Mapped[bool] = mapped_column(Boolean, default=False)
    network_rate: Mapped[int | None] = mapped_column(Integer)
    #: JSON object: service name -> list of provider names.
    services: Mapped[str] = mapped_column(Text, default="{}")
    tags: Mapped[str | None] = mapped_column(String(255))
    domain_ids: Mapped[str | None] = mapped_column(String(1024))
    zone_ids: Mapped[str | None] = mapped_column(String(1024))
    #: Enabled, Disabled
    state: Mapped[str] = mapped_column(String(16), default="Enabled")
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    removed: Mapped[datetime | None] = mapped_column(DateTime)


class GuestOsCategory(Base):
    __tablename__ = "guest_os_category"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(40), unique=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    featured: Mapped[bool] = mapped_column(Boolean, default=False)
    sort_key: Mapped[int] = mapped_column(Integer, default=0)


class GuestOs(Base):
    __tablename__ = "guest_os"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(40), unique=True, default=new_uuid)
    category_id: Mapped[int] = mapped_column(ForeignKey("guest_os_category.id"), index=True)
    display_name: Mapped[str] = mapped_column(String(255))
    is_user_defined: Mapped[bool] = mapped_column(Boolean, default=False)
    display: Mapped[bool] = mapped_column(Boolean, default=True)
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    removed: Mapped[datetime | None] = mapped_column(DateTime)


class HypervisorCapability(Base):
    __tablename__ = "hypervisor_capabilities"
    __table_args__ = (UniqueConstraint("hypervisor_type", "hypervisor_version", name="uq_hypervisor_version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(40), unique=True, default=new_uuid)
    hypervisor_type: Mapped[str] = mapped_column(String(32))
    hypervisor_version: Mapped[str] = mapped_column(String(32), default="default")
    max_guests_limit: Mapped[int] = mapped_column(Integer, default=50)
    max_data_volumes_limit: Mapped[int] = mapped_column(Integer, default=6)
    max_hosts_per_cluster: Mapped[int | None] = mapped_column(Integer)
    security_group_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    storage_motion_supported: Mapped[bool] = mapped_column(Boolean, default=True)
    vm_snapshot_enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class Template(Base):
    """A template or an ISO (``format == 'ISO'``), CloudStack's ``vm_template``."""

    __tablename__ = "vm_template"
    __table_args__ = (Index("ix_vm_template_account_removed", "account_id", "removed"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(40), unique=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(255), index=True)
    display_text: Mapped[str | None] = mapped_column(String(4096))
    #: QCOW2, RAW, VHD, OVA, ISO, ...
    format: Mapped[str] = mapped_column(String(32))
    #: USER, BUILTIN, SYSTEM, ROUTING, PERHOST, VNF
    template_type: Mapped[str] = mapped_column(String(32), default="USER")
    hypervisor_type: Mapped[str | None] = mapped_column(String(32))
    bits: Mapped[int] = mapped_column(Integer, default=64)
    url: Mapped[str | None] = mapped_column(String(2048))
    checksum: Mapped[str | None] = mapped_column(String(255))
    is_public: Mapped[bool] = mapped_column(Boolean, default=False)
    featured: Mapped[bool] = mapped_column(Boolean, default=False)
    extractable: Mapped[bool] = mapped_column(Boolean, default=False)
    password_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    sshkey_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    requires_hvm: Mapped[bool] = mapped_column(Boolean, default=True)
    dynamically_scalable: Mapped[bool] = mapped_column(Boolean, default=False)
    cross_zones: Mapped[bool] = mapped_column(Boolean, default=False)
    bootable: Mapped[bool] = mapped_column(Boolean, default=True)
    direct_download: Mapped[bool] = mapped_column(Boolean, default=False)
    guest_os_id: Mapped[int | None] = mapped_column(ForeignKey("guest_os.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"))
    domain_id: Mapped[int] = mapped_column(ForeignKey("domain.id"), index=True)
    source_template_id: Mapped[int | None] = mapped_column(BigId)
    template_tag: Mapped[str | None] = mapped_column(String(255))
    #: bytes (virtual size)
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    physical_size: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Active, Inactive, NotUploaded, UploadInProgress, UploadError, UploadAbandoned
    state: Mapped[str] = mapped_column(String(32), default="Active")
    arch: Mapped[str] = mapped_column(String(16), default="x86_64")
    details: Mapped[str | None] = mapped_column(Text)
    userdata_id: Mapped[int | None] = mapped_column(BigId)
    userdata_policy: Mapped[str | None] = mapped_column(String(32))
    sort_key: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    removed: Mapped[datetime | None] = mapped_column(DateTime)


class TemplateZone(Base):
    """Where a template is (or is being made) available: one row per zone and image store."""

    __tablename__ = "template_zone_ref"
    __table_args__ = (UniqueConstraint("template_id", "zone_id", "store_id", name="uq_template_zone_store"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("vm_template.id"), index=True)
    zone_id: Mapped[int] = mapped_column(ForeignKey("zone.id"), index=True)
    store_id: Mapped[int | None] = mapped_column(ForeignKey("image_store.id"))
    #: Allocated, Creating, Ready, Destroyed
    state: Mapped[str] = mapped_column(String(32), default="Ready")
    #: NOT_DOWNLOADED, DOWNLOAD_IN_PROGRESS, DOWNLOADED, DOWNLOAD_ERROR, ABANDONED, BYPASSED
    download_state: Mapped[str] = mapped_column(String(32), default="DOWNLOADED")
    download_pct: Mapped[int] = mapped_column(Integer, default=100)
    error_str: Mapped[str | None] = mapped_column(Text)
    install_path: Mapped[str | None] = mapped_column(String(1024))
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    physical_size: Mapped[int] = mapped_column(BigInteger, default=0)
    #: The management node running this ref's download or upload (NULL: none is); a ref claimed by a node
    #: that stopped is taken over (run again, or failed after ``download_attempts`` tries).
    download_node: Mapped[str | None] = mapped_column(String(64))
    download_attempts: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    removed: Mapped[datetime | None] = mapped_column(DateTime)


class TemplatePool(Base):
    """A template seeded on a primary storage pool (prepareTemplate, first deploy)."""

    __tablename__ = "template_pool_ref"
    __table_args__ = (UniqueConstraint("template_id", "pool_id", name="uq_template_pool"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("vm_template.id"))
    pool_id: Mapped[int] = mapped_column(ForeignKey("storage_pool.id"), index=True)
    state: Mapped[str] = mapped_column(String(32), default="Ready")
    #: The cached copy's file name in the pool's directory (None: no bytes cached yet).
    install_path: Mapped[str | None] = mapped_column(String(1024))
    #: Bytes of the cached copy.
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Volumes on the pool made from (and, as qcow2 overlays, backed by) the cached copy.
    ref_count: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class LaunchPermission(Base):
    """Accounts a private template or ISO is shared with (updateTemplatePermissions)."""

    __tablename__ = "launch_permission"
    __table_args__ = (UniqueConstraint("template_id", "account_id", name="uq_launch_permission"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("vm_template.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"), index=True)


__all__ = [
    "DiskOffering", "GuestOs", "GuestOsCategory", "HypervisorCapability", "LaunchPermission",
    "NetworkOffering", "ServiceOffering", "Template", "TemplatePool", "TemplateZone",
]  # fmt: skip
