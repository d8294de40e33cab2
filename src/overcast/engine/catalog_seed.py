"""The catalogue every new cloud starts with: OS types, hypervisor capabilities, the default disk,
service and network offerings (CloudStack's names and shapes)."""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from overcast.db.models import (
    DiskOffering,
    GuestOs,
    GuestOsCategory,
    HypervisorCapability,
    NetworkOffering,
    ServiceOffering,
)

GB = 1024**3

OS_TYPES: dict[str, list[str]] = {
    "CentOS": ["CentOS 5.3 (64-bit)", "CentOS 5.5 (64-bit)", "CentOS 5.6 (64-bit)", "CentOS 6.5 (64-bit)",
               "CentOS 7", "CentOS 8"],
    "Debian": ["Debian GNU/Linux 10 (64-bit)", "Debian GNU/Linux 11 (64-bit)", "Debian GNU/Linux 12 (64-bit)"],
    "Ubuntu": ["Ubuntu 20.04 LTS", "Ubuntu 22.04 LTS", "Ubuntu 24.04 LTS"],
    "RedHat": ["Red Hat Enterprise Linux 8", "Red Hat Enterprise Linux 9"],
    "Oracle": ["Oracle Linux 8", "Oracle Linux 9"],
    "SUSE": ["SUSE Linux Enterprise Server 15 (64-bit)"],
    "Windows": ["Windows Server 2019 (64-bit)", "Windows Server 2022 (64-bit)", "Windows 10 (64-bit)"],
    "Other": ["Other Linux (64-bit)", "Other (64-bit)", "Other PV (64-bit)"],
    "Novel": [],
    "Unix": ["FreeBSD 13 (64-bit)"],
}  # fmt: skip

ISOLATED_SERVICES = {"Dhcp": ["VirtualRouter"], "Dns": ["VirtualRouter"], "UserData": ["VirtualRouter"],
                     "SourceNat": ["VirtualRouter"], "StaticNat": ["VirtualRouter"], "Firewall": ["VirtualRouter"],
                     "PortForwarding": ["VirtualRouter"], "Lb": ["VirtualRouter"], "Vpn": ["VirtualRouter"],
                     "Gateway": ["VirtualRouter"]}  # fmt: skip

NETWORK_OFFERINGS = [
    # name, guest type, availability, services, specify vlan, specify ip ranges, description
    ("DefaultIsolatedNetworkOfferingWithSourceNatService", "Isolated", "Required", ISOLATED_SERVICES, False, False,
     "Offering for Isolated networks with Source Nat service enabled"),
    ("DefaultIsolatedNetworkOffering", "Isolated", "Optional",
     {"Dhcp": ["VirtualRouter"], "Dns": ["VirtualRouter"], "UserData": ["VirtualRouter"]}, False, False,
     "Offering for Isolated networks with no Source Nat service"),
    ("DefaultSharedNetworkOfferingWithSGService", "Shared", "Optional",
     {"Dhcp": ["VirtualRouter"], "Dns": ["VirtualRouter"], "UserData": ["VirtualRouter"],
      "SecurityGroup": ["SecurityGroupProvider"]}, True, True, "Offering for Shared Security group enabled networks"),
    ("DefaultSharedNetworkOffering", "Shared", "Optional",
     {"Dhcp": ["VirtualRouter"], "Dns": ["VirtualRouter"], "UserData": ["VirtualRouter"]}, True, True,
     "Offering for Shared networks"),
    ("DefaultL2NetworkOffering", "L2", "Optional", {}, False, False, "Offering for L2 networks"),
    ("DefaultL2NetworkOfferingVlan", "L2", "Optional", {}, True, False, "Offering for L2 networks VLAN"),
]


#: CloudStack's default system VM offerings: (name, systemvmtype, CPU MHz, RAM MB).
SYSTEM_OFFERINGS = (
    ("System Offering For Console Proxy", "consoleproxy", 500, 1024),
    ("System Offering For Secondary Storage VM", "secondarystoragevm", 500, 512),
    (ROUTER_OFFERING := "System Offering For Software Router", "domainrouter", 500, 256),
    ("System Offering For Internal LB VM", "internalloadbalancervm", 256, 256),
    ("System Offering For Elastic LB VM", "elasticloadbalancervm", 128, 128),
)


