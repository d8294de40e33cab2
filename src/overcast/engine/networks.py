"""Guest networks: creation, the default network of an account, address allocation, implementation
through the network elements, restart and deletion; public addresses.

Addresses are never handed out twice: a NIC's ``(network_id, ip_address)`` is unique in the database,
and allocation retries on the next free address when a concurrent transaction took one first.
Public addresses move from Free by compare-and-set. MAC addresses derive from the NIC's id.

Locks are taken in one order everywhere, so concurrent requests queue instead of deadlocking: resource
counts (:mod:`overcast.engine.limits`), then the account row, then the network row, then the physical
network row, then public addresses and NICs. Network elements (plug-ins) are called between
transactions, from values read before (:class:`NetworkTarget`), never holding a lock.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from overcast.db.models import (
    Account,
    Domain,
    Network,
    NetworkOffering,
    Nic,
    PhysicalNetwork,
    PublicIp,
    TrafficType,
    VirtualMachine,
    VlanIpRange,
    Zone,
    utcnow,
)
from overcast.engine.limits import Limits, ResourceType
from overcast.errors import (
    InsufficientCapacity,
    InvalidParameterValue,
    PermissionDenied,
    ResourceInUse,
    ResourceUnavailable,
)
from overcast.plugins.network import RULE_KINDS, NetworkElement, NetworkElementError, NetworkRef, NicRef

if TYPE_CHECKING:
    from overcast.engine.context import EngineContext
    from overcast.services import Services

logger = logging.getLogger(__name__)

DEFAULT_ISOLATED_OFFERING = "DefaultIsolatedNetworkOfferingWithSourceNatService"
DEFAULT_SHARED_SG_OFFERING = "DefaultSharedNetworkOfferingWithSGService"
#: The system account and the ROOT domain: owners of zone-wide shared networks.
SYSTEM_ACCOUNT_ID, ROOT_DOMAIN_ID = 1, 1
#: States in which a network takes no new NICs.
GONE_STATES = ("Shutdown", "Destroy")
_MAC = re.compile(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")
_DOMAIN_NAME = re.compile(r"^(?=.{1,190}$)([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)*"
                          r"[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$")


def mac_for(nic_id: int) -> str:
    """A locally administered unicast MAC unique per NIC id."""
    b = nic_id.to_bytes(4, "big")
    return "02:00:" + ":".join(f"{x:02x}" for x in b)


def offering_services(offering: NetworkOffering) -> dict[str, list[str]]:
    return dict(json.loads(offering.services or "{}"))


def vlan_of(broadcast_uri: str | None) -> str | None:
    """``vlan://100`` -> ``100`` (what listNetworks shows as ``vlan``)."""
    if not broadcast_uri:
        return None
    return broadcast_uri.split("://", 1)[-1]


def check_network_domain(value: str, param: str = "networkdomain") -> str:
    text = value.strip()
    if not _DOMAIN_NAME.match(text):
        raise InvalidParameterValue(
            f"Invalid network domain {value} (parameter {param}). Total length shouldn't exceed 190 chars. Each"
            " domain label must be between 1 and 63 characters long, can contain ASCII letters 'a' through 'z',"
            " the digits '0' through '9', and the hyphen ('-'); can't start or end with \"-\"; can't start"
            " with digit")
    return text


@dataclass(frozen=True, slots=True)
class NetworkTarget:
    """What the elements of one network are told, read from the database before calling them."""

    providers: tuple[str, ...]
    network: NetworkRef
    source_nat_ip: str | None
    #: Service name -> its providers in this network (from the network offering).
    services: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NicBinding:
    target: NetworkTarget
    nic: NicRef


