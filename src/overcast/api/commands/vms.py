"""Virtual machine commands: deploy, the lifecycle, changes, listing."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import or_, select

from overcast.access.acl import resolve_owner_filters, scope_owned
from overcast.access.roles import ADMINS, ALL_ROLES, ROOT_ADMIN
from overcast.api.context import CallContext
from overcast.api.declare import (
    BOOLEAN, INTEGER, LIST, LONG, MAP, STRING, UUID, Access, Command, Field, ListResult, ObjectResult,
    Param, Park, ResponseObject, Result, Success, SuccessResponse, api_command,
)  # fmt: skip
from overcast.api.listing import fetch_page, keyword_filter
from overcast.api.params import details_map
from overcast.api.responses.vms import UserVmResponse, vm_payload
from overcast.db.models import (
    Account,
    AffinityGroup,
    AffinityGroupVm,
    Bundle,
    DiskOffering,
    Domain,
    Host,
    InstanceGroup,
    InstanceGroupVm,
    Network,
    Nic,
    SecurityGroup,
    SecurityGroupVm,
    ServiceOffering,
    Template,
    UserData,
    VirtualMachine,
    Zone,
    utcnow,
)
from overcast.engine.deploy import DeployRequest, add_to_group, allocate, template_usable
from overcast.engine.tags import tag_filter
from overcast.engine.userdata import Effective, effective, validate_for
from overcast.engine.vms import NetworkRequest, VmOps
from overcast.engine.readiness import ready_key
from overcast.errors import InvalidParameterValue, PermissionDenied, WaitTimedOut

RELATED = ("deployVirtualMachine", "startVirtualMachine", "stopVirtualMachine", "rebootVirtualMachine",
           "destroyVirtualMachine", "listVirtualMachines", "updateVirtualMachine", "recoverVirtualMachine")


def vm_result(ctx: CallContext, vm: VirtualMachine, *, show_password: bool = False) -> ObjectResult:
    ctx.session.flush()
    ctx.session.refresh(vm)
    return ObjectResult(vm_payload(ctx.session, [vm], root_admin=ctx.me.is_root_admin, show_password=show_password)[0])


def vm_param(description: str = "The ID of the virtual machine", *, name: str = "id",
             acl: Access = Access.OPERATE, required: bool = True) -> Param:
    return Param(UUID, name, required=required, entity=VirtualMachine, acl=acl, related=RELATED,
                 description=description)


def owner_account(ctx: CallContext, account_name: str | None, domain: Domain | None) -> Account:
    """The account a new resource belongs to: the caller's, or (admins) ``account`` in ``domainid``."""
    me = ctx.me
    if not account_name:
        if domain is not None and domain.id != me.domain_id:
            raise InvalidParameterValue("Please pass account together with domainid")
        acct = ctx.session.get(Account, me.account_id)
        assert acct is not None
        return acct
    dom = domain or ctx.session.get(Domain, me.domain_id)
    acct = ctx.session.scalar(select(Account).where(Account.name == account_name, Account.domain_id == dom.id,
                                                    Account.removed.is_(None)))
    if acct is None:
        raise InvalidParameterValue(f"Unable to find account {account_name} in domain {dom.name}")
    ctx.acl.check_account(me, acct, Access.OPERATE)
    return acct


class VmCommand(Command):
    """Async VM commands: the job acts on the VM and runs after earlier jobs on it."""

    def instance(self) -> tuple[str | None, str | None]:
        return "VirtualMachine", self.id.uuid

    def ops(self, ctx: CallContext) -> VmOps:
        return VmOps(ctx)


@api_command("deployVirtualMachine", response=UserVmResponse, roles=ALL_ROLES, is_async=True,
             creates_entity=True, idempotent=True, event_type="VM.CREATE",
             description="Creates and automatically starts an Instance based on a service offering, disk"
             " offering, and Template.")
