"""Hosts: adding them through their hypervisor driver, their health (the HA check), maintenance.

Host status follows CloudStack's ``Status``: a host that stops answering its ping goes from ``Up`` to
``Down``; its VMs' capacity is released, HA-enabled VMs are started again on other hosts and the others
are marked Stopped. A host that answers again comes back ``Up``. Maintenance moves running VMs away by
live migration: ``PrepareForMaintenance`` then ``Maintenance``, or ``ErrorInMaintenance`` when a VM
could not move. Status changes are compare-and-set UPDATEs, so two nodes checking at once agree.
"""

from __future__ import annotations

import ipaddress
import logging
import uuid as uuidlib
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError

from overcast.db.models import Cluster, Host, Pod, PodIpRange, VirtualMachine, Zone, utcnow
from overcast.engine.capacity import MB, release_host
from overcast.engine.context import EngineContext
from overcast.errors import CloudError, InvalidParameterValue, ResourceUnavailable
from overcast.plugins.hypervisor import HypervisorError

if TYPE_CHECKING:
    from overcast.services import Services

logger = logging.getLogger(__name__)

#: VMs on a host that a host failure stops. VMs in transitional states belong to the job moving them; the
#: state change is compare-and-set, so a VM a job took first is left to that job.
ACTIVE_STATES = ("Running",)


def _query_int(query: dict[str, list[str]], *names: str) -> int | None:
    for name in names:
        values = query.get(name)
        if values and values[0].strip().isdigit():
            return int(values[0])
    return None


