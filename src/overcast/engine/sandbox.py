"""The sandbox: the layout CloudStack's simulator test images provide, ready in a fraction of a second.

Two zones as the Ansible simulator image's ``zones.cfg`` sets them up: ``Sandbox-simulator-advanced``
(isolated networks, public range 192.168.2.0/24) and ``Sandbox-simulator-basic`` (a shared network with
security groups), each with a pod, two clusters of two simulated hosts, primary storage per cluster, an
image store, and the builtin template ``CentOS 5.6 (64-bit) no GUI (Simulator)`` ready in both.
"""

from __future__ import annotations

import json
import uuid as uuidlib
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from overcast.db.models import (
    Cluster,
    GuestOs,
    Host,
    ImageStore,
    Network,
    NetworkElement,
    NetworkOffering,
    NetworkServiceProvider,
    PhysicalNetwork,
    Pod,
    PodIpRange,
    PublicIp,
    StoragePool,
    Template,
    TemplateZone,
    TrafficType,
    VlanIpRange,
    Zone,
)
from overcast.engine.networks import span

GB = 1024**3
TIB = 1024**4
TEMPLATE_NAME = "CentOS 5.6 (64-bit) no GUI (Simulator)"
SYSTEM_TEMPLATE_NAME = "SystemVM Template (simulator)"

#: Simulated hosts are large, so a sandbox takes hundreds of small VMs.
HOST_CPUS, HOST_SPEED, HOST_MEMORY = 16, 4000, 64 * GB

PROVIDERS = {
    "VirtualRouter": "Dhcp,Dns,UserData,SourceNat,StaticNat,Firewall,PortForwarding,Lb,Vpn,Gateway",
    "VpcVirtualRouter": "Dhcp,Dns,UserData,SourceNat,StaticNat,NetworkACL,PortForwarding,Lb,Vpn,Gateway",
    "InternalLbVm": "Lb",
    "SecurityGroupProvider": "SecurityGroup",
}


@dataclass
class SandboxZone:
    name: str
    network_type: str
    index: int


def seed_sandbox(s: Session, data_dir: str) -> list[Zone]:
    """Create the sandbox zones unless they exist. Returns the zones."""
    zones = []
    for spec in (SandboxZone("Sandbox-simulator-advanced", "Advanced", 0),
                 SandboxZone("Sandbox-simulator-basic", "Basic", 1)):
        zone = s.scalar(select(Zone).where(Zone.name == spec.name, Zone.removed.is_(None)))
        if zone is None:
            zone = _zone(s, spec, data_dir)
        zones.append(zone)
    _templates(s, zones)
    s.flush()
    return zones


