"""The VM lifecycle: allocate, start, stop, reboot, destroy, expunge, recover, and changes of shape.

State changes follow CloudStack's state machine (:data:`TRANSITIONS`) and are compare-and-set on
``(state, update_count)``, so two operations racing on one VM can't both move it. Operations that
talk to a hypervisor commit their intermediate state first (``ctx.checkpoint()``), call the driver
outside any transaction, and undo their reservations themselves if the driver fails. Every operation
is idempotent in the sense jobs need: run again after a crash, it finishes what was started.
"""

from __future__ import annotations

import json
import logging
import secrets
import string
from typing import Any
from dataclasses import dataclass


from sqlalchemy import delete, select, update

from overcast.db.models import (
    Account,
    AffinityGroupVm,
    Host,
    InstanceGroupVm,
    Network,
    Nic,
    SecurityGroupVm,
    ServiceOffering,
    StoragePool,
    Template,
    VirtualMachine,
    Volume,
    Zone,
    utcnow,
)
from overcast.engine.capacity import MB, release_host, release_pool
from overcast.engine import storage_ops
from overcast.engine.context import EngineContext
from overcast.engine.tags import remove_tags
from overcast.engine.limits import GIB, Limits, ResourceType
from overcast.engine.networks import NetworkService
from overcast.engine.planner import Plan, Planner, Requirements
from overcast.errors import (
    ConcurrentOperation,
    InsufficientCapacity,
    InvalidParameterValue,
    ResourceUnavailable,
)
from overcast.plugins.hypervisor import HostRef, HypervisorDriver, HypervisorError, VmSpec

logger = logging.getLogger(__name__)

# State machine (CloudStack's VirtualMachine.State transitions, the events this engine uses).
#: States that end the guest's readiness: it reports again after its next boot.
NOT_READY_STATES = frozenset({"Starting", "Stopped", "Destroyed", "Expunging", "Error"})

TRANSITIONS: dict[str, dict[str, str]] = {
    "Stopped": {"StartRequested": "Starting", "DestroyRequested": "Destroyed", "StopRequested": "Stopped",
                "OperationFailed": "Stopped", "ExpungeOperation": "Expunging", "RestoringRequested": "Restoring",
                "OperationFailedToError": "Error", "AgentReportStopped": "Stopped"},
    "Starting": {"OperationRetry": "Starting", "OperationSucceeded": "Running", "OperationFailed": "Stopped",
                 "AgentReportRunning": "Running", "AgentReportStopped": "Stopped"},
    "Running": {"MigrationRequested": "Migrating", "StopRequested": "Stopping", "AgentReportStopped": "Stopped",
                "OperationSucceeded": "Running", "AgentReportRunning": "Running"},
    "Migrating": {"OperationSucceeded": "Running", "OperationFailed": "Running", "AgentReportStopped": "Stopped"},
    "Stopping": {"OperationSucceeded": "Stopped", "OperationFailed": "Running", "StopRequested": "Stopping",
                 "AgentReportStopped": "Stopped"},
    "Destroyed": {"RecoveryRequested": "Stopped", "ExpungeOperation": "Expunging", "RestoringRequested": "Restoring"},
    "Expunging": {"ExpungeOperation": "Expunging", "OperationFailed": "Expunging"},
    "Error": {"DestroyRequested": "Expunging", "ExpungeOperation": "Expunging"},
    "Restoring": {"RestoringSuccess": "Stopped", "RestoringFailed": "Stopped"},
}  # fmt: skip


@dataclass
class NetworkRequest:
    network: Network
    ip: str | None = None


def host_ref(host: Host) -> HostRef:
    return HostRef(id=host.id, uuid=host.uuid, name=host.name, zone_id=host.zone_id, pod_id=host.pod_id,
                   cluster_id=host.cluster_id, url=host.url)


def new_password(length: int = 12) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