class NetworkService:
    def __init__(self, session: Session, services: Services | None = None) -> None:
        self.s = session
        #: Process services, for the network elements; without them elements are not called.
        self.services = services

    # -- lookups --------------------------------------------------------------------------------
    def offering_by_name(self, name: str) -> NetworkOffering:
        off = self.s.scalar(select(NetworkOffering).where(NetworkOffering.name == name,
                                                          NetworkOffering.removed.is_(None)))
        if off is None:
            raise ResourceUnavailable(f"Network offering {name} is not available")
        return off

    def offering_of(self, net: Network) -> NetworkOffering | None:
        return self.s.get(NetworkOffering, net.network_offering_id)

    def services_of(self, net: Network) -> dict[str, list[str]]:
        off = self.offering_of(net)
        return offering_services(off) if off is not None else {}

    def guest_physical_network(self, zone: Zone) -> PhysicalNetwork | None:
        return self.s.scalar(
            select(PhysicalNetwork).join(TrafficType, TrafficType.physical_network_id == PhysicalNetwork.id)
            .where(PhysicalNetwork.zone_id == zone.id, PhysicalNetwork.removed.is_(None),
                   TrafficType.traffic_type == "Guest").order_by(PhysicalNetwork.id))

    def source_nat(self, net: Network) -> PublicIp | None:
        return self.s.scalar(select(PublicIp).where(PublicIp.network_id == net.id, PublicIp.source_nat.is_(True),
                                                    PublicIp.state != "Free"))

    def lock(self, net: Network) -> Network:
        """Lock the network's row for the rest of the transaction and reload it."""
        self.s.execute(select(Network.id).where(Network.id == net.id).with_for_update())
        self.s.refresh(net)
        return net

    def default_network(self, account: Account, zone: Zone, *, create: bool = True) -> Network:
        """The network a VM joins when the deploy names none."""
        if zone.network_type == "Basic":
            net = self.s.scalar(select(Network).where(
                Network.zone_id == zone.id, Network.guest_type == "Shared", Network.removed.is_(None))
                .order_by(Network.id))
            if net is None:
                raise ResourceUnavailable(f"Zone {zone.name} has no guest network yet")
            return net
        if zone.security_group_enabled:
            net = self.s.scalar(select(Network).where(
                Network.zone_id == zone.id, Network.guest_type == "Shared", Network.removed.is_(None),
                Network.state.not_in(GONE_STATES)).order_by(Network.id))
            if net is None:
                raise InvalidParameterValue(f"Zone {zone.name} has no shared network to deploy into; pass networkids")
            return net
        stmt = select(Network).where(
            Network.zone_id == zone.id, Network.account_id == account.id, Network.guest_type == "Isolated",
            Network.removed.is_(None), Network.state.not_in(GONE_STATES)).order_by(Network.id)
        net = self.s.scalar(stmt)
        if net is not None:
            return net
        if not create:
            raise InvalidParameterValue("The account has no network in this zone; pass networkids")
        # One default network per account, even when deploys race: the account's row is the lock.
        self.s.execute(select(Account.id).where(Account.id == account.id).with_for_update())
        net = self.s.scalar(stmt)
        if net is not None:
            return net
        offering = self.offering_by_name(DEFAULT_ISOLATED_OFFERING)
        return self.create_isolated(account, zone, offering, name=f"{account.name}-network",
                                    display_text=f"{account.name}-network")

    # -- creation -------------------------------------------------------------------------------
    def create_isolated(self, account: Account, zone: Zone, offering: NetworkOffering, *, name: str,
                        display_text: str | None, gateway: str | None = None, netmask: str | None = None,
                        network_domain: str | None = None, physical_network: PhysicalNetwork | None = None) -> Network:
        if zone.network_type == "Basic":
            raise InvalidParameterValue(f"Isolated networks can't be created in basic zone {zone.name}"
                                        " (parameter zoneid)")
        if zone.security_group_enabled:
            raise InvalidParameterValue(f"Zone {zone.name} has security groups enabled: only shared networks with"
                                        " the security group service can be created in it (parameter"
                                        " networkofferingid)")
        if offering.guest_ip_type != "Isolated":
            raise InvalidParameterValue(f"Network offering {offering.name} is not for isolated networks"
                                        " (parameter networkofferingid)")
        if offering.state != "Enabled":
            raise InvalidParameterValue(f"Network offering {offering.name} is not enabled (parameter"
                                        " networkofferingid)")
        if bool(gateway) != bool(netmask):
            raise InvalidParameterValue("gateway and netmask must be given together (parameters gateway, netmask)")
        cidr = ipaddress.ip_network(zone.guest_cidr or "10.1.1.0/24", strict=False)
        gw = None
        if gateway and netmask:
            from overcast.engine.infra import ipv4, netmask_of, subnet

            gw, mask = ipv4(gateway, "gateway"), netmask_of(netmask)
            cidr = subnet(gw, mask)
            if cidr.prefixlen > 29:
                raise InvalidParameterValue(f"The netmask {mask} leaves no room for guests: use a /29 or larger"
                                            " (parameter netmask)")
            if not cidr.is_private:
                raise InvalidParameterValue(f"The network {cidr} is not a private (RFC 1918) range: guest networks"
                                            " take private addresses (parameters gateway, netmask)")
            if ipaddress.ip_address(gw) in (cidr.network_address, cidr.broadcast_address):
                raise InvalidParameterValue(f"The gateway {gw} can't be the network or broadcast address of {cidr}"
                                            " (parameter gateway)")
        gw = gw or str(next(cidr.hosts()))
        if network_domain:
            network_domain = check_network_domain(network_domain)
        Limits(self.s).consume(account, [(ResourceType.network, 1)])
        physical = physical_network or self.guest_physical_network(zone)
        net = Network(
            name=name, display_text=display_text or name, zone_id=zone.id,
            physical_network_id=physical.id if physical else None, network_offering_id=offering.id,
            account_id=account.id, domain_id=account.domain_id, acl_type="Account", guest_type="Isolated",
            cidr=str(cidr), gateway=gw, netmask=str(cidr.netmask), network_domain=network_domain or zone.network_domain
            or "cs1cloud.internal", dns1=zone.dns1, dns2=zone.dns2,
        )  # fmt: skip
        self.s.add(net)
        self.s.flush()
        return net

    # -- addresses ------------------------------------------------------------------------------
    def _candidates(self, net: Network) -> list[str]:
        if net.guest_type == "Isolated" or not net.start_ip:
            ranges = self.s.scalars(select(VlanIpRange).where(VlanIpRange.network_id == net.id,
                                                              VlanIpRange.removed.is_(None))
                                    .order_by(VlanIpRange.id)).all()
            if net.guest_type != "Isolated" and ranges:
                return [ip for r in ranges for ip in span(r.start_ip, r.end_ip)]
            if not net.cidr:
                return []
            cidr = ipaddress.ip_network(net.cidr, strict=False)
            return [str(h) for h in cidr.hosts() if str(h) != net.gateway]
        out = span(net.start_ip, net.end_ip or net.start_ip)
        for r in self.s.scalars(select(VlanIpRange).where(VlanIpRange.network_id == net.id,
                                                          VlanIpRange.removed.is_(None))):
            out.extend(span(r.start_ip, r.end_ip))
        return [ip for ip in dict.fromkeys(out) if ip != net.gateway]

    def _subnet_of(self, net: Network, ip: str) -> tuple[str | None, str | None]:
        """(gateway, netmask) for an address of the network: a shared network's from its IP range."""
        if net.guest_type != "Isolated":
            addr = ipaddress.ip_address(ip)
            for r in self.s.scalars(select(VlanIpRange).where(VlanIpRange.network_id == net.id,
                                                              VlanIpRange.removed.is_(None))):
                if ipaddress.ip_address(r.start_ip) <= addr <= ipaddress.ip_address(r.end_ip):
                    return r.gateway, r.netmask
        return net.gateway, net.netmask

    def check_usable(self, net: Network) -> None:
        """Refuse a network that is being deleted; hold a shared lock on its row so a deletion waits for
        this transaction (and then sees its NIC)."""
        row = self.s.execute(select(Network.state, Network.removed).where(Network.id == net.id)
                             .with_for_update(read=True)).one()
        if row.removed is not None or row.state in GONE_STATES:
            raise InvalidParameterValue(f"Network {net.name} is being deleted and takes no new NICs",
                                        uuids=[(net.uuid, "networkId")])

    def add_nic(self, net: Network, *, vm_id: int, device_id: int, is_default: bool,
                requested_ip: str | None = None, mac_address: str | None = None) -> Nic:
        """Create a NIC with a unique address (the requested one, or the first free)."""
        self.check_usable(net)
        if mac_address is not None:
            mac_address = mac_address.strip().lower()
            if not _MAC.match(mac_address) or int(mac_address[:2], 16) & 1:
                raise InvalidParameterValue(f"Mac address is not valid: {mac_address} (parameter macaddress)")
            if self.s.scalar(select(Nic.id).where(Nic.mac_address == mac_address)) is not None:
                raise InvalidParameterValue(f"The MAC address {mac_address} is already in use (parameter"
                                            " macaddress)")
        candidates = self._candidates(net)
        if requested_ip is not None:
            try:
                requested_ip = str(ipaddress.ip_address(requested_ip.strip()))
            except ValueError:
                raise InvalidParameterValue(f"Invalid IP address {requested_ip} (parameter ipaddress)") from None
            if requested_ip not in candidates:
                raise InvalidParameterValue(f"IP address {requested_ip} is not in the range of network {net.name}")
            candidates = [requested_ip]
        used = set(self.s.scalars(select(Nic.ip_address).where(Nic.network_id == net.id,
                                                               Nic.ip_address.is_not(None))))
        for ip in candidates:
            if ip in used:
                if requested_ip is not None:
                    raise InvalidParameterValue(f"IP address {requested_ip} is already in use in network {net.name}")
                continue
            gateway, netmask = self._subnet_of(net, ip)
            try:
                with self.s.begin_nested():
                    nic = Nic(vm_id=vm_id, network_id=net.id, ip_address=ip, gateway=gateway,
                              netmask=netmask, is_default=is_default, device_id=device_id,
                              broadcast_uri=net.broadcast_uri, isolation_uri=net.broadcast_uri,
                              state="Reserved", mac_address=mac_address)
                    self.s.add(nic)
                    self.s.flush()
                    if mac_address is None:
                        nic.mac_address = mac_for(nic.id)
                        self.s.flush()
                return nic
            except IntegrityError:
                if mac_address is not None and self.s.scalar(
                        select(Nic.id).where(Nic.mac_address == mac_address)) is not None:
                    raise InvalidParameterValue(f"The MAC address {mac_address} is already in use (parameter"
                                                " macaddress)") from None
                if requested_ip is not None:
                    raise InvalidParameterValue(f"IP address {requested_ip} is already in use in network {net.name}") from None
                continue  # taken by a concurrent transaction: try the next one
        raise InsufficientCapacity(f"No free IP address left in network {net.name}")

    def change_nic_ip(self, nic: Nic, net: Network, requested_ip: str | None) -> str:
        """Give ``nic`` another address of its network (the requested one or the first free)."""
        candidates = self._candidates(net)
        if requested_ip is not None:
            try:
                requested_ip = str(ipaddress.ip_address(requested_ip.strip()))
            except ValueError:
                raise InvalidParameterValue(f"Invalid IP address {requested_ip} (parameter ipaddress)") from None
            if requested_ip == nic.ip_address:
                return requested_ip
            if requested_ip not in candidates:
                raise InvalidParameterValue(f"IP address {requested_ip} is not in the range of network {net.name}"
                                            " (parameter ipaddress)")
            candidates = [requested_ip]
        used = set(self.s.scalars(select(Nic.ip_address).where(Nic.network_id == net.id,
                                                               Nic.ip_address.is_not(None))))
        for ip in candidates:
            if ip in used:
                if requested_ip is not None:
                    raise InvalidParameterValue(f"IP address {requested_ip} is already in use in network {net.name}"
                                                " (parameter ipaddress)")
                continue
            try:
                with self.s.begin_nested():
                    nic.ip_address = ip
                    nic.gateway, nic.netmask = self._subnet_of(net, ip)
                    self.s.flush()
                return ip
            except IntegrityError:
                self.s.refresh(nic)
                if requested_ip is not None:
                    raise InvalidParameterValue(f"IP address {requested_ip} is already in use in network {net.name}"
                                                " (parameter ipaddress)") from None
                continue
        raise InsufficientCapacity(f"No free IP address left in network {net.name}")

    def release_nic(self, nic: Nic) -> None:
        nic.ip_address = None
        nic.state = "Deallocating"
        nic.removed = utcnow()

    # -- implementation -------------------------------------------------------------------------
    def implement(self, net: Network, account: Account | None = None) -> bool:
        """Make the network usable in the database: a VLAN and, for isolated networks with source NAT,
        a source NAT public address. True if this call implemented it. The elements are told later
        (:meth:`implement_elements`), outside the transaction."""
        if net.state == "Implemented":
            return False
        owner = self.s.get(Account, net.account_id) if net.guest_type == "Isolated" else None
        needs_snat = net.guest_type == "Isolated" and "SourceNat" in self.services_of(net)
        reserved = False
        if needs_snat and owner is not None and self.source_nat(net) is None:
            Limits(self.s).consume(owner, [(ResourceType.public_ip, 1)])  # counts before the network row
            reserved = True
        self.lock(net)
        if net.state == "Implemented" or net.removed is not None:
            if reserved:
                Limits(self.s).release(owner, [(ResourceType.public_ip, 1)])  # type: ignore[arg-type]
            return False
        new_vlan = False
        if net.guest_type == "Isolated" and net.broadcast_uri is None:
            net.broadcast_uri = self._vlan_for(net)
            new_vlan = net.broadcast_uri is not None
        if needs_snat and owner is not None and self.source_nat(net) is None:
            ip = self.acquire_public_ip(owner, net.zone_id, network=net, source_nat=True, counted=reserved)
            if ip is None:
                if reserved:
                    Limits(self.s).release(owner, [(ResourceType.public_ip, 1)])
                raise InsufficientCapacity(f"Insufficient address capacity: no free public IP in zone for network {net.name}")
        elif reserved:
            Limits(self.s).release(owner, [(ResourceType.public_ip, 1)])  # type: ignore[arg-type]
        net.state = "Implemented"
        if new_vlan:  # NICs made before the network had its VLAN get it now
            self.s.execute(update(Nic).where(Nic.network_id == net.id, Nic.removed.is_(None),
                                             Nic.broadcast_uri.is_(None))
                           .values(broadcast_uri=net.broadcast_uri, isolation_uri=net.broadcast_uri))
        self.s.flush()
        return True

    def _vlan_for(self, net: Network) -> str | None:
        if net.physical_network_id is None:
            return None
        # VLANs of a physical network are handed out one at a time: its row is the lock.
        self.s.execute(select(PhysicalNetwork.id).where(PhysicalNetwork.id == net.physical_network_id)
                       .with_for_update())
        phys = self.s.get(PhysicalNetwork, net.physical_network_id)
        if phys is None or not phys.vlan:
            return None
        used = set(self.s.scalars(select(Network.broadcast_uri).where(
            Network.physical_network_id == phys.id, Network.removed.is_(None), Network.broadcast_uri.is_not(None))))
        for part in phys.vlan.split(","):
            lo, _, hi = part.strip().partition("-")
            if not lo.strip().isdigit():
                continue
            for tag in range(int(lo), int(hi or lo) + 1):
                uri = f"vlan://{tag}"
                if uri not in used:
                    return uri
        raise InsufficientCapacity(f"No free VLAN left on physical network {phys.name}")

    def acquire_public_ip(self, account: Account, zone_id: int, *, network: Network | None = None,
                          source_nat: bool = False, address: str | None = None,
                          counted: bool = False) -> PublicIp | None:
        """Allocate a free public address of the zone to the account (compare-and-set on state).
        ``counted``: the caller already added it to the account's public_ip count."""
        stmt = (select(PublicIp.id).join(VlanIpRange, VlanIpRange.id == PublicIp.vlan_id)
                .where(PublicIp.zone_id == zone_id, PublicIp.state == "Free", VlanIpRange.removed.is_(None),
                       VlanIpRange.vlan_type == "VirtualNetwork", VlanIpRange.for_system_vms.is_(False),
                       (VlanIpRange.account_id.is_(None)) | (VlanIpRange.account_id == account.id))
                .order_by(PublicIp.id).limit(16))
        if address is not None:
            stmt = stmt.where(PublicIp.address == address)
        for _ in range(8):
            ids = list(self.s.scalars(stmt))
            if not ids:
                return None
            for ip_id in ids:
                won = self.s.execute(
                    update(PublicIp).where(PublicIp.id == ip_id, PublicIp.state == "Free")
                    .values(state="Allocated", account_id=account.id, domain_id=account.domain_id,
                            network_id=network.id if network else None, source_nat=source_nat,
                            allocated=utcnow())
                    .execution_options(synchronize_session=False)).rowcount
                if won:
                    if not counted:
                        Limits(self.s).consume(account, [(ResourceType.public_ip, 1)])
                    ip = self.s.get(PublicIp, ip_id)
                    assert ip is not None
                    self.s.refresh(ip)
                    return ip
        return None

    def release_public_ip(self, ip: PublicIp) -> None:
        from overcast.engine.tags import remove_tags

        account = self.s.get(Account, ip.account_id) if ip.account_id else None
        ip.state, ip.account_id, ip.domain_id, ip.network_id = "Free", None, None, None
        ip.source_nat, ip.vm_id, ip.vm_ip, ip.allocated = False, None, None, None
        if account is not None:
            Limits(self.s).release(account, [(ResourceType.public_ip, 1)])
        remove_tags(self.s, "PublicIpAddress", ip.id)
        self.s.flush()

    # -- network elements -----------------------------------------------------------------------
    def target(self, net: Network) -> NetworkTarget:
        services = self.services_of(net)
        providers = tuple(dict.fromkeys(p for ps in services.values() for p in ps))
        snat = self.source_nat(net)
        ref = NetworkRef(id=net.id, uuid=net.uuid, zone_id=net.zone_id, guest_type=net.guest_type, cidr=net.cidr,
                         gateway=net.gateway, broadcast_uri=net.broadcast_uri)
        return NetworkTarget(providers=providers, network=ref, source_nat_ip=snat.address if snat else None,
                             services={name: tuple(ps) for name, ps in services.items()})

    def bindings(self, vm_id: int) -> list[NicBinding]:
        """The VM's NICs with their networks' targets (read now, for element calls later)."""
        out = []
        vm_uuid = self.s.scalar(select(VirtualMachine.uuid).where(VirtualMachine.id == vm_id)) or ""
        targets: dict[int, NetworkTarget] = {}
        for nic, net in self.s.execute(select(Nic, Network).join(Network, Network.id == Nic.network_id).where(
                Nic.vm_id == vm_id, Nic.removed.is_(None)).order_by(Nic.device_id)).tuples():
            if net.id not in targets:
                targets[net.id] = self.target(net)
            out.append(NicBinding(targets[net.id], self.nic_ref(nic, vm_uuid)))
        return out

    @staticmethod
    def nic_ref(nic: Nic, vm_uuid: str) -> NicRef:
        return NicRef(uuid=nic.uuid, vm_uuid=vm_uuid, ip_address=nic.ip_address, mac_address=nic.mac_address)

    def _elements(self, target: NetworkTarget, providers: tuple[str, ...] | None = None) -> list[NetworkElement]:
        if self.services is None:
            return []
        return [self.services.network_element(p) for p in (providers if providers is not None else target.providers)]

    def _call(self, target: NetworkTarget, what: str, fn: Any, *, providers: tuple[str, ...] | None = None,
              strict: bool = True) -> None:
        for element in self._elements(target, providers):
            try:
                fn(element)
            except NetworkElementError as exc:
                if strict:
                    raise ResourceUnavailable(f"Unable to {what} network {target.network.uuid} on provider"
                                              f" {element.provider}: {exc}") from exc
                logger.warning("Ignoring the failure to %s network %s on %s: %s", what, target.network.uuid,
                               element.provider, exc)

    def implement_elements(self, target: NetworkTarget) -> None:
        self._call(target, "implement", lambda e: e.implement(target.network, target.source_nat_ip))

    def shutdown_elements(self, target: NetworkTarget, *, strict: bool = True) -> None:
        self._call(target, "shut down", lambda e: e.shutdown(target.network), strict=strict)

    def prepare_elements(self, bindings: list[NicBinding]) -> None:
        """Implement each NIC's network on its providers and plug the NIC in (idempotent)."""
        done: set[int] = set()
        for b in bindings:
            if b.target.network.id not in done:
                self.implement_elements(b.target)
                done.add(b.target.network.id)
            self._call(b.target, "prepare a NIC of", lambda e, b=b: e.prepare(b.target.network, b.nic))

    def release_elements(self, bindings: list[NicBinding], *, strict: bool = False) -> None:
        for b in bindings:
            self._call(b.target, "release a NIC of", lambda e, b=b: e.release(b.target.network, b.nic),
                       strict=strict)

    def apply_rules(self, target: NetworkTarget, kind: str, rules: list[dict[str, Any]]) -> None:
        """Send the full set of rules of ``kind`` to the providers of its service in the network."""
        service = RULE_KINDS.get(kind)
        if service is None:
            raise ValueError(f"unknown rule kind {kind}")
        self._call(target, f"apply {kind} rules to", lambda e: e.apply_rules(target.network, kind, rules),
                   providers=target.services.get(service, ()))


