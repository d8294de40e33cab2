"""Volume commands: create, attach, detach, resize, migrate, delete, destroy, recover, list."""

from __future__ import annotations

from sqlalchemy import func, select

from overcast.access.acl import resolve_owner_filters, scope_owned
from overcast.access.roles import ALL_ROLES, ROOT_ADMIN, RoleType
from overcast.api.commands.vms import owner_account
from overcast.api.context import CallContext
from overcast.api.declare import (
    BOOLEAN, LIST, LONG, MAP, STRING, UUID, Access, Command, ListResult, ObjectResult, Param, Result, Success,
    SuccessResponse, api_command,
)  # fmt: skip
from overcast.api.listing import fetch_page, keyword_filter
from overcast.api.responses.volumes import VolumeResponse, volume_payload
from overcast.db.models import (
    Cluster,
    DiskOffering,
    Domain,
    Host,
    Pod,
    ResourceTag,
    ServiceOffering,
    Snapshot,
    StoragePool,
    VirtualMachine,
    Volume,
    Zone,
)
from overcast.engine.capacity import release_pool
from overcast.engine.volumes import VolumeOps
from overcast.errors import InvalidParameterValue, PermissionDenied

RELATED = ("createVolume", "listVolumes", "attachVolume", "detachVolume", "resizeVolume", "migrateVolume")
VM_RELATED = ("deployVirtualMachine", "listVirtualMachines")


def admin_view(ctx: CallContext) -> bool:
    return ctx.me.role_type in (RoleType.ADMIN, RoleType.RESOURCE_ADMIN)


def volume_result(ctx: CallContext, vol: Volume) -> ObjectResult:
    ctx.session.flush()
    ctx.session.refresh(vol)
    return ObjectResult(volume_payload(ctx.session, [vol], admin_view=admin_view(ctx))[0])


def volume_param(description: str = "the ID of the disk volume", *, name: str = "id", required: bool = True,
                 acl: Access = Access.OPERATE) -> Param:
    return Param(UUID, name, required=required, entity=Volume, acl=acl, related=RELATED, description=description)


def job_volume(ctx: CallContext) -> Volume:
    """The volume a create job made (its uuid is the job's instance)."""
    assert ctx.job is not None
    vol = ctx.created(Volume, "volume")
    return vol


def undo_creating(ctx: CallContext, vol: Volume | None) -> None:
    """After a crash in the middle of creating a volume on primary storage: give the space back."""
    if vol is not None and vol.state == "Creating" and vol.removed is None:
        if vol.pool_id is not None:
            release_pool(ctx.session, vol.pool_id, vol.size)
        vol.pool_id, vol.state = None, "Allocated"
        if vol.attached is None:
            vol.vm_id, vol.device_id = None, None
        ctx.session.flush()


class VolumeCommand(Command):
    """Async commands on one volume: the job acts on it and runs after earlier jobs on it."""

    def instance(self) -> tuple[str | None, str | None]:
        vol = getattr(self, "id", None)
        return "Volume", vol.uuid if vol is not None else None

    def recover(self, ctx: CallContext) -> None:
        undo_creating(ctx, getattr(self, "id", None))


@api_command("createVolume", response=VolumeResponse, roles=ALL_ROLES, is_async=True, creates_entity=True,
             event_type="VOLUME.CREATE", description="Creates a disk volume from a disk offering. This disk volume"
             " must still be attached to a virtual machine to make use of it.")
