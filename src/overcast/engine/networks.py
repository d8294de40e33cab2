"""Guest networks: the default network of an account, address allocation, implementation.

Addresses are never handed out twice: a NIC's ``(network_id, ip_address)`` is unique in the database,
and allocation retries on the next free address when a concurrent transaction took one first.
Public addresses move from Free by compare-and-set. MAC addresses derive from the NIC's id.
"""

from __future__ import annotations

import ipaddress
import json

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from overcast.db.models import (
    Account,
    Network,
    NetworkOffering,
    Nic,
    PhysicalNetwork,
    PublicIp,
    TrafficType,
    VlanIpRange,
    Zone,
    utcnow,
)
from overcast.engine.limits import Limits, ResourceType
from overcast.errors import InsufficientCapacity, InvalidParameterValue, ResourceUnavailable

DEFAULT_ISOLATED_OFFERING = "DefaultIsolatedNetworkOfferingWithSourceNatService"
DEFAULT_SHARED_SG_OFFERING = "DefaultSharedNetworkOfferingWithSGService"


def mac_for(nic_id: int) -> str:
    """A locally administered unicast MAC unique per NIC id."""
    b = nic_id.to_bytes(4, "big")
    return "02:00:" + ":".join(f"{x:02x}" for x in b)


def offering_services(offering: NetworkOffering) -> dict[str, list[str]]:
    return dict(json.loads(offering.services or "{}"))


