"""NIC commands: list a VM's NICs, add one, remove one, change the default, change a NIC's address."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import object_session

from overcast.access.roles import ALL_ROLES
from overcast.api.commands.vms import RELATED, VmCommand, vm_result
from overcast.api.context import CallContext
from overcast.api.declare import (
    Command, BOOLEAN, STRING, UUID, Access, ListResult, Param, Result, api_command,
)  # fmt: skip
from overcast.api.listing import fetch_page
from overcast.api.responses.nics import ListNicResponse, nic_payload
from overcast.api.responses.vms import UserVmResponse
from overcast.db.models import Network, Nic, VirtualMachine
from overcast.engine import nics as engine

NIC_RELATED = ("listNics", "addNicToVirtualMachine", "removeNicFromVirtualMachine",
               "updateDefaultNicForVirtualMachine", "updateVmNicIp")


def vm_id_param(acl: Access = Access.OPERATE) -> Param:
    return Param(UUID, "virtualmachineid", required=True, entity=VirtualMachine, acl=acl, related=RELATED,
                 description="Virtual Machine ID")


def nic_id_param(description: str = "NIC ID") -> Param:
    return Param(UUID, "nicid", required=True, entity=Nic, acl=Access.OPERATE, related=NIC_RELATED,
                 description=description)


@api_command("listNics", response=ListNicResponse, roles=ALL_ROLES, is_list=True, description="list the vm nics"
             "  IP to NIC")
class ListNics(Command):
    vm = vm_id_param(Access.LIST)
    nic = Param(UUID, "nicid", description="the ID of the nic to list IPs")
    network = Param(UUID, "networkid", description="list nic of the specific vm's network")
    for_display = Param(BOOLEAN, "fordisplay", since="4.4", description="list resources by display flag; only ROOT"
                        " admin is eligible to pass this parameter")

    def execute(self, ctx: CallContext) -> Result:
        stmt = select(Nic).where(Nic.vm_id == self.vm.id, Nic.removed.is_(None)).order_by(Nic.device_id, Nic.id)
        if self.nic:
            stmt = stmt.where(Nic.uuid == self.nic)
        if self.network:
            stmt = stmt.where(Nic.network_id.in_(select(Network.id).where(Network.uuid == self.network)))
        rows, count = fetch_page(ctx, stmt, self)
        return ListResult(nic_payload(ctx.session, rows), count)


class VmNicCommand(VmCommand):
    def instance(self) -> tuple[str | None, str | None]:
        return "VirtualMachine", self.vm.uuid


@api_command("addNicToVirtualMachine", response=UserVmResponse, roles=ALL_ROLES, is_async=True,
             event_type="NIC.CREATE", since="3.0.1", description="Adds VM to specified network by creating a NIC")
class AddNicToVirtualMachine(VmNicCommand):
    vm = vm_id_param()
    network = Param(UUID, "networkid", required=True, entity=Network, acl=Access.USE, description="Network ID")
    ip_address = Param(STRING, "ipaddress", description="IP Address for the new network")
    mac_address = Param(STRING, "macaddress", since="4.15.0", description="MAC-Address for the new network")

    def execute(self, ctx: CallContext) -> Result:
        engine.add_nic(ctx, self.vm, self.network, ip=self.ip_address, mac=self.mac_address)
        return vm_result(ctx, self.vm)


@api_command("removeNicFromVirtualMachine", response=UserVmResponse, roles=ALL_ROLES, is_async=True,
             idempotent=True, event_type="NIC.DELETE", since="3.0.1", description="Removes VM from specified"
             " network by deleting a NIC")
class RemoveNicFromVirtualMachine(VmNicCommand):
    vm = vm_id_param()
    nic = nic_id_param()

    def execute(self, ctx: CallContext) -> Result:
        engine.remove_nic(ctx, self.vm, self.nic)
        return vm_result(ctx, self.vm)


@api_command("updateDefaultNicForVirtualMachine", response=UserVmResponse, roles=ALL_ROLES, is_async=True,
             idempotent=True, event_type="NIC.UPDATE", since="3.0.1", description="Changes the default NIC on a VM")
class UpdateDefaultNicForVirtualMachine(VmNicCommand):
    vm = vm_id_param()
    nic = nic_id_param()

    def execute(self, ctx: CallContext) -> Result:
        engine.set_default_nic(ctx, self.vm, self.nic)
        return vm_result(ctx, self.vm)


@api_command("updateVmNicIp", response=UserVmResponse, roles=ALL_ROLES, is_async=True, event_type="NET.IPASSIGN",
             since="4.4", description="Update the default Ip of a VM Nic")
class UpdateVmNicIp(Command):
    nic = nic_id_param("the ID of the nic to which you want to assign private IP")
    ip_address = Param(STRING, "ipaddress", description="Secondary IP Address")

    def instance(self) -> tuple[str | None, str | None]:
        s = object_session(self.nic)
        uuid = s.scalar(select(VirtualMachine.uuid).where(VirtualMachine.id == self.nic.vm_id)) if s else None
        return "VirtualMachine", uuid

    def execute(self, ctx: CallContext) -> Result:
        vm = engine.update_nic_ip(ctx, self.nic, self.ip_address)
        return vm_result(ctx, vm)


__all__ = ["AddNicToVirtualMachine", "ListNics", "RemoveNicFromVirtualMachine", "UpdateDefaultNicForVirtualMachine",
           "UpdateVmNicIp"]