def span(start: str, end: str) -> list[str]:
    lo, hi = int(ipaddress.ip_address(start)), int(ipaddress.ip_address(end))
    if hi < lo or hi - lo > 65536:
        raise InvalidParameterValue(f"Invalid IP range {start}-{end}")
    return [str(ipaddress.ip_address(i)) for i in range(lo, hi + 1)]


# -- the network lifecycle (commands) ----------------------------------------------------------


def _network_event(ctx: EngineContext, event_type: str, text: str, net: Network) -> None:
    ctx.event(event_type, text, account_id=net.account_id, domain_id=net.domain_id, resource_type="Network",
              resource_uuid=net.uuid)


def check_providers(offering: NetworkOffering) -> None:
    """Every provider of the offering's services must have a network element plug-in here."""
    from overcast.services import NETWORK_ELEMENTS

    known = {name.lower() for name in NETWORK_ELEMENTS.names()}
    missing = sorted({p for ps in offering_services(offering).values() for p in ps if p.lower() not in known})
    if missing:
        raise InvalidParameterValue(f"Network offering {offering.name} uses the provider(s) {', '.join(missing)}, for"
                                    " which this cloud has no network element (parameter networkofferingid)")


def check_zone_usable(ctx: EngineContext, zone: Zone, account: Account) -> None:
    me = ctx.caller
    if me is not None and me.is_root_admin:
        return
    if zone.allocation_state != "Enabled":
        raise PermissionDenied(f"Cannot perform this operation, Zone {zone.name} is currently disabled")
    if zone.domain_id is not None:
        zone_domain = ctx.session.get(Domain, zone.domain_id)
        owner_domain = ctx.session.get(Domain, account.domain_id)
        if zone_domain is not None and owner_domain is not None and not owner_domain.path.startswith(zone_domain.path):
            raise PermissionDenied(f"Zone {zone.name} is dedicated to another domain")


