"""Public IP address commands (associate, disassociate, list) and the forwarding rule lists, which stay
empty until port forwarding and static NAT rules exist."""

from __future__ import annotations

from sqlalchemy import and_, or_, select

from overcast.access.acl import resolve_owner_filters, scope_owned
from overcast.access.roles import ADMINS, ALL_ROLES, ROOT_ADMIN
from overcast.api.commands.vms import owner_account
from overcast.api.context import CallContext
from overcast.api.declare import (
    Command, BOOLEAN, MAP, STRING, UUID, Access, ListResult, ObjectResult, Param, Result, Success, SuccessResponse,
    api_command,
)  # fmt: skip
from overcast.api.listing import fetch_page, keyword_filter
from overcast.api.responses.networks import (
    IpAddressResponse,
    IpForwardingRuleResponse,
    PortForwardingRuleResponse,
    PublicIpAddressResponse,
    public_ip_payload,
)
from overcast.db.models import (
    Account,
    Domain,
    Network,
    PhysicalNetwork,
    PublicIp,
    VirtualMachine,
    VlanIpRange,
    Zone,
)
from overcast.engine import networks as engine
from overcast.engine.tags import tag_filter
from overcast.errors import InvalidParameterValue

IP_RELATED = ("associateIpAddress", "listPublicIpAddresses", "disassociateIpAddress")


def _owner_params() -> tuple[Param, Param, Param, Param]:
    """account, domainid, isrecursive, listall of a list of tenant resources."""
    return (
        Param(STRING, description="list resources by account. Must be used with the domainId parameter."),
        Param(UUID, "domainid", entity=Domain, description="list only resources belonging to the domain specified"),
        Param(BOOLEAN, "isrecursive", description="defaults to false, but if true, lists all resources from the"
              " parent specified by the domainId till leaves."),
        Param(BOOLEAN, "listall", description="If set to false, list only resources belonging to the command's"
              " caller; if set to true - list resources that the caller is authorized to see. Default value is"
              " false"),
    )


def check_ip_access(ctx: CallContext, ip: PublicIp, access: Access, param: str = "id") -> None:
    """Free addresses belong to no account: only root admins act on them by id."""
    if ctx.me.is_root_admin:
        return
    if ip.account_id is None:
        if access is Access.LIST:
            return
        raise InvalidParameterValue(f"IP address {ip.address} is not associated with any account (parameter {param})",
                                    uuids=[(ip.uuid, "ipAddressId")])
    ctx.acl.check_owned(ctx.me, ip.account_id, access)


@api_command("associateIpAddress", response=IpAddressResponse, roles=ALL_ROLES, is_async=True, creates_entity=True,
             idempotent=True, event_type="NET.IPASSIGN", description="Acquires and associates a public IP to an"
             " account.")
class AssociateIpAddress(Command):
    network = Param(UUID, "networkid", entity=Network, acl=Access.USE, description="The network this IP address"
                    " should be associated to.")
    zone = Param(UUID, "zoneid", entity=Zone, description="the ID of the availability zone you want to acquire an"
                 " public IP address from")
    ip_address = Param(STRING, "ipaddress", since="4.13", description="IP Address to be associated")
    for_display = Param(BOOLEAN, "fordisplay", authorized=ADMINS, since="4.4", description="an optional field,"
                        " whether to the display the IP to the end user or not")
    account = Param(STRING, description="the account to associate with this IP address")
    domain = Param(UUID, "domainid", entity=Domain, acl=Access.LIST, description="the ID of the domain to"
                   " associate with this IP address")

    def prepare(self, ctx: CallContext) -> str | None:
        me = ctx.me
        if self.account or self.network is None:
            owner = owner_account(ctx, self.account, self.domain)
        else:  # the network's owner, as CloudStack does when no account is named
            owner = ctx.session.get(Account, self.network.account_id)
            assert owner is not None
            if self.network.acl_type == "Account":
                ctx.acl.check_owned(me, owner.id, Access.OPERATE)
            else:
                owner = owner_account(ctx, None, None)
        ip = engine.associate_ip(ctx, owner, network=self.network, zone=self.zone, address=self.ip_address)
        if self.for_display is not None:
            ip.for_display = self.for_display
        self.ip_uuid = ip.uuid
        return ip.uuid

    def instance(self) -> tuple[str | None, str | None]:
        return "IpAddress", getattr(self, "ip_uuid", None)

    def execute(self, ctx: CallContext) -> Result:
        assert ctx.job is not None
        ip = ctx.job_entity(PublicIp)
        if ip is None or ip.state == "Free":
            raise InvalidParameterValue("The IP address of this job was released before the job ran")
        return ObjectResult(public_ip_payload(ctx.session, [ip], root_admin=ctx.me.is_root_admin)[0])


