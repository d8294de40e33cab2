"""Network infrastructure: physical networks, their traffic types, service providers and provider elements,
and public (or basic-zone guest) IP ranges."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select

from overcast.access.roles import ROOT_ADMIN
from overcast.api.commands.infra import POD_RELATED, ZONE_RELATED, count, pod_param, zone_param
from overcast.api.context import CallContext
from overcast.api.declare import (
    Command, BOOLEAN, LIST, STRING, UUID, ListResult, ObjectResult, Param, Result, Success, SuccessResponse,
    api_command,
)  # fmt: skip
from overcast.api.listing import fetch_page, keyword_filter
from overcast.api.responses.infra import (
    CreatedVlanResponse,
    InternalLbElementResponse,
    PhysicalNetworkResponse,
    ProviderResponse,
    TrafficTypeResponse,
    VirtualRouterElementResponse,
    VlanIpRangeResponse,
    element_payload,
    physical_network_payload,
    provider_payload,
    traffic_type_payload,
    vlan_payload,
)
from overcast.db.models import (
    Account,
    Domain,
    Network,
    NetworkElement,
    NetworkServiceProvider,
    Nic,
    PhysicalNetwork,
    Pod,
    PublicIp,
    TrafficType,
    VlanIpRange,
    Zone,
    utcnow,
)
from overcast.engine.capacity_report import in_range
from overcast.engine.infra import (
    INTERNAL_LB_ELEMENT,
    ISOLATION_METHODS,
    PROVIDER_SERVICES,
    ROUTER_ELEMENTS,
    TRAFFIC_TYPES,
    basic_zone_network,
    canonical,
    check_vlan_range_free,
    ip_range,
    physical_network_for,
    pod_in_zone,
    vlan_ranges,
    vlan_tag,
)
from overcast.engine.sandbox import add_public_ips
from overcast.errors import InvalidParameterValue, ResourceInUse

PNET_RELATED = ("createPhysicalNetwork", "listPhysicalNetworks", "updatePhysicalNetwork")
NSP_RELATED = ("addNetworkServiceProvider", "listNetworkServiceProviders", "updateNetworkServiceProvider")
VLAN_RELATED = ("createVlanIpRange", "listVlanIpRanges")


def pnet_param(name: str = "id", required: bool = True, description: str = "the ID of the physical network") -> Param:
    return Param(UUID, name, required=required, entity=PhysicalNetwork, related=PNET_RELATED,
                 description=description)


def nsp_param(name: str = "id", required: bool = True,
              description: str = "network service provider id") -> Param:
    return Param(UUID, name, required=required, entity=NetworkServiceProvider, related=NSP_RELATED,
                 description=description)


def _one(items: list[dict[str, Any]]) -> ObjectResult:
    return ObjectResult(items[0])


# -- physical networks ----------------------------------------------------------------------------


def pnet_result(ctx: CallContext, net: PhysicalNetwork) -> ObjectResult:
    ctx.session.flush()
    return _one(physical_network_payload(ctx.session, [net]))


def _isolation(values: list[str] | None) -> str | None:
    if not values:
        return None
    return ",".join(canonical(v, ISOLATION_METHODS, "isolationmethods", "an isolation method") for v in values)


def _provider(ctx: CallContext, net: PhysicalNetwork, name: str, *, state: str = "Disabled",
              services: list[str] | None = None, dest: PhysicalNetwork | None = None) -> NetworkServiceProvider:
    nsp = NetworkServiceProvider(physical_network_id=net.id, name=name, state=state,
                                 services=",".join(services) if services is not None else PROVIDER_SERVICES[name],
                                 dest_physical_network_id=dest.id if dest else None)
    ctx.session.add(nsp)
    ctx.session.flush()
    if name in (*ROUTER_ELEMENTS, INTERNAL_LB_ELEMENT):
        ctx.session.add(NetworkElement(provider_id=nsp.id, element_type=name, enabled=False))
    return nsp


@api_command("createPhysicalNetwork", response=PhysicalNetworkResponse, roles=ROOT_ADMIN, is_async=True,
             creates_entity=True, idempotent=True, event_type="PHYSICAL.NETWORK.CREATE", since="3.0.0",
             description="Creates a physical network")
class CreatePhysicalNetwork(Command):
    name = Param(STRING, required=True, description="the name of the physical network")
    zone = zone_param(description="the Zone ID for the physical network")
    vlan = Param(STRING, description="the VLAN for the physical network")
    isolation_methods = Param(LIST, "isolationmethods", description="the isolation method for the physical"
                              " network[VLAN/L3/GRE]")
    broadcast_domain_range = Param(STRING, "broadcastdomainrange", description="the broadcast domain range for the"
                                   " physical network[Pod or Zone]. In Acton release it can be Zone only in Advance"
                                   " zone, and Pod in Basic")
    network_speed = Param(STRING, "networkspeed", description="the speed for the physical network[1G/10G]")
    tags = Param(LIST, description="Tag the physical network")
    domain = Param(UUID, "domainid", entity=Domain, description="domain ID of the account owning a physical"
                   " network")

    def prepare(self, ctx: CallContext) -> str | None:
        s, zone = ctx.session, self.zone
        name = self.name.strip()
        if not name:
            raise InvalidParameterValue("Please specify a name for the physical network (parameter name)")
        vlan = None
        if self.vlan:
            if zone.network_type == "Basic":
                raise InvalidParameterValue("A basic zone's physical network takes no VLAN range (parameter vlan)")
            vlan = ",".join(f"{a}-{b}" for a, b in vlan_ranges(self.vlan))
        if self.broadcast_domain_range:
            bdr = canonical(self.broadcast_domain_range, ("POD", "ZONE"), "broadcastdomainrange",
                            "the broadcast domain range")
        else:
            bdr = "POD" if zone.network_type == "Basic" else "ZONE"
        if zone.network_type == "Advanced" and bdr == "POD":
            raise InvalidParameterValue("broadcastdomainrange can only be ZONE in an Advanced zone")
        tags = ",".join(t.strip() for t in self.tags or [] if t.strip()) or None
        net = PhysicalNetwork(name=name, zone_id=zone.id, vlan=vlan, isolation_methods=_isolation(self.isolation_methods),
                              broadcast_domain_range=bdr, state="Disabled", tags=tags,
                              network_speed=self.network_speed or None,
                              domain_id=self.domain.id if self.domain else None)
        s.add(net)
        s.flush()
        # CloudStack adds the built-in providers, disabled, to every new physical network.
        for provider in ("VirtualRouter", "VpcVirtualRouter", "InternalLbVm", "ConfigDrive"):
            _provider(ctx, net, provider)
        if zone.security_group_enabled:
            _provider(ctx, net, "SecurityGroupProvider")
        ctx.event("PHYSICAL.NETWORK.CREATE", f"Created physical network {net.name}", resource_type="PhysicalNetwork",
                  resource_uuid=net.uuid)
        return net.uuid

    def instance(self) -> tuple[str | None, str | None]:
        return "PhysicalNetwork", None

    def execute(self, ctx: CallContext) -> Result:
        assert ctx.job is not None
        net = ctx.created(PhysicalNetwork, "physical network")
        return pnet_result(ctx, net)


@api_command("listPhysicalNetworks", response=PhysicalNetworkResponse, roles=ROOT_ADMIN, is_list=True,
             since="3.0.0", description="Lists physical networks")
class ListPhysicalNetworks(Command):
    id = Param(UUID, related=PNET_RELATED, description="list physical network by id")
    name = Param(STRING, description="search by name")
    zone = Param(UUID, "zoneid", related=ZONE_RELATED, description="the Zone ID for the physical network")

    def execute(self, ctx: CallContext) -> Result:
        stmt = select(PhysicalNetwork).where(PhysicalNetwork.removed.is_(None)).order_by(PhysicalNetwork.id)
        if self.id:
            stmt = stmt.where(PhysicalNetwork.uuid == self.id)
        if self.name:
            stmt = stmt.where(PhysicalNetwork.name == self.name)
        if self.zone:
            stmt = stmt.where(PhysicalNetwork.zone_id.in_(select(Zone.id).where(Zone.uuid == self.zone)))
        kw = keyword_filter(self.keyword, PhysicalNetwork.name)
        if kw is not None:
            stmt = stmt.where(kw)
        rows, total = fetch_page(ctx, stmt, self)
        return ListResult(physical_network_payload(ctx.session, rows), total)


class PnetJob(Command):
    def instance(self) -> tuple[str | None, str | None]:
        return "PhysicalNetwork", self.net.uuid  # type: ignore[attr-defined]


def _vlans_in_use(ctx: CallContext, net: PhysicalNetwork) -> set[int]:
    used = set()
    for uri in ctx.session.scalars(select(Network.broadcast_uri).where(
            Network.physical_network_id == net.id, Network.removed.is_(None), Network.broadcast_uri.like("vlan://%"))):
        tag = (uri or "").removeprefix("vlan://")
        if tag.isdigit():
            used.add(int(tag))
    return used


@api_command("updatePhysicalNetwork", response=PhysicalNetworkResponse, roles=ROOT_ADMIN, is_async=True,
             idempotent=True, event_type="PHYSICAL.NETWORK.UPDATE", since="3.0.0",
             description="Updates a physical network")
class UpdatePhysicalNetwork(PnetJob):
    net = pnet_param(description="physical network id")
    state = Param(STRING, choices=("Enabled", "Disabled"), description="Enabled/Disabled")
    vlan = Param(STRING, description="the VLAN for the physical network")
    network_speed = Param(STRING, "networkspeed", description="the speed for the physical network[1G/10G]")
    tags = Param(LIST, description="Tag the physical network")

    def execute(self, ctx: CallContext) -> Result:
        net = self.net
        if self.vlan is not None:
            zone = ctx.session.get(Zone, net.zone_id)
            if zone is not None and zone.network_type == "Basic":
                raise InvalidParameterValue("A basic zone's physical network takes no VLAN range (parameter vlan)")
            ranges = vlan_ranges(self.vlan) if self.vlan.strip() else []
            covered = {v for a, b in ranges for v in range(a, b + 1)}
            lost = sorted(_vlans_in_use(ctx, net) - covered)
            if lost:
                raise ResourceInUse(f"The VLAN range can't be changed: VLAN {lost[0]} is in use by a network"
                                    " (parameter vlan)")
            net.vlan = ",".join(f"{a}-{b}" for a, b in ranges) or None
        if self.state is not None:
            net.state = self.state
        if self.network_speed is not None:
            net.network_speed = self.network_speed or None
        if self.tags is not None:
            net.tags = ",".join(t.strip() for t in self.tags if t.strip()) or None
        ctx.event("PHYSICAL.NETWORK.UPDATE", f"Updated physical network {net.name}", resource_type="PhysicalNetwork",
                  resource_uuid=net.uuid)
        return pnet_result(ctx, net)


@api_command("deletePhysicalNetwork", response=SuccessResponse, roles=ROOT_ADMIN, is_async=True, idempotent=True,
             event_type="PHYSICAL.NETWORK.DELETE", since="3.0.0", description="Deletes a Physical Network.")
class DeletePhysicalNetwork(PnetJob):
    net = pnet_param(description="the ID of the Physical network")

    def execute(self, ctx: CallContext) -> Result:
        s, net = ctx.session, self.net
        if count(ctx, Network, Network.physical_network_id == net.id, Network.removed.is_(None)):
            raise ResourceInUse("Unable to complete delete as there are networks using this physical network",
                                uuids=[(net.uuid, "physicalNetworkId")])
        if count(ctx, VlanIpRange, VlanIpRange.physical_network_id == net.id, VlanIpRange.removed.is_(None)):
            raise ResourceInUse("Unable to complete delete as there are IP ranges on this physical network",
                                uuids=[(net.uuid, "physicalNetworkId")])
        provider_ids = select(NetworkServiceProvider.id).where(NetworkServiceProvider.physical_network_id == net.id)
        s.execute(delete(NetworkElement).where(NetworkElement.provider_id.in_(provider_ids)))
        now = utcnow()
        for nsp in s.scalars(select(NetworkServiceProvider).where(NetworkServiceProvider.physical_network_id == net.id,
                                                                  NetworkServiceProvider.removed.is_(None))):
            nsp.removed = now
        s.execute(delete(TrafficType).where(TrafficType.physical_network_id == net.id))
        net.removed = now
        ctx.event("PHYSICAL.NETWORK.DELETE", f"Deleted physical network {net.name}", resource_type="PhysicalNetwork",
                  resource_uuid=net.uuid)
        return Success()


# -- traffic types --------------------------------------------------------------------------------


def traffic_param() -> Param:
    return Param(UUID, "id", required=True, entity=TrafficType, description="traffic type id")


@api_command("addTrafficType", response=TrafficTypeResponse, roles=ROOT_ADMIN, is_async=True, creates_entity=True,
             idempotent=True, event_type="TRAFFIC.TYPE.CREATE", since="3.0.0",
             description="Adds traffic type to a physical network")
class AddTrafficType(Command):
    net = pnet_param("physicalnetworkid", description="the Physical Network ID")
    traffic_type = Param(STRING, "traffictype", required=True, description="the trafficType to be added to the"
                         " physical network")
    kvm_label = Param(STRING, "kvmnetworklabel", description="The network name label of the physical device"
                      " dedicated to this traffic on a KVM host")
    xen_label = Param(STRING, "xennetworklabel", description="The network name label of the physical device"
                      " dedicated to this traffic on a XenServer host")
    vmware_label = Param(STRING, "vmwarenetworklabel", description="The network name label of the physical device"
                         " dedicated to this traffic on a VMware host")
    isolation_method = Param(STRING, "isolationmethod", description="Used if physical network has multiple"
                             " isolation types and traffic type is public. Choose which isolation method. Valid"
                             " options currently 'vlan' or 'vxlan', defaults to 'vlan'.")
    vlan = Param(STRING, description="The VLAN id to be used for Management traffic by VMware host")

    def prepare(self, ctx: CallContext) -> str | None:
        s, net = ctx.session, self.net
        traffic = canonical(self.traffic_type, TRAFFIC_TYPES, "traffictype", "the traffic type")
        if s.scalar(select(TrafficType.id).where(TrafficType.physical_network_id == net.id,
                                                 TrafficType.traffic_type == traffic)) is not None:
            raise InvalidParameterValue(f"This physical network already supports the traffic type: {traffic}")
        zone = s.get(Zone, net.zone_id)
        if zone is not None and traffic in ("Guest", "Management", "Public"):
            other = physical_network_for(s, zone, traffic)
            if other is not None and (zone.network_type == "Basic" or traffic != "Guest"):
                raise InvalidParameterValue(f"The zone already has a physical network ({other.name}) with traffic"
                                            f" type {traffic}")
        if self.isolation_method is not None and self.isolation_method.lower() not in ("vlan", "vxlan"):
            raise InvalidParameterValue(f"Invalid value {self.isolation_method} for parameter isolationmethod: use"
                                        " vlan or vxlan")
        tt = TrafficType(physical_network_id=net.id, traffic_type=traffic, kvm_label=self.kvm_label,
                         xen_label=self.xen_label, vmware_label=self.vmware_label, vlan=self.vlan)
        s.add(tt)
        s.flush()
        ctx.event("TRAFFIC.TYPE.CREATE", f"Added traffic type {traffic} to physical network {net.name}",
                  resource_type="PhysicalNetworkTrafficType", resource_uuid=tt.uuid)
        return tt.uuid

    def instance(self) -> tuple[str | None, str | None]:
        return "PhysicalNetworkTrafficType", None

    def execute(self, ctx: CallContext) -> Result:
        assert ctx.job is not None
        tt = ctx.created(TrafficType, "traffic type")
        return _one(traffic_type_payload(ctx.session, [tt]))


@api_command("listTrafficTypes", response=TrafficTypeResponse, roles=ROOT_ADMIN, is_list=True, since="3.0.0",
             description="Lists traffic types of a given physical network.")
class ListTrafficTypes(Command):
    net = Param(UUID, "physicalnetworkid", required=True, entity=PhysicalNetwork, related=PNET_RELATED,
                description="the Physical Network ID")

    def execute(self, ctx: CallContext) -> Result:
        stmt = select(TrafficType).where(TrafficType.physical_network_id == self.net.id).order_by(TrafficType.id)
        kw = keyword_filter(self.keyword, TrafficType.traffic_type)
        if kw is not None:
            stmt = stmt.where(kw)
        rows, total = fetch_page(ctx, stmt, self)
        return ListResult(traffic_type_payload(ctx.session, rows), total)


class TrafficJob(Command):
    def instance(self) -> tuple[str | None, str | None]:
        return "PhysicalNetworkTrafficType", self.tt.uuid  # type: ignore[attr-defined]


@api_command("updateTrafficType", response=TrafficTypeResponse, roles=ROOT_ADMIN, is_async=True, idempotent=True,
             event_type="TRAFFIC.TYPE.UPDATE", since="3.0.0", description="Updates traffic type of a physical"
             " network")
class UpdateTrafficType(TrafficJob):
    tt = traffic_param()
    kvm_label = Param(STRING, "kvmnetworklabel", description="The network name label of the physical device"
                      " dedicated to this traffic on a KVM host")
    xen_label = Param(STRING, "xennetworklabel", description="The network name label of the physical device"
                      " dedicated to this traffic on a XenServer host")
    vmware_label = Param(STRING, "vmwarenetworklabel", description="The network name label of the physical device"
                         " dedicated to this traffic on a VMware host")

    def execute(self, ctx: CallContext) -> Result:
        tt = self.tt
        for attr in ("kvm_label", "xen_label", "vmware_label"):
            value = getattr(self, attr)
            if value is not None:
                setattr(tt, attr, value or None)
        ctx.event("TRAFFIC.TYPE.UPDATE", f"Updated traffic type {tt.traffic_type}",
                  resource_type="PhysicalNetworkTrafficType", resource_uuid=tt.uuid)
        ctx.session.flush()
        return _one(traffic_type_payload(ctx.session, [tt]))


@api_command("deleteTrafficType", response=SuccessResponse, roles=ROOT_ADMIN, is_async=True, idempotent=True,
             event_type="TRAFFIC.TYPE.DELETE", since="3.0.0", description="Deletes traffic type of a physical"
             " network")
class DeleteTrafficType(TrafficJob):
    tt = traffic_param()

    def execute(self, ctx: CallContext) -> Result:
        tt = self.tt
        if tt.traffic_type == "Guest" and count(ctx, Network, Network.physical_network_id == tt.physical_network_id,
                                                Network.removed.is_(None)):
            raise ResourceInUse("The Traffic Type is not deletable because there are existing networks with this"
                                " traffic type", uuids=[(tt.uuid, "trafficTypeId")])
        if tt.traffic_type == "Public" and count(
                ctx, VlanIpRange, VlanIpRange.physical_network_id == tt.physical_network_id,
                VlanIpRange.vlan_type == "VirtualNetwork", VlanIpRange.removed.is_(None)):
            raise ResourceInUse("The Traffic Type is not deletable because there are public IP ranges on this"
                                " physical network", uuids=[(tt.uuid, "trafficTypeId")])
        ctx.event("TRAFFIC.TYPE.DELETE", f"Deleted traffic type {tt.traffic_type}",
                  resource_type="PhysicalNetworkTrafficType", resource_uuid=tt.uuid)
        ctx.session.delete(tt)
        return Success()


# -- service providers and their elements ---------------------------------------------------------


@api_command("listNetworkServiceProviders", response=ProviderResponse, roles=ROOT_ADMIN, is_list=True,
             since="3.0.0", description="Lists network serviceproviders for a given physical network.")
class ListNetworkServiceProviders(Command):
    net = Param(UUID, "physicalnetworkid", related=PNET_RELATED, description="the Physical Network ID")
    name = Param(STRING, description="list providers by name")
    state = Param(STRING, description="list providers by state")

    def execute(self, ctx: CallContext) -> Result:
        stmt = select(NetworkServiceProvider).where(NetworkServiceProvider.removed.is_(None)).order_by(
            NetworkServiceProvider.id)
        if self.net:
            stmt = stmt.where(NetworkServiceProvider.physical_network_id.in_(
                select(PhysicalNetwork.id).where(PhysicalNetwork.uuid == self.net)))
        if self.name:
            stmt = stmt.where(func.lower(NetworkServiceProvider.name) == self.name.lower())
        if self.state:
            stmt = stmt.where(func.lower(NetworkServiceProvider.state) == self.state.lower())
        kw = keyword_filter(self.keyword, NetworkServiceProvider.name)
        if kw is not None:
            stmt = stmt.where(kw)
        rows, total = fetch_page(ctx, stmt, self)
        return ListResult(provider_payload(ctx.session, rows), total)


def _services(values: list[str] | None, provider: str) -> list[str] | None:
    if values is None:
        return None
    offered = PROVIDER_SERVICES[provider].split(",")
    out = []
    for v in values:
        match = next((o for o in offered if o.lower() == v.strip().lower()), None)
        if match is None:
            raise InvalidParameterValue(f"Provider {provider} doesn't support service {v} (parameter servicelist);"
                                        f" it offers {', '.join(offered)}")
        out.append(match)
    return out


@api_command("addNetworkServiceProvider", response=ProviderResponse, roles=ROOT_ADMIN, is_async=True,
             creates_entity=True, idempotent=True, event_type="SERVICE.PROVIDER.CREATE", since="3.0.0",
             description="Adds a network serviceProvider to a physical network")
class AddNetworkServiceProvider(Command):
    name = Param(STRING, required=True, description="the name for the physical network service provider")
    net = pnet_param("physicalnetworkid", description="the Physical Network ID to add the provider to")
    dest = Param(UUID, "destinationphysicalnetworkid", entity=PhysicalNetwork, description="the destination"
                 " Physical Network ID to bridge to")
    services = Param(LIST, "servicelist", description="the list of services to be enabled for this physical"
                     " network service provider")

    def prepare(self, ctx: CallContext) -> str | None:
        s, net = ctx.session, self.net
        name = next((p for p in PROVIDER_SERVICES if p.lower() == self.name.strip().lower()), None)
        if name is None:
            raise InvalidParameterValue(f"Unable to find Network Service Provider: {self.name} (parameter name)")
        if s.scalar(select(NetworkServiceProvider.id).where(
                NetworkServiceProvider.physical_network_id == net.id, NetworkServiceProvider.name == name,
                NetworkServiceProvider.removed.is_(None))) is not None:
            raise InvalidParameterValue(f"The '{name}' provider already exists on physical network: {net.uuid}")
        nsp = _provider(ctx, net, name, services=_services(self.services, name), dest=self.dest)
        ctx.event("SERVICE.PROVIDER.CREATE", f"Added provider {name} to physical network {net.name}",
                  resource_type="PhysicalNetworkServiceProvider", resource_uuid=nsp.uuid)
        return nsp.uuid

    def instance(self) -> tuple[str | None, str | None]:
        return "PhysicalNetworkServiceProvider", None

    def execute(self, ctx: CallContext) -> Result:
        assert ctx.job is not None
        nsp = ctx.created(NetworkServiceProvider, "provider")
        return _one(provider_payload(ctx.session, [nsp]))


class NspJob(Command):
    def instance(self) -> tuple[str | None, str | None]:
        return "PhysicalNetworkServiceProvider", self.nsp.uuid  # type: ignore[attr-defined]


@api_command("updateNetworkServiceProvider", response=ProviderResponse, roles=ROOT_ADMIN, is_async=True,
             idempotent=True, event_type="SERVICE.PROVIDER.UPDATE", since="3.0.0",
             description="Updates a network serviceProvider of a physical network")
class UpdateNetworkServiceProvider(NspJob):
    nsp = nsp_param()
    state = Param(STRING, choices=("Enabled", "Disabled", "Shutdown"), description="Enabled/Disabled/Shutdown the"
                  " physical network service provider")
    services = Param(LIST, "servicelist", description="the list of services to be enabled for this physical"
                     " network service provider")

    def execute(self, ctx: CallContext) -> Result:
        s, nsp = ctx.session, self.nsp
        if self.state == "Enabled" and nsp.name in (*ROUTER_ELEMENTS, INTERNAL_LB_ELEMENT):
            element = s.scalar(select(NetworkElement).where(NetworkElement.provider_id == nsp.id))
            if element is None or not element.enabled:
                raise InvalidParameterValue(f"Provider {nsp.name} is not ready, cannot Enable the provider, please"
                                            " configure the provider first")
        if self.state is not None:
            nsp.state = self.state
        if self.services is not None:
            nsp.services = ",".join(_services(self.services, nsp.name) or [])
        ctx.event("SERVICE.PROVIDER.UPDATE", f"Updated provider {nsp.name}",
                  resource_type="PhysicalNetworkServiceProvider", resource_uuid=nsp.uuid)
        s.flush()
        return _one(provider_payload(s, [nsp]))


@api_command("deleteNetworkServiceProvider", response=SuccessResponse, roles=ROOT_ADMIN, is_async=True,
             idempotent=True, event_type="SERVICE.PROVIDER.DELETE", since="3.0.0",
             description="Deletes a Network Service Provider.")
class DeleteNetworkServiceProvider(NspJob):
    nsp = nsp_param(description="the ID of the network service provider")

    def execute(self, ctx: CallContext) -> Result:
        s, nsp = ctx.session, self.nsp
        if nsp.state == "Enabled" and count(ctx, Network, Network.physical_network_id == nsp.physical_network_id,
                                            Network.removed.is_(None), Network.state == "Implemented"):
            raise ResourceInUse(f"The provider {nsp.name} is in use by implemented networks; disable it first",
                                uuids=[(nsp.uuid, "networkServiceProviderId")])
        s.execute(delete(NetworkElement).where(NetworkElement.provider_id == nsp.id))
        nsp.removed = utcnow()
        ctx.event("SERVICE.PROVIDER.DELETE", f"Deleted provider {nsp.name}",
                  resource_type="PhysicalNetworkServiceProvider", resource_uuid=nsp.uuid)
        return Success()


def _elements(ctx: CallContext, cmd: Any, types: tuple[str, ...]) -> tuple[list[NetworkElement], int]:
    stmt = select(NetworkElement).join(NetworkServiceProvider, NetworkServiceProvider.id == NetworkElement.provider_id)\
        .where(NetworkElement.element_type.in_(types), NetworkServiceProvider.removed.is_(None))\
        .order_by(NetworkElement.id)
    if cmd.id:
        stmt = stmt.where(NetworkElement.uuid == cmd.id)
    if cmd.nsp:
        stmt = stmt.where(NetworkServiceProvider.uuid == cmd.nsp)
    if cmd.enabled is not None:
        stmt = stmt.where(NetworkElement.enabled.is_(cmd.enabled))
    kw = keyword_filter(cmd.keyword, NetworkElement.element_type)
    if kw is not None:
        stmt = stmt.where(kw)
    return fetch_page(ctx, stmt, cmd)


@api_command("listVirtualRouterElements", response=VirtualRouterElementResponse, roles=ROOT_ADMIN, is_list=True,
             description="Lists all available virtual router elements.")
class ListVirtualRouterElements(Command):
    id = Param(UUID, description="list virtual router elements by id")
    nsp = Param(UUID, "nspid", related=NSP_RELATED, description="list virtual router elements by network service"
                " provider id")
    enabled = Param(BOOLEAN, description="list network offerings by enabled state")

    def execute(self, ctx: CallContext) -> Result:
        rows, total = _elements(ctx, self, ROUTER_ELEMENTS)
        return ListResult(element_payload(ctx.session, rows, with_owner=True), total)


@api_command("listInternalLoadBalancerElements", response=InternalLbElementResponse, roles=ROOT_ADMIN,
             is_list=True, since="4.2.0", description="Lists all available Internal Load Balancer elements.")
class ListInternalLoadBalancerElements(Command):
    id = Param(UUID, description="list internal load balancer elements by id")
    nsp = Param(UUID, "nspid", related=NSP_RELATED, description="list internal load balancer elements by network"
                " service provider id")
    enabled = Param(BOOLEAN, description="list internal load balancer elements by enabled state")

    def execute(self, ctx: CallContext) -> Result:
        rows, total = _elements(ctx, self, (INTERNAL_LB_ELEMENT,))
        return ListResult(element_payload(ctx.session, rows, with_owner=False), total)


class ElementJob(Command):
    def instance(self) -> tuple[str | None, str | None]:
        return "VirtualRouterProvider", self.element.uuid  # type: ignore[attr-defined]

    def configure(self, ctx: CallContext, types: tuple[str, ...], what: str) -> NetworkElement:
        element: NetworkElement = self.element  # type: ignore[attr-defined]
        if element.element_type not in types:
            raise InvalidParameterValue(f"Element {element.uuid} (parameter id) is not {what}")
        element.enabled = bool(self.enabled)  # type: ignore[attr-defined]
        ctx.event("NETWORK.ELEMENT.CONFIGURE", f"{'Enabled' if element.enabled else 'Disabled'} {what}"
                  f" {element.uuid}", resource_type="VirtualRouterProvider", resource_uuid=element.uuid)
        ctx.session.flush()
        return element


@api_command("configureVirtualRouterElement", response=VirtualRouterElementResponse, roles=ROOT_ADMIN,
             is_async=True, idempotent=True, event_type="NETWORK.ELEMENT.CONFIGURE",
             description="Configures a virtual router element.")
class ConfigureVirtualRouterElement(ElementJob):
    element = Param(UUID, "id", required=True, entity=NetworkElement, description="the ID of the virtual router"
                    " provider")
    enabled = Param(BOOLEAN, required=True, description="Enabled/Disabled the service provider")

    def execute(self, ctx: CallContext) -> Result:
        element = self.configure(ctx, ROUTER_ELEMENTS, "a virtual router element")
        return _one(element_payload(ctx.session, [element], with_owner=True))


@api_command("configureInternalLoadBalancerElement", response=InternalLbElementResponse, roles=ROOT_ADMIN,
             is_async=True, idempotent=True, event_type="NETWORK.ELEMENT.CONFIGURE", since="4.2.0",
             description="Configures an Internal Load Balancer element.")
class ConfigureInternalLoadBalancerElement(ElementJob):
    element = Param(UUID, "id", required=True, entity=NetworkElement, description="the ID of the internal lb"
                    " provider")
    enabled = Param(BOOLEAN, required=True, description="Enables/Disables the Internal Load Balancer element")

    def execute(self, ctx: CallContext) -> Result:
        element = self.configure(ctx, (INTERNAL_LB_ELEMENT,), "an internal load balancer element")
        return _one(element_payload(ctx.session, [element], with_owner=False))


@api_command("createVirtualRouterElement", response=VirtualRouterElementResponse, roles=ROOT_ADMIN,
             is_async=True, creates_entity=True, idempotent=True, event_type="SERVICE.PROVIDER.CREATE",
             description="Create a virtual router element.")
class CreateVirtualRouterElement(Command):
    nsp = nsp_param("nspid", description="the network service provider ID of the virtual router element")
    provider_type = Param(STRING, "providertype", since="4.1", description="The provider type. Supported types"
                          " are VirtualRouter (default) and VPCVirtualRouter")

    def prepare(self, ctx: CallContext) -> str | None:
        s, nsp = ctx.session, self.nsp
        wanted = (self.provider_type or "VirtualRouter").strip().lower()
        if wanted not in ("virtualrouter", "vpcvirtualrouter"):
            raise InvalidParameterValue(f"Invalid value {self.provider_type} for parameter providertype: use"
                                        " VirtualRouter or VPCVirtualRouter")
        element_type = "VirtualRouter" if wanted == "virtualrouter" else "VpcVirtualRouter"
        if nsp.name != element_type:
            raise InvalidParameterValue(f"Provider {nsp.name} (parameter nspid) can't have a {element_type} element")
        if s.scalar(select(NetworkElement.id).where(NetworkElement.provider_id == nsp.id)) is not None:
            raise InvalidParameterValue(f"Provider {nsp.uuid} already has a virtual router element")
        element = NetworkElement(provider_id=nsp.id, element_type=element_type, enabled=False)
        s.add(element)
        s.flush()
        return element.uuid

    def instance(self) -> tuple[str | None, str | None]:
        return "VirtualRouterProvider", None

    def execute(self, ctx: CallContext) -> Result:
        assert ctx.job is not None
        element = ctx.created(NetworkElement, "element")
        return _one(element_payload(ctx.session, [element], with_owner=True))


# -- VLAN IP ranges -------------------------------------------------------------------------------


def vlan_result(ctx: CallContext, rng: VlanIpRange) -> ObjectResult:
    ctx.session.flush()
    ctx.session.refresh(rng)
    return _one(vlan_payload(ctx.session, [rng]))


def _owner(ctx: CallContext, account_name: str | None, domain: Domain | None) -> tuple[Account | None, Domain | None]:
    if not account_name:
        return None, domain
    if domain is None:
        raise InvalidParameterValue("Please pass domainid together with account")
    acct = ctx.session.scalar(select(Account).where(Account.name == account_name, Account.domain_id == domain.id,
                                                    Account.removed.is_(None)))
    if acct is None:
        raise InvalidParameterValue(f"Unable to find account {account_name} in domain {domain.name} (parameter"
                                    " account)")
    return acct, domain


@api_command("createVlanIpRange", response=CreatedVlanResponse, roles=ROOT_ADMIN,
             event_type="VLAN.IP.RANGE.CREATE", description="Creates a VLAN IP range.")
class CreateVlanIpRange(Command):
    zone = zone_param(required=False, description="the Zone ID of the VLAN IP range")
    pod = pod_param(required=False, description="optional parameter. Have to be specified for Direct Untagged vlan"
                    " only.")
    net = Param(UUID, "networkid", entity=Network, description="the network id")
    physical_net = pnet_param("physicalnetworkid", required=False, description="the physical network id")
    vlan = Param(STRING, description="the ID or VID of the VLAN. If not specified, will be defaulted to the vlan of"
                 " the network or if vlan of the network is null - to Untagged")
    gateway = Param(STRING, description="the gateway of the VLAN IP range")
    netmask = Param(STRING, description="the netmask of the VLAN IP range")
    start_ip = Param(STRING, "startip", description="the beginning IP address in the VLAN IP range")
    end_ip = Param(STRING, "endip", description="the ending IP address in the VLAN IP range")
    for_virtual_network = Param(BOOLEAN, "forvirtualnetwork", description="true if VLAN is of Virtual type, false"
                                " if Direct")
    for_system_vms = Param(BOOLEAN, "forsystemvms", since="4.11.0", description="true if IP range is set to"
                           " system vms, false if not")
    account = Param(STRING, description="account who will own the VLAN. If VLAN is Zone wide, this parameter"
                    " should be omitted")
    domain = Param(UUID, "domainid", entity=Domain, description="domain ID of the account owning a VLAN")

    def execute(self, ctx: CallContext) -> Result:
        s = ctx.session
        zone = self.zone or (s.get(Zone, self.net.zone_id) if self.net else None) \
            or (s.get(Zone, self.pod.zone_id) if self.pod else None)
        if zone is None:
            raise InvalidParameterValue("Please specify the zone of the IP range (parameter zoneid)")
        if self.pod is not None:
            pod_in_zone(self.pod, zone)
        if self.net is not None and self.net.zone_id != zone.id:
            raise InvalidParameterValue(f"Network {self.net.name} (parameter networkid) is not in zone {zone.name}")
        rng = ip_range(self.start_ip, self.end_ip, self.gateway, self.netmask)
        check_vlan_range_free(s, zone, rng)
        account, domain = _owner(ctx, self.account, self.domain)
        basic = zone.network_type == "Basic"
        virtual = self.for_virtual_network if self.for_virtual_network is not None else (
            not basic and (self.net is None or self.net.guest_type == "Isolated"))
        if virtual:
            if basic:
                raise InvalidParameterValue("A basic zone has no public (virtual network) ranges (parameter"
                                            " forvirtualnetwork)")
            if self.net is not None and self.net.guest_type != "Isolated":
                raise InvalidParameterValue(f"Network {self.net.name} (parameter networkid) is not a public network")
            phys = self.physical_net or physical_network_for(s, zone, "Public")
            if phys is None:
                raise InvalidParameterValue(f"Unable to find a physical network with Public traffic in zone"
                                            f" {zone.name} (parameter physicalnetworkid)")
            if phys.zone_id != zone.id:
                raise InvalidParameterValue(f"Physical network {phys.name} (parameter physicalnetworkid) is not in"
                                            f" zone {zone.name}")
            vlan = VlanIpRange(zone_id=zone.id, physical_network_id=phys.id, vlan_tag=vlan_tag(self.vlan),
                               gateway=rng.gateway, netmask=rng.netmask, start_ip=rng.start, end_ip=rng.end,
                               vlan_type="VirtualNetwork", for_system_vms=bool(self.for_system_vms),
                               account_id=account.id if account else None,
                               domain_id=domain.id if domain else None)
            s.add(vlan)
            s.flush()
            add_public_ips(s, vlan)
        else:
            net = self.net
            if basic:
                if self.pod is None:
                    raise InvalidParameterValue("Pod id is required for a guest IP range in a basic zone (parameter"
                                                " podid)")
                net = net or basic_zone_network(s, zone, rng)
            if net is None:
                raise InvalidParameterValue("Please specify the shared network of a direct IP range (parameter"
                                            " networkid)")
            if net.guest_type != "Shared":
                raise InvalidParameterValue(f"Network {net.name} (parameter networkid) is not a shared network")
            if account is not None:
                raise InvalidParameterValue("A direct IP range can't be dedicated to an account (parameter account)")
            vlan = VlanIpRange(zone_id=zone.id, pod_id=self.pod.id if self.pod else None,
                               physical_network_id=net.physical_network_id, network_id=net.id,
                               vlan_tag=vlan_tag(self.vlan) if self.vlan else (net.broadcast_uri or "vlan://untagged"),
                               gateway=rng.gateway, netmask=rng.netmask, start_ip=rng.start, end_ip=rng.end,
                               vlan_type="DirectAttached", for_system_vms=bool(self.for_system_vms))
            s.add(vlan)
            s.flush()
        ctx.event("VLAN.IP.RANGE.CREATE", f"Created IP range {rng.start}-{rng.end} in zone {zone.name}",
                  resource_type="Vlan", resource_uuid=vlan.uuid)
        return vlan_result(ctx, vlan)


@api_command("listVlanIpRanges", response=VlanIpRangeResponse, roles=ROOT_ADMIN, is_list=True,
             description="Lists all VLAN IP ranges.")
class ListVlanIpRanges(Command):
    id = Param(UUID, related=VLAN_RELATED, description="the ID of the VLAN IP range")
    zone = Param(UUID, "zoneid", related=ZONE_RELATED, description="the Zone ID of the VLAN IP range")
    pod = Param(UUID, "podid", related=POD_RELATED, description="the Pod ID of the VLAN IP range")
    net = Param(UUID, "networkid", description="network id of the VLAN IP range")
    physical_net = Param(UUID, "physicalnetworkid", related=PNET_RELATED, description="physical network id of the"
                         " VLAN IP range")
    vlan = Param(STRING, description="the ID or VID of the VLAN. Default is an \"untagged\" VLAN.")
    for_virtual_network = Param(BOOLEAN, "forvirtualnetwork", description="true if VLAN is of Virtual type, false"
                                " if Direct")
    account = Param(STRING, description="the account with which the VLAN IP range is associated. Must be used with"
                    " the domainId parameter.")
    domain = Param(UUID, "domainid", entity=Domain, description="the domain ID with which the VLAN IP range is"
                   " associated.  If used with the account parameter, returns all VLAN IP ranges for that account"
                   " in the specified domain.")

    def execute(self, ctx: CallContext) -> Result:
        stmt = select(VlanIpRange).where(VlanIpRange.removed.is_(None)).order_by(VlanIpRange.id)
        if self.id:
            stmt = stmt.where(VlanIpRange.uuid == self.id)
        for value, model, col in ((self.zone, Zone, VlanIpRange.zone_id), (self.pod, Pod, VlanIpRange.pod_id),
                                  (self.net, Network, VlanIpRange.network_id),
                                  (self.physical_net, PhysicalNetwork, VlanIpRange.physical_network_id)):
            if value:
                stmt = stmt.where(col.in_(select(model.id).where(model.uuid == value)))
        if self.vlan:
            stmt = stmt.where(VlanIpRange.vlan_tag == vlan_tag(self.vlan))
        if self.for_virtual_network is not None:
            stmt = stmt.where(VlanIpRange.vlan_type == ("VirtualNetwork" if self.for_virtual_network
                                                        else "DirectAttached"))
        account, domain = _owner(ctx, self.account, self.domain)
        if account is not None:
            stmt = stmt.where(VlanIpRange.account_id == account.id)
        elif domain is not None:
            stmt = stmt.where(VlanIpRange.domain_id == domain.id)
        kw = keyword_filter(self.keyword, VlanIpRange.start_ip, VlanIpRange.end_ip, VlanIpRange.vlan_tag)
        if kw is not None:
            stmt = stmt.where(kw)
        rows, total = fetch_page(ctx, stmt, self)
        return ListResult(vlan_payload(ctx.session, rows), total)


def vlan_param(description: str = "the id of the VLAN IP range") -> Param:
    return Param(UUID, "id", required=True, entity=VlanIpRange, related=VLAN_RELATED, description=description)


@api_command("deleteVlanIpRange", response=SuccessResponse, roles=ROOT_ADMIN, event_type="VLAN.IP.RANGE.DELETE",
             description="Deletes a VLAN IP range.")
class DeleteVlanIpRange(Command):
    rng = vlan_param()

    def execute(self, ctx: CallContext) -> Result:
        s, rng = ctx.session, self.rng
        if rng.vlan_type == "VirtualNetwork":
            taken = count(ctx, PublicIp, PublicIp.vlan_id == rng.id, PublicIp.state != "Free")
            if taken:
                raise ResourceInUse(f"The IP range {rng.start_ip}-{rng.end_ip} can't be deleted: {taken} of its"
                                    " addresses are allocated", uuids=[(rng.uuid, "vlanId")])
            s.execute(delete(PublicIp).where(PublicIp.vlan_id == rng.id))
        elif rng.network_id is not None:
            for ip in s.scalars(select(Nic.ip_address).where(Nic.network_id == rng.network_id, Nic.removed.is_(None))):
                if in_range(ip, rng.start_ip, rng.end_ip):
                    raise ResourceInUse(f"The IP range {rng.start_ip}-{rng.end_ip} can't be deleted: address {ip} is"
                                        " in use", uuids=[(rng.uuid, "vlanId")])
        rng.removed = utcnow()
        ctx.event("VLAN.IP.RANGE.DELETE", f"Deleted IP range {rng.start_ip}-{rng.end_ip}", resource_type="Vlan",
                  resource_uuid=rng.uuid)
        return Success()


@api_command("dedicatePublicIpRange", response=CreatedVlanResponse, roles=ROOT_ADMIN,
             event_type="VLAN.IP.RANGE.DEDICATE", description="Dedicates a Public IP range to an account")
class DedicatePublicIpRange(Command):
    rng = vlan_param()
    account = Param(STRING, description="account who will own the VLAN")
    domain = Param(UUID, "domainid", required=True, entity=Domain, description="domain ID of the account owning a"
                   " VLAN")

    def execute(self, ctx: CallContext) -> Result:
        s, rng = ctx.session, self.rng
        if rng.vlan_type != "VirtualNetwork":
            raise InvalidParameterValue("Only public IP ranges can be dedicated (parameter id)")
        if rng.account_id is not None or rng.domain_id is not None:
            raise InvalidParameterValue("Public IP range has already been dedicated")
        account, domain = _owner(ctx, self.account, self.domain)
        other = s.scalar(select(PublicIp.address).where(PublicIp.vlan_id == rng.id, PublicIp.state != "Free",
                                                        PublicIp.account_id != (account.id if account else -1)))
        if account is not None and other is not None:
            raise InvalidParameterValue(f"Public IP address {other} of the range is in use by another account")
        rng.account_id = account.id if account else None
        rng.domain_id = domain.id if domain else None
        ctx.event("VLAN.IP.RANGE.DEDICATE", f"Dedicated IP range {rng.start_ip}-{rng.end_ip}", resource_type="Vlan",
                  resource_uuid=rng.uuid)
        return vlan_result(ctx, rng)


@api_command("releasePublicIpRange", response=SuccessResponse, roles=ROOT_ADMIN,
             event_type="VLAN.IP.RANGE.RELEASE", description="Releases a Public IP range back to the system pool")
class ReleasePublicIpRange(Command):
    rng = vlan_param()

    def execute(self, ctx: CallContext) -> Result:
        rng = self.rng
        if rng.account_id is None and rng.domain_id is None:
            raise InvalidParameterValue(f"The IP range {rng.start_ip}-{rng.end_ip} is not dedicated (parameter id)")
        rng.account_id, rng.domain_id = None, None
        ctx.event("VLAN.IP.RANGE.RELEASE", f"Released IP range {rng.start_ip}-{rng.end_ip}", resource_type="Vlan",
                  resource_uuid=rng.uuid)
        return Success()


__all__ = ["CreatePhysicalNetwork", "CreateVlanIpRange"]