def create_isolated_network(ctx: EngineContext, *, owner: Account, zone: Zone, offering: NetworkOffering, name: str,
                            display_text: str | None, gateway: str | None, netmask: str | None,
                            network_domain: str | None, physical_network: PhysicalNetwork | None) -> Network:
    from overcast.engine.offerings import check_offering_scope

    check_zone_usable(ctx, zone, owner)
    check_offering_scope(ctx, offering, owner, zone, "Network offering", "networkofferingid")
    check_providers(offering)
    if physical_network is not None and physical_network.zone_id != zone.id:
        raise InvalidParameterValue(f"Physical network {physical_network.name} is not in zone {zone.name}"
                                    " (parameter physicalnetworkid)")
    net = NetworkService(ctx.session, ctx.services).create_isolated(
        owner, zone, offering, name=name, display_text=display_text, gateway=gateway, netmask=netmask,
        network_domain=network_domain, physical_network=physical_network)
    _network_event(ctx, "NETWORK.CREATE", f"Creating network {net.name}. Network Id: {net.uuid}", net)
    return net


def create_shared_network(ctx: EngineContext, *, zone: Zone, offering: NetworkOffering, name: str,
                          display_text: str | None, owner: Account | None, domain: Domain | None, acl_type: str | None,
                          subdomain_access: bool | None, vlan: str | None, gateway: str | None,
                          netmask: str | None, start_ip: str | None, end_ip: str | None,
                          network_domain: str | None, physical_network: PhysicalNetwork | None) -> Network:
    """A shared network (admins): zone-wide, for a domain (subtree), or for one account."""
    from overcast.engine.infra import check_vlan_range_free, ip_range, subnet, vlan_tag
    from overcast.engine.offerings import check_offering_scope

    s = ctx.session
    nets = NetworkService(s, ctx.services)
    services = offering_services(offering)
    basic = zone.network_type == "Basic"
    if offering.state != "Enabled":
        raise InvalidParameterValue(f"Network offering {offering.name} is not enabled (parameter networkofferingid)")
    check_providers(offering)
    if "SecurityGroup" in services and not (basic or zone.security_group_enabled):
        raise InvalidParameterValue(f"Network offering {offering.name} has the security group service, which zone"
                                    f" {zone.name} does not support (parameter networkofferingid)")
    if zone.security_group_enabled and not basic and "SecurityGroup" not in services:
        raise InvalidParameterValue(f"Zone {zone.name} has security groups enabled: its shared networks need an"
                                    " offering with the security group service (parameter networkofferingid)")
    if basic and s.scalar(select(Network.id).where(Network.zone_id == zone.id, Network.traffic_type == "Guest",
                                                   Network.removed.is_(None))) is not None:
        raise InvalidParameterValue("Can't have more than one Guest network in zone with network type Basic")
    acl = (acl_type or ("Account" if owner is not None else "Domain")).strip().capitalize()
    if acl not in ("Account", "Domain"):
        raise InvalidParameterValue(f"Invalid value {acl_type} for parameter acltype: use Account or Domain")
    if acl == "Account" and owner is None:
        raise InvalidParameterValue("A shared network with acltype Account needs an owner (parameters account,"
                                    " domainid)")
    if basic and acl == "Account":
        raise InvalidParameterValue("The guest network of a basic zone is shared with every domain: acltype must be"
                                    " Domain (parameter acltype)")
    if subdomain_access is not None and acl != "Domain":
        raise InvalidParameterValue("subdomainaccess can only be given for networks with acltype Domain")
    if owner is not None:
        check_offering_scope(ctx, offering, owner, zone, "Network offering", "networkofferingid")
    phys = physical_network or nets.guest_physical_network(zone)
    if physical_network is not None and physical_network.zone_id != zone.id:
        raise InvalidParameterValue(f"Physical network {physical_network.name} is not in zone {zone.name}"
                                    " (parameter physicalnetworkid)")
    # VLAN
    if basic:
        if vlan and vlan_tag(vlan) != "vlan://untagged":
            raise InvalidParameterValue("The guest network of a basic zone is untagged (parameter vlan)")
        broadcast = "vlan://untagged"
    else:
        if not vlan:
            if offering.specify_vlan:
                raise InvalidParameterValue(f"Network offering {offering.name} requires a VLAN (parameter vlan)")
            broadcast = None
        else:
            broadcast = vlan_tag(vlan)
        if broadcast is not None and broadcast != "vlan://untagged" and phys is not None:
            s.execute(select(PhysicalNetwork.id).where(PhysicalNetwork.id == phys.id).with_for_update())
            clash = s.scalar(select(Network.name).where(Network.physical_network_id == phys.id,
                                                        Network.broadcast_uri == broadcast, Network.removed.is_(None)))
            if clash is not None:
                raise InvalidParameterValue(f"The VLAN {vlan_of(broadcast)} is already used by network {clash} on"
                                            f" physical network {phys.name} (parameter vlan)")
    # Addresses
    rng = None
    if gateway or netmask or start_ip or end_ip:
        rng = ip_range(start_ip, end_ip, gateway, netmask)
    elif not basic:
        raise InvalidParameterValue("A shared network needs gateway, netmask and startip (parameters gateway,"
                                    " netmask, startip)")
    if rng is not None:
        cidr = subnet(rng.gateway, rng.netmask)
        if ipaddress.ip_address(rng.gateway) in (cidr.network_address, cidr.broadcast_address):
            raise InvalidParameterValue(f"The gateway {rng.gateway} can't be the network or broadcast address of"
                                        f" {cidr} (parameter gateway)")
        if rng.overlaps(rng.gateway, rng.gateway):
            raise InvalidParameterValue(f"The gateway {rng.gateway} can't be inside the IP range {rng.start}-{rng.end}"
                                        " (parameters gateway, startip, endip)")
        check_vlan_range_free(s, zone, rng)
    if network_domain:
        network_domain = check_network_domain(network_domain)
    if acl == "Account":
        assert owner is not None
        account_id, domain_id, sub = owner.id, owner.domain_id, False
    else:
        account_id = SYSTEM_ACCOUNT_ID
        domain_id = domain.id if domain is not None else ROOT_DOMAIN_ID
        sub = True if subdomain_access is None else bool(subdomain_access)
    net = Network(
        name=name, display_text=display_text or name, zone_id=zone.id, physical_network_id=phys.id if phys else None,
        network_offering_id=offering.id, account_id=account_id, domain_id=domain_id, acl_type=acl,
        guest_type="Shared", state="Setup", cidr=str(subnet(rng.gateway, rng.netmask)) if rng else None,
        gateway=rng.gateway if rng else None, netmask=rng.netmask if rng else None, broadcast_uri=broadcast,
        specify_ip_ranges=True, subdomain_access=sub,
        network_domain=network_domain or zone.network_domain or "cs1cloud.internal", dns1=zone.dns1, dns2=zone.dns2,
    )  # fmt: skip
    s.add(net)
    s.flush()
    if rng is not None:
        s.add(VlanIpRange(zone_id=zone.id, physical_network_id=phys.id if phys else None, network_id=net.id,
                          vlan_tag=broadcast or "vlan://untagged", gateway=rng.gateway, netmask=rng.netmask,
                          start_ip=rng.start, end_ip=rng.end, vlan_type="DirectAttached",
                          account_id=owner.id if acl == "Account" and owner is not None else None,
                          domain_id=domain_id if acl == "Account" else None))
        s.flush()
    _network_event(ctx, "NETWORK.CREATE", f"Creating network {net.name}. Network Id: {net.uuid}", net)
    return net


