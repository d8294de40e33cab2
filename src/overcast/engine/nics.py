"""A VM's NICs after deployment: add one in another network, remove one, change the default NIC, give
a NIC another address. Addresses stay unique per network (:meth:`NetworkService.add_nic`); a running
VM's NIC is plugged into (or out of) its network's providers outside the transaction."""

from __future__ import annotations

from sqlalchemy import func, select

from overcast.db.models import Account, Domain, Network, Nic, PublicIp, VirtualMachine, Zone
from overcast.engine.context import EngineContext
from overcast.engine.networks import GONE_STATES, NetworkService
from overcast.errors import InvalidParameterValue, PermissionDenied, ResourceInUse, ResourceUnavailable


def check_network_permission(ctx: EngineContext, net: Network, account: Account) -> None:
    """``account`` may have a NIC in ``net``: its own network, or a shared one of its domain (or above,
    with subdomain access)."""
    s = ctx.session
    if net.acl_type == "Domain":
        net_domain = s.get(Domain, net.domain_id)
        own_domain = s.get(Domain, account.domain_id)
        if net.domain_id == account.domain_id or (
                net.subdomain_access and net_domain is not None and own_domain is not None
                and own_domain.path.startswith(net_domain.path)):
            return
    elif net.account_id == account.id:
        return
    raise PermissionDenied(f"Account {account.name} can't use network {net.name}", uuids=[(net.uuid, "networkId")])


def _check_state(vm: VirtualMachine, action: str) -> None:
    if vm.state not in ("Running", "Stopped"):
        raise InvalidParameterValue(f"Unable to {action} VM {vm.display_name or vm.name}: it is in state {vm.state};"
                                    " it must be Running or Stopped", uuids=[(vm.uuid, "virtualMachineId")])


def _nic_of(ctx: EngineContext, vm: VirtualMachine, nic: Nic) -> Network:
    if nic.vm_id != vm.id or nic.removed is not None:
        raise InvalidParameterValue(f"Unable to find nic {nic.uuid} of VM {vm.display_name or vm.name} (parameter"
                                    " nicid)", uuids=[(nic.uuid, "nicId")])
    net = ctx.session.get(Network, nic.network_id)
    assert net is not None
    return net


def _static_nat_on(ctx: EngineContext, vm: VirtualMachine, nic: Nic) -> PublicIp | None:
    return ctx.session.scalar(select(PublicIp).where(PublicIp.vm_id == vm.id, PublicIp.vm_ip == nic.ip_address,
                                                     PublicIp.state != "Free"))


def add_nic(ctx: EngineContext, vm: VirtualMachine, net: Network, *, ip: str | None = None,
            mac: str | None = None) -> Nic:
    s = ctx.session
    _check_state(vm, "add a NIC to")
    zone = s.get(Zone, vm.zone_id)
    assert zone is not None
    if zone.network_type == "Basic":
        raise InvalidParameterValue(f"Zone {zone.name}, has a NetworkType of Basic. Can't add a new NIC to a VM on a"
                                    " Basic Network")
    if net.zone_id != vm.zone_id:
        raise InvalidParameterValue(f"Network {net.name} is not in zone {zone.name} of VM {vm.display_name or vm.name}"
                                    " (parameter networkid)")
    if net.state in GONE_STATES:
        raise InvalidParameterValue(f"Network {net.name} is being deleted (parameter networkid)")
    owner = s.get(Account, vm.account_id)
    assert owner is not None
    check_network_permission(ctx, net, owner)
    if s.scalar(select(Nic.id).where(Nic.vm_id == vm.id, Nic.network_id == net.id, Nic.removed.is_(None))) is not None:
        raise InvalidParameterValue(f"A NIC already exists for VM: {vm.display_name or vm.name} in network:"
                                    f" {net.name}")
    nets = NetworkService(s, ctx.services)
    running = vm.state == "Running"
    if running:
        nets.implement(net)  # a running VM's new NIC works at once (counts, then the network row: the lock order)
    device = s.scalar(select(func.max(Nic.device_id)).where(Nic.vm_id == vm.id, Nic.removed.is_(None)))
    nic = nets.add_nic(net, vm_id=vm.id, device_id=(device + 1) if device is not None else 0,
                       is_default=device is None, requested_ip=ip, mac_address=mac)
    ctx.event("NIC.CREATE", f"Adding NIC to VM {vm.uuid} in network {net.uuid}", account_id=vm.account_id,
              domain_id=vm.domain_id, resource_type="Nic", resource_uuid=nic.uuid)
    s.flush()
    if running:
        bindings = [b for b in nets.bindings(vm.id) if b.nic.uuid == nic.uuid]
        ctx.checkpoint()
        try:
            nets.prepare_elements(bindings)
        except ResourceUnavailable:
            nets.release_nic(nic)  # undo our own step
            s.flush()
            ctx.checkpoint()
            raise
    return nic


