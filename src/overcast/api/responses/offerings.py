"""Offerings and catalogues: service, disk and network offerings, OS types, hypervisors."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from overcast.api.declare import Field, ResponseObject
from overcast.api.serialize import cs_date
from overcast.db.models import (
    DiskOffering,
    Domain,
    GuestOs,
    GuestOsCategory,
    HypervisorCapability,
    NetworkOffering,
    ServiceOffering,
    Zone,
)
from overcast.engine.catalog_seed import default_router_offering
from overcast.engine.offerings import split_ids

F = Field
GIB = 1024**3




class Restrictions:
    """Domains and zones that a batch of offerings is limited to, loaded in two queries."""

    def __init__(self, s: Session, rows: Iterable[Any]) -> None:
        rows = list(rows)
        dids = {i for r in rows for i in split_ids(r.domain_ids)}
        zids = {i for r in rows for i in split_ids(r.zone_ids)}
        self.domains = {d.id: d for d in s.scalars(select(Domain).where(Domain.id.in_(dids)))} if dids else {}
        self.zones = {z.id: z for z in s.scalars(select(Zone).where(Zone.id.in_(zids)))} if zids else {}

    def fields(self, row: Any) -> dict[str, Any]:
        doms = [self.domains[i] for i in split_ids(row.domain_ids) if i in self.domains]
        zones = [self.zones[i] for i in split_ids(row.zone_ids) if i in self.zones]
        return {
            "domainid": ",".join(d.uuid for d in doms) or None, "domain": ",".join(d.name for d in doms) or None,
            "zoneid": ",".join(z.uuid for z in zones) or None, "zone": ",".join(z.name for z in zones) or None,
        }  # fmt: skip


RESTRICTION_FIELDS = (
    F("domainid", "string", "the domain ID(s) this offering belongs to. Ignore this information as it is not"
      " currently applicable."),
    F("domain", "string", "the domain name(s) this offering belongs to. Ignore this information as it is not"
      " currently applicable."),
    F("zoneid", "string", "the zone ID(s) this offering belongs to. Ignore this information as it is not"
      " currently applicable."),
    F("zone", "string", "the zone name(s) this offering belongs to. Ignore this information as it is not"
      " currently applicable."),
)


class ServiceOfferingResponse(ResponseObject):
    object_name = "serviceoffering"
    fields = (
        F("id", "string", "the id of the service offering"),
        F("name", "string", "the name of the service offering"),
        F("displaytext", "string", "an alternate display text of the service offering."),
        F("cpunumber", "integer", "the number of CPU"),
        F("cpuspeed", "integer", "the clock rate CPU speed in Mhz"),
        F("memory", "integer", "the memory in MB"),
        F("created", "date", "the date this service offering was created"),
        F("storagetype", "string", "the storage type for this service offering"),
        F("provisioningtype", "string", "provisioning type used to create volumes. Valid values are thin, sparse,"
          " fat."),
        F("offerha", "boolean", "the ha support in the service offering"),
        F("limitcpuuse", "boolean", "restrict the CPU usage to committed service offering"),
        F("isvolatile", "boolean", "true if the vm needs to be volatile, i.e., on every reboot of vm from API root"
          " disk is discarded and creates a new root disk"),
        F("issystem", "boolean", "is this a system vm offering"),
        F("defaultuse", "boolean", "is this a  default system vm offering"),
        F("systemvmtype", "string", "is this a the systemvm type for system vm offering"),
        F("iscustomized", "boolean", "is true if the offering is customized"),
        F("cacheMode", "string", "the cache mode to use for this disk offering. none, writeback or writethrough"),
        F("rootdisksize", "long", "Root disk size in GB"),
        F("hosttags", "string", "the host tag for the service offering"),
        F("storagetags", "string", "the tags for the service offering"),
        F("networkrate", "integer", "data transfer rate in megabits per second allowed."),
        F("deploymentplanner", "string", "deployment strategy used to deploy VM."),
        F("dynamicscalingenabled", "boolean", "true if virtual machine needs to be dynamically scalable of"
          " cpu or memory"),
        F("iscustomizediops", "boolean", "is true if the offering is customized"),
        F("miniops", "long", "the min iops of the disk offering"),
        F("maxiops", "long", "the max iops of the disk offering"),
        F("encryptroot", "boolean", "true if virtual machine root disk will be encrypted on storage"),
        F("serviceofferingdetails", "map", "additional key/value details tied with this service offering"),
        F("state", "string", "state of the service offering"),
        F("diskofferingstrictness", "boolean", "True/False to indicate the strictness of the disk offering"
          " association with the compute offering. When set to true, override of disk offering is not allowed when"
          " VM is deployed and change disk offering is not allowed for the ROOT disk after the VM is deployed"),
        F("hasannotations", "boolean", "whether this offering has annotations"),
        *RESTRICTION_FIELDS,
    )


def service_offering_payload(s: Session, rows: list[ServiceOffering]) -> list[dict[str, Any]]:
    if not rows:
        return []
    disks = {d.id: d for d in s.scalars(select(DiskOffering).where(
        DiskOffering.id.in_({r.disk_offering_id for r in rows})))}
    where = Restrictions(s, rows)
    out = []
    for o in rows:
        d = disks.get(o.disk_offering_id)
        details = json.loads(o.details) if o.details else {}
        for key, value in (("mincpunumber", o.min_cpu), ("maxcpunumber", o.max_cpu), ("minmemory", o.min_memory),
                           ("maxmemory", o.max_memory)):
            if value is not None:
                details[key] = str(value)
        item = {
            "id": o.uuid, "name": o.name, "displaytext": o.display_text, "cpunumber": o.cpu, "cpuspeed": o.speed,
            "memory": o.ram_size, "created": cs_date(o.created), "storagetype": d.storage_type if d else "shared",
            "provisioningtype": d.provisioning_type if d else "thin", "offerha": o.ha_enabled,
            "limitcpuuse": o.limit_cpu_use, "isvolatile": o.is_volatile, "issystem": o.is_system,
            "defaultuse": False, "systemvmtype": o.system_vm_type, "iscustomized": o.customized,
            "cacheMode": (d.cache_mode if d and d.cache_mode else "none"), "rootdisksize": o.root_disk_size // GIB,
            "hosttags": o.host_tag, "storagetags": d.tags if d else None, "networkrate": o.network_rate,
            "deploymentplanner": o.deployment_planner, "dynamicscalingenabled": o.dynamic_scaling_enabled,
            "iscustomizediops": d.customized_iops if d else False, "miniops": d.min_iops if d else None,
            "maxiops": d.max_iops if d else None, "encryptroot": d.encrypt if d else False,
            "serviceofferingdetails": details or None, "state": o.state, "diskofferingstrictness": False,
            "hasannotations": False, **where.fields(o),
        }  # fmt: skip
        out.append(item)
    return out


class DiskOfferingResponse(ResponseObject):
    object_name = "diskoffering"
    fields = (
        F("id", "string", "unique ID of the disk offering"),
        F("name", "string", "the name of the disk offering"),
        F("displaytext", "string", "an alternate display text of the disk offering."),
        F("disksize", "long", "the size of the disk offering in GB"),
        F("created", "date", "the date this disk offering was created"),
        F("iscustomized", "boolean", "true if disk offering uses custom size, false otherwise"),
        F("iscustomizediops", "boolean", "true if disk offering uses custom iops, false otherwise"),
        F("miniops", "long", "the min iops of the disk offering"),
        F("maxiops", "long", "the max iops of the disk offering"),
        F("storagetype", "string", "the storage type for this disk offering"),
        F("provisioningtype", "string", "provisioning type used to create volumes. Valid values are thin, sparse,"
          " fat."),
        F("cacheMode", "string", "the cache mode to use for this disk offering. none, writeback or writethrough"),
        F("displayoffering", "boolean", "whether to display the offering to the end user or not."),
        F("tags", "string", "the tags for the disk offering"),
        F("encrypt", "boolean", "Whether disks using this offering will be encrypted on primary storage"),
        F("state", "string", "state of the disk offering"),
        F("disksizestrictness", "boolean", "To allow or disallow the resize operation on the disks created from"
          " this disk offering, if the flag is true then resize is not allowed"),
        F("hasannotations", "boolean", "whether this offering has annotations"),
        *RESTRICTION_FIELDS,
    )


def disk_offering_payload(s: Session, rows: list[DiskOffering]) -> list[dict[str, Any]]:
    where = Restrictions(s, rows)
    return [{
        "id": d.uuid, "name": d.name, "displaytext": d.display_text, "disksize": d.disk_size // GIB,
        "created": cs_date(d.created), "iscustomized": d.customized, "iscustomizediops": d.customized_iops,
        "miniops": d.min_iops, "maxiops": d.max_iops, "storagetype": d.storage_type,
        "provisioningtype": d.provisioning_type, "cacheMode": d.cache_mode or "none",
        "displayoffering": d.display_offering, "tags": d.tags, "encrypt": d.encrypt, "state": d.state,
        "disksizestrictness": False, "hasannotations": False, **where.fields(d),
    } for d in rows]  # fmt: skip


class ProviderResponse(ResponseObject):
    object_name = "provider"
    fields = (F("name", "string", "the provider name"),)


class CapabilityResponse(ResponseObject):
    object_name = "capability"
    fields = (
        F("name", "string", "the capability name"),
        F("value", "string", "the capability value"),
        F("canchooseservicecapability", "boolean", "can this service capability value can be choosable while"
          " creatine network offerings"),
    )


class ServiceResponse(ResponseObject):
    object_name = "service"
    fields = (
        F("name", "string", "the service name"),
        F("provider", "list", "the service provider name", response=ProviderResponse),
        F("capability", "list", "the list of capabilities", response=CapabilityResponse),
    )


class NetworkOfferingResponse(ResponseObject):
    object_name = "networkoffering"
    fields = (
        F("id", "string", "the id of the network offering"),
        F("name", "string", "the name of the network offering"),
        F("displaytext", "string", "an alternate display text of the network offering."),
        F("tags", "string", "the tags for the network offering"),
        F("created", "date", "the date this network offering was created"),
        F("traffictype", "string", "the traffic type for the network offering, supported types are Public,"
          " Management, Control, Guest, Vlan or Storage."),
        F("isdefault", "boolean", "true if network offering is default, false otherwise"),
        F("serviceofferingid", "string", "the ID of the service offering used by virtual router provider (the default"
          " virtual router system offering when the network offering names none)"),
        F("specifyvlan", "boolean", "true if network offering supports vlans, false otherwise"),
        F("conservemode", "boolean", "true if network offering is ip conserve mode enabled"),
        F("specifyipranges", "boolean", "true if network offering supports specifying ip ranges, false otherwise"),
        F("availability", "string", "availability of the network offering"),
        F("networkrate", "integer", "data transfer rate in megabits per second allowed."),
        F("state", "string", "state of the network offering. Can be Disabled/Enabled/Inactive"),
        F("guestiptype", "string", "guest type of the network offering, can be Shared or Isolated"),
        F("service", "list", "the list of supported services", response=ServiceResponse),
        F("forvpc", "boolean", "true if network offering can be used by VPC networks only"),
        F("ispersistent", "boolean", "true if network offering supports persistent networks, false otherwise"),
        F("egressdefaultpolicy", "boolean", "true if guest network default egress policy is allow; false if"
          " default egress policy is deny"),
        F("supportsstrechedl2subnet", "boolean", "true if network offering supports network that span multiple"
          " zones"),
        F("supportspublicaccess", "boolean", "true if network offering supports public access for guest networks"),
        F("supportsinternallb", "boolean", "true if network offering supports internal load balancing"),
        F("hasannotations", "boolean", "whether this offering has annotations"),
        *RESTRICTION_FIELDS,
    )


def network_offering_payload(s: Session, rows: list[NetworkOffering]) -> list[dict[str, Any]]:
    where = Restrictions(s, rows)
    router = default_router_offering(s) if rows else None
    out = []
    for n in rows:
        services = json.loads(n.services or "{}")
        out.append({
            "id": n.uuid, "name": n.name, "displaytext": n.display_text, "tags": n.tags, "created": cs_date(n.created),
            "traffictype": n.traffic_type, "isdefault": n.is_default, "specifyvlan": n.specify_vlan,
            "serviceofferingid": router.uuid if router else None,
            "conservemode": n.conserve_mode, "specifyipranges": n.specify_ip_ranges, "availability": n.availability,
            "networkrate": n.network_rate, "state": n.state, "guestiptype": n.guest_ip_type,
            "service": [{"name": name, "provider": [{"name": p} for p in providers], "capability": []}
                        for name, providers in services.items()],
            "forvpc": n.for_vpc, "ispersistent": n.is_persistent, "egressdefaultpolicy": n.egress_default_policy,
            "supportsstrechedl2subnet": False, "supportspublicaccess": False,
            "supportsinternallb": "Lb" in services and n.for_vpc, "hasannotations": False, **where.fields(n),
        })  # fmt: skip
    return out


class GuestOsResponse(ResponseObject):
    object_name = "ostype"
    fields = (
        F("id", "string", "the ID of the OS type"),
        F("name", "string", "the name of the OS type"),
        F("description", "string", "the name/description of the OS type"),
        F("oscategoryid", "string", "the ID of the OS category"),
        F("oscategoryname", "string", "the name of the OS category"),
        F("isuserdefined", "boolean", "is the guest OS user defined"),
        F("fordisplay", "boolean", "is the guest OS visible for the users"),
    )


def guest_os_payload(s: Session, rows: list[GuestOs]) -> list[dict[str, Any]]:
    cids = {g.category_id for g in rows}
    cats = {c.id: c for c in s.scalars(select(GuestOsCategory).where(GuestOsCategory.id.in_(cids)))} if cids else {}
    out = []
    for g in rows:
        cat = cats.get(g.category_id)
        out.append({"id": g.uuid, "name": g.display_name, "description": g.display_name,
                    "oscategoryid": cat.uuid if cat else None, "oscategoryname": cat.name if cat else None,
                    "isuserdefined": g.is_user_defined, "fordisplay": g.display})
    return out


class OsCategoryResponse(ResponseObject):
    object_name = "oscategory"
    fields = (
        F("id", "string", "the ID of the OS category"),
        F("name", "string", "the name of the OS category"),
        F("isfeatured", "boolean", "Whether the OS category is featured"),
    )


class HypervisorResponse(ResponseObject):
    object_name = "hypervisor"
    fields = (F("name", "string", "Hypervisor name"),)


class HypervisorCapabilitiesResponse(ResponseObject):
    object_name = "hypervisorCapabilities"
    fields = (
        F("id", "string", "the ID of the hypervisor capabilities row"),
        F("hypervisor", "string", "the hypervisor type"),
        F("hypervisorversion", "string", "the hypervisor version"),
        F("maxguestslimit", "long", "the maximum number of guest vms recommended for this hypervisor"),
        F("maxdatavolumeslimit", "integer", "the maximum number of Data Volumes that can be attached for this"
          " hypervisor"),
        F("maxhostspercluster", "integer", "the maximum number of Hosts per cluster for this hypervisor"),
        F("securitygroupenabled", "boolean", "true if security group is supported"),
        F("storagemotionenabled", "boolean", "true if storage motion is supported"),
        F("vmsnapshotenabled", "boolean", "true if VM snapshots are enabled for this hypervisor"),
    )

    @staticmethod
    def of(h: HypervisorCapability) -> dict[str, Any]:
        return {"id": h.uuid, "hypervisor": h.hypervisor_type, "hypervisorversion": h.hypervisor_version,
                "maxguestslimit": h.max_guests_limit, "maxdatavolumeslimit": h.max_data_volumes_limit,
                "maxhostspercluster": h.max_hosts_per_cluster, "securitygroupenabled": h.security_group_enabled,
                "storagemotionenabled": h.storage_motion_supported, "vmsnapshotenabled": h.vm_snapshot_enabled}


__all__ = [
    "DiskOfferingResponse", "GuestOsResponse", "HypervisorCapabilitiesResponse", "HypervisorResponse",
    "NetworkOfferingResponse", "OsCategoryResponse", "ServiceOfferingResponse", "disk_offering_payload",
    "guest_os_payload", "network_offering_payload", "service_offering_payload", "split_ids",
]  # fmt: skip
