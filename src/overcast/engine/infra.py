"""Building the cloud's infrastructure: validation of addresses and ranges, hypervisor names, storage URLs,
templates on new image stores, and the guest network of a basic zone.

Every check raises :class:`InvalidParameterValue` naming the request parameter at fault.
"""

from __future__ import annotations

import ipaddress
from itertools import pairwise
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from overcast.db.models import (
    Cluster,
    ImageStore,
    Network,
    NetworkOffering,
    PhysicalNetwork,
    Pod,
    PodIpRange,
    Template,
    TemplateZone,
    TrafficType,
    VlanIpRange,
    Zone,
)
from overcast.errors import InvalidParameterValue

#: CloudStack's Hypervisor.HypervisorType names.
HYPERVISOR_TYPES = ("XenServer", "KVM", "VMware", "Hyperv", "VirtualBox", "Parralels", "BareMetal", "Simulator",
                    "Ovm", "Ovm3", "LXC", "Custom", "External")
TRAFFIC_TYPES = ("Public", "Guest", "Management", "Storage")
ISOLATION_METHODS = ("VLAN", "L3", "GRE", "STT", "BCF_SEGMENT", "MIDO", "SSP", "VXLAN", "ODL", "L3VPN", "VSP",
                     "VCS", "TF", "NSX", "NETRIS")
#: Network service providers CloudStack knows, with the services each offers.
PROVIDER_SERVICES = {
    "VirtualRouter": "Dhcp,Dns,UserData,SourceNat,StaticNat,Firewall,PortForwarding,Lb,Vpn,Gateway",
    "VpcVirtualRouter": "Dhcp,Dns,UserData,SourceNat,StaticNat,NetworkACL,PortForwarding,Lb,Vpn,Gateway",
    "InternalLbVm": "Lb",
    "SecurityGroupProvider": "SecurityGroup",
    "ConfigDrive": "UserData",
    "Netscaler": "Firewall,Lb,SourceNat,StaticNat",
    "F5BigIp": "Lb",
    "JuniperSRX": "Firewall,Gateway,PortForwarding,SourceNat,StaticNat,Vpn",
    "PaloAlto": "Firewall,Gateway,PortForwarding,SourceNat,StaticNat",
    "BaremetalDhcpProvider": "Dhcp",
    "BaremetalPxeProvider": "UserData",
    "Ovs": "Connectivity,Gateway",
    "NiciraNvp": "Connectivity,Gateway,SourceNat,StaticNat,PortForwarding",
    "Tungsten": "Connectivity,Dhcp,Dns,Firewall,Lb,SourceNat,StaticNat,UserData",
    "Nsx": "Dhcp,Dns,Firewall,Lb,NetworkACL,PortForwarding,SourceNat,StaticNat,UserData",
    "Netris": "Dhcp,Dns,Firewall,Lb,NetworkACL,PortForwarding,SourceNat,StaticNat,UserData",
}
#: Providers whose configurable element is listed by listVirtualRouterElements / listInternalLoadBalancerElements.
ROUTER_ELEMENTS = ("VirtualRouter", "VpcVirtualRouter")
INTERNAL_LB_ELEMENT = "InternalLbVm"
#: Primary storage URL schemes and the pool type each makes.
POOL_TYPES = {"nfs": "NetworkFilesystem", "file": "Filesystem", "sharedmountpoint": "SharedMountPoint",
              "rbd": "RBD", "iscsi": "IscsiLUN", "presetup": "PreSetup", "clvm": "CLVM", "gluster": "Gluster",
              "cifs": "SMB", "smb": "SMB", "vmfs": "VMFS", "datastorecluster": "DatastoreCluster",
              "powerflex": "PowerFlex", "filesystem": "Filesystem"}

GIB = 1024**3
TIB = 1024**4
#: Capacity a simulated primary pool reports when the request gives none (the simulator's 1 TiB).
SIMULATED_POOL_BYTES = TIB
#: Size a simulated secondary (image) store reports.
SIMULATED_STORE_BYTES = 4 * TIB


def canonical(value: str, choices: tuple[str, ...], param: str, what: str) -> str:
    for c in choices:
        if c.lower() == value.strip().lower():
            return c
    raise InvalidParameterValue(f"Invalid value {value} for parameter {param}: {what} must be one of"
                                f" {', '.join(choices)}")


