"""Infrastructure responses: zones, pods, clusters, hosts, storage, physical networks, IP ranges, capacity.

Each ``*_payload`` function builds the wire dicts of many rows with a few queries (names of the zones,
pods and clusters they sit in are loaded in batches).
"""

from __future__ import annotations

import json
import uuid as uuidlib
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from overcast import CLOUDSTACK_VERSION
from overcast.api.declare import Field, ResponseObject
from overcast.api.responses.common import Owners
from overcast.api.serialize import cs_date
from overcast.config.globals import GlobalSettings
from overcast.db.models import (
    Cluster,
    Domain,
    Host,
    ImageStore,
    NetworkElement,
    NetworkServiceProvider,
    PhysicalNetwork,
    Pod,
    PodIpRange,
    StoragePool,
    TrafficType,
    VlanIpRange,
    Zone,
)
from overcast.engine.capacity import overcommit
from overcast.engine.capacity_report import NAMES, CapacityReport, CapacityRow, number_text, percent_text

F = Field


def _load(s: Session, model: Any, ids: set[int | None]) -> dict[int, Any]:
    wanted = {i for i in ids if i}
    return {r.id: r for r in s.scalars(select(model).where(model.id.in_(wanted)))} if wanted else {}


# -- capacity -------------------------------------------------------------------------------------


class CapacityResponse(ResponseObject):
    object_name = "capacity"
    fields = (
        F("type", "short", "the capacity type"),
        F("name", "string", "the capacity name"),
        F("zoneid", "string", "the Zone ID"),
        F("zonename", "string", "the Zone name"),
        F("podid", "string", "the Pod ID"),
        F("podname", "string", "the Pod name"),
        F("clusterid", "string", "the Cluster ID"),
        F("clustername", "string", "the Cluster name"),
        F("capacityallocated", "long", "the capacity currently in allocated"),
        F("capacityused", "long", "the capacity currently in use"),
        F("capacitytotal", "long", "the total capacity available"),
        F("percentused", "string", "the percentage of capacity currently in use"),
        F("tag", "string", "The tag for the capacity type"),
    )


def capacity_payload(s: Session, rows: list[CapacityRow]) -> list[dict[str, Any]]:
    zones = _load(s, Zone, {r.zone_id for r in rows})
    pods = _load(s, Pod, {r.pod_id for r in rows})
    clusters = _load(s, Cluster, {r.cluster_id for r in rows})
    out = []
    for r in rows:
        zone, pod, cluster = zones.get(r.zone_id), pods.get(r.pod_id or 0), clusters.get(r.cluster_id or 0)
        out.append({
            "type": r.type, "name": NAMES[r.type],
            "zoneid": zone.uuid if zone else None, "zonename": zone.name if zone else None,
            "podid": pod.uuid if pod else None, "podname": pod.name if pod else None,
            "clusterid": cluster.uuid if cluster else None, "clustername": cluster.name if cluster else None,
            "capacityallocated": r.used if r.type in (0, 1, 3) else None,
            "capacityused": r.used, "capacitytotal": r.total, "percentused": percent_text(r.used, r.total),
        })  # fmt: skip
    return out


# -- zones ----------------------------------------------------------------------------------------


class ZoneResponse(ResponseObject):
    object_name = "zone"
    fields = (
        F("id", "string", "Zone id"),
        F("name", "string", "Zone name"),
        F("description", "string", "Zone description"),
        F("displaytext", "string", "the display text of the zone"),
        F("dns1", "string", "the first DNS for the Zone"),
        F("dns2", "string", "the second DNS for the Zone"),
        F("ip6dns1", "string", "the first IPv6 DNS for the Zone"),
        F("ip6dns2", "string", "the second IPv6 DNS for the Zone"),
        F("internaldns1", "string", "the first internal DNS for the Zone"),
        F("internaldns2", "string", "the second internal DNS for the Zone"),
        F("guestcidraddress", "string", "the guest CIDR address for the Zone"),
        F("networktype", "string", "the network type of the zone; can be Basic or Advanced"),
        F("securitygroupsenabled", "boolean", "true if security groups support is enabled, false otherwise"),
        F("allocationstate", "string", "the allocation state of the cluster"),
        F("zonetoken", "string", "Zone Token"),
        F("dhcpprovider", "string", "the dhcp Provider for the Zone"),
        F("domain", "string", "Network domain name for the networks in the zone"),
        F("domainid", "string", "the UUID of the containing domain, null for public zones"),
        F("domainname", "string", "the name of the containing domain, null for public zones"),
        F("localstorageenabled", "boolean", "true if local storage offering enabled, false otherwise"),
        F("capacity", "list", "the capacity of the Zone", response=CapacityResponse),
        F("tags", "set", "the list of resource tags associated with zone."),
        F("resourcedetails", "map", "Meta data associated with the zone (key/value pairs)"),
        F("hasannotations", "boolean", "Whether the zone has annotations"),
        F("type", "string", "The type of the zone; can be Core or Edge"),
        F("allowuserspecifyvrmtu", "boolean", "Allow end users to specify VR MTU"),
        F("routerprivateinterfacemaxmtu", "integer", "The maximum value the MTU can have on the VR's"
          " private interfaces"),
        F("routerpublicinterfacemaxmtu", "integer", "The maximum value the MTU can have on the VR's public"
          " interfaces"),
        F("ismultiarch", "boolean", "true, if zone contains clusters and hosts from different CPU"
          " architectures"),
        F("isnsxenabled", "boolean", "true, if zone is NSX enabled"),
        F("routedmodeenabled", "boolean", "true, if routed network/vpc is enabled"),
    )