class CreateVolume(Command):
    name = Param(STRING, description="the name of the disk volume")
    zone = Param(UUID, "zoneid", entity=Zone, description="the ID of the availability zone")
    disk_offering = Param(UUID, "diskofferingid", entity=DiskOffering, description="the ID of the disk offering."
                          " Either diskOfferingId or snapshotId must be passed in.")
    size = Param(LONG, description="Arbitrary volume size")
    snapshot = Param(UUID, "snapshotid", entity=Snapshot, acl=Access.USE, description="the snapshot ID for the"
                     " disk volume. Either diskOfferingId or snapshotId must be passed in.")
    vm = Param(UUID, "virtualmachineid", entity=VirtualMachine, acl=Access.OPERATE, related=VM_RELATED,
               since="4.3", description="the ID of the virtual machine; to be used with snapshot Id, VM to which the"
               " volume gets attached after creation")
    storage = Param(UUID, "storageid", entity=StoragePool, authorized=ROOT_ADMIN, since="4.16.0",
                    description="Storage pool id to create the volume in. Cannot be used with the snapshotId"
                    " parameter.")
    min_iops = Param(LONG, "miniops", description="min iops")
    max_iops = Param(LONG, "maxiops", description="max iops")
    display = Param(BOOLEAN, "displayvolume", authorized=ROOT_ADMIN, since="4.4", description="an optional field,"
                    " whether to display the volume to the end user or not.")
    custom_id = Param(STRING, "customid", authorized=ROOT_ADMIN, since="4.4", description="an optional field, in"
                      " case you want to set a custom id to the resource. Allowed to Root Admins only")
    account = Param(STRING, description="the account associated with the disk volume. Must be used with the"
                    " domainId parameter.")
    domain = Param(UUID, "domainid", entity=Domain, description="the domain ID associated with the disk offering."
                   " If used with the account parameter returns the disk volume associated with the account for the"
                   " specified domain.If account is NOT provided then the volume will be assigned to the caller"
                   " account and domain.")
    project = Param(UUID, "projectid", description="the project associated with the volume. Mutually exclusive with"
                    " account parameter")

    def prepare(self, ctx: CallContext) -> str | None:
        owner = owner_account(ctx, self.account, self.domain)
        ctx.acl.check_owned(ctx.me, owner.id, Access.OPERATE)
        if self.storage is not None and self.snapshot is not None:
            raise InvalidParameterValue("Cannot use storageid together with snapshotid")
        if self.storage is not None and self.zone is not None and self.storage.zone_id != self.zone.id:
            raise InvalidParameterValue(f"Storage pool {self.storage.name} is not in zone {self.zone.name}")
        zone = self.zone
        if zone is None and self.storage is not None:
            zone = ctx.session.get(Zone, self.storage.zone_id)
        vol = VolumeOps(ctx).allocate(owner=owner, zone=zone, name=self.name, offering=self.disk_offering,
                                      size_gb=self.size, snapshot=self.snapshot, vm=self.vm,
                                      display=True if self.display is None else self.display,
                                      min_iops=self.min_iops, max_iops=self.max_iops)
        if self.custom_id:
            if ctx.session.scalar(select(Volume.id).where(Volume.uuid == self.custom_id)) is not None:
                raise InvalidParameterValue(f"Invalid value for parameter customid: {self.custom_id} is in use")
            vol.uuid = self.custom_id
            ctx.session.flush()
        self.raw_volume_uuid = vol.uuid
        return vol.uuid

    def instance(self) -> tuple[str | None, str | None]:
        return "Volume", getattr(self, "raw_volume_uuid", None)

    def execute(self, ctx: CallContext) -> Result:
        vol = job_volume(ctx)
        ops = VolumeOps(ctx)
        try:
            if self.storage is not None and vol.state == "Allocated":
                pool = self.storage
                if pool.status != "Up" or pool.zone_id != vol.zone_id:
                    raise InvalidParameterValue(f"Storage pool {pool.name} can't take new volumes (state"
                                                f" {pool.status})")
                from overcast.engine.capacity import reserve_pool
                from overcast.errors import InsufficientCapacity

                if not reserve_pool(ctx.session, pool.id, vol.size, ops.factor(pool.id)):
                    raise InsufficientCapacity(f"Storage pool {pool.name} does not have enough space for volume"
                                               f" {vol.name}")
                ops.create_on_pool(vol, pool, ops.vm_host(self.vm, pool), undo={})
            ops.create(vol, snapshot=self.snapshot, vm=self.vm)
        except Exception:
            ctx.session.rollback()
            vol = job_volume(ctx)
            VolumeOps(ctx).fail_creation(vol)  # nothing half-made keeps its counts or capacity
            ctx.checkpoint()
            raise
        ctx.event("VOLUME.CREATE", f"Created volume {vol.name}. Volume Id: {vol.uuid}", account_id=vol.account_id,
                  domain_id=vol.domain_id, resource_type="Volume", resource_uuid=vol.uuid)
        return volume_result(ctx, vol)

    def recover(self, ctx: CallContext) -> None:
        if ctx.job is not None:
            vol = ctx.job_entity(Volume)
            undo_creating(ctx, vol)
            if vol is not None:
                VolumeOps(ctx).fail_creation(vol)


@api_command("attachVolume", response=VolumeResponse, roles=ALL_ROLES, is_async=True, event_type="VOLUME.ATTACH",
             description="Attaches a disk volume to a virtual machine.")
