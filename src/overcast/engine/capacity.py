"""Host and pool capacity, reserved and released with compare-and-set updates.

A reservation is one UPDATE whose WHERE clause holds the capacity check, so two deployments racing
for the last slot of a host can't both win, on any database and across processes.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from overcast.config.globals import GlobalSettings
from overcast.db.models import Cluster, Host, StoragePool

MB = 1024 * 1024


def overcommit(settings: GlobalSettings, cluster: Cluster | None) -> tuple[float, float]:
    """(cpu, memory) over-provisioning factors of a cluster: its own, else the cluster-scoped
    settings, else the global ones."""
    if cluster is None:
        return float(settings.get("cpu.overprovisioning.factor")), float(settings.get("mem.overprovisioning.factor"))
    cpu = cluster.cpu_overcommit or float(settings.get("cpu.overprovisioning.factor", scope="cluster",
                                                        scope_id=cluster.id))
    mem = cluster.mem_overcommit or float(settings.get("mem.overprovisioning.factor", scope="cluster",
                                                        scope_id=cluster.id))
    return cpu, mem


def reserve_host(s: Session, host_id: int, cpu_mhz: int, mem_bytes: int, cpu_factor: float,
                 mem_factor: float) -> bool:
    """Reserve CPU (MHz) and memory (bytes) on an Up, Enabled host; False when it does not fit."""
    result = s.execute(
        update(Host)
        .where(Host.id == host_id, Host.status == "Up", Host.resource_state == "Enabled",
               Host.cpu_used + cpu_mhz <= Host.cpus * Host.speed * cpu_factor,
               Host.mem_used + mem_bytes <= Host.total_memory * mem_factor)
        .values(cpu_used=Host.cpu_used + cpu_mhz, mem_used=Host.mem_used + mem_bytes)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)


def reserve_host_unchecked(s: Session, host_id: int, cpu_mhz: int, mem_bytes: int) -> None:
    """Account for a VM already running on a host (recovery, migration targets chosen by admins)."""
    s.execute(update(Host).where(Host.id == host_id)
              .values(cpu_used=Host.cpu_used + cpu_mhz, mem_used=Host.mem_used + mem_bytes)
              .execution_options(synchronize_session=False))


def release_host(s: Session, host_id: int, cpu_mhz: int, mem_bytes: int) -> None:
    s.execute(update(Host).where(Host.id == host_id)
              .values(cpu_used=Host.cpu_used - cpu_mhz, mem_used=Host.mem_used - mem_bytes)
              .execution_options(synchronize_session=False))


def reserve_pool(s: Session, pool_id: int, size: int, factor: float) -> bool:
    result = s.execute(
        update(StoragePool)
        .where(StoragePool.id == pool_id, StoragePool.status == "Up",
               StoragePool.used_bytes + size <= StoragePool.capacity_bytes * factor)
        .values(used_bytes=StoragePool.used_bytes + size)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)


def release_pool(s: Session, pool_id: int, size: int) -> None:
    s.execute(update(StoragePool).where(StoragePool.id == pool_id)
              .values(used_bytes=StoragePool.used_bytes - size)
              .execution_options(synchronize_session=False))