class HostOps:
    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self.s = ctx.session

    # -- adding ---------------------------------------------------------------------------------
    def add(self, *, zone: Zone, pod: Pod, cluster: Cluster, url: str, hypervisor: str, tags: str | None,
            resource_state: str = "Enabled") -> Host:
        """Connect to the host at ``url`` and register it. The simulator takes the host's shape from the
        URL's query (``?cpunumber=16&cpuspeed=4000&memory=68719476736``), else its defaults."""
        parts = urlsplit(url.strip())
        if not parts.scheme or not (parts.hostname or parts.path):
            raise InvalidParameterValue(f"Invalid url {url} for parameter url: use a URL such as http://sim/c0/h0")
        clash = self.s.scalar(select(Host).where(Host.url == url.strip(), Host.cluster_id == cluster.id,
                                                 Host.removed.is_(None)))
        if clash is not None:
            raise InvalidParameterValue(f"A host with url {url} already exists in cluster {cluster.name}:"
                                        f" {clash.name} (parameter url)")
        try:
            driver = self.ctx.services.hypervisor(hypervisor)
        except ResourceUnavailable:
            raise InvalidParameterValue(f"Unable to add a host of hypervisor {hypervisor} (parameter hypervisor):"
                                        " no driver is installed for it") from None
        query = parse_qs(parts.query)
        cpus = _query_int(query, "cpunumber", "cpus")
        speed = _query_int(query, "cpuspeed", "speed")
        memory = _query_int(query, "memory")
        self.ctx.checkpoint()
        try:
            info = driver.connect(url.strip(), cpus=cpus, speed=speed, memory=memory)
        except HypervisorError as exc:
            raise ResourceUnavailable(f"Unable to add the host at {url}: {exc}") from exc
        ip = info.ip_address or self.free_management_ip(pod)
        name = f"SimulatedAgent.{uuidlib.uuid4()}" if hypervisor == "Simulator" else (parts.hostname or url)
        host = Host(name=name, zone_id=zone.id, pod_id=pod.id, cluster_id=cluster.id, host_type="Routing",
                    status="Up", resource_state=resource_state, hypervisor_type=hypervisor,
                    hypervisor_version=info.hypervisor_version, url=url.strip(), ip_address=ip,
                    cpu_sockets=info.cpu_sockets, cpus=info.cpus, speed=info.speed, total_memory=info.memory_bytes,
                    tags=tags, capabilities=info.capabilities, arch=cluster.arch, last_ping=utcnow())
        self.s.add(host)
        self.s.flush()
        return host

    def free_management_ip(self, pod: Pod) -> str | None:
        """The first address of the pod's management ranges no host uses (what a simulated agent takes)."""
        used = set(self.s.scalars(select(Host.ip_address).where(Host.zone_id == pod.zone_id,
                                                                Host.removed.is_(None),
                                                                Host.ip_address.is_not(None))))
        for r in self.s.scalars(select(PodIpRange).where(PodIpRange.pod_id == pod.id).order_by(PodIpRange.id)):
            lo, hi = int(ipaddress.ip_address(r.start_ip)), int(ipaddress.ip_address(r.end_ip))
            for value in range(lo, min(hi, lo + 65535) + 1):
                ip = str(ipaddress.ip_address(value))
                if ip not in used:
                    return ip
        return None

    # -- failure and recovery -------------------------------------------------------------------
    def mark_down(self, host: Host, reason: str) -> bool:
        """Up -> Down (compare-and-set); False when another check got there first."""
        moved = self.s.execute(update(Host).where(Host.id == host.id, Host.status == "Up")
                               .values(status="Down").execution_options(synchronize_session=False)).rowcount
        if not moved:
            return False
        host.status = "Down"
        self.ctx.event("HA.STATE.TRANSITION", f"Host {host.name} is Down: {reason}", resource_type="Host",
                       resource_uuid=host.uuid)
        return True

    def mark_up(self, host: Host) -> bool:
        moved = self.s.execute(update(Host).where(Host.id == host.id, Host.status != "Up")
                               .values(status="Up", last_ping=utcnow())
                               .execution_options(synchronize_session=False)).rowcount
        if not moved:
            return False
        host.status = "Up"
        self.ctx.event("HA.STATE.TRANSITION", f"Host {host.name} is Up again", resource_type="Host",
                       resource_uuid=host.uuid)
        return True

    def release_vms(self, host: Host, reason: str) -> tuple[int, int]:
        """The host's VMs no longer run there: release their capacity, restart HA-enabled ones elsewhere
        and mark the others Stopped. Returns (restarted, stopped)."""
        from overcast.engine.vms import VmOps

        vm_ids = list(self.s.scalars(select(VirtualMachine.id).where(
            VirtualMachine.host_id == host.id, VirtualMachine.removed.is_(None),
            VirtualMachine.state.in_(ACTIVE_STATES)).order_by(VirtualMachine.id)))
        restarted = stopped = 0
        ha: list[int] = []
        for vm_id in vm_ids:
            vm = self.s.get(VirtualMachine, vm_id)
            if vm is None or vm.host_id != host.id or vm.state not in ACTIVE_STATES:
                continue
            ops = VmOps(self.ctx)
            try:
                release_host(self.s, host.id, vm.cpu * vm.speed, vm.memory * MB)
                vm.host_id, vm.last_host_id = None, host.id
                ops.transition(vm, "AgentReportStopped")
                self.ctx.event("VM.STOP", f"Vm {vm.uuid} stopped: its host {host.name} is down ({reason})",
                               account_id=vm.account_id, domain_id=vm.domain_id, resource_type="VirtualMachine",
                               resource_uuid=vm.uuid)
                self.s.flush()
                self.ctx.checkpoint()
            except CloudError as exc:
                self.s.rollback()
                logger.warning("Could not stop VM %s of failed host %s: %s", vm_id, host.name, exc.message)
                continue
            if vm.ha_enabled:
                ha.append(vm.id)
            else:
                stopped += 1
        for vm_id in ha:
            vm = self.s.get(VirtualMachine, vm_id)
            if vm is None:
                continue
            try:
                VmOps(self.ctx).start(vm)
                self.ctx.checkpoint()
                restarted += 1
            except CloudError as exc:
                self.s.rollback()
                vm = self.s.get(VirtualMachine, vm_id)
                logger.warning("HA could not restart VM %s: %s", vm_id, exc.message)
                if vm is not None:
                    self.ctx.event("VM.START", f"HA restart of Vm {vm.uuid} failed: {exc.message}",
                                   account_id=vm.account_id, domain_id=vm.domain_id, level="ERROR",
                                   resource_type="VirtualMachine", resource_uuid=vm.uuid)
                    self.ctx.checkpoint()
                stopped += 1
        return restarted, stopped

    def fail(self, host: Host, reason: str) -> bool:
        """The host failed: mark it Down and handle its VMs (the HA path)."""
        if not self.mark_down(host, reason):
            return False
        self.ctx.checkpoint()
        self.release_vms(host, reason)
        return True

    # -- maintenance ----------------------------------------------------------------------------
    def prepare_maintenance(self, host: Host) -> Host:
        from overcast.engine.vms import VmOps

        if host.resource_state == "Maintenance":
            raise InvalidParameterValue(f"Host {host.name} is already in maintenance")
        if host.resource_state != "PrepareForMaintenance":
            moved = self.s.execute(update(Host).where(Host.id == host.id, Host.resource_state == host.resource_state)
                                   .values(resource_state="PrepareForMaintenance")
                                   .execution_options(synchronize_session=False)).rowcount
            if not moved:
                raise InvalidParameterValue(f"Host {host.name} changed state; try again")
            host.resource_state = "PrepareForMaintenance"
            self.ctx.checkpoint()
        failed: list[str] = []
        vm_ids = list(self.s.scalars(select(VirtualMachine.id).where(
            VirtualMachine.host_id == host.id, VirtualMachine.removed.is_(None)).order_by(VirtualMachine.id)))
        for vm_id in vm_ids:
            vm = self.s.get(VirtualMachine, vm_id)
            if vm is None or vm.host_id != host.id:
                continue
            if vm.state != "Running":
                failed.append(f"{vm.instance_name} is {vm.state}")
                continue
            try:
                VmOps(self.ctx).migrate(vm, None)
                self.ctx.checkpoint()
            except CloudError as exc:
                failed.append(f"{vm.instance_name}: {exc.message}")
                try:
                    self.ctx.checkpoint()
                except SQLAlchemyError:  # the failed step left nothing worth keeping
                    self.s.rollback()
        self.s.refresh(host)
        host.resource_state = "ErrorInMaintenance" if failed else "Maintenance"
        text = f"Host {host.name} is in {host.resource_state}"
        if failed:
            text += ": could not move " + "; ".join(failed)
        self.ctx.event("MAINT.PREPARE", text, resource_type="Host", resource_uuid=host.uuid)
        self.s.flush()
        return host

    def cancel_maintenance(self, host: Host) -> Host:
        if host.resource_state not in ("Maintenance", "ErrorInMaintenance", "PrepareForMaintenance"):
            raise InvalidParameterValue(f"Host {host.name} is not in maintenance (it is {host.resource_state})")
        host.resource_state = "Enabled"
        self.ctx.event("MAINT.CANCEL", f"Host {host.name} left maintenance", resource_type="Host",
                       resource_uuid=host.uuid)
        self.s.flush()
        return host

    def reconnect(self, host: Host) -> Host:
        from overcast.engine.vms import host_ref

        try:
            driver = self.ctx.services.hypervisor(host.hypervisor_type)
        except ResourceUnavailable as exc:
            raise ResourceUnavailable(f"Unable to reconnect host {host.name}: {exc.message}") from exc
        ref = host_ref(host)
        self.ctx.checkpoint()
        try:
            driver.connect(host.url or "", cpus=host.cpus, speed=host.speed, memory=host.total_memory)
            alive = driver.ping(ref)
        except HypervisorError as exc:
            raise ResourceUnavailable(f"Unable to reconnect host {host.name}: {exc}") from exc
        if not alive:
            raise ResourceUnavailable(f"Unable to reconnect host {host.name}: it does not answer")
        self.s.refresh(host)
        self.mark_up(host)
        host.last_ping = utcnow()
        self.ctx.event("HOST.RECONNECT", f"Reconnected host {host.name}", resource_type="Host",
                       resource_uuid=host.uuid)
        self.s.flush()
        return host


