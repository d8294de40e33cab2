"""Infrastructure commands: zones, pods and their management ranges, clusters, hosts, capacity.

Storage (pools, image stores) is in ``infra_storage``; physical networks, providers and IP ranges in
``infra_network``. All of these are root-admin commands, except listZones.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select

from overcast.access.roles import ALL_ROLES, ROOT_ADMIN
from overcast.api.context import CallContext
from overcast.api.declare import (
    BOOLEAN, INTEGER, LIST, MAP, STRING, UUID, Command, ListResult, ObjectResult, Param, Result, Success,
    SuccessResponse, api_command,
)  # fmt: skip
from overcast.api.listing import fetch_page, keyword_filter
from overcast.api.params import details_map
from overcast.api.responses.infra import (
    CapacityResponse,
    ClusterResponse,
    HostResponse,
    PodResponse,
    ZoneResponse,
    capacity_payload,
    cluster_payload,
    host_payload,
    pod_payload,
    zone_payload,
)
from overcast.db.models import (
    Cluster,
    Domain,
    Host,
    ImageStore,
    Network,
    PhysicalNetwork,
    Pod,
    PodIpRange,
    StoragePool,
    VirtualMachine,
    VlanIpRange,
    Volume,
    Zone,
    utcnow,
)
from overcast.engine.capacity_report import NAMES, CapacityReport, in_range
from overcast.engine.hosts import HostOps
from overcast.engine.infra import (
    canonical,
    check_pod_range_free,
    cidr_of,
    cluster_in_pod,
    hypervisor_type,
    ip_range,
    ipv4,
    netmask_of,
    physical_network_for,
    pod_in_zone,
)
from overcast.errors import InvalidParameterValue, ResourceInUse

ZONE_RELATED = ("createZone", "listZones", "updateZone")
POD_RELATED = ("createPod", "listPods", "updatePod")
CLUSTER_RELATED = ("addCluster", "listClusters", "updateCluster")
HOST_RELATED = ("addHost", "listHosts", "updateHost")
ALLOCATION = ("Enabled", "Disabled")



def zone_param(required: bool = True, name: str = "zoneid", description: str = "the ID of the Zone") -> Param:
    return Param(UUID, name, required=required, entity=Zone, related=ZONE_RELATED, description=description)


def pod_param(required: bool = True, name: str = "podid", description: str = "the ID of the Pod") -> Param:
    return Param(UUID, name, required=required, entity=Pod, related=POD_RELATED, description=description)


def cluster_param(required: bool = True, name: str = "clusterid",
                  description: str = "the ID of the cluster") -> Param:
    return Param(UUID, name, required=required, entity=Cluster, related=CLUSTER_RELATED, description=description)


def host_param(description: str = "the ID of the host") -> Param:
    return Param(UUID, "id", required=True, entity=Host, related=HOST_RELATED, description=description)


def count(ctx: CallContext, model: Any, *where: Any) -> int:
    return int(ctx.session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def ipv6(value: str | None, param: str) -> str | None:
    if value is None or value == "":
        return None
    import ipaddress

    try:
        addr = ipaddress.ip_address(value.strip())
    except ValueError:
        raise InvalidParameterValue(f"Invalid IPv6 address {value} for parameter {param}") from None
    if addr.version != 6:
        raise InvalidParameterValue(f"Invalid IPv6 address {value} for parameter {param}")
    return str(addr)


def optional_ipv4(value: str | None, param: str) -> str | None:
    return None if value is None or value == "" else ipv4(value, param)


# -- zones ----------------------------------------------------------------------------------------


def zone_result(ctx: CallContext, zone: Zone) -> ObjectResult:
    ctx.session.flush()
    return ObjectResult(zone_payload(ctx.session, [zone], admin=ctx.me.is_admin)[0])


def _unique_zone_name(ctx: CallContext, name: str, skip_id: int | None = None) -> str:
    name = name.strip()
    if not name:
        raise InvalidParameterValue("Please specify a name for the zone (parameter name)")
    stmt = select(Zone.id).where(func.lower(Zone.name) == name.lower(), Zone.removed.is_(None))
    if skip_id is not None:
        stmt = stmt.where(Zone.id != skip_id)
    if ctx.session.scalar(stmt) is not None:
        raise InvalidParameterValue(f"A zone with name {name} already exists. Please specify a unique zone name.")
    return name


@api_command("createZone", response=ZoneResponse, roles=ROOT_ADMIN, event_type="ZONE.CREATE",
             description="Creates a Zone.")
class CreateZone(Command):
    name = Param(STRING, required=True, description="the name of the Zone")
    network_type = Param(STRING, "networktype", required=True, description="network type of the zone, can be"
                         " Basic or Advanced")
    dns1 = Param(STRING, required=True, description="the first DNS for the Zone")
    dns2 = Param(STRING, description="the second DNS for the Zone")
    internal_dns1 = Param(STRING, "internaldns1", required=True, description="the first internal DNS for the"
                          " Zone")
    internal_dns2 = Param(STRING, "internaldns2", description="the second internal DNS for the Zone")
    ip6_dns1 = Param(STRING, "ip6dns1", description="the first DNS for IPv6 network in the Zone")
    ip6_dns2 = Param(STRING, "ip6dns2", description="the second DNS for IPv6 network in the Zone")
    guest_cidr = Param(STRING, "guestcidraddress", description="the guest CIDR address for the Zone")
    network_domain = Param(STRING, "domain", description="Network domain name for the networks in the zone")
    domain = Param(UUID, "domainid", entity=Domain, description="the ID of the containing domain, null for"
                   " public zones")
    allocation_state = Param(STRING, "allocationstate", choices=ALLOCATION, description="Allocation state of"
                             " this Zone for allocation of new resources")
    local_storage = Param(BOOLEAN, "localstorageenabled", description="true if local storage offering enabled,"
                          " false otherwise")
    security_group = Param(BOOLEAN, "securitygroupenabled", description="true if network is security group"
                           " enabled, false otherwise")

    def execute(self, ctx: CallContext) -> Result:
        name = _unique_zone_name(ctx, self.name)
        network_type = canonical(self.network_type, ("Basic", "Advanced"), "networktype", "the network type")
        guest_cidr = None
        if network_type == "Advanced" and self.guest_cidr:
            guest_cidr = cidr_of(self.guest_cidr, "guestcidraddress")
        zone = Zone(
            name=name, network_type=network_type, dns1=ipv4(self.dns1, "dns1"),
            dns2=optional_ipv4(self.dns2, "dns2"), internal_dns1=ipv4(self.internal_dns1, "internaldns1"),
            internal_dns2=optional_ipv4(self.internal_dns2, "internaldns2"),
            ip6_dns1=ipv6(self.ip6_dns1, "ip6dns1"), ip6_dns2=ipv6(self.ip6_dns2, "ip6dns2"),
            guest_cidr=guest_cidr, network_domain=self.network_domain or None,
            domain_id=self.domain.id if self.domain else None,
            allocation_state=self.allocation_state or "Disabled",
            security_group_enabled=True if network_type == "Basic" else bool(self.security_group),
            local_storage_enabled=bool(self.local_storage), description=name,
        )  # fmt: skip
        ctx.session.add(zone)
        ctx.session.flush()
        ctx.event("ZONE.CREATE", f"Created zone {zone.name}", resource_type="Zone", resource_uuid=zone.uuid)
        return zone_result(ctx, zone)


@api_command("listZones", response=ZoneResponse, roles=ALL_ROLES, is_list=True,
             description="Lists zones")
class ListZones(Command):
    id = Param(UUID, related=ZONE_RELATED, description="the ID of the zone")
    ids = Param(LIST, item_type=UUID, since="4.19.0", description="the IDs of the zones, mutually exclusive"
                " with id")
    name = Param(STRING, since="4.3.0", description="the name of the zone")
    available = Param(BOOLEAN, description="true if you want to retrieve all available Zones. False if you only"
                      " want to return the Zones from which you have at least one VM. Default is false.")
    domain = Param(UUID, "domainid", entity=Domain, description="the ID of the domain associated with the zone")
    network_type = Param(STRING, "networktype", since="4.3.0", description="the network type of the zone that"
                         " the virtual machine belongs to")
    show_capacities = Param(BOOLEAN, "showcapacities", description="flag to display the capacity of the zones")

    def execute(self, ctx: CallContext) -> Result:
        me = ctx.me
        stmt = select(Zone).where(Zone.removed.is_(None)).order_by(Zone.id)
        if not me.is_root_admin:
            parts = [p for p in me.domain_path.split("/") if p]
            paths = ["/"] + ["/" + "/".join(parts[:i]) + "/" for i in range(1, len(parts) + 1)]
            ancestors = select(Domain.id).where(Domain.path.in_(paths))  # dedicated to its domain or above
            stmt = stmt.where(Zone.allocation_state == "Enabled",
                              Zone.domain_id.is_(None) | Zone.domain_id.in_(ancestors))
        if self.available:
            stmt = stmt.where(Zone.allocation_state == "Enabled")
        if self.id:
            stmt = stmt.where(Zone.uuid == self.id)
        if self.ids:
            stmt = stmt.where(Zone.uuid.in_(self.ids))
        if self.name:
            stmt = stmt.where(Zone.name == self.name)
        if self.domain is not None:
            stmt = stmt.where(Zone.domain_id == self.domain.id)
        if self.network_type:
            stmt = stmt.where(func.lower(Zone.network_type) == self.network_type.lower())
        kw = keyword_filter(self.keyword, Zone.name, Zone.description)
        if kw is not None:
            stmt = stmt.where(kw)
        rows, total = fetch_page(ctx, stmt, self)
        items = zone_payload(ctx.session, rows, admin=me.is_admin, settings=ctx.services.settings,
                             show_capacities=bool(self.show_capacities) and me.is_admin)
        return ListResult(items, total)


@api_command("updateZone", response=ZoneResponse, roles=ROOT_ADMIN, event_type="ZONE.EDIT",
             description="Updates a Zone.")
class UpdateZone(Command):
    zone = zone_param(name="id", description="the ID of the Zone")
    name = Param(STRING, description="the name of the Zone")
    dns1 = Param(STRING, description="the first DNS for the Zone")
    dns2 = Param(STRING, description="the second DNS for the Zone")
    internal_dns1 = Param(STRING, "internaldns1", description="the first internal DNS for the Zone")
    internal_dns2 = Param(STRING, "internaldns2", description="the second internal DNS for the Zone")
    ip6_dns1 = Param(STRING, "ip6dns1", description="the first DNS for IPv6 network in the Zone")
    ip6_dns2 = Param(STRING, "ip6dns2", description="the second DNS for IPv6 network in the Zone")
    guest_cidr = Param(STRING, "guestcidraddress", description="the guest CIDR address for the Zone")
    network_domain = Param(STRING, "domain", description="Network domain name for the networks in the zone;"
                           " empty string will update domain with NULL value")
    allocation_state = Param(STRING, "allocationstate", choices=ALLOCATION, description="Allocation state of"
                             " this cluster for allocation of new resources")
    details = Param(MAP, description="the details for the Zone")
    is_public = Param(BOOLEAN, "ispublic", description="updates a private zone to public if set, but not vice"
                      " versa")
    local_storage = Param(BOOLEAN, "localstorageenabled", description="true if local storage offering enabled,"
                          " false otherwise")

    def execute(self, ctx: CallContext) -> Result:
        zone = self.zone
        if self.name is not None:
            zone.name = _unique_zone_name(ctx, self.name, zone.id)
        for attr, param in (("dns1", "dns1"), ("internal_dns1", "internaldns1")):
            value = getattr(self, attr)
            if value is not None:
                setattr(zone, attr, ipv4(value, param))
        for attr, param in (("dns2", "dns2"), ("internal_dns2", "internaldns2")):
            value = getattr(self, attr)
            if value is not None:
                setattr(zone, attr, optional_ipv4(value, param))
        if self.ip6_dns1 is not None:
            zone.ip6_dns1 = ipv6(self.ip6_dns1, "ip6dns1")
        if self.ip6_dns2 is not None:
            zone.ip6_dns2 = ipv6(self.ip6_dns2, "ip6dns2")
        if self.guest_cidr is not None:
            if zone.network_type != "Advanced":
                raise InvalidParameterValue("guestcidraddress can only be set on an Advanced zone")
            zone.guest_cidr = cidr_of(self.guest_cidr, "guestcidraddress")
        if self.network_domain is not None:
            zone.network_domain = self.network_domain or None
        if self.details is not None:
            current = json.loads(zone.details or "{}")
            current.update(details_map(self.details))
            zone.details = json.dumps(current)
        if self.is_public:
            zone.domain_id = None
        if self.local_storage is not None:
            zone.local_storage_enabled = self.local_storage
        if self.allocation_state is not None and self.allocation_state != zone.allocation_state:
            if self.allocation_state == "Enabled":
                self._check_enable(ctx, zone)
            zone.allocation_state = self.allocation_state
        ctx.event("ZONE.EDIT", f"Updated zone {zone.name}", resource_type="Zone", resource_uuid=zone.uuid)
        return zone_result(ctx, zone)

    @staticmethod
    def _check_enable(ctx: CallContext, zone: Zone) -> None:
        """A zone needs a physical network for management traffic (and public, advanced without security
        groups) before it is enabled."""
        needed = ["Management"]
        if zone.network_type == "Advanced" and not zone.security_group_enabled:
            needed.append("Public")
        for traffic in needed:
            if physical_network_for(ctx.session, zone, traffic) is None:
                raise InvalidParameterValue(
                    f"Cannot enable this Zone since: Unable to find the default physical network with"
                    f" traffic={traffic} in the specified zone id")


@api_command("deleteZone", response=SuccessResponse, roles=ROOT_ADMIN, event_type="ZONE.DELETE",
             description="Deletes a Zone.")
class DeleteZone(Command):
    zone = zone_param(name="id", description="the ID of the Zone")

    def execute(self, ctx: CallContext) -> Result:
        zone = self.zone
        checks = (
            ("hosts", Host, (Host.zone_id == zone.id, Host.removed.is_(None))),
            ("pods", Pod, (Pod.zone_id == zone.id, Pod.removed.is_(None))),
            ("virtual machines", VirtualMachine, (VirtualMachine.zone_id == zone.id, VirtualMachine.removed.is_(None))),
            ("volumes", Volume, (Volume.zone_id == zone.id, Volume.removed.is_(None))),
            ("primary storage pools", StoragePool, (StoragePool.zone_id == zone.id, StoragePool.removed.is_(None))),
            ("image stores", ImageStore, (ImageStore.zone_id == zone.id, ImageStore.removed.is_(None))),
            ("IP ranges", VlanIpRange, (VlanIpRange.zone_id == zone.id, VlanIpRange.removed.is_(None))),
            ("networks", Network, (Network.zone_id == zone.id, Network.removed.is_(None))),
            ("physical networks", PhysicalNetwork, (PhysicalNetwork.zone_id == zone.id,
                                                    PhysicalNetwork.removed.is_(None))),
        )  # fmt: skip
        for what, model, where in checks:
            if count(ctx, model, *where):
                raise ResourceInUse(f"The zone is not deletable because there are {what} in this zone",
                                    uuids=[(zone.uuid, "zoneId")])
        zone.removed = utcnow()
        ctx.event("ZONE.DELETE", f"Deleted zone {zone.name}", resource_type="Zone", resource_uuid=zone.uuid)
        return Success()


# -- pods -----------------------------------------------------------------------------------------


def pod_result(ctx: CallContext, pod: Pod) -> ObjectResult:
    ctx.session.flush()
    return ObjectResult(pod_payload(ctx.session, [pod])[0])


def _check_gateway_outside(gateway: str, start: str, end: str) -> None:
    if in_range(gateway, start, end):
        raise InvalidParameterValue(f"The gateway {gateway} must not be inside the range {start}-{end}"
                                    " (parameters gateway, startip, endip)")


@api_command("createPod", response=PodResponse, roles=ROOT_ADMIN, event_type="POD.CREATE",
             description="Creates a new Pod.")
class CreatePod(Command):
    name = Param(STRING, required=True, description="the name of the Pod")
    zone = zone_param(description="the Zone ID in which the Pod will be created")
    gateway = Param(STRING, description="the gateway for the Pod")
    netmask = Param(STRING, description="the netmask for the Pod")
    start_ip = Param(STRING, "startip", description="the starting IP address for the Pod")
    end_ip = Param(STRING, "endip", description="the ending IP address for the Pod")
    allocation_state = Param(STRING, "allocationstate", choices=ALLOCATION, description="Allocation state of"
                             " this Pod for allocation of new resources")

    def execute(self, ctx: CallContext) -> Result:
        s, zone = ctx.session, self.zone
        name = self.name.strip()
        if not name:
            raise InvalidParameterValue("Please specify a name for the pod (parameter name)")
        if s.scalar(select(Pod.id).where(Pod.zone_id == zone.id, Pod.removed.is_(None),
                                         func.lower(Pod.name) == name.lower())) is not None:
            raise InvalidParameterValue(f"A pod with name: {name} already exists in zone: {zone.name}. Please"
                                        " specify a unique pod name.")
        rng = None
        gateway = optional_ipv4(self.gateway, "gateway")
        netmask = netmask_of(self.netmask) if self.netmask else None
        if self.start_ip:
            rng = ip_range(self.start_ip, self.end_ip, self.gateway, self.netmask, default_end_to_subnet=True)
            _check_gateway_outside(rng.gateway, rng.start, rng.end)
            check_pod_range_free(s, zone, rng)
        elif self.end_ip:
            raise InvalidParameterValue("Please specify startip together with endip")
        pod = Pod(name=name, zone_id=zone.id, gateway=gateway, netmask=netmask,
                  allocation_state=self.allocation_state or "Enabled")
        s.add(pod)
        s.flush()
        if rng is not None:
            s.add(PodIpRange(pod_id=pod.id, start_ip=rng.start, end_ip=rng.end, gateway=rng.gateway,
                             netmask=rng.netmask))
        ctx.event("POD.CREATE", f"Created pod {pod.name} in zone {zone.name}", resource_type="Pod",
                  resource_uuid=pod.uuid)
        return pod_result(ctx, pod)


@api_command("listPods", response=PodResponse, roles=ROOT_ADMIN, is_list=True,
             description="Lists all Pods.")
class ListPods(Command):
    id = Param(UUID, related=POD_RELATED, description="list Pods by ID")
    name = Param(STRING, description="list Pods by name")
    zone = Param(UUID, "zoneid", related=ZONE_RELATED, description="list Pods by Zone ID")
    allocation_state = Param(STRING, "allocationstate", description="list pods by allocation state")
    show_capacities = Param(BOOLEAN, "showcapacities", description="flag to display the capacity of the pods")

    def execute(self, ctx: CallContext) -> Result:
        stmt = select(Pod).where(Pod.removed.is_(None)).order_by(Pod.id)
        if self.id:
            stmt = stmt.where(Pod.uuid == self.id)
        if self.name:
            stmt = stmt.where(Pod.name == self.name)
        if self.zone:
            stmt = stmt.where(Pod.zone_id.in_(select(Zone.id).where(Zone.uuid == self.zone)))
        if self.allocation_state:
            stmt = stmt.where(func.lower(Pod.allocation_state) == self.allocation_state.lower())
        kw = keyword_filter(self.keyword, Pod.name)
        if kw is not None:
            stmt = stmt.where(kw)
        rows, total = fetch_page(ctx, stmt, self)
        return ListResult(pod_payload(ctx.session, rows, settings=ctx.services.settings,
                                      show_capacities=bool(self.show_capacities)), total)


@api_command("updatePod", response=PodResponse, roles=ROOT_ADMIN, event_type="POD.EDIT",
             description="Updates a Pod.")
class UpdatePod(Command):
    pod = pod_param(name="id", description="the ID of the Pod")
    name = Param(STRING, description="the name of the Pod")
    gateway = Param(STRING, description="the gateway for the Pod")
    netmask = Param(STRING, description="the netmask of the Pod")
    start_ip = Param(STRING, "startip", description="the starting IP address for the Pod")
    end_ip = Param(STRING, "endip", description="the ending IP address for the Pod")
    allocation_state = Param(STRING, "allocationstate", choices=ALLOCATION, description="Allocation state of"
                             " this cluster for allocation of new resources")

    def execute(self, ctx: CallContext) -> Result:
        s, pod = ctx.session, self.pod
        zone = s.get(Zone, pod.zone_id)
        assert zone is not None
        if self.name is not None:
            name = self.name.strip()
            if not name:
                raise InvalidParameterValue("Please specify a name for the pod (parameter name)")
            if s.scalar(select(Pod.id).where(Pod.zone_id == zone.id, Pod.removed.is_(None), Pod.id != pod.id,
                                             func.lower(Pod.name) == name.lower())) is not None:
                raise InvalidParameterValue(f"A pod with name: {name} already exists in zone: {zone.name}")
            pod.name = name
        if self.gateway is not None:
            pod.gateway = ipv4(self.gateway, "gateway")
        if self.netmask is not None:
            pod.netmask = netmask_of(self.netmask)
        if self.start_ip is not None or self.end_ip is not None:
            first = s.scalar(select(PodIpRange).where(PodIpRange.pod_id == pod.id).order_by(PodIpRange.id))
            start = self.start_ip or (first.start_ip if first else None)
            end = self.end_ip or (first.end_ip if first else None)
            rng = ip_range(start, end, pod.gateway, pod.netmask, default_end_to_subnet=True)
            _check_gateway_outside(rng.gateway, rng.start, rng.end)
            check_pod_range_free(s, zone, rng, skip_range_id=first.id if first else None)
            if first is None:
                s.add(PodIpRange(pod_id=pod.id, start_ip=rng.start, end_ip=rng.end, gateway=rng.gateway,
                                 netmask=rng.netmask))
            else:
                first.start_ip, first.end_ip, first.gateway, first.netmask = rng.start, rng.end, rng.gateway, rng.netmask
        if self.allocation_state is not None:
            pod.allocation_state = self.allocation_state
        ctx.event("POD.EDIT", f"Updated pod {pod.name}", resource_type="Pod", resource_uuid=pod.uuid)
        return pod_result(ctx, pod)


@api_command("deletePod", response=SuccessResponse, roles=ROOT_ADMIN, event_type="POD.DELETE",
             description="Deletes a Pod.")
class DeletePod(Command):
    pod = pod_param(name="id", description="the ID of the Pod")

    def execute(self, ctx: CallContext) -> Result:
        pod = self.pod
        for what, model, where in (
            ("hosts", Host, (Host.pod_id == pod.id, Host.removed.is_(None))),
            ("clusters", Cluster, (Cluster.pod_id == pod.id, Cluster.removed.is_(None))),
            ("virtual machines", VirtualMachine, (VirtualMachine.pod_id == pod.id, VirtualMachine.removed.is_(None))),
            ("primary storage pools", StoragePool, (StoragePool.pod_id == pod.id, StoragePool.removed.is_(None))),
            ("guest IP ranges", VlanIpRange, (VlanIpRange.pod_id == pod.id, VlanIpRange.removed.is_(None))),
        ):
            if count(ctx, model, *where):
                raise ResourceInUse(f"The pod cannot be deleted because there are {what} in this pod",
                                    uuids=[(pod.uuid, "podId")])
        from sqlalchemy import delete

        ctx.session.execute(delete(PodIpRange).where(PodIpRange.pod_id == pod.id))
        pod.removed = utcnow()
        ctx.event("POD.DELETE", f"Deleted pod {pod.name}", resource_type="Pod", resource_uuid=pod.uuid)
        return Success()


class PodJob(Command):
    def instance(self) -> tuple[str | None, str | None]:
        return "Pod", self.pod.uuid  # type: ignore[attr-defined]


@api_command("createManagementNetworkIpRange", response=PodResponse, roles=ROOT_ADMIN, is_async=True,
             idempotent=True, event_type="MANAGEMENT.IP.RANGE.CREATE", since="4.11.0.0",
             description="Creates a Management network IP range.")
class CreateManagementNetworkIpRange(PodJob):
    pod = pod_param(description="UUID of POD, where the IP range belongs to.")
    gateway = Param(STRING, required=True, description="The gateway for the management network.")
    netmask = Param(STRING, required=True, description="The netmask for the management network.")
    start_ip = Param(STRING, "startip", required=True, description="The starting IP address.")
    end_ip = Param(STRING, "endip", description="The ending IP address.")
    for_system_vms = Param(BOOLEAN, "forsystemvms", since="4.12.0.0", description="Specify if range is"
                           " dedicated for CPVM and SSVM.")
    vlan = Param(STRING, since="4.12.0.0", description="Optional. The vlan id the ip range sit on, default to"
                 " Null when it is not specified which means you network is not on any Vlan")

    def execute(self, ctx: CallContext) -> Result:
        s, pod = ctx.session, self.pod
        zone = s.get(Zone, pod.zone_id)
        assert zone is not None
        rng = ip_range(self.start_ip, self.end_ip, self.gateway, self.netmask)
        _check_gateway_outside(rng.gateway, rng.start, rng.end)
        check_pod_range_free(s, zone, rng)
        vlan = _mgmt_vlan(self.vlan)
        s.add(PodIpRange(pod_id=pod.id, start_ip=rng.start, end_ip=rng.end, gateway=rng.gateway,
                         netmask=rng.netmask, vlan=vlan, for_system_vms=bool(self.for_system_vms)))
        if pod.gateway is None:
            pod.gateway, pod.netmask = rng.gateway, rng.netmask
        ctx.event("MANAGEMENT.IP.RANGE.CREATE", f"Added management range {rng.start}-{rng.end} to pod {pod.name}",
                  resource_type="Pod", resource_uuid=pod.uuid)
        return pod_result(ctx, pod)


def _mgmt_vlan(value: str | None) -> str | None:
    if value is None or value.strip().lower() in ("", "untagged", "vlan://untagged"):
        return None
    tag = value.strip().removeprefix("vlan://")
    if not tag.isdigit() or not 0 < int(tag) < 4095:
        raise InvalidParameterValue(f"Invalid VLAN {value} for parameter vlan: use a VLAN id (1-4094) or untagged")
    return str(int(tag))


@api_command("deleteManagementNetworkIpRange", response=SuccessResponse, roles=ROOT_ADMIN, is_async=True,
             idempotent=True, event_type="MANAGEMENT.IP.RANGE.DELETE", since="4.11.0.0",
             description="Deletes a management network IP range. This action is only allowed when no IPs in this"
             " range are allocated.")
class DeleteManagementNetworkIpRange(PodJob):
    pod = pod_param(description="UUID of POD, where the IP range belongs to.")
    start_ip = Param(STRING, "startip", required=True, description="The starting IP address.")
    end_ip = Param(STRING, "endip", required=True, description="The ending IP address.")
    vlan = Param(STRING, required=True, description="The vlan id the ip range sit on")

    def execute(self, ctx: CallContext) -> Result:
        s, pod = ctx.session, self.pod
        start, end = ipv4(self.start_ip, "startip"), ipv4(self.end_ip, "endip")
        vlan = _mgmt_vlan(self.vlan)
        rng = s.scalar(select(PodIpRange).where(PodIpRange.pod_id == pod.id, PodIpRange.start_ip == start,
                                                PodIpRange.end_ip == end))
        if rng is None or (rng.vlan or None) != vlan:
            raise InvalidParameterValue(f"Unable to find the IP range {start}-{end} with vlan {self.vlan} in pod"
                                        f" {pod.name} (parameters startip, endip, vlan)")
        for ip in s.scalars(select(Host.ip_address).where(Host.pod_id == pod.id, Host.removed.is_(None))):
            if in_range(ip, start, end):
                raise ResourceInUse(f"The IP range {start}-{end} can't be deleted: address {ip} is in use by a host")
        s.delete(rng)
        ctx.event("MANAGEMENT.IP.RANGE.DELETE", f"Deleted management range {start}-{end} of pod {pod.name}",
                  resource_type="Pod", resource_uuid=pod.uuid)
        return Success()


# -- clusters -------------------------------------------------------------------------------------


def cluster_items(ctx: CallContext, clusters: list[Cluster]) -> list[dict[str, Any]]:
    ctx.session.flush()
    return cluster_payload(ctx.session, clusters, ctx.services.settings)


@api_command("addCluster", response=ClusterResponse, roles=ROOT_ADMIN, description="Adds a new cluster")
class AddCluster(Command):
    name = Param(STRING, "clustername", required=True, description="the cluster name")
    cluster_type = Param(STRING, "clustertype", required=True, description="type of the cluster:"
                         " CloudManaged, ExternalManaged")
    hypervisor = Param(STRING, required=True, description="hypervisor type of the cluster: XenServer,KVM,VMware,"
                       "Hyperv,BareMetal,Simulator,Ovm3,External")
    pod = pod_param(description="the Pod ID for the host")
    zone = zone_param(description="the Zone ID for the cluster")
    allocation_state = Param(STRING, "allocationstate", choices=ALLOCATION, description="Allocation state of"
                             " this cluster for allocation of new resources")
    arch = Param(STRING, choices=("x86_64", "aarch64"), since="4.20", description="the CPU arch of the cluster."
                 " Valid options are: x86_64, aarch64")
    url = Param(STRING, description="the URL")
    username = Param(STRING, description="the username for the cluster")
    password = Param(STRING, sensitive=True, description="the password for the host")

    def execute(self, ctx: CallContext) -> Result:
        s = ctx.session
        pod_in_zone(self.pod, self.zone)
        name = self.name.strip()
        if not name:
            raise InvalidParameterValue("Please specify a name for the cluster (parameter clustername)")
        hypervisor = hypervisor_type(self.hypervisor)
        cluster_type = canonical(self.cluster_type, ("CloudManaged", "ExternalManaged"), "clustertype",
                                 "the cluster type")
        if s.scalar(select(Cluster.id).where(Cluster.pod_id == self.pod.id, Cluster.removed.is_(None),
                                             func.lower(Cluster.name) == name.lower())) is not None:
            raise InvalidParameterValue(f"A cluster with name: {name} already exists under pod: {self.pod.name}")
        cluster = Cluster(name=name, zone_id=self.zone.id, pod_id=self.pod.id, hypervisor_type=hypervisor,
                          cluster_type=cluster_type, allocation_state=self.allocation_state or "Enabled",
                          arch=self.arch or "x86_64")
        s.add(cluster)
        s.flush()
        return ListResult(cluster_items(ctx, [cluster]), 1)


@api_command("listClusters", response=ClusterResponse, roles=ROOT_ADMIN, is_list=True,
             description="Lists clusters.")
class ListClusters(Command):
    id = Param(UUID, related=CLUSTER_RELATED, description="lists clusters by the cluster ID")
    name = Param(STRING, description="lists clusters by the cluster name")
    pod = Param(UUID, "podid", related=POD_RELATED, description="lists clusters by Pod ID")
    zone = Param(UUID, "zoneid", related=ZONE_RELATED, description="lists clusters by Zone ID")
    hypervisor = Param(STRING, description="lists clusters by hypervisor type")
    cluster_type = Param(STRING, "clustertype", description="lists clusters by cluster type")
    allocation_state = Param(STRING, "allocationstate", description="lists clusters by allocation state")
    managed_state = Param(STRING, "managedstate", description="whether this cluster is managed by cloudstack")
    arch = Param(STRING, since="4.20.1", description="CPU arch of the clusters")
    show_capacities = Param(BOOLEAN, "showcapacities", description="flag to display the capacity of the"
                            " clusters")

    def execute(self, ctx: CallContext) -> Result:
        stmt = select(Cluster).where(Cluster.removed.is_(None)).order_by(Cluster.id)
        if self.id:
            stmt = stmt.where(Cluster.uuid == self.id)
        if self.name:
            stmt = stmt.where(Cluster.name == self.name)
        if self.pod:
            stmt = stmt.where(Cluster.pod_id.in_(select(Pod.id).where(Pod.uuid == self.pod)))
        if self.zone:
            stmt = stmt.where(Cluster.zone_id.in_(select(Zone.id).where(Zone.uuid == self.zone)))
        for value, col in ((self.hypervisor, Cluster.hypervisor_type), (self.cluster_type, Cluster.cluster_type),
                           (self.allocation_state, Cluster.allocation_state),
                           (self.managed_state, Cluster.managed_state), (self.arch, Cluster.arch)):
            if value:
                stmt = stmt.where(func.lower(col) == value.lower())
        kw = keyword_filter(self.keyword, Cluster.name)
        if kw is not None:
            stmt = stmt.where(kw)
        rows, total = fetch_page(ctx, stmt, self)
        return ListResult(cluster_payload(ctx.session, rows, ctx.services.settings,
                                          show_capacities=bool(self.show_capacities)), total)


@api_command("updateCluster", response=ClusterResponse, roles=ROOT_ADMIN,
             description="Updates an existing cluster")
class UpdateCluster(Command):
    cluster = cluster_param(name="id", description="the ID of the Cluster")
    name = Param(STRING, "clustername", description="the cluster name")
    cluster_type = Param(STRING, "clustertype", description="hypervisor type of the cluster")
    hypervisor = Param(STRING, description="hypervisor type of the cluster")
    allocation_state = Param(STRING, "allocationstate", choices=ALLOCATION, description="Allocation state of"
                             " this cluster for allocation of new resources")
    managed_state = Param(STRING, "managedstate", choices=("Managed", "Unmanaged"), description="whether this"
                          " cluster is managed by cloudstack")
    arch = Param(STRING, choices=("x86_64", "aarch64"), since="4.20", description="the CPU arch of the cluster."
                 " Valid options are: x86_64, aarch64")

    def execute(self, ctx: CallContext) -> Result:
        s, cluster = ctx.session, self.cluster
        if self.name is not None:
            name = self.name.strip()
            if not name:
                raise InvalidParameterValue("Please specify a name for the cluster (parameter clustername)")
            if s.scalar(select(Cluster.id).where(Cluster.pod_id == cluster.pod_id, Cluster.removed.is_(None),
                                                 Cluster.id != cluster.id,
                                                 func.lower(Cluster.name) == name.lower())) is not None:
                raise InvalidParameterValue(f"A cluster with name: {name} already exists in its pod")
            cluster.name = name
        if self.hypervisor is not None and hypervisor_type(self.hypervisor) != cluster.hypervisor_type:
            raise InvalidParameterValue(f"The hypervisor of cluster {cluster.name} can't be changed (parameter"
                                        " hypervisor)")
        if self.cluster_type is not None:
            cluster.cluster_type = canonical(self.cluster_type, ("CloudManaged", "ExternalManaged"),
                                             "clustertype", "the cluster type")
        if self.allocation_state is not None:
            cluster.allocation_state = self.allocation_state
        if self.managed_state is not None:
            cluster.managed_state = self.managed_state
        if self.arch is not None:
            cluster.arch = self.arch
        return ObjectResult(cluster_items(ctx, [cluster])[0])


@api_command("deleteCluster", response=SuccessResponse, roles=ROOT_ADMIN, description="Deletes a cluster.")
class DeleteCluster(Command):
    cluster = cluster_param(name="id", description="the cluster ID")

    def execute(self, ctx: CallContext) -> Result:
        cluster = self.cluster
        if count(ctx, Host, Host.cluster_id == cluster.id, Host.removed.is_(None)):
            raise ResourceInUse(f"Cluster: {cluster.uuid} cannot be removed. Cluster still has hosts",
                                uuids=[(cluster.uuid, "clusterId")])
        if count(ctx, StoragePool, StoragePool.cluster_id == cluster.id, StoragePool.removed.is_(None)):
            raise ResourceInUse(f"Cluster: {cluster.uuid} cannot be removed. Cluster still has storage pools",
                                uuids=[(cluster.uuid, "clusterId")])
        cluster.removed = utcnow()
        return Success()


# -- hosts ----------------------------------------------------------------------------------------


def host_items(ctx: CallContext, hosts: list[Host]) -> list[dict[str, Any]]:
    ctx.session.flush()
    for h in hosts:
        ctx.session.refresh(h)
    return host_payload(ctx.session, hosts, ctx.services.settings)


def _tags(values: list[str] | None) -> str | None:
    tags = [t.strip() for t in values or [] if t.strip()]
    return ",".join(dict.fromkeys(tags)) or None


@api_command("addHost", response=HostResponse, roles=ROOT_ADMIN, description="Adds a new host.")
class AddHost(Command):
    zone = zone_param(description="the Zone ID for the host")
    pod = pod_param(description="the Pod ID for the host")
    cluster = cluster_param(required=False, description="the cluster ID for the host")
    cluster_name = Param(STRING, "clustername", description="the cluster name for the host")
    url = Param(STRING, required=True, description="the host URL")
    username = Param(STRING, description="the username for the host; required to be passed for hypervisors"
                     " other than VMWare")
    password = Param(STRING, sensitive=True, description="the password for the host; required to be passed for"
                     " hypervisors other than VMWare")
    hypervisor = Param(STRING, required=True, description="hypervisor type of the host")
    host_tags = Param(LIST, "hosttags", description="list of tags to be added to the host")
    allocation_state = Param(STRING, "allocationstate", choices=ALLOCATION, description="Allocation state of"
                             " this Host for allocation of new resources")

    def execute(self, ctx: CallContext) -> Result:
        s = ctx.session
        pod_in_zone(self.pod, self.zone)
        hypervisor = hypervisor_type(self.hypervisor)
        cluster = self.cluster
        if cluster is not None:
            cluster_in_pod(cluster, self.pod)
        elif self.cluster_name:
            cluster = s.scalar(select(Cluster).where(Cluster.pod_id == self.pod.id, Cluster.removed.is_(None),
                                                     Cluster.name == self.cluster_name.strip()))
            if cluster is None:
                cluster = Cluster(name=self.cluster_name.strip(), zone_id=self.zone.id, pod_id=self.pod.id,
                                  hypervisor_type=hypervisor)
                s.add(cluster)
                s.flush()
        else:
            raise InvalidParameterValue("Please specify the cluster of the host: clusterid or clustername")
        if cluster.hypervisor_type != hypervisor:
            raise InvalidParameterValue(f"Can't add a host of hypervisor {hypervisor} (parameter hypervisor) to"
                                        f" cluster {cluster.name} of hypervisor {cluster.hypervisor_type}")
        host = HostOps(ctx).add(zone=self.zone, pod=self.pod, cluster=cluster, url=self.url,
                                hypervisor=hypervisor, tags=_tags(self.host_tags),
                                resource_state=self.allocation_state or "Enabled")
        return ListResult(host_items(ctx, [host]), 1)


@api_command("listHosts", response=HostResponse, roles=ROOT_ADMIN, is_list=True, description="Lists hosts.")
class ListHosts(Command):
    id = Param(UUID, related=HOST_RELATED, description="the id of the host")
    name = Param(STRING, description="the name of the host")
    zone = Param(UUID, "zoneid", related=ZONE_RELATED, description="the Zone ID for the host")
    pod = Param(UUID, "podid", related=POD_RELATED, description="the Pod ID for the host")
    cluster = Param(UUID, "clusterid", related=CLUSTER_RELATED, description="lists hosts existing in particular"
                    " cluster")
    type = Param(STRING, description="the host type")
    state = Param(STRING, description="the state of the host")
    resource_state = Param(STRING, "resourcestate", description="list hosts by resource state. Resource state"
                           " represents current state determined by admin of host, value can be one of [Enabled,"
                           " Disabled, Unmanaged, PrepareForMaintenance, ErrorInMaintenance, Maintenance, Error]")
    hypervisor = Param(STRING, description="hypervisor type of host: XenServer,KVM,VMware,Hyperv,BareMetal,"
                       "Simulator")
    ha_host = Param(BOOLEAN, "hahost", description="if true, list only hosts dedicated to HA")
    arch = Param(STRING, since="4.20.1", description="CPU Arch of the host")
    details = Param(LIST, description="comma separated list of host details requested, value can be a list of"
                    " [ min, all, capacity, events, stats]")

    def execute(self, ctx: CallContext) -> Result:
        stmt = select(Host).where(Host.removed.is_(None)).order_by(Host.id)
        if self.id:
            stmt = stmt.where(Host.uuid == self.id)
        if self.name:
            stmt = stmt.where(Host.name == self.name)
        for value, model, col in ((self.zone, Zone, Host.zone_id), (self.pod, Pod, Host.pod_id),
                                  (self.cluster, Cluster, Host.cluster_id)):
            if value:
                stmt = stmt.where(col.in_(select(model.id).where(model.uuid == value)))
        for value, col in ((self.type, Host.host_type), (self.state, Host.status),
                           (self.resource_state, Host.resource_state), (self.hypervisor, Host.hypervisor_type),
                           (self.arch, Host.arch)):
            if value:
                stmt = stmt.where(func.lower(col) == value.lower())
        if self.ha_host is not None:
            stmt = stmt.where(Host.ha_host.is_(self.ha_host))
        kw = keyword_filter(self.keyword, Host.name, Host.status, Host.host_type)
        if kw is not None:
            stmt = stmt.where(kw)
        rows, total = fetch_page(ctx, stmt, self)
        return ListResult(host_payload(ctx.session, rows, ctx.services.settings), total)


@api_command("updateHost", response=HostResponse, roles=ROOT_ADMIN, description="Updates a host.")
class UpdateHost(Command):
    host = host_param(description="the ID of the host to update")
    allocation_state = Param(STRING, "allocationstate", description="Change resource state of host, valid values"
                             " are [Enable, Disable]. Operation may failed if host in states not allowing"
                             " Enable/Disable")
    host_tags = Param(LIST, "hosttags", description="list of tags to be added to the host")
    name = Param(STRING, since="4.19", description="the new name of the host")

    def execute(self, ctx: CallContext) -> Result:
        host = self.host
        if self.allocation_state is not None:
            wanted = self.allocation_state.strip().lower()
            if wanted not in ("enable", "disable", "enabled", "disabled"):
                raise InvalidParameterValue(f"Invalid value {self.allocation_state} for parameter allocationstate:"
                                            " use Enable or Disable")
            if host.resource_state not in ("Enabled", "Disabled"):
                raise InvalidParameterValue(f"Host {host.name} is in resource state {host.resource_state}; it can"
                                            " only be enabled or disabled out of maintenance")
            host.resource_state = "Enabled" if wanted.startswith("enable") else "Disabled"
        if self.host_tags is not None:
            host.tags = _tags(self.host_tags)
        if self.name is not None:
            if not self.name.strip():
                raise InvalidParameterValue("Please specify a name for the host (parameter name)")
            host.name = self.name.strip()
        return ObjectResult(host_items(ctx, [host])[0])


@api_command("deleteHost", response=SuccessResponse, roles=ROOT_ADMIN, description="Deletes a host.")
class DeleteHost(Command):
    host = host_param(description="the host ID")
    forced = Param(BOOLEAN, description="Force delete the host. All HA enabled vms running on the host will be"
                   " put to HA; HA disabled ones will be stopped")
    forced_destroy_local = Param(BOOLEAN, "forcedestroylocalstorage", description="Force destroy local storage"
                                 " on this host. All VMs created on this local storage will be destroyed")

    def execute(self, ctx: CallContext) -> Result:
        host = self.host
        active = count(ctx, VirtualMachine, VirtualMachine.host_id == host.id, VirtualMachine.removed.is_(None))
        if active and not self.forced:
            raise ResourceInUse(f"Host {host.uuid} cannot be deleted as it has {active} virtual machines on it."
                                " Either put the host into maintenance or perform a forced deletion.",
                                uuids=[(host.uuid, "hostId")])
        if active:
            HostOps(ctx).release_vms(host, "the host is being deleted")
            ctx.session.refresh(host)
        host.removed = utcnow()
        host.status = "Removed"
        return Success()


class HostJob(Command):
    def instance(self) -> tuple[str | None, str | None]:
        return "Host", self.host.uuid  # type: ignore[attr-defined]


@api_command("reconnectHost", response=HostResponse, roles=ROOT_ADMIN, is_async=True, idempotent=True,
             event_type="HOST.RECONNECT", description="Reconnects a host.")
class ReconnectHost(HostJob):
    host = host_param()

    def execute(self, ctx: CallContext) -> Result:
        return ObjectResult(host_items(ctx, [HostOps(ctx).reconnect(self.host)])[0])


@api_command("prepareHostForMaintenance", response=HostResponse, roles=ROOT_ADMIN, is_async=True,
             idempotent=True, event_type="MAINT.PREPARE", description="Prepares a host for maintenance.")
class PrepareHostForMaintenance(HostJob):
    host = host_param()

    def execute(self, ctx: CallContext) -> Result:
        return ObjectResult(host_items(ctx, [HostOps(ctx).prepare_maintenance(self.host)])[0])


@api_command("cancelHostMaintenance", response=HostResponse, roles=ROOT_ADMIN, is_async=True, idempotent=True,
             event_type="MAINT.CANCEL", description="Cancels host maintenance.")
class CancelHostMaintenance(HostJob):
    host = host_param(description="the host ID")

    def execute(self, ctx: CallContext) -> Result:
        return ObjectResult(host_items(ctx, [HostOps(ctx).cancel_maintenance(self.host)])[0])


# -- capacity -------------------------------------------------------------------------------------


@api_command("listCapacity", response=CapacityResponse, roles=ROOT_ADMIN, is_list=True,
             description="Lists all the system wide capacities.")
class ListCapacity(Command):
    zone = Param(UUID, "zoneid", entity=Zone, description="lists capacity by the Zone ID")
    pod = Param(UUID, "podid", entity=Pod, description="lists capacity by the Pod ID")
    cluster = Param(UUID, "clusterid", entity=Cluster, since="3.0.0", description="lists capacity by the Cluster"
                    " ID")
    type = Param(INTEGER, description="lists capacity by type* CAPACITY_TYPE_MEMORY = 0* CAPACITY_TYPE_CPU = 1*"
                 " CAPACITY_TYPE_STORAGE = 2* CAPACITY_TYPE_STORAGE_ALLOCATED = 3*"
                 " CAPACITY_TYPE_VIRTUAL_NETWORK_PUBLIC_IP = 4* CAPACITY_TYPE_PRIVATE_IP = 5*"
                 " CAPACITY_TYPE_SECONDARY_STORAGE = 6* CAPACITY_TYPE_VLAN = 7*"
                 " CAPACITY_TYPE_DIRECT_ATTACHED_PUBLIC_IP = 8* CAPACITY_TYPE_LOCAL_STORAGE = 9*"
                 " CAPACITY_TYPE_GPU = 19* CAPACITY_TYPE_CPU_CORE = 90.")
    fetch_latest = Param(BOOLEAN, "fetchlatest", since="3.0.0", description="recalculate capacities and fetch"
                         " the latest")
    sort_by = Param(STRING, "sortby", since="3.0.0", description="Sort the results. Available values: Usage")
    tag = Param(STRING, since="4.20.1", description="Tag for the resource type")

    def execute(self, ctx: CallContext) -> Result:
        if self.sort_by is not None and self.sort_by.strip().lower() != "usage":
            raise InvalidParameterValue("Only value supported for sortBy parameter is : usage")
        zone, pod, cluster = self.zone, self.pod, self.cluster
        if cluster is not None:
            if pod is not None and cluster.pod_id != pod.id:
                raise InvalidParameterValue(f"Cluster {cluster.name} (parameter clusterid) is not in pod {pod.name}")
            pod = pod or ctx.session.get(Pod, cluster.pod_id)
        if pod is not None and zone is not None:
            pod_in_zone(pod, zone)
        zone_ids = [zone.id] if zone is not None else [pod.zone_id] if pod is not None else None
        if self.type is not None and self.type not in NAMES:
            return ListResult([], 0)
        if self.tag:
            return ListResult([], 0)  # tagged capacities (GPU, host tags) are not tracked
        rows = CapacityReport(ctx.session, ctx.services.settings).rows(
            zone_ids=zone_ids, pod_id=pod.id if pod else None, cluster_id=cluster.id if cluster else None,
            types=[self.type] if self.type is not None else None)
        if self.sort_by:
            rows.sort(key=lambda r: -r.percent)
        from overcast.api.listing import page_bounds

        offset, limit = page_bounds(ctx, self.page, self.page_size)
        page = rows[offset:offset + limit] if limit is not None else rows[offset:]
        return ListResult(capacity_payload(ctx.session, page), len(rows))


__all__ = ["AddCluster", "AddHost", "CreateZone", "ListCapacity", "ListHosts", "ListZones", "zone_result"]