def _active_vm_in(s: Session, net: Network) -> tuple[str, str] | None:
    """(name, state) of a VM that still has a NIC in the network, if any."""
    row = s.execute(select(VirtualMachine.name, VirtualMachine.state).join(Nic, Nic.vm_id == VirtualMachine.id)
                    .where(Nic.network_id == net.id, Nic.removed.is_(None)).order_by(VirtualMachine.id)).first()
    return (row[0], row[1]) if row is not None else None


def delete_network(ctx: EngineContext, net: Network, *, forced: bool = False) -> None:
    """Delete a network that no VM uses any more: shut its elements down, give back its public
    addresses and the account's network count. ``forced``: element failures don't stop it."""
    s = ctx.session
    nets = NetworkService(s, ctx.services)
    if net.removed is not None:
        return
    if net.state != "Destroy":
        nets.lock(net)
        busy = _active_vm_in(s, net)
        if busy is not None:
            raise ResourceInUse(f"Can't delete the network, not all user vms are expunged. Vm {busy[0]} is in"
                                f" {busy[1]} state", uuids=[(net.uuid, "networkId")])
        net.state = "Destroy"  # no NIC joins from now on (NetworkService.check_usable)
        s.flush()
    target = nets.target(net)
    ctx.checkpoint()
    nets.shutdown_elements(target, strict=not forced)
    owner = s.get(Account, net.account_id)
    for ip in s.scalars(select(PublicIp).where(PublicIp.network_id == net.id, PublicIp.state != "Free")).all():
        ctx.event("NET.IPRELEASE", f"Releasing IP address {ip.address} of deleted network {net.name}",
                  account_id=ip.account_id or net.account_id, domain_id=ip.domain_id or net.domain_id,
                  resource_type="IpAddress", resource_uuid=ip.uuid)
        nets.release_public_ip(ip)
    if net.guest_type == "Isolated" and owner is not None:
        Limits(s).release(owner, [(ResourceType.network, 1)])
    s.execute(update(VlanIpRange).where(VlanIpRange.network_id == net.id, VlanIpRange.removed.is_(None))
              .values(removed=utcnow()).execution_options(synchronize_session=False))
    from overcast.engine.tags import remove_tags

    remove_tags(s, "Network", net.id)
    net.removed = utcnow()
    _network_event(ctx, "NETWORK.DELETE", f"Deleting network {net.name}. Network Id: {net.uuid}", net)
    s.flush()