class AttachVolume(VolumeCommand):
    id = volume_param()
    vm = Param(UUID, "virtualmachineid", required=True, entity=VirtualMachine, acl=Access.OPERATE,
               related=VM_RELATED, description="the ID of the virtual machine")
    device_id = Param(LONG, "deviceid", description="The ID of the device to map the volume to the guest OS. If no"
                      " deviceID is informed, the next available deviceID will be chosen. Use 0 when volume needs to be"
                      " attached as ROOT.<br/>When using a linux operating system and the hypervisor XenServer, the"
                      " devices IDs will be mapped as follows:<ul><li>0 maps to /dev/xvda;</li><li>1 maps to"
                      " /dev/xvdb;</li><li>2 maps /dev/xvdc and so on.</li></ul>Please refer to the docs of your"
                      " hypervisor for the correct mapping of the deviceID and the actual logical disk structure.")

    def execute(self, ctx: CallContext) -> Result:
        return volume_result(ctx, VolumeOps(ctx).attach(self.id, self.vm, self.device_id))


@api_command("detachVolume", response=VolumeResponse, roles=ALL_ROLES, is_async=True, event_type="VOLUME.DETACH",
             description="Detaches a disk volume from a virtual machine.")
class DetachVolume(VolumeCommand):
    id = volume_param(required=False)
    vm = Param(UUID, "virtualmachineid", entity=VirtualMachine, acl=Access.OPERATE, related=VM_RELATED,
               description="the ID of the virtual machine where the volume is detached from")
    device_id = Param(LONG, "deviceid", description="the device ID on the virtual machine where volume is detached"
                      " from")

    def instance(self) -> tuple[str | None, str | None]:
        if self.id is not None:
            return "Volume", self.id.uuid
        if self.vm is not None:
            return "VirtualMachine", self.vm.uuid
        return None, None

    def execute(self, ctx: CallContext) -> Result:
        if (self.id is None and self.vm is None and self.device_id is None) or (
                self.id is not None and (self.vm is not None or self.device_id is not None)) or (
                self.id is None and (self.vm is None or self.device_id is None)):
            raise InvalidParameterValue("Please provide either a volume id, or a tuple(device id, instance id)")
        vol = self.id
        if vol is None:
            vol = ctx.session.scalar(select(Volume).where(Volume.vm_id == self.vm.id, Volume.device_id == self.device_id,
                                                          Volume.removed.is_(None)))
            if vol is None:
                raise InvalidParameterValue(f"Unable to find a volume attached to VM {self.vm.uuid} as device"
                                            f" {self.device_id} (parameter deviceid)")
            ctx.acl.check(ctx.me, vol, Access.OPERATE)
        return volume_result(ctx, VolumeOps(ctx).detach(vol))


@api_command("resizeVolume", response=VolumeResponse, roles=ALL_ROLES, is_async=True, event_type="VOLUME.RESIZE",
             description="Resizes a volume")
class ResizeVolume(VolumeCommand):
    id = volume_param()
    size = Param(LONG, description="New volume size in GB")
    shrink_ok = Param(BOOLEAN, "shrinkok", description="Verify OK to Shrink")
    disk_offering = Param(UUID, "diskofferingid", entity=DiskOffering, description="new disk offering id")
    min_iops = Param(LONG, "miniops", description="New minimum number of IOPS")
    max_iops = Param(LONG, "maxiops", description="New maximum number of IOPS")
    auto_migrate = Param(BOOLEAN, "automigrate", since="4.20.1", description="Flag to allow automatic migration of"
                         " the volume to another suitable storage pool that accommodates the new size")

    def execute(self, ctx: CallContext) -> Result:
        vol = VolumeOps(ctx).resize(self.id, size_gb=self.size, offering=self.disk_offering,
                                    shrink_ok=bool(self.shrink_ok), min_iops=self.min_iops, max_iops=self.max_iops)
        return volume_result(ctx, vol)


@api_command("migrateVolume", response=VolumeResponse, roles=ALL_ROLES, is_async=True, event_type="VOLUME.MIGRATE",
             since="3.0.0", description="Migrate volume")
class MigrateVolume(VolumeCommand):
    id = volume_param("the ID of the volume", name="volumeid")
    storage = Param(UUID, "storageid", required=True, entity=StoragePool, description="destination storage pool ID"
                    " to migrate the volume to")
    live_migrate = Param(BOOLEAN, "livemigrate", description="if the volume should be live migrated when it is"
                         " attached to a running vm")
    new_offering = Param(UUID, "newdiskofferingid", entity=DiskOffering, since="4.16", description="The new disk"
                         " offering ID that replaces the current one used by the volume. This new disk offering is"
                         " used to better reflect the new storage where the volume is going to be migrated to.")

    def execute(self, ctx: CallContext) -> Result:
        vol = VolumeOps(ctx).migrate(self.id, self.storage, live=bool(self.live_migrate), offering=self.new_offering)
        return volume_result(ctx, vol)


