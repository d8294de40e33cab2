"""Guest network commands: create, list, update, delete, restart."""

from __future__ import annotations


from sqlalchemy import and_, func, or_, select

from overcast.access.acl import resolve_owner_filters, scope_owned
from overcast.access.roles import ADMINS, ALL_ROLES, ROOT_ADMIN
from overcast.api.commands.vms import owner_account
from overcast.api.context import CallContext
from overcast.api.declare import (
    BOOLEAN, LIST, MAP, STRING, UUID, Access, Command, ListResult, ObjectResult, Param, Result, Success,
    SuccessResponse, api_command,
)  # fmt: skip
from overcast.api.listing import fetch_page, keyword_filter
from overcast.api.responses.networks import NetworkResponse, network_payload
from overcast.db.models import Domain, Network, NetworkOffering, PhysicalNetwork, Zone
from overcast.engine import networks as engine
from overcast.engine.tags import tag_filter
from overcast.errors import InvalidParameterValue, PermissionDenied

NETWORK_RELATED = ("createNetwork", "listNetworks", "updateNetwork", "deleteNetwork", "restartNetwork")



def network_param(name: str = "id", *, acl: Access = Access.OPERATE, required: bool = True,
                  description: str = "the ID of the network") -> Param:
    return Param(UUID, name, required=required, entity=Network, acl=acl, related=NETWORK_RELATED,
                 description=description)


def network_result(ctx: CallContext, net: Network) -> ObjectResult:
    ctx.session.flush()
    ctx.session.refresh(net)
    return ObjectResult(network_payload(ctx.session, [net], root_admin=ctx.me.is_root_admin)[0])


def _guest_offering(offering: NetworkOffering) -> None:
    if offering.removed is not None or offering.traffic_type != "Guest" or offering.system_only:
        raise InvalidParameterValue(f"Network offering {offering.name} can't be used for guest networks (parameter"
                                    " networkofferingid)")


@api_command("createNetwork", response=NetworkResponse, roles=ALL_ROLES, event_type="NETWORK.CREATE",
             description="Creates a network")
