"""The VM response (UserVmResponse) and the NIC response, built for many VMs in a few queries."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from overcast.api.declare import Field, ResponseObject
from overcast.api.responses.common import Owners, ResourceTagResponse, tags_for
from overcast.api.serialize import cs_date
from overcast.db.models import (
    AffinityGroup,
    AffinityGroupVm,
    Bundle,
    DiskOffering,
    GuestOs,
    Host,
    InstanceGroup,
    InstanceGroupVm,
    Network,
    Nic,
    PublicIp,
    SecurityGroup,
    SecurityGroupVm,
    ServiceOffering,
    Template,
    User,
    UserData,
    VirtualMachine,
    Volume,
    Zone,
)

F = Field


class NicResponse(ResponseObject):
    object_name = "nic"
    fields = (
        F("id", "string", "the ID of the nic"),
        F("networkid", "string", "the ID of the corresponding network"),
        F("networkname", "string", "the name of the corresponding network"),
        F("netmask", "string", "the netmask of the nic"),
        F("gateway", "string", "the gateway of the nic"),
        F("ipaddress", "string", "the ip address of the nic"),
        F("isolationuri", "string", "the isolation uri of the nic"),
        F("broadcasturi", "string", "the broadcast uri of the nic"),
        F("traffictype", "string", "the traffic type of the nic"),
        F("type", "string", "the type of the nic"),
        F("isdefault", "boolean", "true if nic is default, false otherwise"),
        F("macaddress", "string", "true if nic is default, false otherwise"),
        F("deviceid", "string", "device id for the network when plugged into the virtual machine"),
        F("virtualmachineid", "string", "Id of the vm to which the nic belongs"),
        F("secondaryip", "list", "the Secondary ipv4 addr of nic"),
        F("extradhcpoption", "list", "the extra dhcp options on the nic"),
    )

    @staticmethod
    def of(nic: Nic, net: Network | None, vm_uuid: str | None = None) -> dict[str, Any]:
        return {
            "id": nic.uuid, "networkid": net.uuid if net else None, "networkname": net.name if net else None,
            "netmask": nic.netmask, "gateway": nic.gateway, "ipaddress": nic.ip_address,
            "isolationuri": nic.isolation_uri, "broadcasturi": nic.broadcast_uri, "traffictype": "Guest",
            "type": net.guest_type if net else None, "isdefault": nic.is_default, "macaddress": nic.mac_address,
            "deviceid": str(nic.device_id), "virtualmachineid": vm_uuid, "secondaryip": [], "extradhcpoption": [],
        }  # fmt: skip


class VmSecurityGroupResponse(ResponseObject):
    object_name = "securitygroup"
    fields = (
        F("id", "string", "the ID of the security group"),
        F("name", "string", "the name of the security group"),
        F("description", "string", "the description of the security group"),
        F("account", "string", "the account owning the security group"),
    )


class VmAffinityGroupResponse(ResponseObject):
    object_name = "affinitygroup"
    fields = (
        F("id", "string", "the ID of the affinity group"),
        F("name", "string", "the name of the affinity group"),
        F("type", "string", "the type of the affinity group"),
        F("description", "string", "the description of the affinity group"),
        F("account", "string", "the account owning the affinity group"),
    )


class UserVmResponse(ResponseObject):
    object_name = "virtualmachine"
    fields = (
        F("id", "string", "the ID of the virtual machine"),
        F("name", "string", "the name of the virtual machine"),
        F("displayname", "string", "user generated name. The name of the virtual machine is returned if no"
          " displayname exists."),
        F("account", "string", "the account associated with the virtual machine"),
        F("userid", "string", "the user's ID who deployed the virtual machine"),
        F("username", "string", "the user's name who deployed the virtual machine"),
        F("domainid", "string", "the ID of the domain in which the virtual machine exists"),
        F("domain", "string", "the name of the domain in which the virtual machine exists"),
        F("domainpath", "string", "path of the domain in which the virtual machine exists"),
        F("created", "date", "the date when this virtual machine was created"),
        F("lastupdated", "date", "the date when this virtual machine was updated last time"),
        F("state", "string", "the state of the virtual machine"),
        F("haenable", "boolean", "true if high-availability is enabled, false otherwise"),
        F("groupid", "string", "the group ID of the virtual machine"),
        F("group", "string", "the group name of the virtual machine"),
        F("zoneid", "string", "the ID of the availability zone for the virtual machine"),
        F("zonename", "string", "the name of the availability zone for the virtual machine"),
        F("hostid", "string", "the ID of the host for the virtual machine"),
        F("hostname", "string", "the name of the host for the virtual machine"),
        F("templateid", "string", "the ID of the template for the virtual machine. A -1 is returned if the"
          " virtual machine was created from an ISO file."),
        F("templatename", "string", "the name of the template for the virtual machine"),
        F("templatedisplaytext", "string", " an alternate display text of the template for the virtual machine"),
        F("templatetype", "string", "the type of the template for the virtual machine"),
        F("templateformat", "string", "the format of the template for the virtual machine"),
        F("passwordenabled", "boolean", "true if the password rest feature is enabled, false otherwise"),
        F("password", "string", "the password (if exists) of the virtual machine"),
        F("isoid", "string", "the ID of the ISO attached to the virtual machine"),
        F("isoname", "string", "the name of the ISO attached to the virtual machine"),
        F("isodisplaytext", "string", "an alternate display text of the ISO attached to the virtual machine"),
        F("serviceofferingid", "string", "the ID of the service offering of the virtual machine"),
        F("serviceofferingname", "string", "the name of the service offering of the virtual machine"),
        F("diskofferingid", "string", "the ID of the disk offering of the virtual machine. This parameter"
          " should not be used for retrieving disk offering details of DATA volumes. Use listVolumes API"
          " instead"),
        F("diskofferingname", "string", "the name of the disk offering of the virtual machine. This parameter"
          " should not be used for retrieving disk offering details of DATA volumes. Use listVolumes API"
          " instead"),
        F("cpunumber", "integer", "the number of vCPUs this virtual machine is using"),
        F("cpuspeed", "integer", "the speed of each vCPU"),
        F("memory", "integer", "the memory allocated for the virtual machine"),
        F("cpuused", "string", "the amount of the vm's CPU currently used"),
        F("networkkbsread", "long", "the incoming network traffic on the VM in KiB"),
        F("networkkbswrite", "long", "the outgoing network traffic on the host in KiB"),
        F("diskkbsread", "long", "the VM's disk read in KiB"),
        F("diskkbswrite", "long", "the VM's disk write in KiB"),
        F("diskioread", "long", "the read (IO) of disk on the VM"),
        F("diskiowrite", "long", "the write (IO) of disk on the VM"),
        F("guestosid", "string", "Os type ID of the virtual machine"),
        F("ostypeid", "string", "OS type id of the vm"),
        F("osdisplayname", "string", "OS name of the vm"),
        F("rootdeviceid", "long", "device ID of the root volume"),
        F("rootdevicetype", "string", "device type of the root volume"),
        F("securitygroup", "set", "list of security groups associated with the virtual machine",
          response=VmSecurityGroupResponse),
        F("affinitygroup", "set", "list of affinity groups associated with the virtual machine",
          response=VmAffinityGroupResponse),
        F("nic", "set", "the list of nics associated with vm", response=NicResponse),
        F("hypervisor", "string", "the hypervisor on which the template runs"),
        F("publicipid", "string", "public IP address id associated with vm via Static nat rule"),
        F("publicip", "string", "public IP address id associated with vm via Static nat rule"),
        F("instancename", "string", "instance name of the user vm; this parameter is returned to the ROOT"
          " admin only"),
        F("tags", "set", "the list of resource tags associated", response=ResourceTagResponse),
        F("details", "map", "Vm details in key/value pairs."),
        F("keypairs", "string", "ssh key-pairs"),
        F("displayvm", "boolean", "an optional field whether to the display the vm to the end user or not."),
        F("isdynamicallyscalable", "boolean", "true if vm contains XS/VMWare tools inorder to support dynamic"
          " scaling of VM cpu/memory."),
        F("deleteprotection", "boolean", "true if vm has delete protection."),
        F("userdataid", "string", "the id of userdata used for the VM"),
        F("userdataname", "string", "the name of userdata used for the VM"),
        F("userdatadetails", "string", "list of variables and values for the variables declared in userdata"),
        F("userdatapolicy", "string", "the userdata override policy with the userdata provided while"
          " deploying VM"),
        F("userdata", "string", "Base64 string containing the user data (listVirtualMachines userdata=true)"),
        F("bundleid", "string", "the ID of the bundle the VM was deployed from (an Overcast extension)",
          extension=True),
        F("bundlename", "string", "the name of the bundle the VM was deployed from (an Overcast extension)",
          extension=True),
        F("bundleversion", "integer", "the version of the bundle the VM was deployed from (an Overcast"
          " extension)", extension=True),
        F("ready", "boolean", "whether the guest reported that it is configured and ready since it last booted"
          " (an Overcast extension)", extension=True),
        F("readyat", "date", "when the guest reported ready (an Overcast extension)", extension=True),
        F("bootmode", "string", "Guest vm Boot Mode"),
        F("boottype", "string", "Guest vm Boot Type"),
        F("arch", "string", "CPU arch of the VM"),
        F("vmtype", "string", "User VM type"),
        F("pooltype", "string", "the pool type of the virtual machine"),
        F("receivedbytes", "long", "the total number of network traffic bytes received"),
        F("sentbytes", "long", "the total number of network traffic bytes sent"),
        F("servicestate", "string", "State of the Service from LB rule"),
        F("hasannotations", "boolean", "whether this virtual machine has annotations"),
    )


def vm_payload(s: Session, vms: list[VirtualMachine], *, root_admin: bool, details: str = "all",
               show_password: bool = False, user_data: bool = False) -> list[dict[str, Any]]:
    """Wire dicts for ``vms``. ``details='min'`` skips NICs, groups and tags (and their queries)."""
    if not vms:
        return []

    def load(model: Any, ids: set[int]) -> dict[int, Any]:
        ids = {i for i in ids if i}
        return {r.id: r for r in s.scalars(select(model).where(model.id.in_(ids)))} if ids else {}

    owners = Owners(s, vms)
    zones = load(Zone, {v.zone_id for v in vms})
    templates = load(Template, {v.template_id for v in vms} | {v.iso_id or 0 for v in vms})
    offerings = load(ServiceOffering, {v.service_offering_id for v in vms})
    disk_offerings = load(DiskOffering, {o.disk_offering_id for o in offerings.values()})
    hosts = load(Host, {v.host_id or 0 for v in vms})
    oses = load(GuestOs, {v.guest_os_id or 0 for v in vms})
    users = load(User, {v.user_id for v in vms})
    registered = load(UserData, {v.userdata_id or 0 for v in vms})
    bundles = load(Bundle, {v.bundle_id or 0 for v in vms})
    ids = [v.id for v in vms]
    full = details != "min"
    nics: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    sgs: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    ags: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    groups: dict[int, InstanceGroup] = {}
    tags: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    public: dict[int, PublicIp] = {}
    if full:
        nic_rows = list(s.scalars(select(Nic).where(Nic.vm_id.in_(ids), Nic.removed.is_(None)).order_by(Nic.device_id)))
        nets = load(Network, {n.network_id for n in nic_rows})
        by_id = {v.id: v for v in vms}
        for n in nic_rows:
            nics[n.vm_id].append(NicResponse.of(n, nets.get(n.network_id), by_id[n.vm_id].uuid))
        for vm_id, sg in s.execute(select(SecurityGroupVm.vm_id, SecurityGroup).join(
                SecurityGroup, SecurityGroup.id == SecurityGroupVm.security_group_id).where(SecurityGroupVm.vm_id.in_(ids))):
            sgs[vm_id].append({"id": sg.uuid, "name": sg.name, "description": sg.description,
                               "account": owners.fields(sg)["account"]})
        for vm_id, ag in s.execute(select(AffinityGroupVm.vm_id, AffinityGroup).join(
                AffinityGroup, AffinityGroup.id == AffinityGroupVm.group_id).where(AffinityGroupVm.vm_id.in_(ids))):
            ags[vm_id].append({"id": ag.uuid, "name": ag.name, "type": ag.group_type, "description": ag.description,
                               "account": owners.fields(ag)["account"]})
        for vm_id, g in s.execute(select(InstanceGroupVm.vm_id, InstanceGroup).join(
                InstanceGroup, InstanceGroup.id == InstanceGroupVm.group_id).where(InstanceGroupVm.vm_id.in_(ids))):
            groups[vm_id] = g
        tags = tags_for(s, "UserVm", ids)
        for ip in s.scalars(select(PublicIp).where(PublicIp.vm_id.in_(ids))):
            public[ip.vm_id or 0] = ip
    roots = dict(s.execute(select(Volume.vm_id, Volume.device_id).where(
        Volume.vm_id.in_(ids), Volume.volume_type == "ROOT", Volume.removed.is_(None))).all())
    out = []
    for v in vms:
        zone, tmpl, off = zones.get(v.zone_id), templates.get(v.template_id), offerings.get(v.service_offering_id)
        iso = templates.get(v.iso_id or 0) if v.iso_id else None
        host, os_, user = hosts.get(v.host_id or 0), oses.get(v.guest_os_id or 0), users.get(v.user_id)
        dof = disk_offerings.get(off.disk_offering_id) if off else None
        own = owners.fields(v)
        item: dict[str, Any] = {
            "id": v.uuid, "name": v.name, "displayname": v.display_name or v.name,
            "account": own["account"], "userid": user.uuid if user else None,
            "username": user.username if user else None, "domainid": own["domainid"], "domain": own["domain"],
            "domainpath": own["domainpath"], "created": cs_date(v.created), "lastupdated": cs_date(v.state_changed),
            "state": v.state, "haenable": v.ha_enabled,
            "zoneid": zone.uuid if zone else None, "zonename": zone.name if zone else None,
            "hostid": host.uuid if host and root_admin else None,
            "hostname": host.name if host and root_admin else None,
            "templateid": tmpl.uuid if tmpl and tmpl.format != "ISO" else ("-1" if tmpl else None),
            "templatename": tmpl.name if tmpl else None,
            "templatedisplaytext": tmpl.display_text if tmpl else None,
            "templatetype": tmpl.template_type if tmpl else None, "templateformat": tmpl.format if tmpl else None,
            "passwordenabled": bool(tmpl and tmpl.password_enabled),
            "password": v.password if show_password else None,
            "isoid": iso.uuid if iso else None, "isoname": iso.name if iso else None,
            "isodisplaytext": iso.display_text if iso else None,
            "serviceofferingid": off.uuid if off else None, "serviceofferingname": off.name if off else None,
            "diskofferingid": dof.uuid if dof else None, "diskofferingname": dof.name if dof else None,
            "cpunumber": v.cpu, "cpuspeed": v.speed, "memory": v.memory,
            "guestosid": os_.uuid if os_ else None, "ostypeid": os_.uuid if os_ else None,
            "osdisplayname": os_.display_name if os_ else None,
            "rootdeviceid": roots.get(v.id, 0), "rootdevicetype": "ROOT", "hypervisor": v.hypervisor_type,
            "instancename": v.instance_name if root_admin else None,
            "details": json.loads(v.details) if v.details else {},
            "keypairs": v.keypairs, "displayvm": v.display_vm, "isdynamicallyscalable": v.dynamically_scalable,
            "deleteprotection": v.delete_protection, "bootmode": v.boot_mode.lower(),
            "boottype": v.boot_type.capitalize() if v.boot_type != "UEFI" else "UEFI", "arch": "x86_64",
            "vmtype": "UserVm", "ready": v.ready_at is not None, "readyat": cs_date(v.ready_at),
        }  # fmt: skip
        if v.userdata_id:
            ud = registered.get(v.userdata_id)
            item.update({"userdataid": ud.uuid if ud else None, "userdataname": ud.name if ud else None,
                         "userdatadetails": v.userdata_details,
                         "userdatapolicy": tmpl.userdata_policy if tmpl and tmpl.userdata_id else None})
        if user_data:
            item["userdata"] = v.user_data
        if v.bundle_id:
            b = bundles.get(v.bundle_id)
            item.update({"bundleid": b.uuid if b else None, "bundlename": b.name if b else None,
                         "bundleversion": v.bundle_version})
        if full:
            g = groups.get(v.id)
            ip = public.get(v.id)
            item.update({
                "groupid": g.uuid if g else None, "group": g.name if g else None,
                "cpuused": "0%" if v.state == "Running" else None,
                "networkkbsread": 0, "networkkbswrite": 0, "diskkbsread": 0, "diskkbswrite": 0,
                "diskioread": 0, "diskiowrite": 0, "receivedbytes": 0, "sentbytes": 0,
                "securitygroup": sgs[v.id], "affinitygroup": ags[v.id], "nic": nics[v.id], "tags": tags[v.id],
                "publicipid": ip.uuid if ip else None, "publicip": ip.address if ip else None,
            })  # fmt: skip
        out.append(item)
    return out


