"""Infrastructure: zones, pods, clusters, hosts, storage, physical networks and IP ranges."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from overcast.db.models.core import Base, BigId, new_uuid, utcnow


class Zone(Base):
    __tablename__ = "zone"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(40), unique=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(255), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    #: Basic or Advanced
    network_type: Mapped[str] = mapped_column(String(32))
    dns1: Mapped[str | None] = mapped_column(String(64))
    dns2: Mapped[str | None] = mapped_column(String(64))
    internal_dns1: Mapped[str | None] = mapped_column(String(64))
    internal_dns2: Mapped[str | None] = mapped_column(String(64))
    ip6_dns1: Mapped[str | None] = mapped_column(String(64))
    ip6_dns2: Mapped[str | None] = mapped_column(String(64))
    guest_cidr: Mapped[str | None] = mapped_column(String(64))
    network_domain: Mapped[str | None] = mapped_column(String(255))
    #: Dedicated to a domain (and its subdomains), when set.
    domain_id: Mapped[int | None] = mapped_column(ForeignKey("domain.id"))
    allocation_state: Mapped[str] = mapped_column(String(32), default="Disabled")
    security_group_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    local_storage_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    #: JSON object of zone details.
    details: Mapped[str | None] = mapped_column(Text)
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    removed: Mapped[datetime | None] = mapped_column(DateTime)


class Pod(Base):
    __tablename__ = "pod"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(40), unique=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(255))
    zone_id: Mapped[int] = mapped_column(ForeignKey("zone.id"), index=True)
    gateway: Mapped[str | None] = mapped_column(String(64))
    netmask: Mapped[str | None] = mapped_column(String(64))
    allocation_state: Mapped[str] = mapped_column(String(32), default="Enabled")
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    removed: Mapped[datetime | None] = mapped_column(DateTime)


class PodIpRange(Base):
    """A management (private) IP range of a pod; system VMs and hosts draw from it."""

    __tablename__ = "pod_ip_range"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(40), unique=True, default=new_uuid)
    pod_id: Mapped[int] = mapped_column(ForeignKey("pod.id"), index=True)
    start_ip: Mapped[str] = mapped_column(String(64))
    end_ip: Mapped[str] = mapped_column(String(64))
    gateway: Mapped[str | None] = mapped_column(String(64))
    netmask: Mapped[str | None] = mapped_column(String(64))
    vlan: Mapped[str | None] = mapped_column(String(64))
    for_system_vms: Mapped[bool] = mapped_column(Boolean, default=False)


class Cluster(Base):
    __tablename__ = "cluster"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(40), unique=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(255))
    zone_id: Mapped[int] = mapped_column(ForeignKey("zone.id"), index=True)
    pod_id: Mapped[int] = mapped_column(ForeignKey("pod.id"), index=True)
    hypervisor_type: Mapped[str] = mapped_column(String(32))
    cluster_type: Mapped[str] = mapped_column(String(32), default="CloudManaged")
    allocation_state: Mapped[str] = mapped_column(String(32), default="Enabled")
    managed_state: Mapped[str] = mapped_column(String(32), default="Managed")
    cpu_overcommit: Mapped[float | None] = mapped_column()
    mem_overcommit: Mapped[float | None] = mapped_column()
    arch: Mapped[str] = mapped_column(String(16), default="x86_64")
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    removed: Mapped[datetime | None] = mapped_column(DateTime)


class Host(Base):
    """A hypervisor host. ``cpu_used``/``mem_used`` are reserved atomically by the allocator."""

    __tablename__ = "host"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(40), unique=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(255))
    zone_id: Mapped[int] = mapped_column(ForeignKey("zone.id"), index=True)
    pod_id: Mapped[int | None] = mapped_column(ForeignKey("pod.id"))
    cluster_id: Mapped[int | None] = mapped_column(ForeignKey("cluster.id"), index=True)
    #: Routing (hypervisor hosts), SecondaryStorage, ...
    host_type: Mapped[str] = mapped_column(String(32), default="Routing")
    #: Up, Down, Disconnected, Alert, Connecting, Error
    status: Mapped[str] = mapped_column(String(32), default="Up")
    #: Enabled, Disabled, PrepareForMaintenance, Maintenance, ErrorInMaintenance
    resource_state: Mapped[str] = mapped_column(String(32), default="Enabled")
    hypervisor_type: Mapped[str] = mapped_column(String(32))
    hypervisor_version: Mapped[str | None] = mapped_column(String(32))
    url: Mapped[str | None] = mapped_column(String(1024))
    ip_address: Mapped[str | None] = mapped_column(String(64))
    cpu_sockets: Mapped[int] = mapped_column(Integer, default=1)
    cpus: Mapped[int] = mapped_column(Integer)
    #: MHz per core
    speed: Mapped[int] = mapped_column(Integer)
    #: bytes
    total_memory: Mapped[int] = mapped_column(BigInteger)
    cpu_used: Mapped[int] = mapped_column(BigInteger, default=0)
    mem_used: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Comma-separated host tags.
    tags: Mapped[str | None] = mapped_column(String(1024))
    ha_host: Mapped[bool] = mapped_column(Boolean, default=False)
    arch: Mapped[str] = mapped_column(String(16), default="x86_64")
    capabilities: Mapped[str | None] = mapped_column(String(255))
    last_ping: Mapped[datetime | None] = mapped_column(DateTime)
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    removed: Mapped[datetime | None] = mapped_column(DateTime)


class StoragePool(Base):
    """Primary storage. ``used_bytes`` is reserved atomically when volumes are placed."""

    __tablename__ = "storage_pool"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(40), unique=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(255))
    zone_id: Mapped[int] = mapped_column(ForeignKey("zone.id"), index=True)
    pod_id: Mapped[int | None] = mapped_column(ForeignKey("pod.id"))
    cluster_id: Mapped[int | None] = mapped_column(ForeignKey("cluster.id"))
    #: CLUSTER, ZONE or HOST
    scope: Mapped[str] = mapped_column(String(16), default="CLUSTER")
    #: NetworkFilesystem, Filesystem, SharedMountPoint, ...
    pool_type: Mapped[str] = mapped_column(String(32), default="NetworkFilesystem")
    url: Mapped[str] = mapped_column(String(1024))
    host_address: Mapped[str | None] = mapped_column(String(255))
    path: Mapped[str | None] = mapped_column(String(1024))
    capacity_bytes: Mapped[int] = mapped_column(BigInteger)
    used_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Up, Maintenance, PrepareForMaintenance, Disabled, ...
    status: Mapped[str] = mapped_column(String(32), default="Up")
    tags: Mapped[str | None] = mapped_column(String(1024))
    provider: Mapped[str] = mapped_column(String(64), default="DefaultPrimary")
    hypervisor_type: Mapped[str | None] = mapped_column(String(32))
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    removed: Mapped[datetime | None] = mapped_column(DateTime)


class ImageStore(Base):
    """Secondary storage (image store) or a staging (cache) store."""

    __tablename__ = "image_store"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(40), unique=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(255))
    #: NULL for region-wide stores.
    zone_id: Mapped[int | None] = mapped_column(ForeignKey("zone.id"), index=True)
    provider: Mapped[str] = mapped_column(String(64), default="NFS")
    protocol: Mapped[str | None] = mapped_column(String(32))
    url: Mapped[str] = mapped_column(String(1024))
    #: Image or ImageCache
    role: Mapped[str] = mapped_column(String(16), default="Image")
    #: ZONE or REGION
    scope: Mapped[str] = mapped_column(String(16), default="ZONE")
    readonly: Mapped[bool] = mapped_column(Boolean, default=False)
    total_bytes: Mapped[int | None] = mapped_column(BigInteger)
    used_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    #: JSON object of provider details (keys and secrets are kept here, never returned).
    details: Mapped[str | None] = mapped_column(Text)
    #: Round-robin selection of staging stores: the store chosen last has the highest number.
    selection_order: Mapped[int] = mapped_column(BigInteger, default=0)
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    removed: Mapped[datetime | None] = mapped_column(DateTime)


class PhysicalNetwork(Base):
    __tablename__ = "physical_network"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(40), unique=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(255))
    zone_id: Mapped[int] = mapped_column(ForeignKey("zone.id"), index=True)
    vlan: Mapped[str | None] = mapped_column(String(1024))
    isolation_methods: Mapped[str | None] = mapped_column(String(255))
    broadcast_domain_range: Mapped[str] = mapped_column(String(16), default="ZONE")
    state: Mapped[str] = mapped_column(String(32), default="Disabled")
    tags: Mapped[str | None] = mapped_column(String(255))
    network_speed: Mapped[str | None] = mapped_column(String(32))
    domain_id: Mapped[int | None] = mapped_column(ForeignKey("domain.id"))
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    removed: Mapped[datetime | None] = mapped_column(DateTime)


class TrafficType(Base):
    __tablename__ = "physical_network_traffic_type"
    __table_args__ = (UniqueConstraint("physical_network_id", "traffic_type", name="uq_traffic_type_per_network"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(40), unique=True, default=new_uuid)
    physical_network_id: Mapped[int] = mapped_column(ForeignKey("physical_network.id"), index=True)
    #: Public, Guest, Management, Storage
    traffic_type: Mapped[str] = mapped_column(String(32))
    kvm_label: Mapped[str | None] = mapped_column(String(255))
    xen_label: Mapped[str | None] = mapped_column(String(255))
    vmware_label: Mapped[str | None] = mapped_column(String(255))
    simulator_label: Mapped[str | None] = mapped_column(String(255))
    vlan: Mapped[str | None] = mapped_column(String(255))


class NetworkServiceProvider(Base):
    __tablename__ = "physical_network_service_provider"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(40), unique=True, default=new_uuid)
    physical_network_id: Mapped[int] = mapped_column(ForeignKey("physical_network.id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    #: Disabled, Enabled, Shutdown
    state: Mapped[str] = mapped_column(String(32), default="Disabled")
    #: Comma-separated services the provider offers.
    services: Mapped[str] = mapped_column(String(1024), default="")
    dest_physical_network_id: Mapped[int | None] = mapped_column(BigId)
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    removed: Mapped[datetime | None] = mapped_column(DateTime)


class NetworkElement(Base):
    """A configurable element of a provider (VirtualRouter, VpcVirtualRouter, InternalLbVm)."""

    __tablename__ = "network_element"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(40), unique=True, default=new_uuid)
    provider_id: Mapped[int] = mapped_column(ForeignKey("physical_network_service_provider.id"), index=True)
    element_type: Mapped[str] = mapped_column(String(64))
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)


class VlanIpRange(Base):
    """A public (or basic-zone guest) IP range: CloudStack's ``vlan`` table."""

    __tablename__ = "vlan"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(40), unique=True, default=new_uuid)
    zone_id: Mapped[int] = mapped_column(ForeignKey("zone.id"), index=True)
    pod_id: Mapped[int | None] = mapped_column(ForeignKey("pod.id"))
    physical_network_id: Mapped[int | None] = mapped_column(ForeignKey("physical_network.id"))
    network_id: Mapped[int | None] = mapped_column(BigId, index=True)
    vlan_tag: Mapped[str] = mapped_column(String(255), default="untagged")
    gateway: Mapped[str] = mapped_column(String(64))
    netmask: Mapped[str] = mapped_column(String(64))
    start_ip: Mapped[str] = mapped_column(String(64))
    end_ip: Mapped[str] = mapped_column(String(64))
    ip6_gateway: Mapped[str | None] = mapped_column(String(64))
    ip6_cidr: Mapped[str | None] = mapped_column(String(64))
    ip6_range: Mapped[str | None] = mapped_column(String(255))
    #: VirtualNetwork (public ranges) or DirectAttached (basic zone / shared network ranges)
    vlan_type: Mapped[str] = mapped_column(String(32), default="VirtualNetwork")
    for_system_vms: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Dedicated to an account or domain, when set.
    account_id: Mapped[int | None] = mapped_column(ForeignKey("account.id"))
    domain_id: Mapped[int | None] = mapped_column(ForeignKey("domain.id"))
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    removed: Mapped[datetime | None] = mapped_column(DateTime)