def hypervisor_type(value: str, param: str = "hypervisor") -> str:
    for c in HYPERVISOR_TYPES:
        if c.lower() == value.strip().lower():
            return c
    raise InvalidParameterValue(f"Unable to resolve {value} to a supported hypervisor type (parameter {param})")


def ipv4(value: str | None, param: str) -> str:
    if value is None or not value.strip():
        raise InvalidParameterValue(f"Please specify a valid IPv4 address for parameter {param}")
    try:
        addr = ipaddress.ip_address(value.strip())
    except ValueError:
        raise InvalidParameterValue(f"Invalid IPv4 address {value} for parameter {param}") from None
    if addr.version != 4:
        raise InvalidParameterValue(f"Invalid IPv4 address {value} for parameter {param}")
    return str(addr)


def netmask_of(value: str | None, param: str = "netmask") -> str:
    mask = ipv4(value, param)
    try:
        ipaddress.ip_network(f"0.0.0.0/{mask}")
    except ValueError:
        raise InvalidParameterValue(f"Invalid netmask {value} for parameter {param}") from None
    return mask


def subnet(gateway: str, netmask: str) -> ipaddress.IPv4Network:
    return ipaddress.ip_network(f"{gateway}/{netmask}", strict=False)  # type: ignore[return-value]


def cidr_of(value: str, param: str) -> str:
    try:
        net = ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise InvalidParameterValue(f"Invalid CIDR {value} for parameter {param}") from None
    if net.version != 4:
        raise InvalidParameterValue(f"Invalid IPv4 CIDR {value} for parameter {param}")
    return str(net)


@dataclass
class IpRange:
    start: str
    end: str
    gateway: str
    netmask: str

    def overlaps(self, start: str, end: str) -> bool:
        a, b = int(ipaddress.ip_address(self.start)), int(ipaddress.ip_address(self.end))
        c, d = int(ipaddress.ip_address(start)), int(ipaddress.ip_address(end))
        return a <= d and c <= b


def ip_range(startip: str | None, endip: str | None, gateway: str | None, netmask: str | None, *,
             default_end_to_subnet: bool = False) -> IpRange:
    """A validated IPv4 range inside the subnet of ``gateway``/``netmask`` (parameters named as CloudStack's)."""
    gw = ipv4(gateway, "gateway")
    mask = netmask_of(netmask, "netmask")
    start = ipv4(startip, "startip")
    net = subnet(gw, mask)
    if endip:
        end = ipv4(endip, "endip")
    elif default_end_to_subnet:
        end = str(net.broadcast_address - 1) if net.num_addresses > 2 else str(net.broadcast_address)
    else:
        end = start
    if int(ipaddress.ip_address(end)) < int(ipaddress.ip_address(start)):
        raise InvalidParameterValue(f"Invalid IP range: endip {end} is lower than startip {start}")
    for name, addr in (("startip", start), ("endip", end)):
        if ipaddress.ip_address(addr) not in net:
            raise InvalidParameterValue(f"The {name} {addr} is not in the subnet of gateway {gw} and netmask {mask}")
    if int(ipaddress.ip_address(end)) - int(ipaddress.ip_address(start)) > 65535:
        raise InvalidParameterValue(f"The IP range {start}-{end} is too large: at most 65536 addresses")
    return IpRange(start, end, gw, mask)


def vlan_ranges(spec: str, param: str = "vlan") -> list[tuple[int, int]]:
    """``100-200,300`` as [(100, 200), (300, 300)]; ids 1..4094 (CloudStack's VLAN id range)."""
    out: list[tuple[int, int]] = []
    for part in spec.split(","):
        lo, sep, hi = part.strip().partition("-")
        if not lo.strip().isdigit() or (sep and not hi.strip().isdigit()):
            raise InvalidParameterValue(f"Invalid VLAN range {spec} for parameter {param}: use values like"
                                        " 100-200 or 100-200,300-400")
        a, b = int(lo), int(hi) if sep else int(lo)
        if not 0 < a <= b < 4095:
            raise InvalidParameterValue(f"Invalid VLAN range {part.strip()} for parameter {param}: VLAN ids go"
                                        " from 1 to 4094 and the start must not exceed the end")
        out.append((a, b))
    out.sort()
    for (_, b1), (a2, _) in pairwise(out):
        if a2 <= b1:
            raise InvalidParameterValue(f"Invalid VLAN range {spec} for parameter {param}: ranges overlap")
    return out