def restart_network(ctx: EngineContext, net: Network, *, cleanup: bool = False) -> Network:
    """Implement the network again on its elements (``cleanup``: shut them down first)."""
    s = ctx.session
    nets = NetworkService(s, ctx.services)
    if net.state not in ("Implemented", "Setup"):
        raise InvalidParameterValue(f"Network {net.name} is not in the right state to be restarted. Correct states"
                                    " are: Implemented, Setup", uuids=[(net.uuid, "networkId")])
    if net.guest_type == "Isolated":
        nets.implement(net)
    target = nets.target(net)
    vm_bindings = [b for vm_id in s.scalars(select(Nic.vm_id).join(VirtualMachine, VirtualMachine.id == Nic.vm_id)
                                            .where(Nic.network_id == net.id, Nic.removed.is_(None),
                                                   VirtualMachine.state == "Running"))
                   for b in nets.bindings(vm_id) if b.target.network.id == net.id]
    from overcast.engine.securitygroups import network_rules

    sg_rules = network_rules(s, net) if "SecurityGroup" in target.services else None
    ctx.checkpoint()
    if cleanup:
        nets.shutdown_elements(target)
    nets.implement_elements(target)
    for b in vm_bindings:
        nets._call(target, "prepare a NIC of", lambda e, b=b: e.prepare(target.network, b.nic))
    if sg_rules is not None:
        nets.apply_rules(target, "securitygroup", sg_rules)
    net.restart_required = False
    _network_event(ctx, "NETWORK.RESTART", f"Restarting network {net.name}. Network Id: {net.uuid}", net)
    s.flush()
    return net