def zone_details(zone: Zone) -> dict[str, str]:
    try:
        return {str(k): str(v) for k, v in json.loads(zone.details or "{}").items()}
    except ValueError:
        return {}


def zone_payload(s: Session, zones: list[Zone], *, admin: bool, settings: GlobalSettings | None = None,
                 show_capacities: bool = False) -> list[dict[str, Any]]:
    domains = _load(s, Domain, {z.domain_id for z in zones})
    capacities: dict[int, list[dict[str, Any]]] = {}
    if show_capacities and settings is not None and zones:
        rows = CapacityReport(s, settings).rows(zone_ids=[z.id for z in zones])
        for row, item in zip(rows, capacity_payload(s, rows), strict=True):
            capacities.setdefault(row.zone_id, []).append(item)
    out = []
    for z in zones:
        dom = domains.get(z.domain_id or 0)
        item: dict[str, Any] = {
            "id": z.uuid, "name": z.name, "description": z.description, "networktype": z.network_type,
            "securitygroupsenabled": z.security_group_enabled, "allocationstate": z.allocation_state,
            "zonetoken": str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, f"zone:{z.uuid}")),
            "dhcpprovider": "VirtualRouter", "localstorageenabled": z.local_storage_enabled,
            "domainid": dom.uuid if dom else None, "domainname": dom.name if dom else None,
            "tags": [], "hasannotations": False, "type": "Core", "allowuserspecifyvrmtu": False,
            "routerprivateinterfacemaxmtu": 1500, "routerpublicinterfacemaxmtu": 1500, "ismultiarch": False,
            "isnsxenabled": False, "routedmodeenabled": False,
        }  # fmt: skip
        if admin:
            item.update({
                "dns1": z.dns1, "dns2": z.dns2, "ip6dns1": z.ip6_dns1, "ip6dns2": z.ip6_dns2,
                "internaldns1": z.internal_dns1, "internaldns2": z.internal_dns2,
                "guestcidraddress": z.guest_cidr, "domain": z.network_domain, "resourcedetails": zone_details(z),
            })  # fmt: skip
        else:
            item.update({"dns1": z.dns1, "dns2": z.dns2, "domain": z.network_domain})
        if show_capacities:
            item["capacity"] = capacities.get(z.id, [])
        out.append(item)
    return out


# -- pods -----------------------------------------------------------------------------------------


class IpRangeResponse(ResponseObject):
    object_name = "iprange"
    fields = (
        F("startip", "string", "the starting IP for the range"),
        F("endip", "string", "the ending IP for the range"),
        F("gateway", "string", "the gateway for the range"),
        F("forsystemvms", "string", "indicates if range is dedicated for CPVM and SSVM"),
        F("vlanid", "string", "indicates Vlan ID for the range"),
    )


class PodResponse(ResponseObject):
    object_name = "pod"
    fields = (
        F("id", "string", "the ID of the Pod"),
        F("name", "string", "the name of the Pod"),
        F("zoneid", "string", "the Zone ID of the Pod"),
        F("zonename", "string", "the Zone name of the Pod"),
        F("gateway", "string", "the gateway of the Pod"),
        F("netmask", "string", "the netmask of the Pod"),
        F("ipranges", "list", "the IP ranges for the Pod", response=IpRangeResponse),
        F("startip", "list", "the starting IP for the Pod. This parameter is deprecated, please use 'startip'"
          " from ipranges parameter."),
        F("endip", "list", "the ending IP for the Pod. This parameter is deprecated, please use 'endip' from"
          " ipranges parameter."),
        F("forsystemvms", "list", "indicates if range is dedicated for CPVM and SSVM. This parameter is"
          " deprecated, please use 'forsystemvms' from ipranges parameter."),
        F("vlanid", "list", "indicates Vlan ID for the range. This parameter is deprecated, please use"
          " 'vlanid' from ipranges parameter."),
        F("allocationstate", "string", "the allocation state of the Pod"),
        F("capacity", "list", "the capacity of the Pod", response=CapacityResponse),
        F("hasannotations", "boolean", "Whether the pod has annotations"),
    )