def remove_nic(ctx: EngineContext, vm: VirtualMachine, nic: Nic) -> None:
    s = ctx.session
    _check_state(vm, "remove a NIC from")
    net = _nic_of(ctx, vm, nic)
    if nic.is_default:
        raise InvalidParameterValue(f"Unable to remove nic from VM {vm.display_name or vm.name} in network"
                                    f" {net.name}, nic is default.", uuids=[(nic.uuid, "nicId")])
    nat = _static_nat_on(ctx, vm, nic)
    if nat is not None:
        raise ResourceInUse(f"The NIC's address {nic.ip_address} is the static NAT target of public IP address"
                            f" {nat.address}: disable static NAT first", uuids=[(nic.uuid, "nicId")])
    nets = NetworkService(s, ctx.services)
    bindings = [b for b in nets.bindings(vm.id) if b.nic.uuid == nic.uuid] if vm.state == "Running" else []
    nets.release_nic(nic)
    ctx.event("NIC.DELETE", f"Removing NIC {nic.uuid} from VM {vm.uuid}", account_id=vm.account_id,
              domain_id=vm.domain_id, resource_type="Nic", resource_uuid=nic.uuid)
    s.flush()
    if bindings:
        ctx.checkpoint()
        nets.release_elements(bindings)


def set_default_nic(ctx: EngineContext, vm: VirtualMachine, nic: Nic) -> None:
    s = ctx.session
    _check_state(vm, "change the default NIC of")
    _nic_of(ctx, vm, nic)
    if nic.is_default:
        raise InvalidParameterValue(f"NIC {nic.uuid} is already the default NIC of VM {vm.display_name or vm.name}"
                                    " (parameter nicid)", uuids=[(nic.uuid, "nicId")])
    for other in s.scalars(select(Nic).where(Nic.vm_id == vm.id, Nic.removed.is_(None), Nic.is_default.is_(True))):
        other.is_default = False
    nic.is_default = True
    ctx.event("NIC.UPDATE", f"Making NIC {nic.uuid} the default NIC of VM {vm.uuid}", account_id=vm.account_id,
              domain_id=vm.domain_id, resource_type="Nic", resource_uuid=nic.uuid)
    s.flush()


def update_nic_ip(ctx: EngineContext, nic: Nic, ip: str | None) -> VirtualMachine:
    s = ctx.session
    vm = s.get(VirtualMachine, nic.vm_id)
    if vm is None or vm.removed is not None or nic.removed is not None:
        raise InvalidParameterValue(f"Unable to find nic {nic.uuid} (parameter nicid)")
    net = _nic_of(ctx, vm, nic)
    if vm.state != "Stopped":
        raise InvalidParameterValue("VM is not Stopped, unable to update the vm nic having the specified id",
                                    uuids=[(vm.uuid, "virtualMachineId")])
    nat = _static_nat_on(ctx, vm, nic)
    if nat is not None:
        raise ResourceInUse(f"The NIC's address {nic.ip_address} is the static NAT target of public IP address"
                            f" {nat.address}: disable static NAT first", uuids=[(nic.uuid, "nicId")])
    old = nic.ip_address
    new = NetworkService(s, ctx.services).change_nic_ip(nic, net, ip)
    if new != old:
        ctx.event("NET.IPASSIGN", f"Changing the address of NIC {nic.uuid} from {old} to {new}",
                  account_id=vm.account_id, domain_id=vm.domain_id, resource_type="Nic", resource_uuid=nic.uuid)
    s.flush()
    return vm


__all__ = ["add_nic", "check_network_permission", "remove_nic", "set_default_nic", "update_nic_ip"]