def check_hosts(services: Services) -> tuple[int, int]:
    """The HA check (a periodic task): ping every host through its driver. Returns (failed, recovered)."""
    from overcast.engine.tasks import SystemContext
    from overcast.engine.vms import host_ref

    with services.db.reader() as s:
        hosts = list(s.scalars(select(Host).where(Host.removed.is_(None), Host.host_type == "Routing",
                                                  Host.resource_state != "Maintenance").order_by(Host.id)))
        probes = [(h.id, host_ref(h), h.hypervisor_type, h.status) for h in hosts]
    alive_ids: list[int] = []
    failed = recovered = 0
    for host_id, ref, hypervisor, status in probes:
        try:
            driver = services.hypervisor(hypervisor)
        except CloudError:
            continue
        try:
            alive = driver.ping(ref)
        except Exception:  # a broken driver counts as an unanswered ping
            logger.exception("Ping of host %s raised", ref.name)
            alive = False
        if alive and status == "Up":
            alive_ids.append(host_id)
            continue
        if alive == (status == "Up"):
            continue  # still down
        with services.db.writer() as session:
            ctx = SystemContext(services, session)
            host = session.get(Host, host_id)
            if host is None or host.removed is not None:
                continue
            try:
                if alive:
                    recovered += int(HostOps(ctx).mark_up(host))
                else:
                    failed += int(HostOps(ctx).fail(host, "it did not answer its ping"))
                session.commit()
            except CloudError as exc:
                session.rollback()
                logger.warning("Host check of %s failed: %s", ref.name, exc.message)
    if alive_ids:
        with services.db.writer.begin() as session:
            session.execute(update(Host).where(Host.id.in_(alive_ids), Host.status == "Up")
                            .values(last_ping=utcnow()).execution_options(synchronize_session=False))
    return failed, recovered


__all__ = ["HostOps", "check_hosts"]