def _vlan_text(vlan: str | None) -> str:
    return (vlan or "untagged").removeprefix("vlan://")


def pod_payload(s: Session, pods: list[Pod], *, settings: GlobalSettings | None = None,
                show_capacities: bool = False) -> list[dict[str, Any]]:
    zones = _load(s, Zone, {p.zone_id for p in pods})
    ranges: dict[int, list[PodIpRange]] = {p.id: [] for p in pods}
    if pods:
        for r in s.scalars(select(PodIpRange).where(PodIpRange.pod_id.in_(ranges)).order_by(PodIpRange.id)):
            ranges[r.pod_id].append(r)
    out = []
    for p in pods:
        zone = zones.get(p.zone_id)
        rs = ranges[p.id]
        item: dict[str, Any] = {
            "id": p.uuid, "name": p.name, "zoneid": zone.uuid if zone else None,
            "zonename": zone.name if zone else None, "gateway": p.gateway, "netmask": p.netmask,
            "ipranges": [{"startip": r.start_ip, "endip": r.end_ip, "gateway": r.gateway or p.gateway,
                          "forsystemvms": "1" if r.for_system_vms else "0", "vlanid": _vlan_text(r.vlan)}
                         for r in rs],
            "startip": [r.start_ip for r in rs], "endip": [r.end_ip for r in rs],
            "forsystemvms": ["1" if r.for_system_vms else "0" for r in rs],
            "vlanid": [_vlan_text(r.vlan) for r in rs],
            "allocationstate": p.allocation_state, "hasannotations": False,
        }  # fmt: skip
        if show_capacities and settings is not None:
            rows = CapacityReport(s, settings).rows(pod_id=p.id, zone_ids=[p.zone_id])
            item["capacity"] = capacity_payload(s, rows)
        out.append(item)
    return out


# -- clusters -------------------------------------------------------------------------------------


class ClusterResponse(ResponseObject):
    object_name = "cluster"
    fields = (
        F("id", "string", "the cluster ID"),
        F("name", "string", "the cluster name"),
        F("podid", "string", "the Pod ID of the cluster"),
        F("podname", "string", "the Pod name of the cluster"),
        F("zoneid", "string", "the Zone ID of the cluster"),
        F("zonename", "string", "the Zone name of the cluster"),
        F("hypervisortype", "string", "the hypervisor type of the cluster"),
        F("clustertype", "string", "the type of the cluster"),
        F("allocationstate", "string", "the allocation state of the cluster"),
        F("managedstate", "string", "whether this cluster is managed by cloudstack"),
        F("cpuovercommitratio", "string", "The cpu overcommit ratio of the cluster"),
        F("memoryovercommitratio", "string", "The memory overcommit ratio of the cluster"),
        F("capacity", "list", "the capacity of the Cluster", response=CapacityResponse),
        F("resourcedetails", "map", "Meta data associated with the zone (key/value pairs)"),
        F("arch", "string", "CPU Arch of the hosts in the cluster"),
        F("hasannotations", "boolean", "Whether the cluster has annotations"),
    )


def _ratio(value: float) -> str:
    return f"{value:.1f}" if float(value).is_integer() else str(value)


def cluster_payload(s: Session, clusters: list[Cluster], settings: GlobalSettings, *,
                    show_capacities: bool = False) -> list[dict[str, Any]]:
    zones = _load(s, Zone, {c.zone_id for c in clusters})
    pods = _load(s, Pod, {c.pod_id for c in clusters})
    out = []
    for c in clusters:
        zone, pod = zones.get(c.zone_id), pods.get(c.pod_id)
        cpu, mem = overcommit(settings, c)
        item: dict[str, Any] = {
            "id": c.uuid, "name": c.name, "podid": pod.uuid if pod else None, "podname": pod.name if pod else None,
            "zoneid": zone.uuid if zone else None, "zonename": zone.name if zone else None,
            "hypervisortype": c.hypervisor_type, "clustertype": c.cluster_type,
            "allocationstate": c.allocation_state, "managedstate": c.managed_state,
            "cpuovercommitratio": _ratio(cpu), "memoryovercommitratio": _ratio(mem),
            "resourcedetails": {"cpuOvercommitRatio": _ratio(cpu), "memoryOvercommitRatio": _ratio(mem)},
            "arch": c.arch, "hasannotations": False,
        }  # fmt: skip
        if show_capacities:
            rows = CapacityReport(s, settings).rows(pod_id=c.pod_id, cluster_id=c.id, zone_ids=[c.zone_id])
            item["capacity"] = capacity_payload(s, rows)
        out.append(item)
    return out