def default_router_offering(s: Session) -> ServiceOffering | None:
    """The system offering of virtual routers: what a network offering without its own names."""
    return s.scalar(select(ServiceOffering).where(
        ServiceOffering.is_system.is_(True), ServiceOffering.system_vm_type == "domainrouter",
        ServiceOffering.name == ROUTER_OFFERING, ServiceOffering.removed.is_(None)).limit(1))


def seed_catalog(s: Session) -> None:
    """Add the default catalogue to a new database. Idempotent (skips what exists)."""
    if s.scalar(select(GuestOsCategory.id).limit(1)) is None:
        for index, (category, names) in enumerate(OS_TYPES.items()):
            cat = GuestOsCategory(name=category, sort_key=index, featured=category in ("CentOS", "Ubuntu", "Debian"))
            s.add(cat)
            s.flush()
            for name in names:
                s.add(GuestOs(category_id=cat.id, display_name=name))
    if s.scalar(select(HypervisorCapability.id).limit(1)) is None:
        for hv, limit in (("Simulator", 1000), ("KVM", 144)):
            s.add(HypervisorCapability(hypervisor_type=hv, hypervisor_version="default", max_guests_limit=limit,
                                       max_data_volumes_limit=26 if hv == "KVM" else 6))
    if s.scalar(select(DiskOffering.id).where(DiskOffering.compute_only.is_(False)).limit(1)) is None:
        for index, (name, size, custom) in enumerate((("Small", 5, False), ("Medium", 20, False),
                                                      ("Large", 100, False), ("Custom", 0, True))):
            s.add(DiskOffering(name=name, display_text=f"{name} Disk, {size} GB" if size else "Custom Disk",
                               disk_size=size * GB, customized=custom, sort_key=index))
    if s.scalar(select(ServiceOffering.id).limit(1)) is None:
        for name, cpu, speed, ram in (("Small Instance", 1, 500, 512), ("Medium Instance", 1, 1000, 1024)):
            add_service_offering(s, name=name, display_text=f"{name}, {cpu} CPU x {speed / 1000:g} GHz, {ram} MB",
                                 cpu=cpu, speed=speed, ram_size=ram)
    if s.scalar(select(ServiceOffering.id).where(ServiceOffering.is_system.is_(True)).limit(1)) is None:
        for name, vm_type, speed, ram in SYSTEM_OFFERINGS:
            add_service_offering(s, name=name, display_text=name, cpu=1, speed=speed, ram_size=ram,
                                 is_system=True, system_vm_type=vm_type)
    if s.scalar(select(NetworkOffering.id).limit(1)) is None:
        for name, guest, avail, services, vlan, ranges, desc in NETWORK_OFFERINGS:
            s.add(NetworkOffering(name=name, display_text=desc, guest_ip_type=guest, availability=avail,
                                  services=json.dumps(services), specify_vlan=vlan, specify_ip_ranges=ranges,
                                  is_default=True, conserve_mode=True))
    s.flush()


def add_service_offering(s: Session, *, name: str, display_text: str | None, cpu: int | None, speed: int | None,
                         ram_size: int | None, storage_type: str = "shared", tags: str | None = None,
                         **kwargs: object) -> ServiceOffering:
    """A service offering with the disk offering of its root disk (CloudStack 4.17+ keeps them apart)."""
    disk = DiskOffering(name=name, display_text=display_text, compute_only=True, storage_type=storage_type,
                        tags=tags)
    s.add(disk)
    s.flush()
    offering = ServiceOffering(name=name, display_text=display_text or name, cpu=cpu, speed=speed,
                               ram_size=ram_size, disk_offering_id=disk.id, **kwargs)
    s.add(offering)
    s.flush()
    return offering
