"""The simulator hypervisor driver.

Every operation succeeds at once unless an injection (``configureSimulator``) matches it: the
operation's CloudStack agent command name (``StartCommand``, ``StopCommand``, ...) within the host's
zone, pod, cluster or the host itself. Values, as CloudStack's simulator takes them:

- ``result:fail``   the operation fails (HypervisorError);
- ``result:fault``  the host does not answer (HostUnreachable); ``PingCommand`` with it marks the
  host as failed for HA;
- ``wait:<ms>``     the operation takes that long, then succeeds;
- ``timeout:<ms>``  the operation takes that long, then fails as timed out.

An injection with a ``count`` applies that many times, then stops applying.
"""

from __future__ import annotations

import threading
import time
from typing import ClassVar

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from overcast.db.models import SimulatorMock
from overcast.plugins.hypervisor import (
    HostInfo,
    HostRef,
    HostUnreachable,
    HypervisorCapabilities,
    HypervisorDriver,
    HypervisorError,
    VmSpec,
)

#: Agent command names per operation, as CloudStack's simulator knows them.
COMMANDS = {
    "connect": "ReadyCommand", "start": "StartCommand", "stop": "StopCommand", "reboot": "RebootCommand",
    "destroy": "StopCommand", "migrate": "MigrateCommand", "snapshot_vm": "CreateVMSnapshotCommand",
    "revert_vm_snapshot": "RevertToVMSnapshotCommand", "delete_vm_snapshot": "DeleteVMSnapshotCommand",
    "ping": "PingCommand", "create_volume": "CreateCommand", "snapshot_volume": "CreateObjectCommand",
    "copy_template": "CopyCommand", "download": "DownloadCommand",
}  # fmt: skip

DEFAULT_HOST = HostInfo(cpus=4, speed=4000, memory_bytes=16 * 1024**3, cpu_sockets=1,
                        hypervisor_version="4.22", capabilities="hvm")


class SimulatorDriver(HypervisorDriver):
    hypervisor_type: ClassVar[str] = "Simulator"
    capabilities: ClassVar[HypervisorCapabilities] = HypervisorCapabilities()

    #: Set by the server at start: where injections are read (readers) and consumed (sessions).
    sessions: ClassVar[sessionmaker[Session] | None] = None
    readers: ClassVar[sessionmaker[Session] | None] = None

    def __init__(self) -> None:
        self._running: dict[str, int] = {}  # vm uuid -> host id (what the "hypervisor" runs)
        self._lock = threading.Lock()

    # -- injections ----------------------------------------------------------------------------
    def _inject(self, operation: str, host: HostRef | None) -> None:
        if self.sessions is None or self.readers is None:
            return
        command = COMMANDS[operation]
        stmt = select(SimulatorMock).where(SimulatorMock.command == command, SimulatorMock.removed.is_(None),
                                           or_(SimulatorMock.count.is_(None), SimulatorMock.count > 0))
        if host is not None:
            stmt = stmt.where(
                or_(SimulatorMock.zone_id.is_(None), SimulatorMock.zone_id == host.zone_id),
                or_(SimulatorMock.pod_id.is_(None), SimulatorMock.pod_id == host.pod_id),
                or_(SimulatorMock.cluster_id.is_(None), SimulatorMock.cluster_id == host.cluster_id),
                or_(SimulatorMock.host_id.is_(None), SimulatorMock.host_id == host.id),
            )
        # Read first (no lock: the common case has no injection), then consume one use atomically so
        # two operations can't both take the last one. The most specific injection wins; then the newest.
        with self.readers() as s:
            candidates = sorted(s.scalars(stmt).all(), key=lambda m: (_specificity(m), m.id), reverse=True)
        for mock in candidates:
            with self.sessions.begin() as s:
                consumed = s.execute(
                    update(SimulatorMock).where(SimulatorMock.id == mock.id, SimulatorMock.removed.is_(None),
                                                or_(SimulatorMock.count.is_(None), SimulatorMock.count > 0))
                    .values(hits=SimulatorMock.hits + 1, count=SimulatorMock.count - 1)  # NULL stays NULL
                ).rowcount
            if consumed:
                _apply(mock.value, command)
                return

    # -- the contract --------------------------------------------------------------------------
    def connect(self, url: str, *, cpus: int | None, speed: int | None, memory: int | None) -> HostInfo:
        self._inject("connect", None)
        return HostInfo(
            cpus=cpus or DEFAULT_HOST.cpus, speed=speed or DEFAULT_HOST.speed,
            memory_bytes=memory or DEFAULT_HOST.memory_bytes, cpu_sockets=1,
            hypervisor_version=DEFAULT_HOST.hypervisor_version, capabilities=DEFAULT_HOST.capabilities,
        )  # fmt: skip

    def start(self, host: HostRef, vm: VmSpec) -> None:
        self._inject("start", host)
        with self._lock:
            self._running[vm.uuid] = host.id

    def stop(self, host: HostRef, vm: VmSpec, *, forced: bool = False) -> None:
        if not forced:
            self._inject("stop", host)
        with self._lock:
            self._running.pop(vm.uuid, None)

    def reboot(self, host: HostRef, vm: VmSpec) -> None:
        self._inject("reboot", host)

    def destroy(self, host: HostRef, vm: VmSpec) -> None:
        with self._lock:
            self._running.pop(vm.uuid, None)

    def migrate(self, src: HostRef, dst: HostRef, vm: VmSpec) -> None:
        self._inject("migrate", src)
        with self._lock:
            self._running[vm.uuid] = dst.id

    def snapshot_vm(self, host: HostRef, vm: VmSpec, name: str, *, memory: bool) -> None:
        self._inject("snapshot_vm", host)

    def revert_vm_snapshot(self, host: HostRef, vm: VmSpec, name: str) -> None:
        self._inject("revert_vm_snapshot", host)

    def delete_vm_snapshot(self, host: HostRef, vm: VmSpec, name: str) -> None:
        self._inject("delete_vm_snapshot", host)

    def ping(self, host: HostRef) -> bool:
        try:
            self._inject("ping", host)
        except HypervisorError:
            return False
        return True

    # -- storage-side operations the simulator also answers ------------------------------------
    def create_volume(self, host: HostRef | None) -> None:
        self._inject("create_volume", host)

    def snapshot_volume(self, host: HostRef | None) -> None:
        self._inject("snapshot_volume", host)

    def running_on(self, vm_uuid: str) -> int | None:
        with self._lock:
            return self._running.get(vm_uuid)


def _specificity(mock: SimulatorMock) -> int:
    return sum(x is not None for x in (mock.zone_id, mock.pod_id, mock.cluster_id, mock.host_id))


def _apply(value: str, command: str) -> None:
    for part in value.split(";"):
        kind, _, arg = part.strip().partition(":")
        kind = kind.strip().lower()
        arg = arg.strip()
        if kind == "wait" and arg.isdigit():
            time.sleep(min(int(arg), 600_000) / 1000)
        elif kind == "timeout" and arg.isdigit():
            time.sleep(min(int(arg), 600_000) / 1000)
            raise HypervisorError(f"{command} timed out after {arg} ms (simulated)")
        elif kind == "result" and arg.lower() == "fail":
            raise HypervisorError(f"{command} failed (simulated failure)")
        elif kind == "result" and arg.lower() == "fault":
            raise HostUnreachable(f"{command}: host is not responding (simulated fault)")