class DeployVirtualMachine(Command):
    zone = Param(UUID, "zoneid", required=True, entity=Zone, description="availability zone for the virtual"
                 " machine")
    offering = Param(UUID, "serviceofferingid", required=True, entity=ServiceOffering,
                     description="the ID of the service offering for the virtual machine")
    template = Param(UUID, "templateid", required=True, entity=Template, description="the ID of the template"
                     " for the virtual machine")
    disk_offering = Param(UUID, "diskofferingid", entity=DiskOffering, description="the ID of the disk"
                          " offering for the virtual machine. If the template is of ISO format, the"
                          " diskOfferingId is for the root disk volume. Otherwise this parameter is used to"
                          " indicate the offering for the data disk volume.")
    size = Param(LONG, description="the arbitrary size for the DATADISK volume. Mutually exclusive with"
                 " diskOfferingId")
    root_disk_size = Param(LONG, "rootdisksize", description="Optional field to resize root disk on deploy."
                           " Value is in GB. Only applies to template-based deployments.")
    name = Param(STRING, description="host name for the virtual machine")
    display_name = Param(STRING, "displayname", description="an optional user generated name for the virtual"
                         " machine")
    group = Param(STRING, description="an optional group for the virtual machine")
    network_ids = Param(LIST, "networkids", item_type=UUID, entity=Network, acl=Access.USE,
                        description="list of network ids used by virtual machine. Can't be specified with"
                        " ipToNetworkList parameter")
    ip_to_network = Param(MAP, "iptonetworklist", description="ip to network mapping. Can't be specified with"
                          " networkIds parameter. Example: iptonetworklist[0].ip=10.10.10.11&iptonetworklist[0]"
                          ".networkid=uuid - requests to use ip 10.10.10.11 in network id=uuid")
    ip_address = Param(STRING, "ipaddress", description="the ip address for default vm's network")
    keypair = Param(STRING, description="name of the ssh key pair used to login to the virtual machine")
    keypairs = Param(LIST, since="4.17", description="names of the ssh key pairs used to login to the virtual"
                     " machine")
    user_data = Param(STRING, "userdata", length=1048576, sensitive=True, description="an optional binary data"
                      " that can be sent to the virtual machine upon a successful deployment. This binary"
                      " data must be base64 encoded before adding it to the request. Using HTTP GET (via"
                      " querystring), you can send up to 4KB of data after base64 encoding. Using HTTP POST (via"
                      " POST body), you can send up to 1MB of data after base64 encoding.")
    userdata_id = Param(UUID, "userdataid", entity=UserData, acl=Access.USE, since="4.18",
                        description="the ID of the Userdata")
    userdata_details = Param(MAP, "userdatadetails", since="4.18", description="used to specify the parameters"
                             " values for the variables in userdata.")
    affinity_group_ids = Param(LIST, "affinitygroupids", item_type=UUID, entity=AffinityGroup, acl=Access.USE,
                               description="comma separated list of affinity groups id that are going to be"
                               " applied to the virtual machine. Mutually exclusive with affinitygroupnames"
                               " parameter")
    affinity_group_names = Param(LIST, "affinitygroupnames", description="comma separated list of affinity"
                                 " groups names that are going to be applied to the virtual machine.Mutually"
                                 " exclusive with affinitygroupids parameter")
    security_group_ids = Param(LIST, "securitygroupids", item_type=UUID, entity=SecurityGroup, acl=Access.USE,
                               description="comma separated list of security groups id that going to be"
                               " applied to the virtual machine. Should be passed only when vm is created from"
                               " a zone with Basic Network support. Mutually exclusive with securitygroupnames"
                               " parameter")
    security_group_names = Param(LIST, "securitygroupnames", description="comma separated list of security"
                                 " groups names that going to be applied to the virtual machine. Should be"
                                 " passed only when vm is created from a zone with Basic Network support."
                                 " Mutually exclusive with securitygroupids parameter")
    start_vm = Param(BOOLEAN, "startvm", default=None, since="3.0.1", description="true if start vm after"
                     " creating; defaulted to true if not specified")
    host = Param(UUID, "hostid", entity=Host, authorized=ROOT_ADMIN, description="destination Host ID to"
                 " deploy the VM to - parameter available for root admin only")
    pod = Param(UUID, "podid", authorized=ROOT_ADMIN, since="4.13", description="destination Pod ID to deploy"
                " the VM to - parameter available for root admin only")
    cluster = Param(UUID, "clusterid", authorized=ROOT_ADMIN, since="4.13", description="destination Cluster"
                    " ID to deploy the VM to - parameter available for root admin only")
    details = Param(MAP, since="4.3", description="used to specify the custom parameters. 'extraconfig' is"
                    " not allowed to be passed in details")
    hypervisor = Param(STRING, description="the hypervisor on which to deploy the virtual machine. The"
                       " parameter is required and respected only when hypervisor info is not set on the ISO"
                       "/Template passed to the call")
    account = Param(STRING, description="an optional account for the virtual machine. Must be used with"
                    " domainId.")
    domain = Param(UUID, "domainid", entity=Domain, acl=Access.LIST, description="an optional domainId for the"
                   " virtual machine."
                   " If the account parameter is used, domainId must also be used. If account is NOT"
                   " provided then virtual machine will be assigned to the caller account and domain.")
    display_vm = Param(BOOLEAN, "displayvm", since="4.2", authorized=ADMINS, description="an optional field,"
                       " whether to the display the vm to the end user or not.")
    dynamic_scaling = Param(BOOLEAN, "dynamicscalingenabled", since="4.16", description="true if virtual"
                            " machine needs to be dynamically scalable")
    boot_type = Param(STRING, "boottype", choices=("BIOS", "UEFI"), since="4.14.0.0", description="Guest VM"
                      " Boot option either custom[UEFI] or default boot [BIOS]. Not applicable with VMware if"
                      " the template is marked as deploy-as-is, as we honour what is defined in the template.")
    boot_mode = Param(STRING, "bootmode", choices=("LEGACY", "SECURE"), since="4.14.0.0",
                      description="Boot Mode [Legacy] or [Secure] Applicable when Boot Type Selected is UEFI,"
                      " otherwise Legacy only for BIOS. Not applicable with VMware if the template is marked as"
                      " deploy-as-is, as we honour what is defined in the template.")
    password = Param(STRING, sensitive=True, since="4.19.0.0", description="The password of the virtual"
                     " machine. If null, a random password will be generated for the VM.")
    ready_timeout = Param(INTEGER, "readytimeout", min_value=1, max_value=86400, extension=True,
                          description="Overcast: wait up to this many seconds for the guest to report that it is"
                          " configured and ready (its KV storage key 'ready', or POST /latest/ready to the"
                          " metadata service); the job completes then, or fails when the time is up (the VM"
                          " stays, not ready). Needs the VM started.")

    def prepare(self, ctx: CallContext) -> str | None:
        s = ctx.session
        me = ctx.me
        account = owner_account(ctx, self.account, self.domain)
        ctx.acl.check_owned(me, account.id, Access.OPERATE)
        if self.zone.domain_id is not None and not me.is_root_admin:
            zone_domain = s.get(Domain, self.zone.domain_id)
            owner_domain = s.get(Domain, account.domain_id)
            if not owner_domain.path.startswith(zone_domain.path):
                raise PermissionDenied(f"Zone {self.zone.name} is dedicated to another domain")
        if self.network_ids and self.ip_to_network:
            raise InvalidParameterValue("networkids and iptonetworklist can't be specified together")
        networks: list[NetworkRequest] = []
        for net in self.network_ids or []:
            networks.append(NetworkRequest(net))
        for entry in self.ip_to_network or []:
            nid = entry.get("networkid") or entry.get("networkId")
            if not nid:
                raise InvalidParameterValue("iptonetworklist entries need networkid")
            net = s.scalar(select(Network).where(Network.uuid == nid.lower(), Network.removed.is_(None)))
            if net is None:
                raise InvalidParameterValue(f"Unable to find network by id {nid} (parameter iptonetworklist)")
            networks.append(NetworkRequest(net, entry.get("ip")))
        for nr in networks:
            check_network_use(ctx, nr.network, account)
        keypairs = list(self.keypairs or [])
        if self.keypair:
            keypairs.insert(0, self.keypair)
        # A template the owner can't use is refused by allocate(), before its linked user data shows.
        user_data = (self.effective_user_data(ctx) if template_usable(ctx, self.template, account)
                     else Effective(None, None, None))
        affinity = list(self.affinity_group_ids or [])
        for name in self.affinity_group_names or []:
            ag = s.scalar(select(AffinityGroup).where(AffinityGroup.account_id == account.id, AffinityGroup.name == name))
            if ag is None:
                raise InvalidParameterValue(f"Unable to find affinity group by name {name}")
            affinity.append(ag)
        groups = list(self.security_group_ids or [])
        for name in self.security_group_names or []:
            sg = s.scalar(select(SecurityGroup).where(SecurityGroup.account_id == account.id, SecurityGroup.name == name))
            if sg is None:
                raise InvalidParameterValue(f"Unable to find security group by name {name}")
            groups.append(sg)
        details = details_map(self.details)
        cpu = _int_detail(details, "cpuNumber")
        speed = _int_detail(details, "cpuSpeed")
        memory = _int_detail(details, "memory")
        if self.disk_offering is not None and self.size is not None and not self.disk_offering.customized:
            raise InvalidParameterValue("size can only be given with a custom disk offering")
        if self.ready_timeout is not None and self.start_vm is False:
            raise InvalidParameterValue("readytimeout needs the VM started: a VM deployed with startvm=false"
                                        " can't report ready")
        vm = allocate(ctx, DeployRequest(
            account=account, zone=self.zone, template=self.template, offering=self.offering,
            disk_offering=self.disk_offering, size_gb=self.size, root_disk_size_gb=self.root_disk_size,
            name=self.name, display_name=self.display_name, group=self.group, networks=networks,
            ip_address=self.ip_address, keypairs=keypairs, user_data=user_data.user_data,
            userdata_id=user_data.userdata_id, userdata_details=user_data.details,
            affinity_groups=affinity, security_groups=groups,
            details={k: v for k, v in details.items() if k not in ("cpuNumber", "cpuSpeed", "memory")},
            cpu=cpu, speed=speed, memory=memory, hypervisor=self.hypervisor, host=self.host,
            display_vm=True if self.display_vm is None else self.display_vm,
            dynamically_scalable=self.dynamic_scaling, boot_type=self.boot_type, boot_mode=self.boot_mode,
            password=self.password,
        ))  # fmt: skip
        self.allocated(ctx, vm)
        self.raw_vm_uuid = vm.uuid
        return vm.uuid

    def effective_user_data(self, ctx: CallContext) -> Effective:
        """The VM's user data from ``userdata``/``userdataid``/``userdatadetails`` and the template's link."""
        return effective(ctx, self.template, user_data=validate_for(ctx, self.user_data, http_method=ctx.http_method),
                         registered=self.userdata_id, details=details_map(self.userdata_details))

    def allocated(self, ctx: CallContext, vm: VirtualMachine) -> None:
        """Called with the new VM row, in the same transaction: commands that deploy through this one
        (deployBundle) record what they add."""

    def instance(self) -> tuple[str | None, str | None]:
        return "VirtualMachine", getattr(self, "raw_vm_uuid", None)

    def execute(self, ctx: CallContext) -> Result:
        assert ctx.job is not None
        vm = ctx.created(VirtualMachine, "VM")
        if self.start_vm is None or self.start_vm:
            ops = VmOps(ctx)
            try:
                ops.start(vm, host_id=self.host.id if self.host else None,
                          pod_id=_internal(ctx, "pod", self.pod), cluster_id=_internal(ctx, "cluster", self.cluster))
            except Exception:
                ctx.session.rollback()
                ctx.session.refresh(vm)
                ops.fail_deployment(vm)
                ctx.checkpoint()
                raise
            if self.ready_timeout is not None:
                ctx.checkpoint()
                # Locked as report_ready locks it: a report either shows here or wakes the parked job.
                ready = ctx.session.scalar(select(VirtualMachine.ready_at).where(VirtualMachine.id == vm.id)
                                           .with_for_update())
                if ready is None:
                    return Park(ready_key(vm.uuid), utcnow() + timedelta(seconds=self.ready_timeout))
                ctx.session.refresh(vm)
        return vm_result(ctx, vm, show_password=True)

    def resume(self, ctx: CallContext, how: str) -> Result:
        vm = ctx.created(VirtualMachine, "VM")
        if how != "ready" and vm.ready_at is None:
            raise WaitTimedOut(f"VM {vm.display_name or vm.name} did not report ready within {self.ready_timeout}"
                               f" s (parameter readytimeout); it stays {vm.state}, not ready",
                               uuids=[(vm.uuid, "virtualMachineId")])
        # The password is shown once, by the job's result, as without readytimeout.
        return vm_result(ctx, vm, show_password=True)