class VmOps:
    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self.s = ctx.session
        self.services = ctx.services

    # -- plumbing -------------------------------------------------------------------------------
    def driver(self, hypervisor: str) -> HypervisorDriver:
        return self.services.hypervisor(hypervisor)

    def spec(self, vm: VirtualMachine) -> VmSpec:
        template = self.s.get(Template, vm.template_id)
        nics = self.s.execute(select(Nic.mac_address, Nic.ip_address).where(
            Nic.vm_id == vm.id, Nic.removed.is_(None)).order_by(Nic.device_id)).all()
        vols = self.s.scalars(select(Volume.uuid).where(Volume.vm_id == vm.id, Volume.removed.is_(None))
                              .order_by(Volume.device_id)).all()
        return VmSpec(uuid=vm.uuid, instance_name=vm.instance_name, cpu=vm.cpu, speed=vm.speed,
                      memory_mb=vm.memory, template_uuid=template.uuid if template else None,
                      volumes=tuple(vols), nics=tuple((m or "", i) for m, i in nics),
                      details=json.loads(vm.details or "{}"))

    def transition(self, vm: VirtualMachine, event: str, *, action: str = "") -> str:
        new_state = TRANSITIONS.get(vm.state, {}).get(event)
        if new_state is None:
            raise InvalidParameterValue(
                f"Unable to {action or event} VM {vm.display_name or vm.name}: it is in state {vm.state}",
                uuids=[(vm.uuid, "virtualMachineId")])
        now = utcnow()
        values: dict[str, Any] = dict(state=new_state, update_count=VirtualMachine.update_count + 1, state_changed=now)
        if new_state in NOT_READY_STATES:
            values["ready_at"] = None  # a new boot (or none): the guest reports ready again
        moved = self.s.execute(
            update(VirtualMachine)
            .where(VirtualMachine.id == vm.id, VirtualMachine.state == vm.state,
                   VirtualMachine.update_count == vm.update_count)
            .values(**values)
            .execution_options(synchronize_session=False)).rowcount
        if not moved:
            raise ConcurrentOperation(
                f"VM {vm.display_name or vm.name} was changed by another operation; try again",
                uuids=[(vm.uuid, "virtualMachineId")])
        vm.state, vm.update_count, vm.state_changed = new_state, vm.update_count + 1, now
        if new_state in NOT_READY_STATES:
            vm.ready_at = None
        return new_state

    def reload(self, vm: VirtualMachine) -> VirtualMachine:
        self.s.refresh(vm)
        return vm

    def account(self, vm: VirtualMachine) -> Account:
        acct = self.s.get(Account, vm.account_id)
        assert acct is not None
        return acct

    def vm_amounts(self, vm: VirtualMachine) -> list[tuple[ResourceType, int]]:
        return [(ResourceType.user_vm, 1), (ResourceType.cpu, vm.cpu), (ResourceType.memory, vm.memory)]

    # -- start ----------------------------------------------------------------------------------
    def start(self, vm: VirtualMachine, *, host_id: int | None = None, pod_id: int | None = None,
              cluster_id: int | None = None) -> VirtualMachine:
        if vm.state == "Running":
            return vm
        if vm.state == "Starting" and vm.host_id is not None:
            return self._finish_start(vm)  # resumed after an interruption
        if vm.state not in ("Stopped", "Starting"):
            self.transition(vm, "StartRequested", action="start")  # raises the state error
        zone = self.s.get(Zone, vm.zone_id)
        assert zone is not None
        if zone.allocation_state != "Enabled" and not (self.ctx.caller and self.ctx.caller.is_root_admin):
            raise ResourceUnavailable(f"Zone {zone.name} is disabled")
        if vm.state == "Stopped":
            self.transition(vm, "StartRequested", action="start")
        retries = int(self.ctx.setting("start.retry"))
        avoid: set[int] = set()
        last_error: Exception | None = None
        for _attempt in range(max(retries, 1)):
            try:
                host = self._place(vm, Plan(zone_id=vm.zone_id, pod_id=pod_id, cluster_id=cluster_id,
                                            host_id=host_id, avoid_hosts=avoid))
            except InsufficientCapacity as exc:
                self._undo_start(vm)
                if last_error is not None:
                    raise ResourceUnavailable(
                        f"Unable to start VM {vm.display_name or vm.name}: {last_error}") from exc
                raise
            ref, spec = host_ref(host), self.spec(vm)
            nets = NetworkService(self.s, self.services)
            bindings = nets.bindings(vm.id)
            disks = storage_ops.plan_vm_disks(self.ctx, vm.id)  # volumes placed but without bytes yet
            self.ctx.checkpoint()
            try:
                storage_ops.run_vm_disks(disks)  # ROOT from the template (via the pool's cache), blank disks
                nets.prepare_elements(bindings)  # the networks' providers first: DHCP, DNS, NAT for the NICs
            except ResourceUnavailable:
                self._undo_start(vm)
                raise
            storage_ops.record_vm_disks(self.ctx, disks)
            try:
                self.driver(vm.hypervisor_type).start(ref, spec)
            except HypervisorError as exc:
                last_error = exc
                avoid.add(host.id)
                self._release_host_of(vm)
                self.transition(vm, "OperationRetry")
                self.ctx.checkpoint()
                if host_id is not None:
                    break
                continue
            return self._finish_start(vm)
        self._undo_start(vm)
        raise ResourceUnavailable(f"Unable to start VM {vm.display_name or vm.name}: {last_error}")

    def _place(self, vm: VirtualMachine, plan: Plan) -> Host:
        offering = self.s.get(ServiceOffering, vm.service_offering_id)
        volumes = list(self.s.scalars(select(Volume).where(Volume.vm_id == vm.id, Volume.removed.is_(None))))
        placed = [v for v in volumes if v.pool_id is not None]
        pending = [v for v in volumes if v.pool_id is None]
        if placed:
            plan.pool_id = placed[0].pool_id
        from overcast.db.models import DiskOffering

        disk = self.s.get(DiskOffering, offering.disk_offering_id) if offering else None
        req = Requirements(cpu=vm.cpu, speed=vm.speed, memory_mb=vm.memory, hypervisor=vm.hypervisor_type,
                           host_tag=offering.host_tag if offering else None,
                           storage_tags=disk.tags if disk else None,
                           storage_bytes=sum(v.size for v in pending))
        # Networks first: a network that can't be implemented fails the start before capacity moves.
        nets = NetworkService(self.s)
        account = self.account(vm)
        for net in self.s.scalars(select(Network).join(Nic, Nic.network_id == Network.id).where(
                Nic.vm_id == vm.id, Nic.removed.is_(None))):
            nets.implement(net, account)
        dest = Planner(self.s, self.services.settings).plan(vm, req, plan)
        for v in pending:
            pool = dest.pool or (self.s.get(StoragePool, plan.pool_id) if plan.pool_id else None)
            if pool is not None:
                v.pool_id = pool.id
                v.path = v.uuid
            v.state = "Ready"
        vm.host_id, vm.pod_id = dest.host.id, dest.host.pod_id
        self.s.flush()
        return dest.host

    def _release_host_of(self, vm: VirtualMachine) -> None:
        if vm.host_id is not None:
            release_host(self.s, vm.host_id, vm.cpu * vm.speed, vm.memory * MB)
            vm.host_id = None
            self.s.flush()

    def _undo_start(self, vm: VirtualMachine) -> None:
        self._release_host_of(vm)
        if vm.state == "Starting":
            self.transition(vm, "OperationFailed")
        self.ctx.checkpoint()

    def _finish_start(self, vm: VirtualMachine) -> VirtualMachine:
        self.transition(vm, "OperationSucceeded")
        vm.last_host_id = vm.host_id
        for nic in self.s.scalars(select(Nic).where(Nic.vm_id == vm.id, Nic.removed.is_(None))):
            nic.state = "Reserved"
        self.ctx.event("VM.START", f"Starting Vm. Vm Id: {vm.uuid}", account_id=vm.account_id,
                       domain_id=vm.domain_id, resource_type="VirtualMachine", resource_uuid=vm.uuid)
        self.s.flush()
        return vm

    # -- stop / reboot --------------------------------------------------------------------------
    def stop(self, vm: VirtualMachine, *, forced: bool = False) -> VirtualMachine:
        if vm.state == "Stopped":
            return vm
        if vm.state == "Running":
            self.transition(vm, "StopRequested", action="stop")
            self.ctx.checkpoint()
        elif vm.state != "Stopping":
            if not (forced and vm.state in ("Starting", "Migrating")):
                self.transition(vm, "StopRequested", action="stop")
        host = self.s.get(Host, vm.host_id) if vm.host_id else None
        if host is not None:
            ref, spec = host_ref(host), self.spec(vm)
            nets = NetworkService(self.s, self.services)
            bindings = nets.bindings(vm.id)
            self.ctx.checkpoint()
            try:
                self.driver(vm.hypervisor_type).stop(ref, spec, forced=forced)
            except HypervisorError as exc:
                if not forced:
                    self.transition(vm, "OperationFailed")
                    self.ctx.checkpoint()
                    raise ResourceUnavailable(f"Unable to stop VM {vm.display_name or vm.name}: {exc}") from exc
            nets.release_elements(bindings)  # unplug the NICs from their providers (failures are logged)
        self._release_host_of(vm)
        self.transition(vm, "AgentReportStopped" if vm.state != "Stopping" else "OperationSucceeded")
        if host is not None:
            vm.last_host_id = host.id
        self.ctx.event("VM.STOP", f"Stopping Vm. Vm Id: {vm.uuid}", account_id=vm.account_id,
                       domain_id=vm.domain_id, resource_type="VirtualMachine", resource_uuid=vm.uuid)
        self.s.flush()
        return vm

    def reboot(self, vm: VirtualMachine) -> VirtualMachine:
        if vm.state != "Running" or vm.host_id is None:
            raise InvalidParameterValue(f"Unable to reboot VM {vm.display_name or vm.name}: it is in state"
                                        f" {vm.state}", uuids=[(vm.uuid, "virtualMachineId")])
        host = self.s.get(Host, vm.host_id)
        assert host is not None
        ref, spec = host_ref(host), self.spec(vm)
        self.ctx.checkpoint()
        try:
            self.driver(vm.hypervisor_type).reboot(ref, spec)
        except HypervisorError as exc:
            raise ResourceUnavailable(f"Unable to reboot VM {vm.display_name or vm.name}: {exc}") from exc
        self.ctx.event("VM.REBOOT", f"Rebooting Vm. Vm Id: {vm.uuid}", account_id=vm.account_id,
                       domain_id=vm.domain_id, resource_type="VirtualMachine", resource_uuid=vm.uuid)
        return vm

    # -- destroy / expunge / recover ------------------------------------------------------------
    def destroy(self, vm: VirtualMachine, *, expunge: bool = False, volume_ids: list[int] | None = None) -> VirtualMachine:
        if vm.delete_protection:
            raise InvalidParameterValue(f"VM {vm.display_name or vm.name} has delete protection on; turn it off"
                                        " with updateVirtualMachine deleteprotection=false")
        if vm.state in ("Destroyed", "Expunging"):
            return self.expunge(vm) if expunge else vm
        if vm.state in ("Running", "Stopping", "Starting", "Migrating"):
            self.stop(vm, forced=bool(self.ctx.setting("vm.destroy.forcestop")) or vm.state != "Running")
        self.transition(vm, "DestroyRequested", action="destroy")
        for vol in self.s.scalars(select(Volume).where(Volume.vm_id == vm.id, Volume.removed.is_(None))):
            if vol.volume_type == "ROOT":
                vol.state = "Destroy"
            elif volume_ids and vol.id in volume_ids:
                vol.vm_id, vol.device_id, vol.state = None, None, "Destroy"
                self._release_volume(vol)
            else:
                vol.vm_id, vol.device_id, vol.attached = None, None, None  # data disks stay, detached
        Limits(self.s).release(self.account(vm), self.vm_amounts(vm))
        self.ctx.event("VM.DESTROY", f"Destroying Vm. Vm Id: {vm.uuid}", account_id=vm.account_id,
                       domain_id=vm.domain_id, resource_type="VirtualMachine", resource_uuid=vm.uuid)
        self.s.flush()
        if expunge:
            return self.expunge(vm)
        return vm

    def _release_volume(self, vol: Volume) -> None:
        """Free a volume's pool space and its counts, and mark it expunged."""
        if vol.removed is not None:
            return
        if vol.pool_id is not None:
            release_pool(self.s, vol.pool_id, vol.size)
            storage_ops.DiskOps(self.ctx).release_volume(vol)
        account = self.s.get(Account, vol.account_id)
        if account is not None:
            Limits(self.s).release(account, [(ResourceType.volume, 1), (ResourceType.primary_storage, vol.size)])
        vol.state, vol.removed = "Expunged", utcnow()

    def expunge(self, vm: VirtualMachine) -> VirtualMachine:
        if vm.removed is not None:
            return vm
        if vm.state not in ("Destroyed", "Error", "Expunging"):
            raise InvalidParameterValue(f"Unable to expunge VM {vm.display_name or vm.name}: it is in state"
                                        f" {vm.state}; destroy it first", uuids=[(vm.uuid, "virtualMachineId")])
        if vm.state != "Expunging":
            self.transition(vm, "ExpungeOperation", action="expunge")
        host_id = vm.host_id or vm.last_host_id
        host = self.s.get(Host, host_id) if host_id else None
        nets = NetworkService(self.s, self.services)
        bindings = nets.bindings(vm.id)
        if host is not None:
            ref, spec = host_ref(host), self.spec(vm)
            self.ctx.checkpoint()
            try:
                self.driver(vm.hypervisor_type).destroy(ref, spec)
            except HypervisorError as exc:
                logger.warning("Hypervisor cleanup of %s failed: %s", vm.uuid, exc)
            nets.release_elements(bindings)  # the NICs leave their providers (failures are logged)
        self._release_host_of(vm)
        for nic in self.s.scalars(select(Nic).where(Nic.vm_id == vm.id, Nic.removed.is_(None))):
            nets.release_nic(nic)
        for vol in self.s.scalars(select(Volume).where(Volume.vm_id == vm.id, Volume.removed.is_(None))):
            if vol.volume_type == "ROOT":
                self._release_volume(vol)
        for model in (InstanceGroupVm, AffinityGroupVm, SecurityGroupVm):
            self.s.execute(delete(model).where(model.vm_id == vm.id))
        remove_tags(self.s, "UserVm", vm.id)
        from overcast.db.models import VmSnapshot  # the VM's snapshots go with it

        self.s.execute(update(VmSnapshot).where(VmSnapshot.vm_id == vm.id, VmSnapshot.removed.is_(None))
                       .values(state="Removed", removed=utcnow(), current=False)
                       .execution_options(synchronize_session=False))
        vm.removed = utcnow()
        self.ctx.event("VM.EXPUNGE", f"Expunging Vm. Vm Id: {vm.uuid}", account_id=vm.account_id,
                       domain_id=vm.domain_id, resource_type="VirtualMachine", resource_uuid=vm.uuid)
        self.s.flush()
        return vm

    def recover(self, vm: VirtualMachine) -> VirtualMachine:
        if vm.state != "Destroyed" or vm.removed is not None:
            raise InvalidParameterValue(f"Unable to recover VM {vm.display_name or vm.name}: it is not in the"
                                        " right state", uuids=[(vm.uuid, "virtualMachineId")])
        Limits(self.s).consume(self.account(vm), self.vm_amounts(vm))
        self.transition(vm, "RecoveryRequested", action="recover")
        for vol in self.s.scalars(select(Volume).where(Volume.vm_id == vm.id, Volume.volume_type == "ROOT",
                                                       Volume.removed.is_(None))):
            vol.state = "Ready" if vol.pool_id is not None else "Allocated"
        self.ctx.event("VM.RECOVER", f"Recovering Vm. Vm Id: {vm.uuid}", account_id=vm.account_id,
                       domain_id=vm.domain_id, resource_type="VirtualMachine", resource_uuid=vm.uuid)
        self.s.flush()
        return vm

    def fail_deployment(self, vm: VirtualMachine) -> None:
        """A deployment that could not start: the VM goes to Error and gives back its counts, volumes
        and addresses (the expunge task removes it later, as CloudStack does with Error VMs)."""
        if vm.state not in ("Stopped", "Starting"):
            return
        self._release_host_of(vm)
        if vm.state == "Starting":
            self.transition(vm, "OperationFailed")
        self.transition(vm, "OperationFailedToError")
        Limits(self.s).release(self.account(vm), self.vm_amounts(vm))
        for vol in self.s.scalars(select(Volume).where(Volume.vm_id == vm.id, Volume.removed.is_(None))):
            self._release_volume(vol)
        nets = NetworkService(self.s)
        for nic in self.s.scalars(select(Nic).where(Nic.vm_id == vm.id, Nic.removed.is_(None))):
            nets.release_nic(nic)
        self.s.flush()

    def restore(self, vm: VirtualMachine, template: Template | None) -> VirtualMachine:
        """A new ROOT volume from the VM's template (or ``template``); the VM keeps its state."""
        if vm.state not in ("Running", "Stopped"):
            raise InvalidParameterValue(f"Unable to restore VM {vm.display_name or vm.name}: it is in state {vm.state}")
        target = template or self.s.get(Template, vm.template_id)
        assert target is not None
        if target.format == "ISO":
            raise InvalidParameterValue("A VM can't be restored from an ISO; pass a template")
        was_running = vm.state == "Running"
        old = self.s.scalar(select(Volume).where(Volume.vm_id == vm.id, Volume.volume_type == "ROOT",
                                                 Volume.removed.is_(None)))
        if was_running:
            self.stop(vm)
        size = max(target.size or 0, old.size if old else 0)
        account = self.account(vm)
        new = Volume(name=f"ROOT-{vm.id}", account_id=vm.account_id, domain_id=vm.domain_id, zone_id=vm.zone_id,
                     vm_id=vm.id, device_id=0, volume_type="ROOT", state="Allocated", size=size,
                     disk_offering_id=old.disk_offering_id if old else None, template_id=target.id,
                     format=target.format)
        Limits(self.s).consume(account, [(ResourceType.volume, 1), (ResourceType.primary_storage, size)])
        if old is not None:
            old.vm_id, old.device_id = None, None
            self._release_volume(old)
        if old is not None and old.pool_id is not None:
            from overcast.engine.capacity import reserve_pool

            factor = float(self.ctx.setting("storage.overprovisioning.factor"))
            if reserve_pool(self.s, old.pool_id, size, factor):
                new.pool_id, new.state, new.path = old.pool_id, "Ready", None
        self.s.add(new)
        self.s.flush()
        if new.path is None and new.pool_id is not None:
            new.path = new.uuid
        vm.template_id = target.id
        vm.guest_os_id = target.guest_os_id or vm.guest_os_id
        self.ctx.event("VM.RESTORE", f"Restoring VM {vm.uuid}", account_id=vm.account_id, domain_id=vm.domain_id,
                       resource_type="VirtualMachine", resource_uuid=vm.uuid)
        self.s.flush()
        if was_running:
            self.start(vm)
        return vm

    def assign(self, vm: VirtualMachine, account: Account, networks: list[Network]) -> VirtualMachine:
        """Move a stopped VM (with its volumes) to another account (assignVirtualMachine)."""
        if vm.state != "Stopped":
            raise InvalidParameterValue(f"VM {vm.display_name or vm.name} must be stopped to move it to another account")
        old_account = self.account(vm)
        if old_account.id == account.id:
            raise InvalidParameterValue(f"VM {vm.name} already belongs to account {account.name}")
        volumes = list(self.s.scalars(select(Volume).where(Volume.vm_id == vm.id, Volume.removed.is_(None))))
        storage = sum(v.size for v in volumes)
        moved = [*self.vm_amounts(vm), (ResourceType.volume, len(volumes)), (ResourceType.primary_storage, storage)]
        Limits(self.s).consume(account, moved)
        Limits(self.s).release(old_account, moved)
        vm.account_id, vm.domain_id = account.id, account.domain_id
        for v in volumes:
            v.account_id, v.domain_id = account.id, account.domain_id
        nets = NetworkService(self.s)
        zone = self.s.get(Zone, vm.zone_id)
        assert zone is not None
        old_nics = list(self.s.scalars(select(Nic).where(Nic.vm_id == vm.id, Nic.removed.is_(None))))
        shared = all(self.s.get(Network, n.network_id).guest_type == "Shared" for n in old_nics)  # type: ignore[union-attr]
        if not (zone.network_type == "Basic" or (shared and not networks)):
            for nic in old_nics:
                nets.release_nic(nic)
            targets = networks or [nets.default_network(account, zone)]
            for device, net in enumerate(targets):
                if net.account_id != account.id and net.guest_type != "Shared":
                    raise InvalidParameterValue(f"Network {net.name} does not belong to account {account.name}")
                nets.add_nic(net, vm_id=vm.id, device_id=device, is_default=device == 0)
        for model in (InstanceGroupVm, AffinityGroupVm, SecurityGroupVm):
            self.s.execute(delete(model).where(model.vm_id == vm.id))
        if zone.network_type == "Basic" or zone.security_group_enabled:
            from overcast.engine.deploy import default_security_group

            self.s.add(SecurityGroupVm(security_group_id=default_security_group(self.ctx, account).id, vm_id=vm.id))
        self.ctx.event("VM.MOVE", f"Moving VM {vm.uuid} from account {old_account.name} to {account.name}",
                       account_id=account.id, domain_id=account.domain_id, resource_type="VirtualMachine",
                       resource_uuid=vm.uuid)
        self.s.flush()
        return vm

    # -- changes --------------------------------------------------------------------------------
    def reset_password(self, vm: VirtualMachine) -> str:
        template = self.s.get(Template, vm.template_id)
        if template is None or not template.password_enabled:
            raise InvalidParameterValue("Fail to reset password for the virtual machine, the template is not"
                                        " password enabled")
        if vm.state not in ("Stopped", "Running"):
            raise InvalidParameterValue(f"Unable to reset the password of VM {vm.display_name or vm.name}:"
                                        f" it is in state {vm.state}")
        password = new_password()
        vm.password = password
        self.ctx.event("VM.RESETPASSWORD", f"Resetting password for Vm. Vm Id: {vm.uuid}",
                       account_id=vm.account_id, domain_id=vm.domain_id, resource_type="VirtualMachine",
                       resource_uuid=vm.uuid)
        self.s.flush()
        return password

    def change_offering(self, vm: VirtualMachine, offering: ServiceOffering, *, cpu: int | None,
                        speed: int | None, memory: int | None) -> VirtualMachine:
        """Change the shape of a stopped VM (changeServiceForVirtualMachine)."""
        if vm.state != "Stopped":
            raise InvalidParameterValue(f"Unable to change the service offering of VM {vm.display_name or vm.name}:"
                                        f" it must be Stopped, it is {vm.state}")
        new_cpu, new_speed, new_mem = shape(offering, cpu, speed, memory)
        account = self.account(vm)
        Limits(self.s).consume(account, [(ResourceType.cpu, new_cpu - vm.cpu), (ResourceType.memory, new_mem - vm.memory)])
        vm.service_offering_id, vm.cpu, vm.speed, vm.memory = offering.id, new_cpu, new_speed, new_mem
        vm.ha_enabled = offering.ha_enabled
        self.ctx.event("VM.UPGRADE", f"Upgrading Vm. Vm Id: {vm.uuid}", account_id=vm.account_id,
                       domain_id=vm.domain_id, resource_type="VirtualMachine", resource_uuid=vm.uuid)
        self.s.flush()
        return vm

    def scale(self, vm: VirtualMachine, offering: ServiceOffering, *, cpu: int | None, speed: int | None,
              memory: int | None) -> VirtualMachine:
        """Change the shape of a running VM in place (scaleVirtualMachine): only upwards."""
        if vm.state == "Stopped":
            return self.change_offering(vm, offering, cpu=cpu, speed=speed, memory=memory)
        if vm.state != "Running" or vm.host_id is None:
            raise InvalidParameterValue(f"Unable to scale VM {vm.display_name or vm.name}: it is in state {vm.state}")
        if not vm.dynamically_scalable:
            raise InvalidParameterValue("Unable to scale the VM: it is not dynamically scalable (enable"
                                        " isdynamicallyscalable on the VM and its template)")
        new_cpu, new_speed, new_mem = shape(offering, cpu, speed, memory)
        if new_cpu < vm.cpu or new_speed < vm.speed or new_mem < vm.memory:
            raise InvalidParameterValue("Only scaling up a running VM is supported; stop it to scale down")
        from overcast.db.models import Cluster
        from overcast.engine.capacity import overcommit, reserve_host

        host = self.s.get(Host, vm.host_id)
        assert host is not None
        cpu_factor, mem_factor = overcommit(self.services.settings, self.s.get(Cluster, host.cluster_id)
                                            if host.cluster_id else None)
        extra_cpu = new_cpu * new_speed - vm.cpu * vm.speed
        extra_mem = (new_mem - vm.memory) * MB
        if not reserve_host(self.s, host.id, extra_cpu, extra_mem, cpu_factor, mem_factor):
            raise InsufficientCapacity(f"Not enough capacity on host {host.name} to scale VM {vm.display_name or vm.name}")
        Limits(self.s).consume(self.account(vm), [(ResourceType.cpu, new_cpu - vm.cpu),
                                                  (ResourceType.memory, new_mem - vm.memory)])
        vm.service_offering_id, vm.cpu, vm.speed, vm.memory = offering.id, new_cpu, new_speed, new_mem
        self.ctx.event("VM.DYNAMIC.SCALE", f"Scaling Vm. Vm Id: {vm.uuid}", account_id=vm.account_id,
                       domain_id=vm.domain_id, resource_type="VirtualMachine", resource_uuid=vm.uuid)
        self.s.flush()
        return vm

    def migrate(self, vm: VirtualMachine, target: Host | None) -> VirtualMachine:
        if vm.state != "Running" or vm.host_id is None:
            raise InvalidParameterValue(f"Unable to migrate VM {vm.display_name or vm.name}: it is in state"
                                        f" {vm.state}; only running VMs migrate between hosts")
        source = self.s.get(Host, vm.host_id)
        assert source is not None
        if target is not None and target.id == source.id:
            raise InvalidParameterValue("The VM already runs on the target host")
        self.transition(vm, "MigrationRequested", action="migrate")
        vol = self.s.scalar(select(Volume).where(Volume.vm_id == vm.id, Volume.volume_type == "ROOT",
                                                 Volume.removed.is_(None)))
        plan = Plan(zone_id=vm.zone_id, host_id=target.id if target else None, avoid_hosts={source.id},
                    pool_id=vol.pool_id if vol else None)
        offering = self.s.get(ServiceOffering, vm.service_offering_id)
        req = Requirements(cpu=vm.cpu, speed=vm.speed, memory_mb=vm.memory, hypervisor=vm.hypervisor_type,
                           host_tag=offering.host_tag if offering else None)
        try:
            dest = Planner(self.s, self.services.settings).plan(vm, req, plan)
        except InsufficientCapacity:
            self.transition(vm, "OperationFailed")
            raise
        src_ref, dst_ref, spec = host_ref(source), host_ref(dest.host), self.spec(vm)
        self.ctx.checkpoint()
        try:
            self.driver(vm.hypervisor_type).migrate(src_ref, dst_ref, spec)
        except HypervisorError as exc:
            release_host(self.s, dest.host.id, dest.cpu_mhz, dest.mem_bytes)
            self.transition(vm, "OperationFailed")
            self.ctx.checkpoint()
            raise ResourceUnavailable(f"Unable to migrate VM {vm.display_name or vm.name}: {exc}") from exc
        release_host(self.s, source.id, vm.cpu * vm.speed, vm.memory * MB)
        vm.host_id, vm.last_host_id, vm.pod_id = dest.host.id, source.id, dest.host.pod_id
        self.transition(vm, "OperationSucceeded")
        self.ctx.event("VM.MIGRATE", f"Migrating Vm. Vm Id: {vm.uuid} to host {dest.host.uuid}",
                       account_id=vm.account_id, domain_id=vm.domain_id, resource_type="VirtualMachine",
                       resource_uuid=vm.uuid)
        self.s.flush()
        return vm