def vlan_tag(value: str | None) -> str:
    """A public range's VLAN as stored and shown: ``vlan://50`` or ``vlan://untagged``."""
    if value is None or not value.strip() or value.strip().lower() in ("untagged", "vlan://untagged"):
        return "vlan://untagged"
    text = value.strip()
    tag = text.removeprefix("vlan://")
    if not tag.isdigit() or not 0 < int(tag) < 4095:
        raise InvalidParameterValue(f"Invalid VLAN {value} for parameter vlan: use a VLAN id (1-4094) or untagged")
    return f"vlan://{int(tag)}"


def pool_url(url: str) -> tuple[str, str | None, str]:
    """(pool type, host address, path) of a primary storage URL: ``nfs://host/path``, ``nfs://host:/path``,
    ``sharedmountpoint:///path``, ``file:///path``..."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if not scheme:
        raise InvalidParameterValue(f"Invalid url {url} for parameter url: add a scheme such as nfs:// as a prefix")
    pool_type = POOL_TYPES.get(scheme)
    if pool_type is None:
        raise InvalidParameterValue(f"Invalid url {url} for parameter url: the scheme {scheme} is not supported"
                                    f" (use one of {', '.join(sorted(POOL_TYPES))})")
    host = parts.hostname
    path = parts.path or None
    if scheme in ("nfs", "cifs", "smb", "gluster", "iscsi") and (not host or not path or path == "/"):
        raise InvalidParameterValue(f"Invalid url {url} for parameter url: {scheme} needs a host and a path,"
                                    f" e.g. {scheme}://10.1.1.2/export/primary")
    if scheme in ("sharedmountpoint", "file", "filesystem") and not path:
        raise InvalidParameterValue(f"Invalid url {url} for parameter url: {scheme} needs a path")
    return pool_type, host, path  # nfs://host:/path: the colon is the NFS export separator


def store_url(url: str, param: str = "url") -> str:
    """The protocol (scheme) of an NFS image store URL: ``nfs://host/path``, ``cifs://...`` or ``file:///dir``."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("nfs", "cifs", "file"):
        raise InvalidParameterValue(f"Invalid url {url} for parameter {param}: an NFS image store takes nfs://,"
                                    " cifs:// or file:// URLs")
    if scheme in ("nfs", "cifs") and (not parts.hostname or not parts.path or parts.path == "/"):
        raise InvalidParameterValue(f"Invalid url {url} for parameter {param}: it needs a host and a path, e.g."
                                    f" {scheme}://10.1.1.2/export/secondary")
    if scheme == "file" and not parts.path:
        raise InvalidParameterValue(f"Invalid url {url} for parameter {param}: file:// needs a directory")
    return scheme


def pod_in_zone(pod: Pod, zone: Zone, param: str = "podid") -> None:
    if pod.zone_id != zone.id:
        raise InvalidParameterValue(f"Pod {pod.name} (parameter {param}) doesn't belong to zone {zone.name}")


def cluster_in_pod(cluster: Cluster, pod: Pod, param: str = "clusterid") -> None:
    if cluster.pod_id != pod.id:
        raise InvalidParameterValue(f"Cluster {cluster.name} (parameter {param}) doesn't belong to pod {pod.name}")


def check_pod_range_free(s: Session, zone: Zone, rng: IpRange, *, skip_range_id: int | None = None) -> None:
    """A management range must not overlap another pod range of the zone."""
    rows = s.execute(select(PodIpRange, Pod.name).join(Pod, Pod.id == PodIpRange.pod_id).where(
        Pod.zone_id == zone.id, Pod.removed.is_(None)))
    for r, pod_name in rows:
        if r.id != skip_range_id and rng.overlaps(r.start_ip, r.end_ip):
            raise InvalidParameterValue(f"The IP range {rng.start}-{rng.end} overlaps the range {r.start_ip}-"
                                        f"{r.end_ip} of pod {pod_name}")


def check_vlan_range_free(s: Session, zone: Zone, rng: IpRange) -> None:
    for r in s.scalars(select(VlanIpRange).where(VlanIpRange.zone_id == zone.id, VlanIpRange.removed.is_(None))):
        if rng.overlaps(r.start_ip, r.end_ip):
            raise InvalidParameterValue(f"The IP range {rng.start}-{rng.end} overlaps the existing range"
                                        f" {r.start_ip}-{r.end_ip} in zone {zone.name}")