class PublicIp(Base):
    """One public address of a range (CloudStack's ``user_ip_address``). Allocated by compare-and-set
    on ``state`` so two concurrent requests never get the same address."""

    __tablename__ = "public_ip"
    __table_args__ = (
        UniqueConstraint("zone_id", "address", name="uq_public_ip_zone_address"),
        Index("ix_public_ip_zone_state", "zone_id", "state"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(40), unique=True, default=new_uuid)
    address: Mapped[str] = mapped_column(String(64))
    zone_id: Mapped[int] = mapped_column(ForeignKey("zone.id"))
    vlan_id: Mapped[int] = mapped_column(ForeignKey("vlan.id"), index=True)
    #: Free, Allocating, Allocated, Releasing, Reserved
    state: Mapped[str] = mapped_column(String(32), default="Free")
    account_id: Mapped[int | None] = mapped_column(ForeignKey("account.id"), index=True)
    domain_id: Mapped[int | None] = mapped_column(ForeignKey("domain.id"))
    network_id: Mapped[int | None] = mapped_column(BigId, index=True)
    vpc_id: Mapped[int | None] = mapped_column(BigId)
    source_nat: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Static NAT target.
    vm_id: Mapped[int | None] = mapped_column(BigId)
    vm_ip: Mapped[str | None] = mapped_column(String(64))
    is_system: Mapped[bool] = mapped_column(Boolean, default=False)
    for_display: Mapped[bool] = mapped_column(Boolean, default=True)
    allocated: Mapped[datetime | None] = mapped_column(DateTime)


__all__ = [
    "Cluster", "Host", "ImageStore", "NetworkElement", "NetworkServiceProvider", "PhysicalNetwork", "Pod",
    "PodIpRange", "PublicIp", "StoragePool", "TrafficType", "VlanIpRange", "Zone",
]  # fmt: skip