def update_network(ctx: EngineContext, net: Network, *, name: str | None, display_text: str | None,
                   offering: NetworkOffering | None, network_domain: str | None,
                   display_network: bool | None) -> Network:
    s = ctx.session
    nets = NetworkService(s, ctx.services)
    if net.state in GONE_STATES:
        raise InvalidParameterValue(f"Network {net.name} is being deleted", uuids=[(net.uuid, "networkId")])
    if name is not None:
        if not name.strip():
            raise InvalidParameterValue("The network name can't be empty (parameter name)")
        net.name = name.strip()
    if display_text is not None:
        net.display_text = display_text
    if display_network is not None:
        net.display_network = display_network
    if network_domain is not None:
        if "Dns" not in nets.services_of(net):
            raise InvalidParameterValue(f"Network {net.name} has no DNS service: its network domain can't be changed"
                                        " (parameter networkdomain)")
        net.network_domain = check_network_domain(network_domain)
        net.restart_required = net.state == "Implemented"
    changed_offering = offering is not None and offering.id != net.network_offering_id
    if changed_offering:
        assert offering is not None
        current = nets.offering_of(net)
        if offering.removed is not None or offering.state != "Enabled":
            raise InvalidParameterValue(f"Network offering {offering.name} is not enabled (parameter"
                                        " networkofferingid)")
        if current is not None and offering.guest_ip_type != current.guest_ip_type:
            raise InvalidParameterValue(f"Can't upgrade from network offering {current.name} to {offering.name}: the"
                                        f" guest types differ ({current.guest_ip_type} and"
                                        f" {offering.guest_ip_type}) (parameter networkofferingid)")
        if offering.traffic_type != "Guest" or offering.system_only:
            raise InvalidParameterValue(f"Network offering {offering.name} is not for guest networks (parameter"
                                        " networkofferingid)")
        check_providers(offering)
        owner = s.get(Account, net.account_id)
        if owner is not None:
            from overcast.engine.offerings import check_offering_scope

            check_offering_scope(ctx, offering, owner, s.get(Zone, net.zone_id), "Network offering",
                                 "networkofferingid")
        net.network_offering_id = offering.id
        s.flush()
        new_services = offering_services(offering)
        snat = nets.source_nat(net)
        if "SourceNat" not in new_services and snat is not None:
            ctx.event("NET.IPRELEASE", f"Releasing source NAT IP address {snat.address} of network {net.name}",
                      account_id=snat.account_id, domain_id=snat.domain_id, resource_type="IpAddress",
                      resource_uuid=snat.uuid)
            nets.release_public_ip(snat)
        if net.state == "Implemented" and net.guest_type == "Isolated":
            net.state = "Allocated"  # implemented again for the new offering below
            nets.implement(net)
    _network_event(ctx, "NETWORK.UPDATE", f"Updating network {net.name}. Network Id: {net.uuid}", net)
    s.flush()
    if changed_offering and net.state == "Implemented":
        target = nets.target(net)
        ctx.checkpoint()
        nets.implement_elements(target)
    return net