@api_command("disassociateIpAddress", response=SuccessResponse, roles=ALL_ROLES, is_async=True,
             event_type="NET.IPRELEASE", description="Disassociates an IP address from the account.")
class DisassociateIpAddress(Command):
    id = Param(UUID, required=True, entity=PublicIp, related=IP_RELATED, description="the ID of the public IP"
               " address to disassociate. Mutually exclusive with the ipaddress parameter")

    def instance(self) -> tuple[str | None, str | None]:
        return "IpAddress", self.id.uuid

    def execute(self, ctx: CallContext) -> Result:
        check_ip_access(ctx, self.id, Access.OPERATE)
        engine.disassociate_ip(ctx, self.id)
        return Success()


@api_command("listPublicIpAddresses", response=PublicIpAddressResponse, roles=ALL_ROLES, is_list=True,
             description="Lists all public IP addresses")
class ListPublicIpAddresses(Command):
    id = Param(UUID, description="lists IP address by ID")
    ip_address = Param(STRING, "ipaddress", description="lists the specified IP address")
    allocated_only = Param(BOOLEAN, "allocatedonly", description="limits search results to allocated public IP"
                           " addresses")
    associated_network = Param(UUID, "associatednetworkid", description="lists all public IP addresses associated"
                               " to the network specified")
    is_source_nat = Param(BOOLEAN, "issourcenat", description="list only source NAT IP addresses")
    is_static_nat = Param(BOOLEAN, "isstaticnat", description="list only static NAT IP addresses")
    for_virtual_network = Param(BOOLEAN, "forvirtualnetwork", description="the virtual network for the IP address")
    zone = Param(UUID, "zoneid", description="lists all public IP addresses by zone ID")
    vlan = Param(UUID, "vlanid", authorized=ROOT_ADMIN, description="lists all public IP addresses by VLAN ID")
    physical_network = Param(UUID, "physicalnetworkid", authorized=ROOT_ADMIN, description="lists all public IP"
                             " addresses by physical network ID")
    state = Param(STRING, since="4.16.0", description="lists all public IP addresses by state")
    for_display = Param(BOOLEAN, "fordisplay", since="4.4", description="list resources by display flag; only ROOT"
                        " admin is eligible to pass this parameter")
    for_system_vms = Param(BOOLEAN, "forsystemvms", since="4.20.0", authorized=ROOT_ADMIN, description="true if"
                           " range is dedicated for system VMs")
    tags = Param(MAP, description="List resources by tags (key/value pairs)")
    account, domain, is_recursive, list_all = _owner_params()

    def execute(self, ctx: CallContext) -> Result:
        me, s = ctx.me, ctx.session
        domain, account = resolve_owner_filters(ctx.acl, me, domain=self.domain, account_name=self.account)
        owned = scope_owned(select(PublicIp.id).where(PublicIp.account_id.is_not(None)), me,
                            account_col=PublicIp.account_id, domain_col=PublicIp.domain_id,
                            list_all=bool(self.list_all), is_recursive=bool(self.is_recursive), domain=domain,
                            account=account)
        allocated_only = True if self.allocated_only is None else self.allocated_only
        mine = and_(PublicIp.id.in_(owned), PublicIp.state != "Free")
        if allocated_only:
            visible = mine
        else:  # free addresses of ranges dedicated to nobody (or to the caller's account) are listed too
            visible = or_(mine, and_(PublicIp.state == "Free", PublicIp.vlan_id.in_(select(VlanIpRange.id).where(
                VlanIpRange.removed.is_(None), or_(VlanIpRange.account_id.is_(None),
                                                   VlanIpRange.account_id == me.account_id)))))
        stmt = select(PublicIp).where(visible).order_by(PublicIp.id)
        if not me.is_root_admin:
            stmt = stmt.where(PublicIp.is_system.is_(False), PublicIp.vlan_id.in_(select(VlanIpRange.id).where(
                VlanIpRange.for_system_vms.is_(False))))
        if self.id:
            stmt = stmt.where(PublicIp.uuid == self.id)
        if self.ip_address:
            stmt = stmt.where(PublicIp.address == self.ip_address.strip())
        if self.associated_network:
            stmt = stmt.where(PublicIp.network_id.in_(select(Network.id).where(Network.uuid == self.associated_network)))
        if self.is_source_nat is not None:
            stmt = stmt.where(PublicIp.source_nat.is_(self.is_source_nat))
        if self.is_static_nat is not None:
            stmt = stmt.where(PublicIp.vm_id.is_not(None) if self.is_static_nat else PublicIp.vm_id.is_(None))
        if self.for_virtual_network is not None:
            kind = "VirtualNetwork" if self.for_virtual_network else "DirectAttached"
            stmt = stmt.where(PublicIp.vlan_id.in_(select(VlanIpRange.id).where(VlanIpRange.vlan_type == kind)))
        if self.zone:
            stmt = stmt.where(PublicIp.zone_id.in_(select(Zone.id).where(Zone.uuid == self.zone)))
        if self.vlan:
            stmt = stmt.where(PublicIp.vlan_id.in_(select(VlanIpRange.id).where(VlanIpRange.uuid == self.vlan)))
        if self.physical_network:
            stmt = stmt.where(PublicIp.vlan_id.in_(select(VlanIpRange.id).join(
                PhysicalNetwork, PhysicalNetwork.id == VlanIpRange.physical_network_id).where(
                PhysicalNetwork.uuid == self.physical_network)))
        if self.for_system_vms is not None:
            stmt = stmt.where(PublicIp.vlan_id.in_(select(VlanIpRange.id).where(
                VlanIpRange.for_system_vms.is_(self.for_system_vms))))
        if self.state:
            stmt = stmt.where(PublicIp.state == self.state.strip().capitalize())
        if self.for_display is not None:
            stmt = stmt.where(PublicIp.for_display.is_(self.for_display))
        elif not me.is_admin:
            stmt = stmt.where(PublicIp.for_display.is_(True))
        stmt = stmt.where(*tag_filter("PublicIpAddress", PublicIp.id, self.tags))
        kw = keyword_filter(self.keyword, PublicIp.address, PublicIp.state)
        if kw is not None:
            stmt = stmt.where(kw)
        rows, count = fetch_page(ctx, stmt, self)
        return ListResult(public_ip_payload(s, rows, root_admin=me.is_root_admin), count)