# -- hosts ----------------------------------------------------------------------------------------


class HostHaResponse(ResponseObject):
    object_name = "hostha"
    fields = (
        F("haenable", "boolean", "if host HA is enabled for the host"),
        F("hastate", "string", "the HA state of the host"),
    )


class OutOfBandManagementResponse(ResponseObject):
    object_name = "outofbandmanagement"
    fields = (
        F("enabled", "boolean", "true if out-of-band management is enabled for the host"),
        F("powerstate", "string", "the out-of-band management interface powerState of the host"),
    )


class HostResponse(ResponseObject):
    object_name = "host"
    fields = (
        F("id", "string", "the ID of the host"),
        F("name", "string", "the name of the host"),
        F("state", "string", "the state of the host"),
        F("disconnected", "date", "true if the host is disconnected. False otherwise."),
        F("type", "string", "the host type"),
        F("ipaddress", "string", "the IP address of the host"),
        F("zoneid", "string", "the Zone ID of the host"),
        F("zonename", "string", "the Zone name of the host"),
        F("podid", "string", "the Pod ID of the host"),
        F("podname", "string", "the Pod name of the host"),
        F("version", "string", "the host version"),
        F("hypervisor", "string", "the host hypervisor"),
        F("hypervisorversion", "string", "the hypervisor version"),
        F("cpusockets", "integer", "the number of CPU sockets on the host"),
        F("cpunumber", "integer", "the CPU number of the host"),
        F("cpuspeed", "long", "the CPU speed of the host"),
        F("cpuallocated", "string", "the amount of the host's CPU currently allocated"),
        F("cpuallocatedvalue", "long", "the amount of the host's CPU currently allocated in MHz"),
        F("cpuallocatedpercentage", "string", "the amount of the host's CPU currently allocated in percentage"),
        F("cpuallocatedwithoverprovisioning", "string", "the amount of the host's CPU currently allocated"
          " after applying the cpu.overprovisioning.factor"),
        F("cpuused", "string", "the amount of the host's CPU currently used"),
        F("cpuwithoverprovisioning", "string", "the amount of the host's CPU after applying the"
          " cpu.overprovisioning.factor"),
        F("memorytotal", "long", "the memory total of the host, this parameter is deprecated use"
          " memorywithoverprovisioning"),
        F("memorywithoverprovisioning", "string", "the amount of the host's memory after applying the"
          " mem.overprovisioning.factor"),
        F("memoryallocated", "long", "the amount of the host's memory currently allocated"),
        F("memoryallocatedpercentage", "string", "the amount of the host's memory currently allocated in"
          " percentage"),
        F("memoryallocatedbytes", "long", "the amount of the host's memory currently allocated in bytes"),
        F("memoryused", "long", "the amount of the host's memory currently used"),
        F("networkkbsread", "long", "the incoming network traffic on the host"),
        F("networkkbswrite", "long", "the outgoing network traffic on the host"),
        F("capabilities", "string", "capabilities of the host"),
        F("lastpinged", "date", "the date and time the host was last pinged"),
        F("clusterid", "string", "the cluster ID of the host"),
        F("clustername", "string", "the cluster name of the host"),
        F("clustertype", "string", "the cluster type of the cluster that host belongs to"),
        F("islocalstorageactive", "boolean", "true if local storage is active, false otherwise"),
        F("created", "date", "the date and time the host was created"),
        F("removed", "date", "the date and time the host was removed"),
        F("events", "string", "events available for the host"),
        F("hosttags", "string", "comma-separated list of tags for the host"),
        F("explicithosttags", "string", "comma-separated list of explicit host tags for the host"),
        F("implicithosttags", "string", "comma-separated list of implicit host tags for the host"),
        F("istagarule", "boolean", "true if the host has tag as rule"),
        F("hostha", "hostharesponse", "the host HA information information", response=HostHaResponse),
        F("outofbandmanagement", "outofbandmanagementresponse", "the host out-of-band management"
          " information", response=OutOfBandManagementResponse),
        F("resourcestate", "string", "the resource state of the host"),
        F("hahost", "boolean", "true if the host is Ha host (dedicated to vms started by HA process; false"
          " otherwise"),
        F("arch", "string", "CPU Arch of the host"),
        F("ueficapability", "boolean", "true if the host has capability to support UEFI boot"),
        F("encryptionsupported", "boolean", "true if the host supports encryption"),
        F("hasannotations", "boolean", "Whether the host has annotations"),
        F("details", "map", "Host details in key/value pairs."),
    )