@api_command("deleteVolume", response=SuccessResponse, roles=ALL_ROLES, event_type="VOLUME.DELETE",
             description="Deletes a detached disk volume.")
class DeleteVolume(Command):
    id = volume_param("The ID of the disk volume")

    def execute(self, ctx: CallContext) -> Result:
        VolumeOps(ctx).delete(self.id)
        return Success()


def _may_expunge_or_recover(ctx: CallContext, vol: Volume, action: str) -> None:
    if not ctx.me.is_admin and not ctx.setting("allow.user.expunge.recover.volume", scope="account",
                                               scope_id=vol.account_id):
        raise PermissionDenied(f"{action} a volume can only be done by an Admin. Or when the"
                               " allow.user.expunge.recover.volume key is set.")


@api_command("destroyVolume", response=VolumeResponse, roles=ALL_ROLES, is_async=True, event_type="VOLUME.DESTROY",
             since="4.14.0", description="Destroys a Volume.")
class DestroyVolume(VolumeCommand):
    id = volume_param("The ID of the volume")
    expunge = Param(BOOLEAN, description="If true is passed, the volume is expunged immediately. False by default.")

    def execute(self, ctx: CallContext) -> Result:
        vol = self.id
        if self.expunge:
            _may_expunge_or_recover(ctx, vol, "Expunging")
        was = vol.state
        VolumeOps(ctx).destroy(vol, expunge=bool(self.expunge))
        ctx.event("VOLUME.DESTROY", f"Destroying volume {vol.name} (was {was}{', expunged' if self.expunge else ''})."
                  f" Volume Id: {vol.uuid}", account_id=vol.account_id, domain_id=vol.domain_id,
                  resource_type="Volume", resource_uuid=vol.uuid)
        return volume_result(ctx, vol)


@api_command("recoverVolume", response=VolumeResponse, roles=ALL_ROLES, event_type="VOLUME.RECOVER",
             since="4.14.0", description="Recovers a Destroy volume.")
class RecoverVolume(Command):
    id = volume_param("The ID of the volume")

    def execute(self, ctx: CallContext) -> Result:
        _may_expunge_or_recover(ctx, self.id, "Recovering")
        return volume_result(ctx, VolumeOps(ctx).recover(self.id))


@api_command("listVolumes", response=VolumeResponse, roles=ALL_ROLES, is_list=True,
             description="Lists all volumes.")
