"""Tenant resources around VMs: instances, NICs, volumes, snapshots, keys, groups, tags, limits."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from overcast.db.models.core import Base, BigId, LongText, new_uuid, utcnow


class VirtualMachine(Base):
    """A user VM (CloudStack's ``vm_instance`` + ``user_vm``).

    ``update_count`` guards state transitions: a transition is an UPDATE that names the state and the
    count it read, so two racing operations can't both move the VM.
    """

    __tablename__ = "vm_instance"
    __table_args__ = (
        Index("ix_vm_instance_account_removed", "account_id", "removed"),
        Index("ix_vm_instance_state_changed", "state", "state_changed"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(40), unique=True, default=new_uuid)
    #: The host name.
    name: Mapped[str] = mapped_column(String(255), index=True)
    display_name: Mapped[str | None] = mapped_column(String(255))
    #: i-<account id>-<vm id>-<instance.name>
    instance_name: Mapped[str] = mapped_column(String(255))
    #: Starting, Running, Stopping, Stopped, Destroyed, Expunging, Migrating, Error, Unknown, Shutdown,
    #: Restoring
    state: Mapped[str] = mapped_column(String(32), default="Stopped")
    state_changed: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    update_count: Mapped[int] = mapped_column(BigInteger, default=0)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"))
    domain_id: Mapped[int] = mapped_column(ForeignKey("domain.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    zone_id: Mapped[int] = mapped_column(ForeignKey("zone.id"), index=True)
    pod_id: Mapped[int | None] = mapped_column(ForeignKey("pod.id"))
    host_id: Mapped[int | None] = mapped_column(ForeignKey("host.id"), index=True)
    last_host_id: Mapped[int | None] = mapped_column(ForeignKey("host.id"))
    template_id: Mapped[int] = mapped_column(ForeignKey("vm_template.id"), index=True)
    iso_id: Mapped[int | None] = mapped_column(ForeignKey("vm_template.id"))
    guest_os_id: Mapped[int | None] = mapped_column(ForeignKey("guest_os.id"))
    service_offering_id: Mapped[int] = mapped_column(ForeignKey("service_offering.id"))
    hypervisor_type: Mapped[str] = mapped_column(String(32))
    #: Effective CPU count, MHz and MB (the offering's, or the request's for custom offerings).
    cpu: Mapped[int] = mapped_column(Integer)
    speed: Mapped[int] = mapped_column(Integer)
    memory: Mapped[int] = mapped_column(Integer)
    ha_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    display_vm: Mapped[bool] = mapped_column(Boolean, default=True)
    dynamically_scalable: Mapped[bool] = mapped_column(Boolean, default=False)
    delete_protection: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Base64 user data as given (re-padded).
    user_data: Mapped[str | None] = mapped_column(LongText)
    userdata_id: Mapped[int | None] = mapped_column(BigId)
    userdata_details: Mapped[str | None] = mapped_column(Text)
    #: The guest password set at deploy or reset, until the guest has fetched it.
    password: Mapped[str | None] = mapped_column(String(255))
    #: Comma-separated SSH key pair names.
    keypairs: Mapped[str | None] = mapped_column(Text)
    boot_type: Mapped[str] = mapped_column(String(16), default="BIOS")
    boot_mode: Mapped[str] = mapped_column(String(16), default="LEGACY")
    #: JSON object of VM details.
    details: Mapped[str | None] = mapped_column(Text)
    #: Bundle (recipe) the VM was deployed from, and its version.
    bundle_id: Mapped[int | None] = mapped_column(BigId)
    bundle_version: Mapped[int | None] = mapped_column(Integer)
    #: When the guest reported that it is configured and ready (KV storage key or metadata service);
    #: NULL until then, and again once the VM stops or is reinstalled.
    ready_at: Mapped[datetime | None] = mapped_column(DateTime)
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    #: Set when the VM is expunged.
    removed: Mapped[datetime | None] = mapped_column(DateTime)


class Nic(Base):
    """A VM's NIC. ``(network_id, ip_address)`` is unique, so an address is never handed out twice;
    a released NIC clears its address."""

    __tablename__ = "nic"
    __table_args__ = (UniqueConstraint("network_id", "ip_address", name="uq_nic_network_ip"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(40), unique=True, default=new_uuid)
    vm_id: Mapped[int] = mapped_column(ForeignKey("vm_instance.id"), index=True)
    network_id: Mapped[int] = mapped_column(ForeignKey("network.id"), index=True)
    ip_address: Mapped[str | None] = mapped_column(String(64))
    netmask: Mapped[str | None] = mapped_column(String(64))
    gateway: Mapped[str | None] = mapped_column(String(64))
    ip6_address: Mapped[str | None] = mapped_column(String(64))
    mac_address: Mapped[str | None] = mapped_column(String(32), unique=True)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    device_id: Mapped[int] = mapped_column(Integer, default=0)
    broadcast_uri: Mapped[str | None] = mapped_column(String(255))
    isolation_uri: Mapped[str | None] = mapped_column(String(255))
    #: Allocated, Reserved, Releasing, Deallocating
    state: Mapped[str] = mapped_column(String(32), default="Reserved")
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    removed: Mapped[datetime | None] = mapped_column(DateTime)


class Volume(Base):
    __tablename__ = "volume"
    __table_args__ = (Index("ix_volume_account_removed", "account_id", "removed"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(40), unique=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(255))
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"))
    domain_id: Mapped[int] = mapped_column(ForeignKey("domain.id"), index=True)
    zone_id: Mapped[int] = mapped_column(ForeignKey("zone.id"))
    pool_id: Mapped[int | None] = mapped_column(ForeignKey("storage_pool.id"), index=True)
    vm_id: Mapped[int | None] = mapped_column(ForeignKey("vm_instance.id"), index=True)
    device_id: Mapped[int | None] = mapped_column(Integer)
    #: ROOT, DATADISK
    volume_type: Mapped[str] = mapped_column(String(16))
    #: Allocated, Creating, Ready, Migrating, Snapshotting, Resizing, Destroy, Expunging, Expunged, ...
    state: Mapped[str] = mapped_column(String(32), default="Allocated")
    #: bytes
    size: Mapped[int] = mapped_column(BigInteger)
    disk_offering_id: Mapped[int | None] = mapped_column(ForeignKey("disk_offering.id"))
    template_id: Mapped[int | None] = mapped_column(ForeignKey("vm_template.id"))
    path: Mapped[str | None] = mapped_column(String(1024))
    format: Mapped[str | None] = mapped_column(String(16))
    provisioning_type: Mapped[str] = mapped_column(String(32), default="thin")
    min_iops: Mapped[int | None] = mapped_column(BigInteger)
    max_iops: Mapped[int | None] = mapped_column(BigInteger)
    display_volume: Mapped[bool] = mapped_column(Boolean, default=True)
    delete_protection: Mapped[bool] = mapped_column(Boolean, default=False)
    attached: Mapped[datetime | None] = mapped_column(DateTime)
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    removed: Mapped[datetime | None] = mapped_column(DateTime)


class Snapshot(Base):
    __tablename__ = "snapshot"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(40), unique=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(255))
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"), index=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domain.id"))
    zone_id: Mapped[int] = mapped_column(ForeignKey("zone.id"))
    volume_id: Mapped[int] = mapped_column(ForeignKey("volume.id"), index=True)
    #: MANUAL, RECURRING (HOURLY, DAILY, WEEKLY, MONTHLY by interval)
    snapshot_type: Mapped[str] = mapped_column(String(16), default="MANUAL")
    interval_type: Mapped[str | None] = mapped_column(String(16))
    policy_id: Mapped[int | None] = mapped_column(BigId)
    #: Allocated, Creating, CreatedOnPrimary, BackingUp, BackedUp, Destroying, Destroyed, Error
    state: Mapped[str] = mapped_column(String(32), default="Allocated")
    location_type: Mapped[str | None] = mapped_column(String(16))
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    physical_size: Mapped[int] = mapped_column(BigInteger, default=0)
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    removed: Mapped[datetime | None] = mapped_column(DateTime)


class SnapshotPolicy(Base):
    __tablename__ = "snapshot_policy"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(40), unique=True, default=new_uuid)
    volume_id: Mapped[int] = mapped_column(ForeignKey("volume.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"))
    domain_id: Mapped[int] = mapped_column(ForeignKey("domain.id"))
    #: HOURLY, DAILY, WEEKLY, MONTHLY
    interval_type: Mapped[str] = mapped_column(String(16))
    #: CloudStack's schedule string: "MM" hourly, "MM:HH" daily, "MM:HH:D" weekly/monthly.
    schedule: Mapped[str] = mapped_column(String(64))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    max_snaps: Mapped[int] = mapped_column(Integer)
    display: Mapped[bool] = mapped_column(Boolean, default=True)
    next_run: Mapped[datetime | None] = mapped_column(DateTime, index=True)
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    removed: Mapped[datetime | None] = mapped_column(DateTime)


class VmSnapshot(Base):
    __tablename__ = "vm_snapshot"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(40), unique=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(String(4096))
    vm_id: Mapped[int] = mapped_column(ForeignKey("vm_instance.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"))
    domain_id: Mapped[int] = mapped_column(ForeignKey("domain.id"))
    #: Allocated, Creating, Ready, Reverting, Expunging, Removed, Error
    state: Mapped[str] = mapped_column(String(32), default="Allocated")
    #: Disk, DiskAndMemory
    snapshot_type: Mapped[str] = mapped_column(String(16), default="Disk")
    parent_id: Mapped[int | None] = mapped_column(BigId)
    current: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    removed: Mapped[datetime | None] = mapped_column(DateTime)


class InstanceGroup(Base):
    __tablename__ = "instance_group"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(40), unique=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(255))
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"), index=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domain.id"))
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    removed: Mapped[datetime | None] = mapped_column(DateTime)


class InstanceGroupVm(Base):
    __tablename__ = "instance_group_vm_map"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("instance_group.id"), index=True)
    vm_id: Mapped[int] = mapped_column(ForeignKey("vm_instance.id"), unique=True)


class SshKeyPair(Base):
    __tablename__ = "ssh_keypairs"
    __table_args__ = (UniqueConstraint("account_id", "name", name="uq_ssh_keypair_account_name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(40), unique=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(255))
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"))
    domain_id: Mapped[int] = mapped_column(ForeignKey("domain.id"))
    fingerprint: Mapped[str] = mapped_column(String(255))
    public_key: Mapped[str] = mapped_column(Text)
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class AffinityGroup(Base):
    __tablename__ = "affinity_group"
    __table_args__ = (UniqueConstraint("account_id", "name", name="uq_affinity_group_account_name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(40), unique=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(255))
    #: "host anti-affinity", "host affinity"
    group_type: Mapped[str] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(String(4096))
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"))
    domain_id: Mapped[int] = mapped_column(ForeignKey("domain.id"))
    #: Account or Domain
    acl_type: Mapped[str] = mapped_column(String(16), default="Account")
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class AffinityGroupVm(Base):
    __tablename__ = "affinity_group_vm_map"
    __table_args__ = (UniqueConstraint("group_id", "vm_id", name="uq_affinity_group_vm"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("affinity_group.id"), index=True)
    vm_id: Mapped[int] = mapped_column(ForeignKey("vm_instance.id"), index=True)


class ResourceTag(Base):
    __tablename__ = "resource_tags"
    __table_args__ = (
        UniqueConstraint("resource_type", "resource_id", "tag_key", name="uq_resource_tag_key"),
        Index("ix_resource_tags_lookup", "resource_type", "tag_key", "tag_value"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(40), unique=True, default=new_uuid)
    tag_key: Mapped[str] = mapped_column(String(255))
    tag_value: Mapped[str] = mapped_column(String(255))
    #: UserVm, Volume, Snapshot, Template, ISO, Network, PublicIpAddress, SecurityGroup, ...
    resource_type: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[int] = mapped_column(BigId)
    resource_uuid: Mapped[str] = mapped_column(String(40))
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"), index=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domain.id"))
    customer: Mapped[str | None] = mapped_column(String(255))


def resource_owner_key(account_id: int | None, domain_id: int | None) -> str:
    """``a<account id>`` or ``d<domain id>``: the owner of a limit or count as one non-NULL value, so a
    unique constraint holds (a NULL ``account_id`` or ``domain_id`` would make every row distinct)."""
    return f"a{account_id}" if account_id is not None else f"d{domain_id}"


class ResourceLimit(Base):
    """A limit set for an account or a domain (-1: unlimited). Absent rows use the defaults."""

    __tablename__ = "resource_limit"
    __table_args__ = (UniqueConstraint("resource_type", "owner_key", name="uq_resource_limit_owner"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    resource_type: Mapped[str] = mapped_column(String(32))
    #: :func:`resource_owner_key` of the account or domain.
    owner_key: Mapped[str] = mapped_column(String(32))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("account.id"))
    domain_id: Mapped[int | None] = mapped_column(ForeignKey("domain.id"))
    max: Mapped[int] = mapped_column(BigInteger)


class ResourceCount(Base):
    """What an account or a domain uses. Changed only by ``UPDATE ... SET count = count + n WHERE
    count + n <= limit``, so concurrent deploys can't pass a limit (CVE-2025-69233). One row per owner
    and type (``owner_key`` is unique with the type), so two transactions can't each create their own."""

    __tablename__ = "resource_count"
    __table_args__ = (UniqueConstraint("resource_type", "owner_key", name="uq_resource_count_owner"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    resource_type: Mapped[str] = mapped_column(String(32))
    #: :func:`resource_owner_key` of the account or domain.
    owner_key: Mapped[str] = mapped_column(String(32))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("account.id"), index=True)
    domain_id: Mapped[int | None] = mapped_column(ForeignKey("domain.id"), index=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)


__all__ = [
    "AffinityGroup", "AffinityGroupVm", "InstanceGroup", "InstanceGroupVm", "Nic", "ResourceCount",
    "ResourceLimit", "ResourceTag", "Snapshot", "SnapshotPolicy", "SshKeyPair", "VirtualMachine",
    "VmSnapshot", "Volume", "resource_owner_key",
]  # fmt: skip