#: Events a host in each status accepts (Status.Event), as CloudStack lists them in ``events``.
HOST_EVENTS = {
    "Up": "Ping; ShutdownRequested; PingTimeout; ManagementServerDown; AgentConnected; AgentDisconnected;"
          " Remove; StartAgentRebalance; HostDown",
    "Down": "AgentConnected; PingTimeout; ManagementServerDown; Remove; HostDown; AgentDisconnected; Ping",
    "Alert": "AgentConnected; PingTimeout; ManagementServerDown; Remove; HostDown; AgentDisconnected; Ping",
}  # fmt: skip


def host_payload(s: Session, hosts: list[Host], settings: GlobalSettings) -> list[dict[str, Any]]:
    zones = _load(s, Zone, {h.zone_id for h in hosts})
    pods = _load(s, Pod, {h.pod_id for h in hosts})
    clusters = _load(s, Cluster, {h.cluster_id for h in hosts})
    out = []
    for h in hosts:
        zone, pod, cluster = zones.get(h.zone_id), pods.get(h.pod_id or 0), clusters.get(h.cluster_id or 0)
        cpu_factor, mem_factor = overcommit(settings, cluster)
        cpu_total = h.cpus * h.speed
        out.append({
            "id": h.uuid, "name": h.name, "state": h.status, "type": h.host_type, "ipaddress": h.ip_address,
            "disconnected": cs_date(h.last_ping) if h.status != "Up" else None,
            "zoneid": zone.uuid if zone else None, "zonename": zone.name if zone else None,
            "podid": pod.uuid if pod else None, "podname": pod.name if pod else None,
            "clusterid": cluster.uuid if cluster else None, "clustername": cluster.name if cluster else None,
            "clustertype": cluster.cluster_type if cluster else None,
            "version": CLOUDSTACK_VERSION, "hypervisor": h.hypervisor_type, "hypervisorversion": h.hypervisor_version,
            "cpusockets": h.cpu_sockets, "cpunumber": h.cpus, "cpuspeed": h.speed,
            "cpuallocated": percent_text(h.cpu_used, cpu_total) + "%",
            "cpuallocatedvalue": h.cpu_used,
            "cpuallocatedpercentage": percent_text(h.cpu_used, cpu_total) + "%",
            "cpuallocatedwithoverprovisioning": percent_text(h.cpu_used, cpu_total * cpu_factor) + "%",
            "cpuused": "0%", "cpuwithoverprovisioning": number_text(cpu_total * cpu_factor),
            "memorytotal": h.total_memory, "memorywithoverprovisioning": number_text(h.total_memory * mem_factor),
            "memoryallocated": h.mem_used, "memoryallocatedbytes": h.mem_used,
            "memoryallocatedpercentage": percent_text(h.mem_used, h.total_memory) + "%",
            "memoryused": 0, "networkkbsread": 0, "networkkbswrite": 0,
            "capabilities": h.capabilities, "lastpinged": cs_date(h.last_ping),
            "islocalstorageactive": False, "created": cs_date(h.created), "removed": cs_date(h.removed),
            "events": HOST_EVENTS.get(h.status, HOST_EVENTS["Down"]),
            "hosttags": h.tags, "explicithosttags": h.tags, "istagarule": False,
            "hostha": {"haenable": False, "hastate": "Disabled"},
            "outofbandmanagement": {"enabled": False, "powerstate": "Disabled"},
            "resourcestate": h.resource_state, "hahost": h.ha_host, "arch": h.arch,
            "ueficapability": "uefi" in (h.capabilities or "").lower(), "encryptionsupported": False,
            "hasannotations": False, "details": {},
        })  # fmt: skip
    return out


# -- primary storage ------------------------------------------------------------------------------


class StoragePoolResponse(ResponseObject):
    object_name = "storagepool"
    fields = (
        F("id", "string", "the ID of the storage pool"),
        F("zoneid", "string", "the Zone ID of the storage pool"),
        F("zonename", "string", "the Zone name of the storage pool"),
        F("podid", "string", "the Pod ID of the storage pool"),
        F("podname", "string", "the Pod name of the storage pool"),
        F("name", "string", "the name of the storage pool"),
        F("ipaddress", "string", "the IP address of the storage pool"),
        F("path", "string", "the storage pool path"),
        F("created", "date", "the date and time the storage pool was created"),
        F("type", "string", "the storage pool type"),
        F("clusterid", "string", "the ID of the cluster for the storage pool"),
        F("clustername", "string", "the name of the cluster for the storage pool"),
        F("capacitybytes", "long", "bytes CloudStack can provision from this storage pool"),
        F("disksizetotal", "long", "the total disk size of the storage pool"),
        F("disksizeallocated", "long", "the host's currently allocated disk size"),
        F("disksizeused", "long", "the host's currently used disk size"),
        F("tags", "string", "the tags for the storage pool"),
        F("istagarule", "boolean", "whether the storage pool's tags are a rule"),
        F("state", "string", "the state of the storage pool"),
        F("scope", "string", "the scope of the storage pool"),
        F("overprovisionfactor", "string", "the overprovisionfactor for the storage pool"),
        F("hypervisor", "string", "the hypervisor type of the storage pool"),
        F("provider", "string", "Storage provider for this pool"),
        F("managed", "boolean", "whether this pool is managed or not"),
        F("storagecapabilities", "map", "the storage pool capabilities"),
        F("hasannotations", "boolean", "the storage pool has annotations"),
    )