class CreateNetwork(Command):
    name = Param(STRING, required=True, description="the name of the network")
    display_text = Param(STRING, "displaytext", description="the display text of the network")
    offering = Param(UUID, "networkofferingid", required=True, entity=NetworkOffering, description="the network"
                     " offering ID")
    zone = Param(UUID, "zoneid", required=True, entity=Zone, description="the zone ID for the network")
    physical_network = Param(UUID, "physicalnetworkid", entity=PhysicalNetwork, authorized=ADMINS,
                             description="the physical network ID the network belongs to")
    gateway = Param(STRING, description="the gateway of the network. Required for shared networks and isolated"
                    " networks when it belongs to VPC")
    netmask = Param(STRING, description="the netmask of the network. Required for shared networks and isolated"
                    " networks when it belongs to VPC")
    start_ip = Param(STRING, "startip", description="the beginning IP address in the network IP range")
    end_ip = Param(STRING, "endip", description="the ending IP address in the network IP range. If not specified,"
                   " will be defaulted to startIP")
    vlan = Param(STRING, authorized=ROOT_ADMIN, description="the ID or VID of the network")
    network_domain = Param(STRING, "networkdomain", description="network domain")
    acl_type = Param(STRING, "acltype", description="Access control type; supported values are account and domain."
                     " In 3.0 all shared networks should have aclType=Domain, and all isolated networks -"
                     " Account. Account means that only the account owner can use the network, domain - all"
                     " accounts in the domain can use the network")
    subdomain_access = Param(BOOLEAN, "subdomainaccess", description="Defines whether to allow subdomains to use"
                             " networks dedicated to their parent domain(s). Should be used with aclType=Domain,"
                             " defaulted to allow.subdomain.network.access global config if not specified")
    display_network = Param(BOOLEAN, "displaynetwork", authorized=ADMINS, since="4.2", description="an optional"
                            " field, whether to the display the network to the end user or not.")
    account = Param(STRING, description="account that will own the network. Account should be under the selected"
                    " domain")
    domain = Param(UUID, "domainid", entity=Domain, acl=Access.LIST, description="domain ID of the account owning a"
                   " network. If the account is not specified, but projectId is passed in, the domainId must match"
                   " the project's domain")

    def execute(self, ctx: CallContext) -> Result:
        me = ctx.me
        off = self.offering
        _guest_offering(off)
        if not (self.name or "").strip():
            raise InvalidParameterValue("Please specify a name for the network (parameter name)")
        if off.guest_ip_type == "Isolated":
            for value, param in ((self.start_ip, "startip"), (self.end_ip, "endip"), (self.vlan, "vlan"),
                                 (self.acl_type, "acltype"), (self.subdomain_access, "subdomainaccess")):
                if value is not None and not (param == "acltype" and str(value).lower() == "account"):
                    raise InvalidParameterValue(f"{param} can only be given for shared networks (parameter {param})")
            owner = owner_account(ctx, self.account, self.domain)
            net = engine.create_isolated_network(
                ctx, owner=owner, zone=self.zone, offering=off, name=self.name.strip(), display_text=self.display_text,
                gateway=self.gateway, netmask=self.netmask, network_domain=self.network_domain,
                physical_network=self.physical_network)
        elif off.guest_ip_type == "Shared":
            if not me.is_admin:
                raise PermissionDenied("Only Admins can create network with guest type Shared")
            owner = owner_account(ctx, self.account, self.domain) if self.account else None
            domain = self.domain if owner is None else None
            if domain is not None:
                ctx.acl.check_domain(me, domain, Access.OPERATE)
            elif owner is None and not me.is_root_admin:
                raise PermissionDenied("Only root admins can create zone-wide shared networks: pass domainid (or"
                                       " account and domainid)")
            net = engine.create_shared_network(
                ctx, zone=self.zone, offering=off, name=self.name.strip(), display_text=self.display_text,
                owner=owner, domain=domain, acl_type=self.acl_type, subdomain_access=self.subdomain_access,
                vlan=self.vlan, gateway=self.gateway, netmask=self.netmask, start_ip=self.start_ip,
                end_ip=self.end_ip, network_domain=self.network_domain, physical_network=self.physical_network)
        else:
            raise InvalidParameterValue(f"Network offering {off.name} is for {off.guest_ip_type} networks, which can't"
                                        " be created here yet: use an Isolated or Shared offering (parameter"
                                        " networkofferingid)")
        if self.display_network is not None:
            net.display_network = self.display_network
        return network_result(ctx, net)


def _ancestor_paths(path: str) -> list[str]:
    """``/a/b/`` -> ``["/", "/a/", "/a/b/"]``."""
    parts = [p for p in path.split("/") if p]
    return ["/"] + ["/" + "".join(p + "/" for p in parts[: i + 1]) for i in range(len(parts))]


@api_command("listNetworks", response=NetworkResponse, roles=ALL_ROLES, is_list=True,
             description="Lists all available networks.")
