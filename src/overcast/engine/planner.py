"""The deployment planner and host allocator: choose a host and a primary pool for a VM.

First fit over the candidate hosts (random order by default, ``vm.allocation.algorithm``), honouring
the plan's zone/pod/cluster/host, host tags, affinity and anti-affinity groups and the avoid set.
Capacity is reserved as the host is chosen (compare-and-set), so the answer is never stale.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from overcast.config.globals import GlobalSettings
from overcast.db.models import (
    AffinityGroup,
    AffinityGroupVm,
    Cluster,
    Host,
    Pod,
    StoragePool,
    VirtualMachine,
    Zone,
)
from overcast.engine.capacity import MB, overcommit, release_host, reserve_host, reserve_pool
from overcast.errors import InsufficientCapacity

GB = 1024**3


@dataclass
class Requirements:
    cpu: int
    speed: int
    memory_mb: int
    hypervisor: str
    host_tag: str | None = None
    storage_tags: str | None = None
    #: Bytes of new volumes that need a pool (0: volumes already placed).
    storage_bytes: int = 0

    @property
    def cpu_mhz(self) -> int:
        return self.cpu * self.speed

    @property
    def memory_bytes(self) -> int:
        return self.memory_mb * MB


@dataclass
class Plan:
    zone_id: int
    pod_id: int | None = None
    cluster_id: int | None = None
    host_id: int | None = None
    #: A pool the VM's volumes already live on: the host must reach it.
    pool_id: int | None = None
    avoid_hosts: set[int] = field(default_factory=set)


@dataclass
class Destination:
    host: Host
    pool: StoragePool | None
    cpu_mhz: int
    mem_bytes: int


def _tags(value: str | None) -> set[str]:
    return {t.strip().lower() for t in (value or "").split(",") if t.strip()}


class Planner:
    def __init__(self, session: Session, settings: GlobalSettings) -> None:
        self.s = session
        self.settings = settings

    def candidate_hosts(self, req: Requirements, plan: Plan) -> list[Host]:
        stmt = (select(Host).join(Cluster, Cluster.id == Host.cluster_id).join(Pod, Pod.id == Host.pod_id)
                .where(Host.zone_id == plan.zone_id, Host.removed.is_(None), Host.host_type == "Routing",
                       Host.status == "Up", Host.resource_state == "Enabled",
                       Cluster.allocation_state == "Enabled", Pod.allocation_state == "Enabled",
                       Cluster.removed.is_(None), Host.hypervisor_type == req.hypervisor,
                       Host.cpus >= req.cpu, Host.speed >= req.speed))
        if plan.host_id is not None:
            stmt = stmt.where(Host.id == plan.host_id)
        if plan.cluster_id is not None:
            stmt = stmt.where(Host.cluster_id == plan.cluster_id)
        if plan.pod_id is not None:
            stmt = stmt.where(Host.pod_id == plan.pod_id)
        if plan.pool_id is not None:
            pool = self.s.get(StoragePool, plan.pool_id)
            if pool is not None and pool.scope == "CLUSTER" and pool.cluster_id is not None:
                stmt = stmt.where(Host.cluster_id == pool.cluster_id)
        hosts = [h for h in self.s.scalars(stmt.order_by(Host.id)) if h.id not in plan.avoid_hosts]
        if req.host_tag:
            wanted = _tags(req.host_tag)
            hosts = [h for h in hosts if wanted <= _tags(h.tags)]
        elif plan.host_id is None:
            hosts = [h for h in hosts if not h.ha_host]
        return hosts

    def apply_affinity(self, vm: VirtualMachine, hosts: list[Host]) -> list[Host]:
        # The groups are locked until the placement commits: two VMs of one group planned at the same
        # time on PostgreSQL/MariaDB would otherwise both read the peers before either has a host.
        # Locked in id order, so planners of VMs sharing several groups queue rather than deadlock.
        groups = list(self.s.scalars(select(AffinityGroup).join(AffinityGroupVm, AffinityGroupVm.group_id ==
                                     AffinityGroup.id).where(AffinityGroupVm.vm_id == vm.id)
                                     .order_by(AffinityGroup.id).with_for_update(of=AffinityGroup)))
        for group in groups:
            peers = set(self.s.scalars(
                select(VirtualMachine.host_id).join(AffinityGroupVm, AffinityGroupVm.vm_id == VirtualMachine.id)
                .where(AffinityGroupVm.group_id == group.id, VirtualMachine.id != vm.id,
                       VirtualMachine.host_id.is_not(None), VirtualMachine.removed.is_(None))))
            if group.group_type == "host anti-affinity":
                hosts = [h for h in hosts if h.id not in peers]
            elif group.group_type == "host affinity" and peers:
                hosts = [h for h in hosts if h.id in peers]
        return hosts

    def order(self, vm: VirtualMachine, hosts: list[Host]) -> list[Host]:
        algorithm = str(self.settings.get("vm.allocation.algorithm", scope="zone", scope_id=vm.zone_id)).lower()
        if algorithm in ("random", "userconcentratedpod_random"):
            hosts = list(hosts)
            random.shuffle(hosts)
        elif algorithm == "firstfitleastconsumed":
            hosts = sorted(hosts, key=lambda h: (h.cpu_used / max(h.cpus * h.speed, 1), h.id))
        elif algorithm == "userdispersing":
            counts = dict(self.s.execute(
                select(VirtualMachine.host_id, func.count()).where(
                    VirtualMachine.account_id == vm.account_id, VirtualMachine.host_id.is_not(None),
                    VirtualMachine.removed.is_(None)).group_by(VirtualMachine.host_id)).all())
            hosts = sorted(hosts, key=lambda h: (counts.get(h.id, 0), h.id))
        return hosts

    def pool_for(self, host: Host, req: Requirements, plan: Plan) -> StoragePool | None | bool:
        """The pool new volumes go to (reserved), None when nothing needs placing, False if none fits."""
        if req.storage_bytes <= 0:
            return None
        factor = float(self.settings.get("storage.overprovisioning.factor"))
        if plan.pool_id is not None:
            # The VM's other disks already live there: new ones go to the same pool (reserved too).
            pool = self.s.get(StoragePool, plan.pool_id)
            if pool is not None and reserve_pool(self.s, pool.id, req.storage_bytes, factor):
                return pool
            return False
        stmt = select(StoragePool).where(
            StoragePool.zone_id == host.zone_id, StoragePool.removed.is_(None), StoragePool.status == "Up",
            ((StoragePool.scope == "CLUSTER") & (StoragePool.cluster_id == host.cluster_id))
            | (StoragePool.scope == "ZONE")).order_by(StoragePool.scope, StoragePool.used_bytes)
        wanted = _tags(req.storage_tags)
        for pool in self.s.scalars(stmt):
            if wanted and not wanted <= _tags(pool.tags):
                continue
            if reserve_pool(self.s, pool.id, req.storage_bytes, factor):
                return pool
        return False

    def plan(self, vm: VirtualMachine, req: Requirements, plan: Plan) -> Destination:
        zone = self.s.get(Zone, plan.zone_id)
        hosts = self.order(vm, self.apply_affinity(vm, self.candidate_hosts(req, plan)))
        for host in hosts:
            cluster = self.s.get(Cluster, host.cluster_id) if host.cluster_id else None
            cpu_factor, mem_factor = overcommit(self.settings, cluster)
            if not reserve_host(self.s, host.id, req.cpu_mhz, req.memory_bytes, cpu_factor, mem_factor):
                continue
            pool = self.pool_for(host, req, plan)
            if pool is False:
                release_host(self.s, host.id, req.cpu_mhz, req.memory_bytes)
                continue
            self.s.refresh(host)
            return Destination(host, pool or None, req.cpu_mhz, req.memory_bytes)
        raise InsufficientCapacity(
            f"Unable to create a deployment for VM instance {vm.instance_name} in zone"
            f" {zone.name if zone else plan.zone_id}: no host with {req.cpu}x{req.speed} MHz and"
            f" {req.memory_mb} MB free" + (" and enough primary storage" if req.storage_bytes else ""))