def pool_payload(s: Session, pools: list[StoragePool], settings: GlobalSettings) -> list[dict[str, Any]]:
    zones = _load(s, Zone, {p.zone_id for p in pools})
    pods = _load(s, Pod, {p.pod_id for p in pools})
    clusters = _load(s, Cluster, {p.cluster_id for p in pools})
    out = []
    for p in pools:
        zone, pod, cluster = zones.get(p.zone_id), pods.get(p.pod_id or 0), clusters.get(p.cluster_id or 0)
        factor = float(settings.get("storage.overprovisioning.factor", scope="storagepool", scope_id=p.id))
        out.append({
            "id": p.uuid, "zoneid": zone.uuid if zone else None, "zonename": zone.name if zone else None,
            "podid": pod.uuid if pod else None, "podname": pod.name if pod else None, "name": p.name,
            "ipaddress": p.host_address, "path": p.path, "created": cs_date(p.created), "type": p.pool_type,
            "clusterid": cluster.uuid if cluster else None, "clustername": cluster.name if cluster else None,
            "capacitybytes": p.capacity_bytes, "disksizetotal": p.capacity_bytes,
            "disksizeallocated": p.used_bytes, "disksizeused": p.used_bytes, "tags": p.tags,
            "istagarule": False, "state": p.status, "scope": p.scope, "overprovisionfactor": _ratio(factor),
            "hypervisor": p.hypervisor_type, "provider": p.provider, "managed": False,
            "storagecapabilities": {"VOLUME_SNAPSHOT_QUIESCEVM": "false"}, "hasannotations": False,
        })  # fmt: skip
    return out


# -- image stores ---------------------------------------------------------------------------------


class ImageStoreResponse(ResponseObject):
    object_name = "imagestore"
    fields = (
        F("id", "string", "the ID of the image store"),
        F("zoneid", "string", "the Zone ID of the image store"),
        F("zonename", "string", "the Zone name of the image store"),
        F("name", "string", "the name of the image store"),
        F("url", "string", "the url of the image store"),
        F("protocol", "string", "the protocol of the image store"),
        F("providername", "string", "the provider name of the image store"),
        F("scope", "string", "the scope of the image store"),
        F("readonly", "boolean", "defines if store is read-only"),
        F("disksizetotal", "long", "the total disk size of the host"),
        F("disksizeused", "long", "the host's currently used disk size"),
        F("hasannotations", "boolean", "the image store has annotations"),
    )


class SecondaryStorageResponse(ImageStoreResponse):
    """addSecondaryStorage and createSecondaryStagingStore answer under ``secondarystorage``."""

    object_name = "secondarystorage"


class StagingStoreResponse(ImageStoreResponse):
    object_name = "secondarystagingstore"


class StorageProviderResponse(ResponseObject):
    object_name = "dataStoreProvider"
    fields = (
        F("name", "string", "the name of the storage provider"),
        F("type", "string", "the type of the storage provider"),
    )


class StorageMigrationResponse(ResponseObject):
    object_name = "storagemigration"
    fields = (
        F("message", "string", "Response message from migration of secondary storage data objects"),
        F("migrationtype", "string", "Type of migration requested for"),
        F("success", "boolean", "true if operation is executed successfully"),
    )


def store_payload(s: Session, stores: list[ImageStore]) -> list[dict[str, Any]]:
    zones = _load(s, Zone, {st.zone_id for st in stores})
    out = []
    for st in stores:
        zone = zones.get(st.zone_id or 0)
        out.append({
            "id": st.uuid, "zoneid": zone.uuid if zone else None, "zonename": zone.name if zone else None,
            "name": st.name, "url": st.url, "protocol": st.protocol, "providername": st.provider,
            "scope": st.scope, "readonly": st.readonly, "disksizetotal": st.total_bytes,
            "disksizeused": st.used_bytes, "hasannotations": False,
        })  # fmt: skip
    return out


# -- physical networks ----------------------------------------------------------------------------


class PhysicalNetworkResponse(ResponseObject):
    object_name = "physicalnetwork"
    fields = (
        F("id", "string", "the uuid of the physical network"),
        F("name", "string", "name of the physical network"),
        F("broadcastdomainrange", "string", "Broadcast domain range of the physical network"),
        F("zoneid", "string", "zone id of the physical network"),
        F("zonename", "string", "zone name of the physical network"),
        F("state", "string", "state of the physical network"),
        F("vlan", "string", "the vlan of the physical network"),
        F("domainid", "string", "the domain id of the physical network owner"),
        F("tags", "string", "comma separated tag"),
        F("isolationmethods", "string", "isolation methods"),
        F("networkspeed", "string", "the speed of the physical network"),
    )