class ListNetworks(Command):
    id = Param(UUID, description="list networks by ID")
    name = Param(STRING, since="4.15.0", description="list networks by name")
    zone = Param(UUID, "zoneid", description="the zone ID of the network")
    type = Param(STRING, description="the type of the network. Supported values are: isolated, l2, shared and all")
    traffic_type = Param(STRING, "traffictype", description="type of the traffic")
    can_use_for_deploy = Param(BOOLEAN, "canusefordeploy", description="list networks available for vm deployment")
    offering = Param(UUID, "networkofferingid", since="4.19", description="list networks by network offering ID")
    physical_network = Param(UUID, "physicalnetworkid", description="list networks by physical network id")
    acl_type = Param(STRING, "acltype", description="list networks by ACL (access control list) type. Supported"
                     " values are account and domain")
    is_system = Param(BOOLEAN, "issystem", description="true if network is system, false otherwise")
    restart_required = Param(BOOLEAN, "restartrequired", description="list networks by restartRequired")
    specify_ip_ranges = Param(BOOLEAN, "specifyipranges", description="true if need to list only networks which"
                              " support specifying IP ranges")
    supported_services = Param(LIST, "supportedservices", description="list networks supporting certain services")
    vlan = Param(STRING, authorized=ROOT_ADMIN, since="4.17.0", description="the ID or VID of the network")
    display_network = Param(BOOLEAN, "displaynetwork", authorized=ADMINS, since="4.4", description="list resources"
                            " by display flag; only ROOT admin is eligible to pass this parameter")
    for_vpc = Param(BOOLEAN, "forvpc", description="the network belongs to VPC")
    tags = Param(MAP, description="List resources by tags (key/value pairs)")
    account = Param(STRING, description="list resources by account. Must be used with the domainId parameter.")
    domain = Param(UUID, "domainid", entity=Domain, description="list only resources belonging to the domain"
                   " specified")
    is_recursive = Param(BOOLEAN, "isrecursive", description="defaults to false, but if true, lists all resources"
                         " from the parent specified by the domainId till leaves.")
    list_all = Param(BOOLEAN, "listall", description="If set to false, list only resources belonging to the"
                     " command's caller; if set to true - list resources that the caller is authorized to see."
                     " Default value is false")

    def execute(self, ctx: CallContext) -> Result:
        me, s = ctx.me, ctx.session
        domain, account = resolve_owner_filters(ctx.acl, me, domain=self.domain, account_name=self.account)
        list_all, recursive = bool(self.list_all), bool(self.is_recursive)
        owned = scope_owned(select(Network.id).where(Network.acl_type == "Account"), me,
                            account_col=Network.account_id, domain_col=Network.domain_id, list_all=list_all,
                            is_recursive=recursive, domain=domain, account=account)
        visible = [Network.id.in_(owned)]
        if account is None:
            # Domain networks: those the caller's accounts may use, and (admins) those of the domains in reach.
            usable = or_(Network.domain_id == me.domain_id, and_(Network.subdomain_access.is_(True), Network.domain_id.in_(
                select(Domain.id).where(Domain.path.in_(_ancestor_paths(me.domain_path))))))
            shared = usable
            if me.is_admin and (list_all or domain is not None):
                base = domain.path if domain is not None else me.domain_path
                shared = or_(usable, Network.domain_id.in_(select(Domain.id).where(Domain.path.startswith(base))))
            if domain is not None:
                within = (Network.domain_id.in_(select(Domain.id).where(Domain.path.startswith(domain.path)))
                          if recursive or list_all else Network.domain_id == domain.id)
                shared = and_(shared, within)
            visible.append(and_(Network.acl_type == "Domain", shared))
        stmt = select(Network).where(Network.removed.is_(None), or_(*visible)).order_by(Network.id)
        if self.id:
            stmt = stmt.where(Network.uuid == self.id)
        if self.name:
            stmt = stmt.where(Network.name == self.name)
        if self.zone:
            stmt = stmt.where(Network.zone_id.in_(select(Zone.id).where(Zone.uuid == self.zone)))
        if self.type and self.type.lower() != "all":
            stmt = stmt.where(func.lower(Network.guest_type) == self.type.strip().lower())
        if self.traffic_type:
            stmt = stmt.where(func.lower(Network.traffic_type) == self.traffic_type.strip().lower())
        if self.acl_type:
            stmt = stmt.where(func.lower(Network.acl_type) == self.acl_type.strip().lower())
        if self.offering:
            stmt = stmt.where(Network.network_offering_id.in_(select(NetworkOffering.id).where(
                NetworkOffering.uuid == self.offering)))
        if self.physical_network:
            stmt = stmt.where(Network.physical_network_id.in_(select(PhysicalNetwork.id).where(
                PhysicalNetwork.uuid == self.physical_network)))
        stmt = stmt.where(Network.is_system.is_(bool(self.is_system)))
        if self.restart_required is not None:
            stmt = stmt.where(Network.restart_required.is_(self.restart_required))
        if self.specify_ip_ranges is not None:
            stmt = stmt.where(Network.specify_ip_ranges.is_(self.specify_ip_ranges))
        if self.for_vpc:
            stmt = stmt.where(Network.vpc_id.is_not(None))
        elif self.for_vpc is not None:
            stmt = stmt.where(Network.vpc_id.is_(None))
        if self.vlan:
            from overcast.engine.infra import vlan_tag

            stmt = stmt.where(Network.broadcast_uri == vlan_tag(self.vlan))
        if self.display_network is not None:
            stmt = stmt.where(Network.display_network.is_(self.display_network))
        elif not me.is_admin:
            stmt = stmt.where(Network.display_network.is_(True))
        usable_now = and_(Network.traffic_type == "Guest", Network.is_system.is_(False),
                          Network.state.not_in(engine.GONE_STATES))
        if self.can_use_for_deploy is not None:
            stmt = stmt.where(usable_now if self.can_use_for_deploy else ~usable_now)
        for service in self.supported_services or []:
            name = service.strip()
            if not name:
                continue
            stmt = stmt.where(Network.network_offering_id.in_(select(NetworkOffering.id).where(
                NetworkOffering.services.contains(f'"{name}"'))))
        stmt = stmt.where(*tag_filter("Network", Network.id, self.tags))
        kw = keyword_filter(self.keyword, Network.name, Network.display_text)
        if kw is not None:
            stmt = stmt.where(kw)
        rows, count = fetch_page(ctx, stmt, self)
        return ListResult(network_payload(s, rows, root_admin=me.is_root_admin), count)