def _zone(s: Session, spec: SandboxZone, data_dir: str) -> Zone:
    basic = spec.network_type == "Basic"
    zone = Zone(name=spec.name, network_type=spec.network_type, dns1="10.147.28.6", internal_dns1="10.147.28.6",
                guest_cidr=None if basic else "10.1.1.0/24", network_domain="sandbox.simulator",
                security_group_enabled=basic, allocation_state="Enabled", description=f"{spec.name} zone")
    s.add(zone)
    s.flush()
    phys = PhysicalNetwork(name=f"{spec.name}-pnet", zone_id=zone.id, vlan=None if basic else "100-200",
                           isolation_methods="VLAN", state="Enabled",
                           broadcast_domain_range="POD" if basic else "ZONE")
    s.add(phys)
    s.flush()
    for traffic in (("Guest", "Management") if basic else ("Guest", "Management", "Public")):
        s.add(TrafficType(physical_network_id=phys.id, traffic_type=traffic))
    for name, services in PROVIDERS.items():
        if basic and name in ("VpcVirtualRouter", "InternalLbVm"):
            continue
        nsp = NetworkServiceProvider(physical_network_id=phys.id, name=name, state="Enabled", services=services)
        s.add(nsp)
        s.flush()
        if name in ("VirtualRouter", "VpcVirtualRouter", "InternalLbVm"):
            s.add(NetworkElement(provider_id=nsp.id, element_type=name, enabled=True))
    octet = 15 + spec.index
    pod = Pod(name="POD0", zone_id=zone.id, gateway=f"172.16.{octet}.1", netmask="255.255.255.0")
    s.add(pod)
    s.flush()
    s.add(PodIpRange(pod_id=pod.id, start_ip=f"172.16.{octet}.2", end_ip=f"172.16.{octet}.200",
                     gateway=pod.gateway, netmask=pod.netmask))
    for c in range(2):
        cluster = Cluster(name=f"C{c}", zone_id=zone.id, pod_id=pod.id, hypervisor_type="Simulator")
        s.add(cluster)
        s.flush()
        for h in range(2):
            s.add(Host(name=f"SimulatedAgent.{zone.uuid[:8]}-c{c}-h{h}", zone_id=zone.id, pod_id=pod.id,
                       cluster_id=cluster.id, hypervisor_type="Simulator", hypervisor_version="4.22",
                       url=f"http://sim/c{c}/h{h}", ip_address=f"172.16.{octet}.{10 + c * 2 + h}",
                       cpus=HOST_CPUS, speed=HOST_SPEED, total_memory=HOST_MEMORY, capabilities="hvm"))
        s.add(StoragePool(name=f"PS{c}", zone_id=zone.id, pod_id=pod.id, cluster_id=cluster.id, scope="CLUSTER",
                          pool_type="NetworkFilesystem", url=f"nfs://10.147.28.6:/export/home/sandbox/primary{c}",
                          host_address="10.147.28.6", path=f"/export/home/sandbox/primary{c}",
                          capacity_bytes=4 * TIB, hypervisor_type="Simulator"))
    s.add(ImageStore(name=f"{spec.name}-secondary", zone_id=zone.id, provider="NFS", protocol="nfs",
                     url=f"file://{data_dir}/images/{zone.uuid}",
                     # downloads into it are simulated (Ready at once): see engine.template_downloads
                     details=json.dumps({"simulated": "true"})))
    if basic:
        offering = s.scalar(select(NetworkOffering).where(
            NetworkOffering.name == "DefaultSharedNetworkOfferingWithSGService"))
        assert offering is not None, "the default catalogue must be seeded first"
        net = Network(name="defaultGuestNetwork", display_text="defaultGuestNetwork", zone_id=zone.id,
                      physical_network_id=phys.id, network_offering_id=offering.id, account_id=1, domain_id=1,
                      acl_type="Domain", guest_type="Shared", state="Setup", cidr="10.147.29.0/24",
                      gateway="10.147.29.1", netmask="255.255.255.0", broadcast_uri="vlan://untagged",
                      specify_ip_ranges=True, network_domain=zone.network_domain)
        s.add(net)
        s.flush()
        s.add(VlanIpRange(zone_id=zone.id, pod_id=pod.id, physical_network_id=phys.id, network_id=net.id,
                          gateway="10.147.29.1", netmask="255.255.255.0", start_ip="10.147.29.100",
                          end_ip="10.147.29.250", vlan_type="DirectAttached"))
    else:
        vlan = VlanIpRange(zone_id=zone.id, physical_network_id=phys.id, vlan_tag="vlan://50",
                           gateway="192.168.2.1", netmask="255.255.255.0", start_ip="192.168.2.2",
                           end_ip="192.168.2.200", vlan_type="VirtualNetwork")
        s.add(vlan)
        s.flush()
        add_public_ips(s, vlan)
    s.flush()
    return zone


def add_public_ips(s: Session, vlan: VlanIpRange) -> None:
    """One Free row per address of a public range (what allocation takes from)."""
    s.execute(PublicIp.__table__.insert(), [
        {"uuid": str(uuidlib.uuid4()), "address": ip, "zone_id": vlan.zone_id, "vlan_id": vlan.id,
         "state": "Free", "source_nat": False, "is_system": False, "for_display": True}
        for ip in span(vlan.start_ip, vlan.end_ip)
    ])


def _templates(s: Session, zones: list[Zone]) -> None:
    os_id = s.scalar(select(GuestOs.id).where(GuestOs.display_name == "CentOS 5.6 (64-bit)"))
    for name, ttype, public in ((TEMPLATE_NAME, "BUILTIN", True), (SYSTEM_TEMPLATE_NAME, "SYSTEM", False)):
        tmpl = s.scalar(select(Template).where(Template.name == name, Template.removed.is_(None)))
        if tmpl is None:
            tmpl = Template(name=name, display_text=name, format="VHD", template_type=ttype,
                            hypervisor_type="Simulator", bits=64, url="http://nfs1.lab.vmops.com/templates/simulator",
                            is_public=public, featured=public, extractable=False, password_enabled=False,
                            requires_hvm=True, guest_os_id=os_id, account_id=1, domain_id=1, size=2 * GB,
                            physical_size=2 * GB, cross_zones=True)
            s.add(tmpl)
            s.flush()
        for zone in zones:
            present = s.scalar(select(TemplateZone.id).where(TemplateZone.template_id == tmpl.id,
                                                             TemplateZone.zone_id == zone.id))
            if present is None:
                store = s.scalar(select(ImageStore.id).where(ImageStore.zone_id == zone.id))
                s.add(TemplateZone(template_id=tmpl.id, zone_id=zone.id, store_id=store, state="Ready",
                                   download_state="DOWNLOADED", download_pct=100, size=tmpl.size,
                                   physical_size=tmpl.physical_size, install_path=f"template/tmpl/1/{tmpl.id}"))