# -- public addresses --------------------------------------------------------------------------


def associate_ip(ctx: EngineContext, account: Account, *, network: Network | None, zone: Zone | None,
                 address: str | None) -> PublicIp:
    """A public address for ``account``, on ``network`` (or the account's only isolated network of
    ``zone``). The first address of an isolated network without one becomes its source NAT."""
    s = ctx.session
    nets = NetworkService(s, ctx.services)
    if network is None and zone is None:
        raise InvalidParameterValue("Unable to figure out zone to assign ip to. Please specify either zoneid, or"
                                    " networkid, or vpcid in the call")
    if network is not None and zone is not None and network.zone_id != zone.id:
        raise InvalidParameterValue(f"Network {network.name} is not in zone {zone.name} (parameters networkid,"
                                    " zoneid)")
    if network is None:
        assert zone is not None
        if zone.network_type == "Basic" or zone.security_group_enabled:
            raise InvalidParameterValue(f"Zone {zone.name} has no public IP addresses for guests (basic and"
                                        " security group enabled zones take none): nothing to associate")
        isolated = list(s.scalars(select(Network).where(
            Network.zone_id == zone.id, Network.account_id == account.id, Network.guest_type == "Isolated",
            Network.removed.is_(None), Network.state.not_in(GONE_STATES))))
        if not isolated:
            domain = s.get(Domain, account.domain_id)
            raise InvalidParameterValue(f"Account name={account.name} domain={domain.name if domain else ''} doesn't"
                                        f" have virtual networks in zone={zone.name}")
        if len(isolated) > 1:
            raise InvalidParameterValue("Account has more than one isolated network in the zone: pass networkid")
        network = isolated[0]
    zone = s.get(Zone, network.zone_id)
    assert zone is not None
    check_zone_usable(ctx, zone, account)
    if network.state in GONE_STATES:
        raise InvalidParameterValue(f"Network {network.name} is being deleted (parameter networkid)")
    services = nets.services_of(network)
    if network.guest_type != "Isolated" or not ({"SourceNat", "StaticNat"} & set(services)):
        raise InvalidParameterValue(f"Public IP addresses can only be associated with isolated networks that have"
                                    f" the SourceNat or StaticNat service; network {network.name} has neither"
                                    " (parameter networkid)")
    if network.account_id != account.id:
        raise PermissionDenied(f"Account {account.name} can't associate an IP address with network {network.name}",
                               uuids=[(network.uuid, "networkId")])
    if address is not None:
        try:
            address = str(ipaddress.ip_address(address.strip()))
        except ValueError:
            raise InvalidParameterValue(f"Invalid IP address {address} (parameter ipaddress)") from None
        row = s.scalar(select(PublicIp).where(PublicIp.zone_id == zone.id, PublicIp.address == address))
        if row is None:
            raise InvalidParameterValue(f"IP address {address} is not a public address of zone {zone.name}"
                                        " (parameter ipaddress)")
        if row.state != "Free":
            raise InvalidParameterValue(f"IP address {address} is already in use (parameter ipaddress)")
    # Counts first, then the network row (the lock order), then the address by compare-and-set.
    Limits(s).consume(account, [(ResourceType.public_ip, 1)])
    source_nat = False
    if "SourceNat" in services and nets.source_nat(network) is None:
        nets.lock(network)
        source_nat = nets.source_nat(network) is None
    ip = nets.acquire_public_ip(account, zone.id, network=network, source_nat=source_nat, address=address,
                                counted=True)
    if ip is None:
        if address is not None:
            raise InvalidParameterValue(f"IP address {address} is already in use (parameter ipaddress)")
        raise InsufficientCapacity(f"Insufficient address capacity: no free public IP address in zone {zone.name}")
    ctx.event("NET.IPASSIGN", f"Associating IP address {ip.address} with network {network.name}",
              account_id=account.id, domain_id=account.domain_id, resource_type="IpAddress", resource_uuid=ip.uuid)
    s.flush()
    return ip


def disassociate_ip(ctx: EngineContext, ip: PublicIp) -> None:
    s = ctx.session
    if ip.state == "Free" or ip.account_id is None:
        raise InvalidParameterValue(f"IP address {ip.address} is not associated with any account (parameter id)",
                                    uuids=[(ip.uuid, "ipAddressId")])
    if ip.source_nat:
        raise InvalidParameterValue(f"IP address {ip.address} is used for source nat purposes and can not be"
                                    " disassociated.", uuids=[(ip.uuid, "ipAddressId")])
    if ip.is_system:
        raise InvalidParameterValue(f"IP address {ip.address} is a system address and can't be disassociated")
    ctx.event("NET.IPRELEASE", f"Releasing IP address {ip.address}", account_id=ip.account_id,
              domain_id=ip.domain_id, resource_type="IpAddress", resource_uuid=ip.uuid)
    NetworkService(s, ctx.services).release_public_ip(ip)


__all__ = [
    "DEFAULT_ISOLATED_OFFERING", "DEFAULT_SHARED_SG_OFFERING", "NetworkService", "NetworkTarget", "NicBinding",
    "associate_ip", "create_isolated_network", "create_shared_network", "delete_network", "disassociate_ip",
    "mac_for", "offering_services", "restart_network", "span", "update_network", "vlan_of",
]  # fmt: skip
