"""The hypervisor contract: what a driver does to VMs on one host.

Contract:
- every operation is idempotent: starting a running VM, stopping a stopped one, destroying a gone one
  succeed without doing anything;
- a failed ``start`` leaves nothing running behind;
- a failure is raised as :class:`HypervisorError` with a message fit for the job result;
- drivers hold no database session of the caller: they may be called between transactions.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import ClassVar


class HypervisorError(Exception):
    """An operation failed on the host."""


class HostUnreachable(HypervisorError):
    """The host did not answer (the simulator's ``result:fault``, a dead agent)."""


@dataclass(frozen=True, slots=True)
class HostRef:
    id: int
    uuid: str
    name: str
    zone_id: int
    pod_id: int | None
    cluster_id: int | None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class VmSpec:
    """What a host needs to know to run a VM."""

    uuid: str
    instance_name: str
    cpu: int
    speed: int
    memory_mb: int
    template_uuid: str | None = None
    volumes: tuple[str, ...] = ()
    nics: tuple[tuple[str, str | None], ...] = ()  # (mac, ip)
    details: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HostInfo:
    """What ``connect`` learns of a host."""

    cpus: int
    speed: int
    memory_bytes: int
    cpu_sockets: int = 1
    hypervisor_version: str | None = None
    ip_address: str | None = None
    capabilities: str = "hvm"


@dataclass(frozen=True, slots=True)
class HypervisorCapabilities:
    vm_snapshots: bool = True
    live_migration: bool = True
    storage_motion: bool = True


class HypervisorDriver(abc.ABC):
    """Runs VMs on the hosts of one hypervisor type."""

    #: As in listHypervisors: "Simulator", "KVM".
    hypervisor_type: ClassVar[str]
    capabilities: ClassVar[HypervisorCapabilities] = HypervisorCapabilities()

    @abc.abstractmethod
    def connect(self, url: str, *, cpus: int | None, speed: int | None, memory: int | None) -> HostInfo:
        """Check a host at ``url`` and describe it (addHost)."""

    @abc.abstractmethod
    def start(self, host: HostRef, vm: VmSpec) -> None: ...

    @abc.abstractmethod
    def stop(self, host: HostRef, vm: VmSpec, *, forced: bool = False) -> None: ...

    @abc.abstractmethod
    def reboot(self, host: HostRef, vm: VmSpec) -> None: ...

    @abc.abstractmethod
    def destroy(self, host: HostRef, vm: VmSpec) -> None:
        """Remove every trace of the VM from the host."""

    @abc.abstractmethod
    def migrate(self, src: HostRef, dst: HostRef, vm: VmSpec) -> None: ...

    @abc.abstractmethod
    def snapshot_vm(self, host: HostRef, vm: VmSpec, name: str, *, memory: bool) -> None: ...

    @abc.abstractmethod
    def revert_vm_snapshot(self, host: HostRef, vm: VmSpec, name: str) -> None: ...

    @abc.abstractmethod
    def delete_vm_snapshot(self, host: HostRef, vm: VmSpec, name: str) -> None: ...

    @abc.abstractmethod
    def ping(self, host: HostRef) -> bool:
        """Whether the host is alive (the HA check)."""
