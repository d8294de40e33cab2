"""The NICs of a VM as listNics answers them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from overcast.api.declare import Field, ResponseObject
from overcast.api.responses.vms import NicResponse
from overcast.db.models import Network, Nic, PublicIp, VirtualMachine
from overcast.engine.networks import vlan_of

F = Field


class ListNicResponse(ResponseObject):
    """listNics' items: the NIC as VMs embed it (without secondary IPs), plus VLAN and static NAT."""

    object_name = "nic"
    fields = tuple(f for f in NicResponse.fields if f.name != "secondaryip") + (
        F("vlanid", "integer", "ID of the VLAN/VNI if available"),
        F("publicipid", "string", "public IP address id associated with this nic via Static nat rule"),
        F("publicip", "string", "public IP address associated with this nic via Static nat rule"),
    )


def nic_payload(s: Session, nics: list[Nic]) -> list[dict[str, Any]]:
    if not nics:
        return []
    nets = {n.id: n for n in s.scalars(select(Network).where(Network.id.in_({x.network_id for x in nics})))}
    vms = dict(s.execute(select(VirtualMachine.id, VirtualMachine.uuid).where(
        VirtualMachine.id.in_({x.vm_id for x in nics}))).tuples().all())
    nat = {(ip.vm_id, ip.vm_ip): ip for ip in s.scalars(select(PublicIp).where(
        PublicIp.vm_id.in_({x.vm_id for x in nics}), PublicIp.state != "Free"))}
    out = []
    for nic in nics:
        net = nets.get(nic.network_id)
        vlan = vlan_of(nic.broadcast_uri)
        ip = nat.get((nic.vm_id, nic.ip_address))
        out.append({
            "id": nic.uuid, "networkid": net.uuid if net else None, "networkname": net.name if net else None,
            "netmask": nic.netmask, "gateway": nic.gateway, "ipaddress": nic.ip_address,
            "isolationuri": nic.isolation_uri, "broadcasturi": nic.broadcast_uri, "traffictype": "Guest",
            "type": net.guest_type if net else None, "isdefault": nic.is_default, "macaddress": nic.mac_address,
            "deviceid": str(nic.device_id), "virtualmachineid": vms.get(nic.vm_id),
            "vlanid": int(vlan) if vlan and vlan.isdigit() else None, "extradhcpoption": [],
            "publicipid": ip.uuid if ip else None, "publicip": ip.address if ip else None,
        })  # fmt: skip
    return out


__all__ = ["ListNicResponse", "nic_payload"]