def physical_network_payload(s: Session, nets: list[PhysicalNetwork]) -> list[dict[str, Any]]:
    zones = _load(s, Zone, {n.zone_id for n in nets})
    domains = _load(s, Domain, {n.domain_id for n in nets})
    out = []
    for n in nets:
        zone, dom = zones.get(n.zone_id), domains.get(n.domain_id or 0)
        out.append({
            "id": n.uuid, "name": n.name, "broadcastdomainrange": n.broadcast_domain_range,
            "zoneid": zone.uuid if zone else None, "zonename": zone.name if zone else None, "state": n.state,
            "vlan": n.vlan, "domainid": dom.uuid if dom else None, "tags": n.tags,
            "isolationmethods": n.isolation_methods, "networkspeed": n.network_speed,
        })  # fmt: skip
    return out


class TrafficTypeResponse(ResponseObject):
    object_name = "traffictype"
    fields = (
        F("id", "string", "id of the network provider"),
        F("traffictype", "string", "the trafficType to be added to the physical network"),
        F("physicalnetworkid", "string", "the physical network this belongs to"),
        F("xennetworklabel", "string", "The network name label of the physical device dedicated to this"
          " traffic on a XenServer host"),
        F("kvmnetworklabel", "string", "The network name label of the physical device dedicated to this"
          " traffic on a KVM host"),
        F("vmwarenetworklabel", "string", "The network name label of the physical device dedicated to this"
          " traffic on a VMware host"),
    )


def traffic_type_payload(s: Session, types: list[TrafficType]) -> list[dict[str, Any]]:
    nets = _load(s, PhysicalNetwork, {t.physical_network_id for t in types})
    return [{
        "id": t.uuid, "traffictype": t.traffic_type,
        "physicalnetworkid": nets[t.physical_network_id].uuid if t.physical_network_id in nets else None,
        "xennetworklabel": t.xen_label, "kvmnetworklabel": t.kvm_label, "vmwarenetworklabel": t.vmware_label,
    } for t in types]  # fmt: skip


class ProviderResponse(ResponseObject):
    object_name = "networkserviceprovider"
    fields = (
        F("name", "string", "the provider name"),
        F("physicalnetworkid", "string", "the physical network this belongs to"),
        F("destinationphysicalnetworkid", "string", "the destination physical network"),
        F("state", "string", "state of the network provider"),
        F("id", "string", "uuid of the network provider"),
        F("servicelist", "list", "services for this provider"),
        F("canenableindividualservice", "boolean", "true if individual services can be enabled/disabled"),
    )


def provider_payload(s: Session, providers: list[NetworkServiceProvider]) -> list[dict[str, Any]]:
    nets = _load(s, PhysicalNetwork, {p.physical_network_id for p in providers}
                 | {p.dest_physical_network_id for p in providers})
    out = []
    for p in providers:
        net, dest = nets.get(p.physical_network_id), nets.get(p.dest_physical_network_id or 0)
        out.append({
            "name": p.name, "physicalnetworkid": net.uuid if net else None,
            "destinationphysicalnetworkid": dest.uuid if dest else None, "state": p.state, "id": p.uuid,
            "servicelist": [x for x in p.services.split(",") if x], "canenableindividualservice": True,
        })  # fmt: skip
    return out


class VirtualRouterElementResponse(ResponseObject):
    object_name = "virtualrouterelement"
    fields = (
        F("id", "string", "the id of the router"),
        F("nspid", "string", "the physical network service provider id of the provider"),
        F("enabled", "boolean", "Enabled/Disabled the service provider"),
        F("account", "string", "the account associated with the provider"),
        F("domainid", "string", "the domain ID associated with the provider"),
        F("domain", "string", "the domain associated with the provider"),
        F("domainpath", "string", "path of the domain to which the provider belongs"),
    )


class InternalLbElementResponse(ResponseObject):
    object_name = "internalloadbalancerelement"
    fields = (
        F("id", "string", "the id of the internal load balancer element"),
        F("nspid", "string", "the physical network service provider id of the element"),
        F("enabled", "boolean", "Enabled/Disabled the element"),
    )