class EmptyRuleList(Command):
    """A list of rules of a kind that can't be created yet: checks its filters, then answers ``{}``."""

    def execute(self, ctx: CallContext) -> Result:
        resolve_owner_filters(ctx.acl, ctx.me, domain=self.domain, account_name=self.account)
        ip = getattr(self, "ip_address", None)
        if ip is not None:
            check_ip_access(ctx, ip, Access.LIST, "ipaddressid")
        return ListResult([], 0)


@api_command("listPortForwardingRules", response=PortForwardingRuleResponse, roles=ALL_ROLES, is_list=True,
             description="Lists all port forwarding rules for an IP address.")
class ListPortForwardingRules(EmptyRuleList):
    id = Param(UUID, description="Lists rule with the specified ID.")
    ip_address = Param(UUID, "ipaddressid", entity=PublicIp, related=IP_RELATED, description="the ID of IP address"
                       " of the port forwarding services")
    network = Param(UUID, "networkid", entity=Network, acl=Access.LIST, since="4.3", description="list port"
                    " forwarding rules for certain network")
    for_display = Param(BOOLEAN, "fordisplay", since="4.4", description="list resources by display flag; only ROOT"
                        " admin is eligible to pass this parameter")
    tags = Param(MAP, description="List resources by tags (key/value pairs)")
    account, domain, is_recursive, list_all = _owner_params()


@api_command("listIpForwardingRules", response=IpForwardingRuleResponse, roles=ALL_ROLES, is_list=True,
             description="List the IP forwarding rules")
class ListIpForwardingRules(EmptyRuleList):
    id = Param(UUID, description="Lists rule with the specified ID.")
    ip_address = Param(UUID, "ipaddressid", entity=PublicIp, related=IP_RELATED, description="list the rule"
                       " belonging to this public IP address")
    vm = Param(UUID, "virtualmachineid", entity=VirtualMachine, acl=Access.LIST, description="Lists all rules"
               " applied to the specified VM.")
    account, domain, is_recursive, list_all = _owner_params()


__all__ = ["AssociateIpAddress", "DisassociateIpAddress", "ListIpForwardingRules", "ListPortForwardingRules",
           "ListPublicIpAddresses", "check_ip_access"]