def set_user_data(ctx: CallContext, vm: VirtualMachine, user_data: str | None, registered: UserData | None,
                  details: list[dict[str, str]] | None) -> None:
    """Give a VM new user data (updateVirtualMachine, resetUserDataForVirtualMachine): validated, under
    its template's override policy, with the variables checked."""
    template = ctx.session.get(Template, vm.template_id)
    assert template is not None
    if not user_data and registered is None and details is not None and vm.userdata_id:
        registered = ctx.session.get(UserData, vm.userdata_id)  # new values for the same registered user data
    ud = effective(ctx, template, user_data=validate_for(ctx, user_data, http_method=ctx.http_method),
                   registered=registered, details=details_map(details))
    vm.user_data, vm.userdata_id, vm.userdata_details = ud.user_data, ud.userdata_id, ud.details


def _int_detail(details: dict[str, str], key: str) -> int | None:
    for k, v in details.items():
        if k.lower() == key.lower():
            try:
                return int(v)
            except ValueError:
                raise InvalidParameterValue(f"details[].{key} must be a number, not {v}") from None
    return None


def _internal(ctx: CallContext, kind: str, uuid: str | None) -> int | None:
    if uuid is None:
        return None
    from overcast.db.models import Cluster, Pod

    model = {"pod": Pod, "cluster": Cluster}[kind]
    row = ctx.session.scalar(select(model).where(model.uuid == uuid))
    if row is None:
        raise InvalidParameterValue(f"Unable to find {kind} by id {uuid}")
    return int(row.id)


