"""Capacity as listCapacity (and ``showcapacities``) report it, aggregated in SQL from the rows that hold it.

CloudStack keeps an ``op_host_capacity`` table that a background job refreshes; here every figure is
summed from the live rows (hosts, pools, public addresses, ranges, stores) when asked, so the numbers
are never stale. Types, as CloudStack numbers them (``Capacity.CAPACITY_TYPE_*``):

====  ==========================  ==============================================================
type  name                        used / total
====  ==========================  ==============================================================
0     MEMORY                      reserved bytes of Enabled hosts / their memory x overcommit
1     CPU                         reserved MHz / cpus x speed x overcommit
2     STORAGE                     used bytes of primary pools / their capacity
3     STORAGE_ALLOCATED           allocated bytes / capacity x storage.overprovisioning.factor
4     VIRTUAL_NETWORK_PUBLIC_IP   public addresses not Free / all public addresses
5     PRIVATE_IP                  host addresses in pod ranges / addresses of the pod ranges
6     SECONDARY_STORAGE           used bytes of image stores / their size
7     VLAN                        guest VLANs taken by networks / VLANs of the physical networks
8     DIRECT_ATTACHED_PUBLIC_IP   NIC addresses in shared ranges / addresses of those ranges
====  ==========================  ==============================================================

Rows are per zone, or per pod (``podid``) or cluster (``clusterid``) for the types that have one.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from overcast.config.globals import GlobalSettings
from overcast.db.models import (
    Cluster,
    Host,
    ImageStore,
    Network,
    Nic,
    PhysicalNetwork,
    PodIpRange,
    PublicIp,
    StoragePool,
    VlanIpRange,
)
from overcast.engine.capacity import overcommit

MEMORY, CPU, STORAGE, STORAGE_ALLOCATED, PUBLIC_IP, PRIVATE_IP, SECONDARY_STORAGE, VLAN, DIRECT_IP = range(9)
NAMES = {
    MEMORY: "MEMORY", CPU: "CPU", STORAGE: "STORAGE", STORAGE_ALLOCATED: "STORAGE_ALLOCATED",
    PUBLIC_IP: "VIRTUAL_NETWORK_PUBLIC_IP", PRIVATE_IP: "PRIVATE_IP", SECONDARY_STORAGE: "SECONDARY_STORAGE",
    VLAN: "VLAN", DIRECT_IP: "DIRECT_ATTACHED_PUBLIC_IP",
}  # fmt: skip
#: Types that exist per pod and per cluster.
POD_TYPES = (MEMORY, CPU, STORAGE, STORAGE_ALLOCATED, PRIVATE_IP, DIRECT_IP)
CLUSTER_TYPES = (MEMORY, CPU, STORAGE, STORAGE_ALLOCATED)


@dataclass
class CapacityRow:
    type: int
    zone_id: int
    pod_id: int | None
    cluster_id: int | None
    used: int
    total: int

    @property
    def percent(self) -> float:
        return self.used / self.total * 100 if self.total else 0.0


def percent_text(used: float, total: float) -> str:
    """A percentage as CloudStack prints it (``DecimalFormat("##.##")``): ``0``, ``12.5``, ``33.33``."""
    if not total:
        return "0"
    text = f"{used / total * 100:.2f}".rstrip("0").rstrip(".")
    return text or "0"


def number_text(value: float) -> str:
    """A number in a string field: ``32000`` rather than ``32000.0``."""
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}".rstrip("0").rstrip(".")


def range_size(start: str, end: str) -> int:
    try:
        return max(int(ipaddress.ip_address(end)) - int(ipaddress.ip_address(start)) + 1, 0)
    except ValueError:
        return 0


def in_range(ip: str | None, start: str, end: str) -> bool:
    if not ip:
        return False
    try:
        value = int(ipaddress.ip_address(ip))
        return int(ipaddress.ip_address(start)) <= value <= int(ipaddress.ip_address(end))
    except ValueError:
        return False


def vlan_count(spec: str | None) -> int:
    """Number of VLAN ids in ``100-200,300`` style ranges."""
    total = 0
    for part in (spec or "").split(","):
        lo, _, hi = part.strip().partition("-")
        if lo.strip().isdigit() and (not hi or hi.strip().isdigit()):
            total += int(hi or lo) - int(lo) + 1
    return total


class CapacityReport:
    """Computes capacity rows for zones, pods or clusters."""

    def __init__(self, session: Session, settings: GlobalSettings) -> None:
        self.s = session
        self.settings = settings

    def rows(self, *, zone_ids: list[int] | None = None, pod_id: int | None = None,
             cluster_id: int | None = None, types: list[int] | None = None) -> list[CapacityRow]:
        """Rows at the level the filters ask for: cluster, pod, else zone."""
        level = "cluster" if cluster_id is not None else "pod" if pod_id is not None else "zone"
        wanted = set(types) if types is not None else set(NAMES)
        allowed = {"cluster": set(CLUSTER_TYPES), "pod": set(POD_TYPES), "zone": set(NAMES)}[level]
        wanted &= allowed
        acc: dict[tuple[int, int, int | None, int | None], list[int]] = {}

        def add(t: int, zone: int, pod: int | None, cluster: int | None, used: float, total: float) -> None:
            if t not in wanted:
                return
            if zone_ids is not None and zone not in zone_ids:
                return
            if level in ("pod", "cluster") and pod != pod_id:
                return
            if level == "cluster" and cluster != cluster_id:
                return
            key = (t, zone, pod if level != "zone" else None, cluster if level == "cluster" else None)
            slot = acc.setdefault(key, [0, 0])
            slot[0] += int(used)
            slot[1] += int(total)

        if wanted & {MEMORY, CPU}:
            self._hosts(add)
        if wanted & {STORAGE, STORAGE_ALLOCATED}:
            self._pools(add, level)
        if PUBLIC_IP in wanted and level == "zone":
            self._public_ips(add)
        if PRIVATE_IP in wanted:
            self._private_ips(add)
        if SECONDARY_STORAGE in wanted and level == "zone":
            self._stores(add)
        if VLAN in wanted and level == "zone":
            self._vlans(add)
        if DIRECT_IP in wanted:
            self._direct_ips(add)
        return [CapacityRow(t, z, p, c, used, total) for (t, z, p, c), (used, total) in sorted(
            acc.items(), key=lambda kv: (kv[0][1], kv[0][2] or 0, kv[0][3] or 0, kv[0][0]))]

    # -- the sources ------------------------------------------------------------------------------
    def _hosts(self, add) -> None:  # type: ignore[no-untyped-def]
        stmt = (select(Host.zone_id, Host.pod_id, Host.cluster_id, func.sum(Host.mem_used),
                       func.sum(Host.total_memory), func.sum(Host.cpu_used), func.sum(Host.cpus * Host.speed))
                .where(Host.removed.is_(None), Host.host_type == "Routing", Host.resource_state == "Enabled")
                .group_by(Host.zone_id, Host.pod_id, Host.cluster_id))
        groups = list(self.s.execute(stmt))
        cluster_ids = {c for _, _, c, *_ in groups if c is not None}
        clusters = {c.id: c for c in self.s.scalars(select(Cluster).where(Cluster.id.in_(cluster_ids)))} if cluster_ids else {}
        for zone, pod, cluster, mem_used, mem_total, cpu_used, cpu_total in groups:
            cpu_factor, mem_factor = overcommit(self.settings, clusters.get(cluster) if cluster else None)
            # PostgreSQL sums BIGINT columns as NUMERIC (Decimal): back to int before scaling.
            add(MEMORY, zone, pod, cluster, int(mem_used or 0), int(mem_total or 0) * mem_factor)
            add(CPU, zone, pod, cluster, int(cpu_used or 0), int(cpu_total or 0) * cpu_factor)

    def _pools(self, add, level: str) -> None:  # type: ignore[no-untyped-def]
        stmt = (select(StoragePool.id, StoragePool.zone_id, StoragePool.pod_id, StoragePool.cluster_id,
                       StoragePool.scope, StoragePool.used_bytes, StoragePool.capacity_bytes)
                .where(StoragePool.removed.is_(None)).order_by(StoragePool.id))
        for pool_id, zone, pod, cluster, scope, used, total in self.s.execute(stmt):
            if scope == "ZONE" and level != "zone":
                continue  # zone-wide pools belong to no pod or cluster
            factor = float(self.settings.get("storage.overprovisioning.factor", scope="storagepool",
                                             scope_id=pool_id))
            add(STORAGE, zone, pod, cluster, used or 0, total or 0)
            add(STORAGE_ALLOCATED, zone, pod, cluster, used or 0, (total or 0) * factor)

    def _public_ips(self, add) -> None:  # type: ignore[no-untyped-def]
        stmt = (select(PublicIp.zone_id, func.count(PublicIp.id),
                       func.sum(case((PublicIp.state != "Free", 1), else_=0)))
                .join(VlanIpRange, VlanIpRange.id == PublicIp.vlan_id)
                .where(VlanIpRange.removed.is_(None), VlanIpRange.vlan_type == "VirtualNetwork")
                .group_by(PublicIp.zone_id))
        for zone, total, used in self.s.execute(stmt):
            add(PUBLIC_IP, zone, None, None, used or 0, total or 0)

    def _private_ips(self, add) -> None:  # type: ignore[no-untyped-def]
        from overcast.db.models import Pod

        ranges = list(self.s.execute(select(PodIpRange.pod_id, Pod.zone_id, PodIpRange.start_ip, PodIpRange.end_ip)
                                     .join(Pod, Pod.id == PodIpRange.pod_id).where(Pod.removed.is_(None))))
        if not ranges:
            return
        hosts: dict[int, list[str]] = defaultdict(list)
        for pod, ip in self.s.execute(select(Host.pod_id, Host.ip_address).where(
                Host.removed.is_(None), Host.pod_id.in_({r[0] for r in ranges}), Host.ip_address.is_not(None))):
            hosts[pod].append(ip)
        for pod, zone, start, end in ranges:
            used = sum(1 for ip in hosts.get(pod, []) if in_range(ip, start, end))
            add(PRIVATE_IP, zone, pod, None, used, range_size(start, end))

    def _stores(self, add) -> None:  # type: ignore[no-untyped-def]
        from overcast.engine.infra import SIMULATED_STORE_BYTES

        # A store that reports no size counts as the size a simulated store reports.
        stmt = (select(ImageStore.zone_id, func.sum(ImageStore.used_bytes),
                       func.sum(func.coalesce(ImageStore.total_bytes, SIMULATED_STORE_BYTES)))
                .where(ImageStore.removed.is_(None), ImageStore.role == "Image", ImageStore.zone_id.is_not(None))
                .group_by(ImageStore.zone_id))
        for zone, used, total in self.s.execute(stmt):
            add(SECONDARY_STORAGE, zone, None, None, used or 0, total or 0)

    def _vlans(self, add) -> None:  # type: ignore[no-untyped-def]
        totals: dict[int, int] = defaultdict(int)
        for zone, spec in self.s.execute(select(PhysicalNetwork.zone_id, PhysicalNetwork.vlan).where(
                PhysicalNetwork.removed.is_(None))):
            totals[zone] += vlan_count(spec)
        used = dict(self.s.execute(
            select(PhysicalNetwork.zone_id, func.count(Network.id))
            .join(Network, Network.physical_network_id == PhysicalNetwork.id)
            .where(Network.removed.is_(None), PhysicalNetwork.removed.is_(None), Network.guest_type == "Isolated",
                   Network.broadcast_uri.like("vlan://%"))
            .group_by(PhysicalNetwork.zone_id)).all())
        for zone, total in totals.items():
            add(VLAN, zone, None, None, used.get(zone, 0), total)

    def _direct_ips(self, add) -> None:  # type: ignore[no-untyped-def]
        ranges = list(self.s.execute(select(VlanIpRange.zone_id, VlanIpRange.pod_id, VlanIpRange.network_id,
                                            VlanIpRange.start_ip, VlanIpRange.end_ip).where(
            VlanIpRange.removed.is_(None), VlanIpRange.vlan_type == "DirectAttached")))
        if not ranges:
            return
        nets = {r[2] for r in ranges if r[2] is not None}
        addresses: dict[int, list[str]] = defaultdict(list)
        if nets:
            for net, ip in self.s.execute(select(Nic.network_id, Nic.ip_address).where(
                    Nic.network_id.in_(nets), Nic.removed.is_(None), Nic.ip_address.is_not(None))):
                addresses[net].append(ip)
        for zone, pod, net, start, end in ranges:
            used = sum(1 for ip in addresses.get(net or 0, []) if in_range(ip, start, end))
            add(DIRECT_IP, zone, pod, None, used, range_size(start, end))


__all__ = ["NAMES", "CapacityReport", "CapacityRow", "number_text", "percent_text", "range_size", "vlan_count"]