def element_payload(s: Session, elements: list[NetworkElement], *, with_owner: bool) -> list[dict[str, Any]]:
    providers = _load(s, NetworkServiceProvider, {e.provider_id for e in elements})
    out = []
    for e in elements:
        nsp = providers.get(e.provider_id)
        item: dict[str, Any] = {"id": e.uuid, "nspid": nsp.uuid if nsp else None, "enabled": e.enabled}
        if with_owner:
            item.update({"account": "system", "domain": "ROOT", "domainpath": "ROOT"})
            root = s.get(Domain, 1)
            item["domainid"] = root.uuid if root else None
        out.append(item)
    return out


# -- VLAN (public / shared) IP ranges -------------------------------------------------------------


class VlanIpRangeResponse(ResponseObject):
    object_name = "vlaniprange"
    fields = (
        F("id", "string", "the ID of the VLAN IP range"),
        F("forvirtualnetwork", "boolean", "the virtual network for the VLAN IP range"),
        F("zoneid", "string", "the Zone ID of the VLAN IP range"),
        F("vlan", "string", "the ID or VID of the VLAN."),
        F("account", "string", "the account of the VLAN IP range"),
        F("domainid", "string", "the domain ID of the VLAN IP range"),
        F("domain", "string", "the domain name of the VLAN IP range"),
        F("domainpath", "string", "path of the domain to which the VLAN IP range belongs"),
        F("podid", "string", "the Pod ID for the VLAN IP range"),
        F("podname", "string", "the Pod name for the VLAN IP range"),
        F("gateway", "string", "the gateway of the VLAN IP range"),
        F("netmask", "string", "the netmask of the VLAN IP range"),
        F("description", "string", "the description of the VLAN IP range"),
        F("cidr", "string", "the cidr of the VLAN IP range"),
        F("startip", "string", "the start ip of the VLAN IP range"),
        F("endip", "string", "the end ip of the VLAN IP range"),
        F("networkid", "string", "the network id of vlan range"),
        F("physicalnetworkid", "string", "the physical network this belongs to"),
        F("ip6gateway", "string", "the gateway of IPv6 network"),
        F("ip6cidr", "string", "the cidr of IPv6 network"),
        F("forsystemvms", "boolean", "indicates whether VLAN IP range is dedicated to system vms or not"),
    )


class CreatedVlanResponse(VlanIpRangeResponse):
    """createVlanIpRange and dedicatePublicIpRange answer under ``vlan``."""

    object_name = "vlan"


def vlan_payload(s: Session, ranges: list[VlanIpRange]) -> list[dict[str, Any]]:
    import ipaddress

    from overcast.db.models import Network

    pods = _load(s, Pod, {r.pod_id for r in ranges})
    zones = _load(s, Zone, {r.zone_id for r in ranges})
    nets = _load(s, Network, {r.network_id for r in ranges})
    phys = _load(s, PhysicalNetwork, {r.physical_network_id for r in ranges})
    owners = Owners(s, ranges)
    out = []
    for r in ranges:
        pod, zone, net, pn = pods.get(r.pod_id or 0), zones.get(r.zone_id), nets.get(r.network_id or 0), \
            phys.get(r.physical_network_id or 0)
        try:
            cidr = str(ipaddress.ip_network(f"{r.gateway}/{r.netmask}", strict=False))
        except ValueError:
            cidr = None
        own = owners.fields(r)
        out.append({
            "id": r.uuid, "forvirtualnetwork": r.vlan_type == "VirtualNetwork",
            "zoneid": zone.uuid if zone else None, "vlan": r.vlan_tag,
            "account": own["account"] if r.account_id else None,
            "domainid": own["domainid"] if r.domain_id else None, "domain": own["domain"] if r.domain_id else None,
            "domainpath": own["domainpath"] if r.domain_id else None,
            "podid": pod.uuid if pod else None, "podname": pod.name if pod else None,
            "gateway": r.gateway, "netmask": r.netmask, "cidr": cidr,
            "description": f"{r.start_ip}-{r.end_ip}", "startip": r.start_ip, "endip": r.end_ip,
            "networkid": net.uuid if net else None, "physicalnetworkid": pn.uuid if pn else None,
            "ip6gateway": r.ip6_gateway, "ip6cidr": r.ip6_cidr, "forsystemvms": r.for_system_vms,
        })  # fmt: skip
    return out


__all__ = [
    "CapacityResponse", "ClusterResponse", "CreatedVlanResponse", "HostResponse", "ImageStoreResponse",
    "InternalLbElementResponse", "PhysicalNetworkResponse", "PodResponse", "ProviderResponse",
    "SecondaryStorageResponse", "StagingStoreResponse", "StoragePoolResponse", "TrafficTypeResponse",
    "VirtualRouterElementResponse", "VlanIpRangeResponse", "ZoneResponse", "capacity_payload", "cluster_payload",
    "element_payload", "host_payload", "physical_network_payload", "pod_payload", "pool_payload",
    "provider_payload", "store_payload", "traffic_type_payload", "vlan_payload", "zone_payload",
]  # fmt: skip