def check_network_use(ctx: CallContext, net: Network, account: Account) -> None:
    if net.acl_type == "Domain" or net.guest_type == "Shared":
        if ctx.me.is_root_admin:
            return
        domain = ctx.session.get(Domain, net.domain_id)
        owner_domain = ctx.session.get(Domain, account.domain_id)
        if net.domain_id == 1 or owner_domain.path.startswith(domain.path):
            return
        raise PermissionDenied(f"Account {account.name} can't use network {net.name}")
    if net.account_id != account.id:
        raise PermissionDenied(f"Account {account.name} can't use network {net.name}",
                               uuids=[(net.uuid, "networkId")])


@api_command("startVirtualMachine", response=UserVmResponse, roles=ALL_ROLES, is_async=True, idempotent=True,
             event_type="VM.START", description="Starts an Instance.")
class StartVirtualMachine(VmCommand):
    id = vm_param()
    host = Param(UUID, "hostid", entity=Host, authorized=ROOT_ADMIN, since="3.0.1", description="destination"
                 " Host ID to deploy the VM to - parameter available for root admin only")

    def execute(self, ctx: CallContext) -> Result:
        return vm_result(ctx, self.ops(ctx).start(self.id, host_id=self.host.id if self.host else None),
                         show_password=True)


@api_command("stopVirtualMachine", response=UserVmResponse, roles=ALL_ROLES, is_async=True, idempotent=True,
             event_type="VM.STOP", description="Stops a virtual machine.")
class StopVirtualMachine(VmCommand):
    id = vm_param()
    forced = Param(BOOLEAN, description="Force stop the VM (vm is marked as Stopped even when command fails"
                   " to be send to the backend, otherwise a force poweroff is attempted). To be used if the"
                   " caller knows the VM is stopped and should be marked as such.")

    def execute(self, ctx: CallContext) -> Result:
        return vm_result(ctx, self.ops(ctx).stop(self.id, forced=bool(self.forced)))


@api_command("rebootVirtualMachine", response=UserVmResponse, roles=ALL_ROLES, is_async=True, idempotent=True,
             event_type="VM.REBOOT", description="Reboots a virtual machine.")
class RebootVirtualMachine(VmCommand):
    id = vm_param()
    forced = Param(BOOLEAN, since="4.16.0", description="Force reboot the VM (VM is Stopped and then"
                   " Started)")

    def execute(self, ctx: CallContext) -> Result:
        ops = self.ops(ctx)
        if self.forced:
            ops.stop(self.id, forced=True)
            ops.start(self.id)
        else:
            ops.reboot(self.id)
        return vm_result(ctx, self.id)


@api_command("destroyVirtualMachine", response=UserVmResponse, roles=ALL_ROLES, is_async=True, idempotent=True,
             event_type="VM.DESTROY", description="Destroys a virtual machine. Once destroyed, only the"
             " administrator can recover it.")
class DestroyVirtualMachine(VmCommand):
    id = vm_param()
    expunge = Param(BOOLEAN, since="4.2.1", description="If true is passed, the vm is expunged immediately."
                    " False by default.")
    volume_ids = Param(LIST, "volumeids", item_type=UUID, since="4.12.0", description="Comma separated list of"
                       " UUIDs for volumes that will be deleted")

    def execute(self, ctx: CallContext) -> Result:
        vm = self.id
        if self.expunge and not ctx.me.is_admin and not ctx.setting(
                "allow.user.expunge.recover.vm", scope="account", scope_id=vm.account_id):
            raise PermissionDenied("Parameter expunge can be passed by Admin only. Or when the"
                                   " allow.user.expunge.recover.vm key is set.")
        from overcast.db.models import Volume

        volume_ids = []
        for uuid in self.volume_ids or []:
            vol = ctx.session.scalar(select(Volume).where(Volume.uuid == uuid, Volume.vm_id == vm.id))
            if vol is None:
                raise InvalidParameterValue(f"Volume {uuid} is not attached to VM {vm.name}")
            volume_ids.append(vol.id)
        self.ops(ctx).destroy(vm, expunge=bool(self.expunge), volume_ids=volume_ids)
        return vm_result(ctx, vm)