def shape(offering: ServiceOffering, cpu: int | None, speed: int | None, memory: int | None) -> tuple[int, int, int]:
    """(cpus, MHz, MB) of a VM of ``offering``, taking the request's values for custom offerings."""
    if not offering.customized:
        if offering.cpu is None or offering.speed is None or offering.ram_size is None:
            raise InvalidParameterValue(f"Service offering {offering.name} is incomplete")
        return offering.cpu, offering.speed, offering.ram_size
    c = offering.cpu if offering.cpu is not None else cpu
    sp = offering.speed if offering.speed is not None else speed
    m = offering.ram_size if offering.ram_size is not None else memory
    if c is None or sp is None or m is None:
        raise InvalidParameterValue(
            f"Service offering {offering.name} is custom: give details[0].cpuNumber, details[0].cpuSpeed and"
            " details[0].memory")
    if offering.min_cpu and c < offering.min_cpu or offering.max_cpu and c > offering.max_cpu:
        raise InvalidParameterValue(f"cpuNumber must be between {offering.min_cpu} and {offering.max_cpu}")
    if offering.min_memory and m < offering.min_memory or offering.max_memory and m > offering.max_memory:
        raise InvalidParameterValue(f"memory must be between {offering.min_memory} and {offering.max_memory}")
    if c < 1 or sp < 1 or m < 32:
        raise InvalidParameterValue("cpuNumber and cpuSpeed must be positive and memory at least 32 MB")
    return c, sp, m


__all__ = ["GIB", "NetworkRequest", "TRANSITIONS", "VmOps", "host_ref", "new_password", "shape"]