def physical_network_for(s: Session, zone: Zone, traffic: str) -> PhysicalNetwork | None:
    return s.scalar(select(PhysicalNetwork).join(TrafficType, TrafficType.physical_network_id == PhysicalNetwork.id)
                    .where(PhysicalNetwork.zone_id == zone.id, PhysicalNetwork.removed.is_(None),
                           TrafficType.traffic_type == traffic).order_by(PhysicalNetwork.id))


def basic_zone_network(s: Session, zone: Zone, rng: IpRange) -> Network:
    """The shared guest network of a basic zone; made (as ``defaultGuestNetwork``, with security groups)
    by the first guest range when no network was created for the zone."""
    net = s.scalar(select(Network).where(Network.zone_id == zone.id, Network.guest_type == "Shared",
                                         Network.removed.is_(None)).order_by(Network.id))
    if net is not None:
        return net
    offering = s.scalar(select(NetworkOffering).where(
        NetworkOffering.name == "DefaultSharedNetworkOfferingWithSGService", NetworkOffering.removed.is_(None)))
    if offering is None:
        raise InvalidParameterValue(f"Zone {zone.name} has no guest network; create one with createNetwork first")
    phys = physical_network_for(s, zone, "Guest")
    net = Network(name="defaultGuestNetwork", display_text="defaultGuestNetwork", zone_id=zone.id,
                  physical_network_id=phys.id if phys else None, network_offering_id=offering.id, account_id=1,
                  domain_id=1, acl_type="Domain", guest_type="Shared", state="Setup",
                  cidr=str(subnet(rng.gateway, rng.netmask)), gateway=rng.gateway, netmask=rng.netmask,
                  broadcast_uri="vlan://untagged", specify_ip_ranges=True, network_domain=zone.network_domain,
                  dns1=zone.dns1, dns2=zone.dns2)
    s.add(net)
    s.flush()
    return net


def sync_templates_to_zone(s: Session, zone: Zone, store: ImageStore) -> int:
    """A new image store of a zone holds the builtin and system templates, downloaded at once (what the
    simulator's secondary storage VM reports); cross-zone templates become Ready in the zone. Returns how
    many templates were added to the zone."""
    simulated = s.scalar(select(Cluster.id).where(Cluster.zone_id == zone.id, Cluster.removed.is_(None),
                                                  Cluster.hypervisor_type == "Simulator")) is not None
    if simulated:
        from overcast.engine.sandbox import _templates as seed_simulator_templates

        seed_simulator_templates(s, [])  # the builtin rows, as the simulator's database seeds them
    added = 0
    for tmpl in s.scalars(select(Template).where(Template.removed.is_(None), Template.cross_zones.is_(True),
                                                 Template.template_type.in_(("BUILTIN", "SYSTEM")))):
        present = s.scalar(select(TemplateZone.id).where(TemplateZone.template_id == tmpl.id,
                                                         TemplateZone.zone_id == zone.id,
                                                         TemplateZone.removed.is_(None)))
        if present is not None:
            continue
        s.add(TemplateZone(template_id=tmpl.id, zone_id=zone.id, store_id=store.id, state="Ready",
                           download_state="DOWNLOADED", download_pct=100, size=tmpl.size,
                           physical_size=tmpl.physical_size, install_path=f"template/tmpl/1/{tmpl.id}"))
        added += 1
    s.flush()
    return added


__all__ = [
    "HYPERVISOR_TYPES", "INTERNAL_LB_ELEMENT", "ISOLATION_METHODS", "PROVIDER_SERVICES", "ROUTER_ELEMENTS",
    "SIMULATED_POOL_BYTES", "SIMULATED_STORE_BYTES", "TRAFFIC_TYPES", "IpRange", "basic_zone_network",
    "canonical", "check_pod_range_free", "check_vlan_range_free", "cidr_of", "cluster_in_pod", "hypervisor_type",
    "ip_range", "ipv4", "netmask_of", "physical_network_for", "pod_in_zone", "pool_url", "store_url",
    "sync_templates_to_zone", "vlan_ranges", "vlan_tag",
]  # fmt: skip