@api_command("expungeVirtualMachine", response=SuccessResponse, roles=ALL_ROLES, is_async=True, idempotent=True,
             event_type="VM.EXPUNGE", description="Expunge a virtual machine. Once expunged, it cannot be"
             " recovered.")
class ExpungeVirtualMachine(VmCommand):
    id = Param(UUID, required=True, entity=VirtualMachine, acl=Access.OPERATE, related=RELATED,
               description="The ID of the virtual machine")

    def execute(self, ctx: CallContext) -> Result:
        if not ctx.me.is_admin and not ctx.setting("allow.user.expunge.recover.vm", scope="account",
                                                   scope_id=self.id.account_id):
            raise PermissionDenied("Expunging a vm can only be done by an Admin. Or when the"
                                   " allow.user.expunge.recover.vm key is set.")
        self.ops(ctx).expunge(self.id)
        return Success()


@api_command("recoverVirtualMachine", response=UserVmResponse, roles=ALL_ROLES, event_type="VM.RECOVER",
             description="Recovers a virtual machine.")
class RecoverVirtualMachine(Command):
    id = vm_param()

    def execute(self, ctx: CallContext) -> Result:
        if not ctx.me.is_admin and not ctx.setting("allow.user.expunge.recover.vm", scope="account",
                                                   scope_id=self.id.account_id):
            raise PermissionDenied("Recovering a vm can only be done by an Admin. Or when the"
                                   " allow.user.expunge.recover.vm key is set.")
        return vm_result(ctx, VmOps(ctx).recover(self.id))


@api_command("updateVirtualMachine", response=UserVmResponse, roles=ALL_ROLES, event_type="VM.UPDATE",
             description="Updates properties of a virtual machine. The VM has to be stopped and restarted for"
             " the new properties to take effect. UpdateVirtualMachine does not first check whether the VM is"
             " stopped. Therefore, stop the VM manually before issuing this call.")
class UpdateVirtualMachine(Command):
    id = vm_param()
    display_name = Param(STRING, "displayname", description="user generated name")
    name = Param(STRING, since="4.11", description="new host name of the vm. The VM has to be stopped/started"
                 " for this update to take affect")
    group = Param(STRING, description="group of the virtual machine")
    ha_enable = Param(BOOLEAN, "haenable", description="true if high-availability is enabled for the virtual"
                      " machine, false otherwise")
    user_data = Param(STRING, "userdata", length=1048576, sensitive=True, description="an optional binary"
                      " data that can be sent to the virtual machine upon a successful deployment. This binary"
                      " data must be base64 encoded before adding it to the request. Using HTTP GET (via"
                      " querystring), you can send up to 4KB of data after base64 encoding. Using HTTP POST"
                      " (via POST body), you can send up to 1MB of data after base64 encoding.")
    userdata_id = Param(UUID, "userdataid", entity=UserData, acl=Access.USE, since="4.18", description="the ID"
                        " of the userdata")
    userdata_details = Param(MAP, "userdatadetails", since="4.18", description="used to specify the parameters"
                             " values for the variables in userdata.")
    details = Param(MAP, since="4.3", description="Details in key/value pairs. 'extraconfig' is not allowed to"
                    " be passed in details.")
    cleanup_details = Param(BOOLEAN, "cleanupdetails", description="optional boolean field, which indicates if"
                            " details should be cleaned up or not (if set to true, details removed for this"
                            " resource, details field ignored; if false or not set, no action)")
    display_vm = Param(BOOLEAN, "displayvm", authorized=ADMINS, description="an optional field, whether to the"
                       " display the vm to the end user or not.")
    is_dynamically_scalable = Param(BOOLEAN, "isdynamicallyscalable", description="true if VM contains"
                                    " XS/VMWare tools inorder to support dynamic scaling of VM cpu/memory")
    delete_protection = Param(BOOLEAN, "deleteprotection", since="4.20.0", description="Set delete protection"
                              " for the virtual machine. If true, the instance will be protected from deletion."
                              " Note: If the instance is managed by another service like, autoscaling groups or"
                              " CKS, delete protection will be ignored.")
    os_type = Param(UUID, "ostypeid", description="the ID of the OS type that best represents this VM.")

    def execute(self, ctx: CallContext) -> Result:
        vm, s = self.id, ctx.session
        if vm.state in ("Destroyed", "Expunging", "Error"):
            raise InvalidParameterValue(f"VM {vm.name} can't be updated in state {vm.state}")
        if self.display_name is not None:
            vm.display_name = self.display_name
        if self.name is not None and self.name != vm.name:
            from overcast.engine.deploy import _HOSTNAME

            if not _HOSTNAME.match(self.name):
                raise InvalidParameterValue("Invalid value for name: it must be a valid host name")
            vm.name = self.name
        if self.group is not None:
            if self.group == "":
                from sqlalchemy import delete

                s.execute(delete(InstanceGroupVm).where(InstanceGroupVm.vm_id == vm.id))
            else:
                add_to_group(ctx, vm, self.group)
        if self.ha_enable is not None:
            vm.ha_enabled = self.ha_enable
        if self.user_data is not None or self.userdata_id is not None or self.userdata_details is not None:
            set_user_data(ctx, vm, self.user_data, self.userdata_id, self.userdata_details)
        if self.cleanup_details:
            vm.details = None
        elif self.details is not None:
            current = json.loads(vm.details or "{}")
            current.update(details_map(self.details))
            vm.details = json.dumps(current)
        if self.display_vm is not None:
            vm.display_vm = self.display_vm
        if self.is_dynamically_scalable is not None:
            vm.dynamically_scalable = self.is_dynamically_scalable
        if self.delete_protection is not None:
            vm.delete_protection = self.delete_protection
        if self.os_type is not None:
            from overcast.db.models import GuestOs

            os_ = s.scalar(select(GuestOs).where(GuestOs.uuid == self.os_type))
            if os_ is None:
                raise InvalidParameterValue(f"Unable to find OS type by id {self.os_type}")
            vm.guest_os_id = os_.id
        ctx.event("VM.UPDATE", f"Updating Vm. Vm Id: {vm.uuid}", account_id=vm.account_id, domain_id=vm.domain_id,
                  resource_type="VirtualMachine", resource_uuid=vm.uuid)
        return vm_result(ctx, vm)