class NetworkService:
    def __init__(self, session: Session) -> None:
        self.s = session

    # -- lookups --------------------------------------------------------------------------------
    def offering_by_name(self, name: str) -> NetworkOffering:
        off = self.s.scalar(select(NetworkOffering).where(NetworkOffering.name == name,
                                                          NetworkOffering.removed.is_(None)))
        if off is None:
            raise ResourceUnavailable(f"Network offering {name} is not available")
        return off

    def guest_physical_network(self, zone: Zone) -> PhysicalNetwork | None:
        return self.s.scalar(
            select(PhysicalNetwork).join(TrafficType, TrafficType.physical_network_id == PhysicalNetwork.id)
            .where(PhysicalNetwork.zone_id == zone.id, PhysicalNetwork.removed.is_(None),
                   TrafficType.traffic_type == "Guest").order_by(PhysicalNetwork.id))

    def default_network(self, account: Account, zone: Zone, *, create: bool = True) -> Network:
        """The network a VM joins when the deploy names none."""
        if zone.network_type == "Basic":
            net = self.s.scalar(select(Network).where(
                Network.zone_id == zone.id, Network.guest_type == "Shared", Network.removed.is_(None))
                .order_by(Network.id))
            if net is None:
                raise ResourceUnavailable(f"Zone {zone.name} has no guest network yet")
            return net
        net = self.s.scalar(select(Network).where(
            Network.zone_id == zone.id, Network.account_id == account.id, Network.guest_type == "Isolated",
            Network.removed.is_(None)).order_by(Network.id))
        if net is not None:
            return net
        if not create:
            raise InvalidParameterValue("The account has no network in this zone; pass networkids")
        offering = self.offering_by_name(DEFAULT_ISOLATED_OFFERING)
        return self.create_isolated(account, zone, offering, name=f"{account.name}-network",
                                    display_text=f"{account.name}-network")

    # -- creation -------------------------------------------------------------------------------
    def create_isolated(self, account: Account, zone: Zone, offering: NetworkOffering, *, name: str,
                        display_text: str | None, gateway: str | None = None, netmask: str | None = None,
                        network_domain: str | None = None) -> Network:
        if zone.network_type == "Basic":
            raise InvalidParameterValue("Isolated networks can't be created in a basic zone")
        if offering.guest_ip_type != "Isolated":
            raise InvalidParameterValue(f"Network offering {offering.name} is not for isolated networks")
        if offering.state != "Enabled":
            raise InvalidParameterValue(f"Network offering {offering.name} is not enabled")
        cidr = ipaddress.ip_network(zone.guest_cidr or "10.1.1.0/24", strict=False)
        if gateway and netmask:
            try:
                cidr = ipaddress.ip_network(f"{gateway}/{netmask}", strict=False)
            except ValueError:
                raise InvalidParameterValue(f"Invalid gateway {gateway} or netmask {netmask}") from None
        gw = gateway or str(next(cidr.hosts()))
        Limits(self.s).consume(account, [(ResourceType.network, 1)])
        physical = self.guest_physical_network(zone)
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
                                                              VlanIpRange.removed.is_(None))).all()
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

    def add_nic(self, net: Network, *, vm_id: int, device_id: int, is_default: bool,
                requested_ip: str | None = None) -> Nic:
        """Create a NIC with a unique address (the requested one, or the first free)."""
        candidates = self._candidates(net)
        if requested_ip is not None:
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
            try:
                with self.s.begin_nested():
                    nic = Nic(vm_id=vm_id, network_id=net.id, ip_address=ip, gateway=net.gateway,
                              netmask=net.netmask, is_default=is_default, device_id=device_id,
                              broadcast_uri=net.broadcast_uri, isolation_uri=net.broadcast_uri,
                              state="Reserved")
                    self.s.add(nic)
                    self.s.flush()
                    nic.mac_address = mac_for(nic.id)
                    self.s.flush()
                return nic
            except IntegrityError:
                if requested_ip is not None:
                    raise InvalidParameterValue(f"IP address {requested_ip} is already in use in network {net.name}") from None
                continue  # taken by a concurrent transaction: try the next one
        raise InsufficientCapacity(f"No free IP address left in network {net.name}")

    def release_nic(self, nic: Nic) -> None:
        nic.ip_address = None
        nic.state = "Deallocating"
        nic.removed = utcnow()

    # -- implementation -------------------------------------------------------------------------
    def implement(self, net: Network, account: Account) -> None:
        """Make the network usable: a VLAN and, for isolated networks, a source NAT public address."""
        if net.state == "Implemented":
            return
        if net.guest_type == "Isolated":
            if net.broadcast_uri is None:
                net.broadcast_uri = self._vlan_for(net)
            if self.s.scalar(select(PublicIp.id).where(PublicIp.network_id == net.id, PublicIp.source_nat.is_(True))) is None:
                ip = self.acquire_public_ip(account, net.zone_id, network=net, source_nat=True)
                if ip is None:
                    raise InsufficientCapacity(f"Insufficient address capacity: no free public IP in zone for network {net.name}")
        net.state = "Implemented"
        self.s.flush()

    def _vlan_for(self, net: Network) -> str | None:
        if net.physical_network_id is None:
            return None
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
                          source_nat: bool = False, address: str | None = None) -> PublicIp | None:
        """Allocate a free public address of the zone to the account (compare-and-set on state)."""
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
                    Limits(self.s).consume(account, [(ResourceType.public_ip, 1)])
                    ip = self.s.get(PublicIp, ip_id)
                    assert ip is not None
                    self.s.refresh(ip)
                    return ip
        return None

    def release_public_ip(self, ip: PublicIp) -> None:
        account = self.s.get(Account, ip.account_id) if ip.account_id else None
        ip.state, ip.account_id, ip.domain_id, ip.network_id = "Free", None, None, None
        ip.source_nat, ip.vm_id, ip.vm_ip, ip.allocated = False, None, None, None
        if account is not None:
            Limits(self.s).release(account, [(ResourceType.public_ip, 1)])
        self.s.flush()


def span(start: str, end: str) -> list[str]:
    lo, hi = int(ipaddress.ip_address(start)), int(ipaddress.ip_address(end))
    if hi < lo or hi - lo > 65536:
        raise InvalidParameterValue(f"Invalid IP range {start}-{end}")
    return [str(ipaddress.ip_address(i)) for i in range(lo, hi + 1)]


__all__ = ["DEFAULT_ISOLATED_OFFERING", "DEFAULT_SHARED_SG_OFFERING", "NetworkService", "mac_for", "span"]