class ListVolumes(Command):
    id = Param(UUID, description="the ID of the disk volume")
    ids = Param(LIST, item_type=UUID, since="4.9", description="the IDs of the volumes, mutually exclusive with id")
    name = Param(STRING, description="the name of the disk volume")
    type = Param(STRING, description="the type of disk volume")
    vm = Param(UUID, "virtualmachineid", description="the ID of the virtual machine")
    zone = Param(UUID, "zoneid", description="the ID of the availability zone")
    pod = Param(UUID, "podid", description="the pod id the disk volume belongs to")
    cluster = Param(UUID, "clusterid", authorized=frozenset({RoleType.ADMIN}), description="the cluster id the disk"
                    " volume belongs to")
    host = Param(UUID, "hostid", authorized=frozenset({RoleType.ADMIN}), description="list volumes on specified"
                 " host")
    storage = Param(STRING, "storageid", authorized=frozenset({RoleType.ADMIN}), since="4.3", description="the ID of"
                    " the storage pool, available to ROOT admin only")
    disk_offering = Param(UUID, "diskofferingid", since="4.4", description="list volumes by disk offering")
    service_offering = Param(UUID, "serviceofferingid", since="4.19.1", description="list volumes by disk offering"
                             " of a service offering. If both service offering and disk offering are passed, service"
                             " offering is ignored")
    state = Param(STRING, since="4.19.1", description="state of the volume. Possible values are: Ready, Allocated,"
                  " Destroy, Expunging, Expunged.")
    display_volume = Param(BOOLEAN, "displayvolume", authorized=frozenset({RoleType.ADMIN}), since="4.4",
                           description="list resources by display flag; only ROOT admin is eligible to pass this"
                           " parameter")
    is_encrypted = Param(BOOLEAN, "isencrypted", since="4.19.1", description="list only volumes that are encrypted")
    list_system_vms = Param(BOOLEAN, "listsystemvms", authorized=frozenset({RoleType.ADMIN}), since="4.18",
                            description="list system VMs; only ROOT admin is eligible to pass this parameter")
    retrieve_only_count = Param(BOOLEAN, "retrieveonlyresourcecount", description="makes the API's response contains"
                                " only the resource count")
    tags = Param(MAP, description="List resources by tags (key/value pairs)")
    account = Param(STRING, description="list resources by account. Must be used with the domainId parameter.")
    domain = Param(UUID, "domainid", entity=Domain, description="list only resources belonging to the domain"
                   " specified")
    is_recursive = Param(BOOLEAN, "isrecursive", description="defaults to false, but if true, lists all resources"
                         " from the parent specified by the domainId till leaves.")
    list_all = Param(BOOLEAN, "listall", description="If set to false, list only resources belonging to the"
                     " command's caller; if set to true - list resources that the caller is authorized to see."
                     " Default value is false")
    project = Param(UUID, "projectid", description="list objects by project; if projectid=-1 lists All VMs")

    def execute(self, ctx: CallContext) -> Result:
        me, s = ctx.me, ctx.session
        domain, account = resolve_owner_filters(ctx.acl, me, domain=self.domain, account_name=self.account)
        stmt = scope_owned(select(Volume).where(Volume.removed.is_(None)).order_by(Volume.id), me,
                           account_col=Volume.account_id, domain_col=Volume.domain_id,
                           list_all=bool(self.list_all) or self.project == -1
                           or (bool(self.id or self.ids) and me.is_admin),  # by id: any the admin may see
                           is_recursive=bool(self.is_recursive), domain=domain, account=account)
        if self.id:
            stmt = stmt.where(Volume.uuid == self.id)
        if self.ids:
            stmt = stmt.where(Volume.uuid.in_(self.ids))
        if self.name:
            stmt = stmt.where(Volume.name == self.name)
        if self.type:
            stmt = stmt.where(func.lower(Volume.volume_type).like(f"%{self.type.lower().replace('%', '')}%"))
        if self.vm:
            stmt = stmt.where(Volume.vm_id.in_(select(VirtualMachine.id).where(VirtualMachine.uuid == self.vm)))
        if self.zone:
            stmt = stmt.where(Volume.zone_id.in_(select(Zone.id).where(Zone.uuid == self.zone)))
        if self.pod:
            stmt = stmt.where(Volume.pool_id.in_(select(StoragePool.id).join(Pod, Pod.id == StoragePool.pod_id)
                                                 .where(Pod.uuid == self.pod)))
        if self.cluster:
            stmt = stmt.where(Volume.pool_id.in_(select(StoragePool.id).join(Cluster, Cluster.id == StoragePool.cluster_id)
                                                 .where(Cluster.uuid == self.cluster)))
        if self.host:
            stmt = stmt.where(Volume.vm_id.in_(select(VirtualMachine.id).join(Host, Host.id == VirtualMachine.host_id)
                                               .where(Host.uuid == self.host)))
        if self.storage:
            stmt = stmt.where(Volume.pool_id.in_(select(StoragePool.id).where(StoragePool.uuid == self.storage.lower())))
        if self.disk_offering:
            stmt = stmt.where(Volume.disk_offering_id.in_(select(DiskOffering.id).where(
                DiskOffering.uuid == self.disk_offering)))
        elif self.service_offering:
            stmt = stmt.where(Volume.disk_offering_id.in_(select(ServiceOffering.disk_offering_id).where(
                ServiceOffering.uuid == self.service_offering)))
        if self.state:
            stmt = stmt.where(func.lower(Volume.state) == self.state.lower())
        if self.display_volume is not None:
            stmt = stmt.where(Volume.display_volume.is_(self.display_volume))
        elif not me.is_admin:
            stmt = stmt.where(Volume.display_volume.is_(True))
        if self.is_encrypted is not None:
            encrypted = select(DiskOffering.id).where(DiskOffering.encrypt.is_(True))
            stmt = stmt.where(Volume.disk_offering_id.in_(encrypted) if self.is_encrypted
                              else Volume.disk_offering_id.is_(None) | Volume.disk_offering_id.not_in(encrypted))
        for entry in self.tags or []:
            key, value = entry.get("key"), entry.get("value")
            if key is None:
                raise InvalidParameterValue("tags[i].key is required")
            sub = select(ResourceTag.resource_id).where(ResourceTag.resource_type == "Volume", ResourceTag.tag_key == key)
            if value is not None:
                sub = sub.where(ResourceTag.tag_value == value)
            stmt = stmt.where(Volume.id.in_(sub))
        kw = keyword_filter(self.keyword, Volume.name)
        if kw is not None:
            stmt = stmt.where(kw)
        if self.retrieve_only_count:
            count = s.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
            return ListResult([], int(count or 0))
        rows, count = fetch_page(ctx, stmt, self)
        return ListResult(volume_payload(s, rows, admin_view=admin_view(ctx)), count)


__all__ = ["ListVolumes", "volume_result"]