@api_command("changeServiceForVirtualMachine", response=UserVmResponse, roles=ALL_ROLES, event_type="VM.UPGRADE",
             description="Changes the service offering for a virtual machine. The virtual machine must be in a"
             " \"Stopped\" state for this command to take effect.")
class ChangeServiceForVirtualMachine(Command):
    id = vm_param()
    offering = Param(UUID, "serviceofferingid", required=True, entity=ServiceOffering,
                     description="the service offering ID to apply to the virtual machine")
    details = Param(MAP, description="name value pairs of custom parameters for cpuspeed, memory and cpunumber."
                    " example details[i].name=value")

    def execute(self, ctx: CallContext) -> Result:
        d = details_map(self.details)
        vm = VmOps(ctx).change_offering(self.id, self.offering, cpu=_int_detail(d, "cpuNumber"),
                                        speed=_int_detail(d, "cpuSpeed"), memory=_int_detail(d, "memory"))
        return vm_result(ctx, vm)


@api_command("scaleVirtualMachine", response=SuccessResponse, roles=ALL_ROLES, is_async=True, idempotent=True,
             event_type="VM.DYNAMIC.SCALE", description="Scales the virtual machine to a new service offering."
             " This command also considers the volume size in the service offering or disk offering linked to"
             " the new service offering and apply all characteristics to the root volume.")
class ScaleVirtualMachine(VmCommand):
    id = vm_param()
    offering = Param(UUID, "serviceofferingid", required=True, entity=ServiceOffering,
                     description="the ID of the service offering for the virtual machine")
    details = Param(MAP, description="name value pairs of custom parameters for cpuspeed, memory and cpunumber."
                    " example details[i].name=value")

    def execute(self, ctx: CallContext) -> Result:
        d = details_map(self.details)
        self.ops(ctx).scale(self.id, self.offering, cpu=_int_detail(d, "cpuNumber"),
                            speed=_int_detail(d, "cpuSpeed"), memory=_int_detail(d, "memory"))
        return Success()


@api_command("migrateVirtualMachine", response=UserVmResponse, roles=ROOT_ADMIN, is_async=True,
             idempotent=True, event_type="VM.MIGRATE", description="Attempts Migration of a VM to a different"
             " host or Root volume of the vm to a different storage pool")
class MigrateVirtualMachine(VmCommand):
    id = vm_param(name="virtualmachineid")
    host = Param(UUID, "hostid", entity=Host, description="Destination Host ID to migrate VM to.")
    auto_select = Param(BOOLEAN, "autoselect", since="4.16.0", description="Automatically select a destination"
                        " host which do not require storage migration, if hostId and storageId are not"
                        " specified. false by default")

    def execute(self, ctx: CallContext) -> Result:
        if self.host is None and self.auto_select is False:
            raise InvalidParameterValue("Please specify hostid, or autoselect=true")
        return vm_result(ctx, self.ops(ctx).migrate(self.id, self.host))


@api_command("resetPasswordForVirtualMachine", response=UserVmResponse, roles=ALL_ROLES, is_async=True,
             event_type="VM.RESETPASSWORD", description="Resets the password for virtual machine. The virtual"
             " machine must be in a \"Stopped\" state and the template must already support this feature for"
             " this command to take effect. [async]")
class ResetPasswordForVirtualMachine(VmCommand):
    id = vm_param()
    password = Param(STRING, sensitive=True, since="4.19.0", description="The new password of the virtual"
                     " machine. If null, a random password will be generated for the VM.")

    def execute(self, ctx: CallContext) -> Result:
        VmOps(ctx).reset_password(self.id)
        if self.password:
            self.id.password = self.password
        return vm_result(ctx, self.id, show_password=True)


@api_command("restoreVirtualMachine", response=UserVmResponse, roles=ALL_ROLES, is_async=True, idempotent=False,
             response_key="restorevmresponse", event_type="VM.RESTORE", since="3.0.0",
             description="Restore a VM to original template/ISO or new template/ISO")
class RestoreVirtualMachine(VmCommand):
    vm = Param(UUID, "virtualmachineid", required=True, entity=VirtualMachine, acl=Access.OPERATE,
               related=RELATED, description="Virtual Machine ID")
    template = Param(UUID, "templateid", entity=Template, acl=Access.USE, since="4.4", description="an optional"
                     " template Id to restore vm from the new template. This can be an ISO id in case of"
                     " restore vm deployed using ISO")

    def instance(self) -> tuple[str | None, str | None]:
        return "VirtualMachine", self.vm.uuid

    def execute(self, ctx: CallContext) -> Result:
        if self.template is not None:
            from overcast.engine.deploy import template_usable

            if not template_usable(ctx, self.template, VmOps(ctx).account(self.vm)):
                raise PermissionDenied(f"The owner of the VM can't use template {self.template.name}")
        return vm_result(ctx, VmOps(ctx).restore(self.vm, self.template))

    def recover(self, ctx: CallContext) -> None:
        """Interrupted mid-restore: a VM left Stopping/Starting goes back to Stopped, capacity released."""
        vm = self.vm
        if vm.state in ("Starting", "Stopping"):
            ops = VmOps(ctx)
            ops._release_host_of(vm)
            ctx.session.execute(VirtualMachine.__table__.update().where(VirtualMachine.id == vm.id)
                                .values(state="Stopped", update_count=VirtualMachine.update_count + 1))