class NetworkCommand(Command):
    """Async commands acting on one network: its jobs run in order."""

    def instance(self) -> tuple[str | None, str | None]:
        return "Network", self.id.uuid


@api_command("updateNetwork", response=NetworkResponse, roles=ALL_ROLES, is_async=True, idempotent=True,
             event_type="NETWORK.UPDATE", description="Updates a network")
class UpdateNetwork(NetworkCommand):
    id = network_param(description="the ID of the network")
    name = Param(STRING, description="the new name for the network")
    display_text = Param(STRING, "displaytext", description="the new display text for the network")
    offering = Param(UUID, "networkofferingid", entity=NetworkOffering, acl=Access.USE, description="network"
                     " offering ID")
    network_domain = Param(STRING, "networkdomain", description="network domain")
    display_network = Param(BOOLEAN, "displaynetwork", authorized=ADMINS, since="4.4", description="an optional"
                            " field, whether to the display the network to the end user or not.")

    def execute(self, ctx: CallContext) -> Result:
        if self.offering is not None:
            _guest_offering(self.offering)
        net = engine.update_network(ctx, self.id, name=self.name, display_text=self.display_text,
                                    offering=self.offering, network_domain=self.network_domain,
                                    display_network=self.display_network)
        return network_result(ctx, net)


@api_command("deleteNetwork", response=SuccessResponse, roles=ALL_ROLES, is_async=True, idempotent=True,
             event_type="NETWORK.DELETE", description="Deletes a network")
class DeleteNetwork(NetworkCommand):
    id = network_param(description="the ID of the network")
    forced = Param(BOOLEAN, authorized=ADMINS, since="4.12", description="Force delete a network. Network will be"
                   " marked as 'Destroy' even when commands to shutdown and cleanup to the backend fails.")

    def execute(self, ctx: CallContext) -> Result:
        engine.delete_network(ctx, self.id, forced=bool(self.forced))
        return Success()


@api_command("restartNetwork", response=SuccessResponse, roles=ALL_ROLES, is_async=True, idempotent=True,
             event_type="NETWORK.RESTART", description="Restarts the network; includes 1) restarting network"
             " elements - virtual routers, DHCP servers 2) reapplying all public IPs 3) reapplying"
             " loadBalancing/portForwarding rules")
class RestartNetwork(NetworkCommand):
    id = network_param(description="The ID of the network to restart.")
    cleanup = Param(BOOLEAN, description="If cleanup old network elements")

    def execute(self, ctx: CallContext) -> Result:
        engine.restart_network(ctx, self.id, cleanup=bool(self.cleanup))
        return Success()


__all__ = ["CreateNetwork", "DeleteNetwork", "ListNetworks", "RestartNetwork", "UpdateNetwork"]
