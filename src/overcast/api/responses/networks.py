"""Guest networks, public IP addresses and (for now empty) forwarding rules, built for many rows in a
few queries."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from overcast.api.declare import Field, ResponseObject
from overcast.api.responses.common import Owners, ResourceTagResponse, tags_for
from overcast.api.responses.offerings import ServiceResponse
from overcast.api.serialize import cs_date
from overcast.db.models import (
    Network,
    NetworkOffering,
    PhysicalNetwork,
    PublicIp,
    VirtualMachine,
    VlanIpRange,
    Zone,
)
from overcast.engine.networks import GONE_STATES, vlan_of

F = Field


class NetworkResponse(ResponseObject):
    object_name = "network"
    fields = (
        F("id", "string", "the id of the network"),
        F("name", "string", "the name of the network"),
        F("displaytext", "string", "the displaytext of the network"),
        F("broadcastdomaintype", "string", "Broadcast domain type of the network"),
        F("traffictype", "string", "the traffic type of the network"),
        F("gateway", "string", "the network's gateway"),
        F("netmask", "string", "the network's netmask"),
        F("cidr", "string", "Cloudstack managed address space, all CloudStack managed VMs get IP address from CIDR"),
        F("zoneid", "string", "zone id of the network"),
        F("zonename", "string", "the name of the zone the network belongs to"),
        F("networkofferingid", "string", "network offering id the network is created from"),
        F("networkofferingname", "string", "name of the network offering the network is created from"),
        F("networkofferingdisplaytext", "string", "display text of the network offering the network is created"
          " from"),
        F("networkofferingconservemode", "boolean", "true if network offering is ip conserve mode enabled"),
        F("networkofferingavailability", "string", "availability of the network offering the network is created"
          " from"),
        F("issystem", "boolean", "true if network is system, false otherwise"),
        F("state", "string", "state of the network"),
        F("related", "string", "related to what other network configuration"),
        F("broadcasturi", "string", "broadcast uri of the network. This parameter is visible to ROOT admins only"),
        F("dns1", "string", "the first IPv4 DNS for the network"),
        F("dns2", "string", "the second IPv4 DNS for the network"),
        F("type", "string", "the type of the network"),
        F("vlan", "string", "The vlan of the network. This parameter is visible to ROOT admins only"),
        F("acltype", "string", "acl type - access type to the network"),
        F("subdomainaccess", "boolean", "true if users from subdomains can access the domain level network"),
        F("account", "string", "the owner of the network"),
        F("domainid", "string", "the domain id of the network owner"),
        F("domain", "string", "the domain name of the network owner"),
        F("domainpath", "string", "path of the Domain the network belongs to"),
        F("service", "list", "the list of services", response=ServiceResponse),
        F("networkdomain", "string", "the network domain"),
        F("physicalnetworkid", "string", "the physical network id"),
        F("restartrequired", "boolean", "true network requires restart"),
        F("specifyvlan", "boolean", "true if network supports specifying vlan, false otherwise"),
        F("specifyipranges", "boolean", "true if network supports specifying ip ranges, false otherwise"),
        F("canusefordeploy", "boolean", "list networks available for vm deployment"),
        F("ispersistent", "boolean", "list networks that are persistent"),
        F("isdefault", "boolean", "true if network is default, false otherwise"),
        F("tags", "list", "the list of resource tags associated with network", response=ResourceTagResponse),
        F("details", "map", "the details of the network"),
        F("displaynetwork", "boolean", "an optional field, whether to the display the network to the end user or"
          " not."),
        F("strechedl2subnet", "boolean", "true if network can span multiple zones"),
        F("redundantrouter", "boolean", "If the network has redundant routers enabled"),
        F("egressdefaultpolicy", "boolean", "true if guest network default egress policy is allow; false if default"
          " egress policy is deny"),
        F("internetprotocol", "string", "The internet protocol of network offering"),
        F("supportsvmautoscaling", "boolean", "true if network offering supports vm autoscaling feature"),
        F("receivedbytes", "long", "the total number of network traffic bytes received"),
        F("sentbytes", "long", "the total number of network traffic bytes sent"),
        F("created", "date", "the date this network was created"),
        F("hasannotations", "boolean", "whether this network has annotations"),
    )


def _load(s: Session, model: Any, ids: set[int]) -> dict[int, Any]:
    ids = {i for i in ids if i}
    return {r.id: r for r in s.scalars(select(model).where(model.id.in_(ids)))} if ids else {}


def is_default_network(net: Network, offering: NetworkOffering | None, zone: Zone | None) -> bool:
    """The network a VM joins when its deploy names none: the zone's in a basic zone, else one made from
    a Required offering (the account's default isolated network)."""
    if zone is not None and zone.network_type == "Basic":
        return net.guest_type == "Shared"
    return offering is not None and offering.availability == "Required"


def network_payload(s: Session, rows: list[Network], *, root_admin: bool) -> list[dict[str, Any]]:
    if not rows:
        return []
    owners = Owners(s, rows)
    zones = _load(s, Zone, {n.zone_id for n in rows})
    offerings = _load(s, NetworkOffering, {n.network_offering_id for n in rows})
    physical = _load(s, PhysicalNetwork, {n.physical_network_id or 0 for n in rows})
    tags = tags_for(s, "Network", [n.id for n in rows], key_value_only=True)
    out = []
    for n in rows:
        zone, off, phys = zones.get(n.zone_id), offerings.get(n.network_offering_id), physical.get(n.physical_network_id or 0)
        services = json.loads(off.services or "{}") if off else {}
        own = owners.fields(n)
        item: dict[str, Any] = {
            "id": n.uuid, "name": n.name, "displaytext": n.display_text or n.name,
            "broadcastdomaintype": "Native" if zone is not None and zone.network_type == "Basic" else "Vlan",
            "traffictype": n.traffic_type, "gateway": n.gateway, "netmask": n.netmask, "cidr": n.cidr,
            "zoneid": zone.uuid if zone else None, "zonename": zone.name if zone else None,
            "networkofferingid": off.uuid if off else None, "networkofferingname": off.name if off else None,
            "networkofferingdisplaytext": off.display_text if off else None,
            "networkofferingconservemode": off.conserve_mode if off else None,
            "networkofferingavailability": off.availability if off else None,
            "issystem": n.is_system, "state": n.state, "related": n.uuid,
            "broadcasturi": n.broadcast_uri if root_admin else None,
            "vlan": vlan_of(n.broadcast_uri) if root_admin else None,
            "dns1": n.dns1, "dns2": n.dns2, "type": n.guest_type, "acltype": n.acl_type,
            "subdomainaccess": n.subdomain_access if n.acl_type == "Domain" else None,
            "account": own["account"] if n.acl_type == "Account" else None,
            "domainid": own["domainid"], "domain": own["domain"], "domainpath": own["domainpath"],
            "service": [{"name": name, "provider": [{"name": p} for p in providers], "capability": []}
                        for name, providers in services.items()],
            "networkdomain": n.network_domain, "physicalnetworkid": phys.uuid if phys else None,
            "restartrequired": n.restart_required, "specifyvlan": off.specify_vlan if off else False,
            "specifyipranges": n.specify_ip_ranges,
            "canusefordeploy": n.traffic_type == "Guest" and not n.is_system and n.state not in GONE_STATES,
            "ispersistent": off.is_persistent if off else False, "isdefault": is_default_network(n, off, zone),
            "tags": tags[n.id], "details": {}, "displaynetwork": n.display_network, "strechedl2subnet": False,
            "redundantrouter": False, "egressdefaultpolicy": off.egress_default_policy if off else False,
            "internetprotocol": "IPv4", "supportsvmautoscaling": "Lb" in services,
            "receivedbytes": 0, "sentbytes": 0, "created": cs_date(n.created), "hasannotations": False,
        }  # fmt: skip
        out.append(item)
    return out


# -- public IP addresses ----------------------------------------------------------------------------

IP_FIELDS = (
    F("id", "string", "public IP address id"),
    F("ipaddress", "string", "public IP address"),
    F("allocated", "date", "date the public IP address was acquired"),
    F("zoneid", "string", "the ID of the zone the public IP address belongs to"),
    F("zonename", "string", "the name of the zone the public IP address belongs to"),
    F("issourcenat", "boolean", "true if the IP address is a source nat address, false otherwise"),
    F("account", "string", "the account the public IP address is associated with"),
    F("domainid", "string", "the domain ID the public IP address is associated with"),
    F("domain", "string", "the domain the public IP address is associated with"),
    F("domainpath", "string", "path of the domain to which the public IP address belongs"),
    F("forvirtualnetwork", "boolean", "the virtual network for the IP address"),
    F("vlanid", "string", "the ID of the VLAN associated with the IP address. This parameter is visible to ROOT"
      " admins only"),
    F("vlanname", "string", "the VLAN associated with the IP address"),
    F("isstaticnat", "boolean", "true if this ip is for static nat, false otherwise"),
    F("issystem", "boolean", "true if this ip is system ip (was allocated as a part of deployVm or createLbRule)"),
    F("virtualmachineid", "string", "virtual machine id the ip address is assigned to"),
    F("vmipaddress", "string", "virtual machine (dnat) ip address (not null only for static nat Ip)"),
    F("virtualmachinename", "string", "virtual machine name the ip address is assigned to"),
    F("virtualmachinedisplayname", "string", "virtual machine display name the ip address is assigned to (not"
      " null only for static nat Ip)"),
    F("virtualmachinetype", "string", "virtual machine type the ip address is assigned to"),
    F("associatednetworkid", "string", "the ID of the Network associated with the IP address"),
    F("associatednetworkname", "string", "the name of the Network associated with the IP address"),
    F("physicalnetworkid", "string", "the physical network this belongs to"),
    F("state", "string", "State of the ip address. Can be: Allocating, Allocated, Releasing, Reserved and Free"),
    F("tags", "list", "the list of resource tags associated with ip address", response=ResourceTagResponse),
    F("isportable", "boolean", "is public IP portable across the zones"),
    F("fordisplay", "boolean", "is public ip for display to the regular user"),
    F("forsystemvms", "boolean", "true if range is dedicated for System VMs"),
    F("hasrules", "boolean", "whether the ip address has Firewall/PortForwarding/LoadBalancing rules defined"),
    F("hasannotations", "boolean", "whether this public IP address has annotations"),
)


class IpAddressResponse(ResponseObject):
    """What associateIpAddress answers (``ipaddress``)."""

    object_name = "ipaddress"
    fields = IP_FIELDS


class PublicIpAddressResponse(ResponseObject):
    """The items of listPublicIpAddresses (``publicipaddress``)."""

    object_name = "publicipaddress"
    fields = IP_FIELDS


def public_ip_payload(s: Session, rows: list[PublicIp], *, root_admin: bool) -> list[dict[str, Any]]:
    if not rows:
        return []
    owners = Owners(s, rows)
    zones = _load(s, Zone, {r.zone_id for r in rows})
    vlans = _load(s, VlanIpRange, {r.vlan_id for r in rows})
    networks = _load(s, Network, {r.network_id or 0 for r in rows})
    vms = _load(s, VirtualMachine, {r.vm_id or 0 for r in rows})
    physical = _load(s, PhysicalNetwork, {v.physical_network_id or 0 for v in vlans.values()})
    tags = tags_for(s, "PublicIpAddress", [r.id for r in rows], key_value_only=True)
    out = []
    for r in rows:
        zone, vlan, net, vm = zones.get(r.zone_id), vlans.get(r.vlan_id), networks.get(r.network_id or 0), vms.get(r.vm_id or 0)
        phys = physical.get(vlan.physical_network_id or 0) if vlan else None
        own = owners.fields(r) if r.account_id else {}
        out.append({
            "id": r.uuid, "ipaddress": r.address, "allocated": cs_date(r.allocated) if r.allocated else None,
            "zoneid": zone.uuid if zone else None, "zonename": zone.name if zone else None,
            "issourcenat": r.source_nat, "account": own.get("account"), "domainid": own.get("domainid"),
            "domain": own.get("domain"), "domainpath": own.get("domainpath"),
            "forvirtualnetwork": vlan is None or vlan.vlan_type == "VirtualNetwork",
            "vlanid": vlan.uuid if vlan and root_admin else None,
            "vlanname": vlan.vlan_tag if vlan and root_admin else None,
            "isstaticnat": r.vm_id is not None, "issystem": r.is_system,
            "virtualmachineid": vm.uuid if vm else None, "vmipaddress": r.vm_ip if vm else None,
            "virtualmachinename": vm.name if vm else None,
            "virtualmachinedisplayname": (vm.display_name or vm.name) if vm else None,
            "virtualmachinetype": "UserVm" if vm else None,
            "associatednetworkid": net.uuid if net else None, "associatednetworkname": net.name if net else None,
            "physicalnetworkid": phys.uuid if phys and root_admin else None, "state": r.state,
            "tags": tags[r.id], "isportable": False, "fordisplay": r.for_display,
            "forsystemvms": bool(vlan and vlan.for_system_vms), "hasrules": False, "hasannotations": False,
        })  # fmt: skip
    return out


# -- forwarding rules (none exist until the rule commands do) -----------------------------------------

RULE_FIELDS = (
    F("id", "string", "the ID of the port forwarding rule"),
    F("privateport", "string", "the starting port of port forwarding rule's private port range"),
    F("privateendport", "string", "the ending port of port forwarding rule's private port range"),
    F("protocol", "string", "the protocol of the port forwarding rule"),
    F("publicport", "string", "the starting port of port forwarding rule's public port range"),
    F("publicendport", "string", "the ending port of port forwarding rule's private port range"),
    F("virtualmachineid", "string", "the VM ID for the port forwarding rule"),
    F("virtualmachinename", "string", "the VM name for the port forwarding rule"),
    F("virtualmachinedisplayname", "string", "the VM display name for the port forwarding rule"),
    F("ipaddressid", "string", "the public ip address id for the port forwarding rule"),
    F("ipaddress", "string", "the public ip address for the port forwarding rule"),
    F("vmguestip", "string", "the vm ip address for the port forwarding rule"),
    F("state", "string", "the state of the rule"),
    F("cidrlist", "string", "the cidr list to forward traffic from. Multiple entries are separated by a single"
      " comma character (,)."),
    F("tags", "list", "the list of resource tags associated with the rule", response=ResourceTagResponse),
    F("networkid", "string", "the id of the guest network the port forwarding rule belongs to"),
    F("fordisplay", "boolean", "is firewall for display to the regular user"),
)


class PortForwardingRuleResponse(ResponseObject):
    object_name = "portforwardingrule"
    fields = RULE_FIELDS


class IpForwardingRuleResponse(ResponseObject):
    object_name = "ipforwardingrule"
    fields = RULE_FIELDS


__all__ = [
    "IpAddressResponse", "IpForwardingRuleResponse", "NetworkResponse", "PortForwardingRuleResponse",
    "PublicIpAddressResponse", "is_default_network", "network_payload", "public_ip_payload",
]  # fmt: skip