@api_command("assignVirtualMachine", response=UserVmResponse, roles=ADMINS, event_type="VM.MOVE", since="3.0.0",
             description="Change ownership of a VM from one account to another. This API is available for"
             " Basic zones with security groups and Advanced zones with guest networks. A root"
             " administrator can reassign a VM from any account to any other account in any domain. A domain"
             " administrator can reassign a VM to any account in the same domain.")
class AssignVirtualMachine(Command):
    vm = Param(UUID, "virtualmachineid", required=True, entity=VirtualMachine, acl=Access.OPERATE,
               related=RELATED, description="id of the VM to be moved")
    account = Param(STRING, description="account name of the new VM owner.")
    domain = Param(UUID, "domainid", entity=Domain, acl=Access.OPERATE, description="domain id of the new VM"
                   " owner.")
    network_ids = Param(LIST, "networkids", item_type=UUID, entity=Network, acl=Access.USE,
                        description="list of new network ids in which the moved VM will participate. In case no"
                        " network ids are provided the VM will be part of the default network for that zone. In"
                        " case there is no network yet, it will be created for the new account.")
    security_group_ids = Param(LIST, "securitygroupids", item_type=UUID, description="list of security group ids"
                               " to be applied on the virtual machine. In case no security groups are provided"
                               " the VM is part of the default security group.")

    def execute(self, ctx: CallContext) -> Result:
        if not self.account:
            raise InvalidParameterValue("Please pass account (and domainid) of the new owner")
        dom = self.domain or ctx.session.get(Domain, ctx.me.domain_id)
        new_owner = owner_account(ctx, self.account, dom)
        return vm_result(ctx, VmOps(ctx).assign(self.vm, new_owner, list(self.network_ids or [])))


class VmUserDataResponse(ResponseObject):
    object_name = "virtualmachineuserdata"
    fields = (
        Field("virtualmachineid", "string", "the ID of the virtual machine"),
        Field("userdata", "string", "Base 64 encoded VM user data"),
    )


@api_command("getVirtualMachineUserData", response=VmUserDataResponse, roles=ALL_ROLES, since="4.4",
             read_only=True, description="Returns user data associated with the VM")
class GetVirtualMachineUserData(Command):
    vm = Param(UUID, "virtualmachineid", required=True, entity=VirtualMachine, acl=Access.LIST, related=RELATED,
               description="The ID of the virtual machine")

    def execute(self, ctx: CallContext) -> Result:
        return ObjectResult({"virtualmachineid": self.vm.uuid, "userdata": self.vm.user_data})


@api_command("listVirtualMachines", response=UserVmResponse, roles=ALL_ROLES, is_list=True,
             description="List the virtual machines owned by the account.")
class ListVirtualMachines(Command):
    id = Param(UUID, description="the ID of the virtual machine")
    ids = Param(LIST, item_type=UUID, since="4.4", description="the IDs of the virtual machines, mutually"
                " exclusive with id")
    name = Param(STRING, description="name of the virtual machine (a substring match is made against the"
                 " parameter value, data for all matching VMs will be returned)")
    state = Param(STRING, description="state of the virtual machine. Possible values are: Running, Stopped,"
                  " Present, Destroyed, Expunged. Present is used for the state equal not destroyed.")
    zone = Param(UUID, "zoneid", description="the availability zone ID")
    host = Param(UUID, "hostid", authorized=ADMINS, description="the host ID")
    template = Param(UUID, "templateid", since="4.9", description="list vms by template")
    iso = Param(UUID, "isoid", since="4.9", description="list vms by iso")
    network = Param(UUID, "networkid", description="list by network id")
    group = Param(UUID, "groupid", description="the group ID")
    offering = Param(UUID, "serviceofferingid", since="4.4", description="list by the service offering")
    affinity_group = Param(UUID, "affinitygroupid", description="list vms by affinity group")
    security_group = Param(UUID, "securitygroupid", since="4.15", description="List VMs by security group")
    keypair = Param(STRING, description="list vms by ssh keypair name")
    ha_enable = Param(BOOLEAN, "haenable", since="4.15", description="list by the High Availability offering;"
                      " true if filtering VMs with HA enabled; false for VMs with HA disabled")
    hypervisor = Param(STRING, description="the target hypervisor for the template")
    display_vm = Param(BOOLEAN, "displayvm", authorized=ADMINS, since="4.4", description="list resources by"
                       " display flag; only ROOT admin is eligible to pass this parameter")
    details = Param(LIST, description="comma separated list of vm details requested, value can be a list of"
                    " [all, group, nics, stats, secgrp, tmpl, servoff, diskoff, backoff, iso, volume, min,"
                    " affgrp]. If no parameter is passed in, the details will be defaulted to all")
    tags = Param(MAP, description="List resources by tags (key/value pairs)")
    user = Param(UUID, "userid", description="the user ID that created the VM and is under the account that"
                 " owns the VM")
    account = Param(STRING, description="list resources by account. Must be used with the domainId parameter.")
    domain = Param(UUID, "domainid", entity=Domain, description="list only resources belonging to the domain"
                   " specified")
    is_recursive = Param(BOOLEAN, "isrecursive", description="defaults to false, but if true, lists all"
                         " resources from the parent specified by the domainId till leaves.")
    list_all = Param(BOOLEAN, "listall", description="If set to false, list only resources belonging to the"
                     " command's caller; if set to true - list resources that the caller is authorized to see."
                     " Default value is false")
    project = Param(UUID, "projectid", description="list objects by project; if projectid=-1 lists All VMs")
    show_user_data = Param(BOOLEAN, "userdata", since="4.18.0.0", description="Whether to return the VMs'"
                           " user data or not. By default, user data will not be returned.")
    userdata_id = Param(UUID, "userdataid", since="4.20.1", description="the ID of the userdata")
    bundle = Param(UUID, "bundleid", extension=True, description="list VMs deployed from this bundle (any"
                   " version); an Overcast extension")
    bundle_version = Param(INTEGER, "bundleversion", extension=True, min_value=1, description="with bundleid:"
                           " list VMs deployed from this version of the bundle; an Overcast extension")
    ready = Param(BOOLEAN, extension=True, description="list only VMs whose guest has (true) or has not (false)"
                  " reported ready since it last booted; an Overcast extension")

    def execute(self, ctx: CallContext) -> Result:
        me, s = ctx.me, ctx.session
        domain, account = resolve_owner_filters(ctx.acl, me, domain=self.domain, account_name=self.account)
        stmt = scope_owned(select(VirtualMachine).where(VirtualMachine.removed.is_(None)).order_by(VirtualMachine.id),
                           me, account_col=VirtualMachine.account_id, domain_col=VirtualMachine.domain_id,
                           list_all=bool(self.list_all) or self.project == -1,
                           is_recursive=bool(self.is_recursive), domain=domain, account=account)
        if self.id:
            stmt = stmt.where(VirtualMachine.uuid == self.id)
        if self.ids:
            stmt = stmt.where(VirtualMachine.uuid.in_(self.ids))
        if self.name:
            stmt = stmt.where(or_(VirtualMachine.name == self.name, VirtualMachine.display_name == self.name))
        if self.state:
            state = self.state.capitalize()
            if state == "Present":
                stmt = stmt.where(VirtualMachine.state.not_in(("Destroyed", "Expunging")))
            else:
                stmt = stmt.where(VirtualMachine.state == state)
        elif not me.is_admin and not ctx.setting("allow.user.view.destroyed.vm", scope="account",
                                                 scope_id=me.account_id):
            stmt = stmt.where(VirtualMachine.state.not_in(("Destroyed", "Expunging")))
        for value, model, col in ((self.zone, Zone, VirtualMachine.zone_id), (self.host, Host, VirtualMachine.host_id),
                                  (self.template, Template, VirtualMachine.template_id),
                                  (self.iso, Template, VirtualMachine.iso_id),
                                  (self.offering, ServiceOffering, VirtualMachine.service_offering_id),
                                  (self.userdata_id, UserData, VirtualMachine.userdata_id),
                                  (self.bundle, Bundle, VirtualMachine.bundle_id)):
            if value:
                stmt = stmt.where(col.in_(select(model.id).where(model.uuid == value)))
        if self.bundle_version is not None:
            if not self.bundle:
                raise InvalidParameterValue("bundleversion needs bundleid")
            stmt = stmt.where(VirtualMachine.bundle_version == self.bundle_version)
        if self.ready is not None:
            stmt = stmt.where(VirtualMachine.ready_at.is_not(None) if self.ready else VirtualMachine.ready_at.is_(None))
        if self.network:
            stmt = stmt.where(VirtualMachine.id.in_(select(Nic.vm_id).join(Network, Network.id == Nic.network_id)
                                                    .where(Network.uuid == self.network, Nic.removed.is_(None))))
        if self.group:
            stmt = stmt.where(VirtualMachine.id.in_(select(InstanceGroupVm.vm_id).join(
                InstanceGroup, InstanceGroup.id == InstanceGroupVm.group_id).where(InstanceGroup.uuid == self.group)))
        if self.affinity_group:
            stmt = stmt.where(VirtualMachine.id.in_(select(AffinityGroupVm.vm_id).join(
                AffinityGroup, AffinityGroup.id == AffinityGroupVm.group_id).where(AffinityGroup.uuid == self.affinity_group)))
        if self.security_group:
            stmt = stmt.where(VirtualMachine.id.in_(select(SecurityGroupVm.vm_id).join(
                SecurityGroup, SecurityGroup.id == SecurityGroupVm.security_group_id).where(
                SecurityGroup.uuid == self.security_group)))
        if self.keypair:
            stmt = stmt.where(VirtualMachine.keypairs.contains(self.keypair))
        if self.ha_enable is not None:
            stmt = stmt.where(VirtualMachine.ha_enabled.is_(self.ha_enable))
        if self.hypervisor:
            stmt = stmt.where(VirtualMachine.hypervisor_type == self.hypervisor)
        if self.display_vm is not None:
            stmt = stmt.where(VirtualMachine.display_vm.is_(self.display_vm))
        elif not me.is_admin:
            stmt = stmt.where(VirtualMachine.display_vm.is_(True))
        if self.user:
            from overcast.db.models import User

            stmt = stmt.where(VirtualMachine.user_id.in_(select(User.id).where(User.uuid == self.user)))
        stmt = stmt.where(*tag_filter("UserVm", VirtualMachine.id, self.tags))
        kw = keyword_filter(self.keyword, VirtualMachine.name, VirtualMachine.display_name, VirtualMachine.state)
        if kw is not None:
            stmt = stmt.where(kw)
        rows, count = fetch_page(ctx, stmt, self)
        detail = "min" if self.details and [d.lower() for d in self.details] == ["min"] else "all"
        return ListResult(vm_payload(s, rows, root_admin=me.is_root_admin, details=detail,
                                     user_data=bool(self.show_user_data)), count)


__all__ = ["DeployVirtualMachine", "ListVirtualMachines", "vm_result"]
