"""Storage infrastructure: primary storage pools, image (secondary) stores and staging (cache) stores.

Image stores of the NFS kind only here (``nfs://``, ``cifs://``, ``file://``); the provider framework for
object stores (S3, Swift) is its own piece of work.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select

from overcast.access.roles import ROOT_ADMIN
from overcast.api.commands.infra import (
    Command,
    CLUSTER_RELATED,
    POD_RELATED,
    ZONE_RELATED,
    cluster_param,
    count,
    pod_param,
    zone_param,
)
from overcast.api.context import CallContext
from overcast.api.declare import (
    BOOLEAN, LIST, LONG, MAP, STRING, UUID, ListResult, ObjectResult, Param, Result, Success,
    SuccessResponse, api_command,
)  # fmt: skip
from overcast.api.listing import fetch_page, keyword_filter
from overcast.api.params import details_map
from overcast.api.responses.infra import (
    ImageStoreResponse,
    SecondaryStorageResponse,
    StagingStoreResponse,
    StoragePoolResponse,
    pool_payload,
    store_payload,
)
from overcast.db.models import (
    Cluster,
    Host,
    ImageStore,
    Pod,
    Snapshot,
    StoragePool,
    Template,
    TemplateZone,
    VirtualMachine,
    Volume,
    Zone,
    utcnow,
)
from overcast.engine.infra import (
    SIMULATED_POOL_BYTES,
    SIMULATED_STORE_BYTES,
    canonical,
    cluster_in_pod,
    hypervisor_type,
    pod_in_zone,
    pool_url,
    store_url,
    sync_templates_to_zone,
)
from overcast.errors import CloudError, InvalidParameterValue, ResourceInUse

POOL_RELATED = ("createStoragePool", "listStoragePools", "updateStoragePool")
STORE_RELATED = ("addImageStore", "listImageStores")
#: Hypervisors zone-wide primary storage may serve (CloudStack's StorageManagerImpl.createPool).
ZONE_WIDE_HYPERVISORS = ("KVM", "VMware", "Hyperv", "Simulator", "Any")


def pool_param(description: str = "the Id of the storage pool") -> Param:
    return Param(UUID, "id", required=True, entity=StoragePool, related=POOL_RELATED, description=description)


def pool_result(ctx: CallContext, pool: StoragePool) -> ObjectResult:
    ctx.session.flush()
    ctx.session.refresh(pool)
    return ObjectResult(pool_payload(ctx.session, [pool], ctx.services.settings)[0])


def _tags(value: Any) -> str | None:
    items = value if isinstance(value, list) else str(value or "").split(",")
    tags = [t.strip() for t in items if t.strip()]
    return ",".join(dict.fromkeys(tags)) or None


# -- primary storage ------------------------------------------------------------------------------


@api_command("createStoragePool", response=StoragePoolResponse, roles=ROOT_ADMIN,
             description="Creates a storage pool.")
class CreateStoragePool(Command):
    name = Param(STRING, required=True, description="the name for the storage pool")
    url = Param(STRING, required=True, description="the URL of the storage pool")
    zone = zone_param(description="the Zone ID for the storage pool")
    pod = pod_param(required=False, description="the Pod ID for the storage pool")
    cluster = cluster_param(required=False, description="the cluster ID for the storage pool")
    scope = Param(STRING, description="the scope of the storage: cluster or zone")
    hypervisor = Param(STRING, description="hypervisor type of the hosts in zone that will be attached to this"
                       " storage pool. KVM, VMware supported as of now.")
    capacity_bytes = Param(LONG, "capacitybytes", description="bytes CloudStack can provision from this storage"
                           " pool")
    tags = Param(STRING, description="the tags for the storage pool")
    details = Param(MAP, description="the details for the storage pool")
    provider = Param(STRING, description="the storage provider name")

    def execute(self, ctx: CallContext) -> Result:
        s, zone = ctx.session, self.zone
        name = self.name.strip()
        if not name:
            raise InvalidParameterValue("Please specify a name for the storage pool (parameter name)")
        provider = self.provider or "DefaultPrimary"
        if provider != "DefaultPrimary":
            raise InvalidParameterValue(f"Can't find the storage provider {provider} (parameter provider): only"
                                        " DefaultPrimary is available")
        scope = canonical(self.scope, ("ZONE", "CLUSTER"), "scope", "the scope") if self.scope else "CLUSTER"
        pool_type, host_address, path = pool_url(self.url)
        pod, cluster, hypervisor = self.pod, self.cluster, None
        if pod is not None:
            pod_in_zone(pod, zone)
        if scope == "CLUSTER":
            if cluster is None:
                raise InvalidParameterValue("Please specify the cluster of a cluster-wide storage pool (parameter"
                                            " clusterid)")
            if pod is None:
                raise InvalidParameterValue("Cluster id requires pod id (parameter podid)")
            cluster_in_pod(cluster, pod)
            hypervisor = cluster.hypervisor_type
        else:
            if not self.hypervisor:
                raise InvalidParameterValue("Missing parameter hypervisor. Hypervisor type is required to create"
                                            " zone wide primary storage.")
            hypervisor = "Any" if self.hypervisor.strip().lower() == "any" else hypervisor_type(self.hypervisor)
            if hypervisor not in ZONE_WIDE_HYPERVISORS:
                raise InvalidParameterValue(f"Zone wide storage pool is not supported for hypervisor type"
                                            f" {hypervisor} (parameter hypervisor)")
            pod = cluster = None
        capacity = self.capacity_bytes if self.capacity_bytes is not None else SIMULATED_POOL_BYTES
        if capacity <= 0:
            raise InvalidParameterValue("capacitybytes must be a positive number of bytes")
        clash = select(StoragePool.name).where(StoragePool.zone_id == zone.id, StoragePool.removed.is_(None),
                                               StoragePool.url == self.url.strip())
        if scope == "CLUSTER":
            clash = clash.where(StoragePool.cluster_id == cluster.id)  # type: ignore[union-attr]
        taken = s.scalar(clash)
        if taken is not None:
            raise InvalidParameterValue(f"The storage pool {taken} already uses url {self.url} (parameter url)")
        pool = StoragePool(name=name, zone_id=zone.id, pod_id=pod.id if pod else None,
                           cluster_id=cluster.id if cluster else None, scope=scope, pool_type=pool_type,
                           url=self.url.strip(), host_address=host_address, path=path, capacity_bytes=capacity,
                           tags=_tags(self.tags), provider=provider, hypervisor_type=hypervisor, status="Up")
        s.add(pool)
        return pool_result(ctx, pool)


@api_command("listStoragePools", response=StoragePoolResponse, roles=ROOT_ADMIN, is_list=True,
             description="Lists storage pools.")
class ListStoragePools(Command):
    id = Param(UUID, related=POOL_RELATED, description="the ID of the storage pool")
    name = Param(STRING, description="the name of the storage pool")
    zone = Param(UUID, "zoneid", related=ZONE_RELATED, description="the Zone ID for the storage pool")
    pod = Param(UUID, "podid", related=POD_RELATED, description="the Pod ID for the storage pool")
    cluster = Param(UUID, "clusterid", related=CLUSTER_RELATED, description="list storage pools belongig to the"
                    " specific cluster")
    host = Param(UUID, "hostid", since="4.19", description="host ID of the storage pools")
    ip_address = Param(STRING, "ipaddress", description="the IP address for the storage pool")
    path = Param(STRING, description="the storage pool path")
    scope = Param(STRING, since="4.3", description="the scope of the storage pool")
    status = Param(STRING, since="4.19", description="the status of the storage pool")

    def execute(self, ctx: CallContext) -> Result:
        stmt = select(StoragePool).where(StoragePool.removed.is_(None)).order_by(StoragePool.id)
        if self.id:
            stmt = stmt.where(StoragePool.uuid == self.id)
        if self.name:
            stmt = stmt.where(StoragePool.name == self.name)
        for value, model, col in ((self.zone, Zone, StoragePool.zone_id), (self.pod, Pod, StoragePool.pod_id),
                                  (self.cluster, Cluster, StoragePool.cluster_id)):
            if value:
                stmt = stmt.where(col.in_(select(model.id).where(model.uuid == value)))
        if self.host:
            host = select(Host).where(Host.uuid == self.host).subquery()
            stmt = stmt.where(StoragePool.zone_id.in_(select(host.c.zone_id)),
                              (StoragePool.scope == "ZONE") | StoragePool.cluster_id.in_(select(host.c.cluster_id)))
        if self.ip_address:
            stmt = stmt.where(StoragePool.host_address == self.ip_address)
        if self.path:
            stmt = stmt.where(StoragePool.path == self.path)
        if self.scope:
            stmt = stmt.where(func.upper(StoragePool.scope) == self.scope.upper())
        if self.status:
            stmt = stmt.where(func.lower(StoragePool.status) == self.status.lower())
        kw = keyword_filter(self.keyword, StoragePool.name)
        if kw is not None:
            stmt = stmt.where(kw)
        rows, total = fetch_page(ctx, stmt, self)
        return ListResult(pool_payload(ctx.session, rows, ctx.services.settings), total)


@api_command("updateStoragePool", response=StoragePoolResponse, roles=ROOT_ADMIN, event_type="UPDATE.PS",
             description="Updates a storage pool.")
class UpdateStoragePool(Command):
    pool = pool_param(description="the Id of the storage pool")
    name = Param(STRING, since="4.15", description="Change the name of the storage pool")
    tags = Param(LIST, description="comma-separated list of tags for the storage pool")
    capacity_bytes = Param(LONG, "capacitybytes", description="bytes CloudStack can provision from this storage"
                           " pool")
    enabled = Param(BOOLEAN, description="false to disable the pool for allocation of new volumes, true to"
                    " enable it back.")

    def execute(self, ctx: CallContext) -> Result:
        pool = self.pool
        if self.name is not None:
            if not self.name.strip():
                raise InvalidParameterValue("Please specify a name for the storage pool (parameter name)")
            pool.name = self.name.strip()
        if self.tags is not None:
            pool.tags = _tags(self.tags)
        if self.capacity_bytes is not None:
            if self.capacity_bytes <= 0 or self.capacity_bytes < pool.used_bytes:
                raise InvalidParameterValue(f"capacitybytes must be positive and at least the {pool.used_bytes}"
                                            " bytes already allocated on the pool")
            pool.capacity_bytes = self.capacity_bytes
        if self.enabled is not None:
            if pool.status not in ("Up", "Disabled"):
                raise InvalidParameterValue(f"Primary storage {pool.name} is in state {pool.status}; only Up or"
                                            " Disabled pools can be enabled or disabled")
            pool.status = "Up" if self.enabled else "Disabled"
        ctx.event("UPDATE.PS", f"Updated primary storage {pool.name}", resource_type="StoragePool",
                  resource_uuid=pool.uuid)
        return pool_result(ctx, pool)


@api_command("deleteStoragePool", response=SuccessResponse, roles=ROOT_ADMIN,
             description="Deletes a storage pool.")
class DeleteStoragePool(Command):
    pool = pool_param(description="Storage pool id")
    forced = Param(BOOLEAN, since="4.1", description="Force destroy storage pool (force expunge volumes in"
                   " Destroyed state as a part of pool removal)")

    def execute(self, ctx: CallContext) -> Result:
        s, pool = ctx.session, self.pool
        live = count(ctx, Volume, Volume.pool_id == pool.id, Volume.removed.is_(None), Volume.state != "Destroy")
        if live:
            raise ResourceInUse(f"Cannot delete pool {pool.name} as there are {live} associated non-destroyed"
                                " volumes on it", uuids=[(pool.uuid, "storageId")])
        destroyed = list(s.scalars(select(Volume).where(Volume.pool_id == pool.id, Volume.removed.is_(None))))
        if destroyed and not self.forced:
            raise ResourceInUse(f"Cannot delete pool {pool.name} as there are destroyed volumes on it; pass"
                                " forced=true to expunge them", uuids=[(pool.uuid, "storageId")])
        from overcast.engine.vms import VmOps

        ops = VmOps(ctx)
        for vol in destroyed:
            ops._release_volume(vol)
        pool.removed = utcnow()
        pool.status = "Removed"
        return Success()


class PoolJob(Command):
    def instance(self) -> tuple[str | None, str | None]:
        return "StoragePool", self.pool.uuid  # type: ignore[attr-defined]


@api_command("enableStorageMaintenance", response=StoragePoolResponse, roles=ROOT_ADMIN, is_async=True,
             idempotent=True, event_type="MAINT.PREPARE.PS", description="Puts storage pool into maintenance"
             " state")
class EnableStorageMaintenance(PoolJob):
    pool = pool_param(description="Primary storage ID")

    def execute(self, ctx: CallContext) -> Result:
        from overcast.engine.vms import VmOps

        s, pool = ctx.session, self.pool
        if pool.status == "Maintenance":
            raise InvalidParameterValue(f"Primary storage {pool.name} is already in maintenance")
        if pool.status not in ("Up", "Disabled", "ErrorInMaintenance", "PrepareForMaintenance"):
            raise InvalidParameterValue(f"Primary storage {pool.name} can't enter maintenance in state {pool.status}")
        pool.status = "PrepareForMaintenance"
        ctx.checkpoint()
        failed = []
        vm_ids = list(s.scalars(select(Volume.vm_id).where(Volume.pool_id == pool.id, Volume.removed.is_(None),
                                                           Volume.vm_id.is_not(None)).distinct()))
        for vm_id in vm_ids:
            vm = s.get(VirtualMachine, vm_id)
            if vm is None or vm.removed is not None or vm.state in ("Stopped", "Destroyed", "Error", "Expunging"):
                continue
            try:
                VmOps(ctx).stop(vm, forced=True)
                ctx.checkpoint()
            except CloudError as exc:
                s.rollback()
                failed.append(f"{vm.instance_name}: {exc.message}")
        s.refresh(pool)
        pool.status = "ErrorInMaintenance" if failed else "Maintenance"
        ctx.event("MAINT.PREPARE.PS", f"Primary storage {pool.name} is in {pool.status}"
                  + (": " + "; ".join(failed) if failed else ""), resource_type="StoragePool", resource_uuid=pool.uuid)
        return pool_result(ctx, pool)


@api_command("cancelStorageMaintenance", response=StoragePoolResponse, roles=ROOT_ADMIN, is_async=True,
             idempotent=True, event_type="MAINT.CANCEL.PS", description="Cancels maintenance for primary"
             " storage")
class CancelStorageMaintenance(PoolJob):
    pool = pool_param(description="the primary storage ID")

    def execute(self, ctx: CallContext) -> Result:
        pool = self.pool
        if pool.status not in ("Maintenance", "ErrorInMaintenance", "PrepareForMaintenance"):
            raise InvalidParameterValue(f"Primary storage {pool.name} is not in maintenance (it is {pool.status})")
        pool.status = "Up"
        ctx.event("MAINT.CANCEL.PS", f"Primary storage {pool.name} left maintenance", resource_type="StoragePool",
                  resource_uuid=pool.uuid)
        return pool_result(ctx, pool)


# -- image stores ---------------------------------------------------------------------------------


def store_result(ctx: CallContext, store: ImageStore) -> ObjectResult:
    ctx.session.flush()
    ctx.session.refresh(store)
    return ObjectResult(store_payload(ctx.session, [store])[0])


def add_store(ctx: CallContext, *, url: str, zone: Zone | None, name: str | None, provider: str | None,
              details: list[dict[str, str]] | None, role: str = "Image") -> ImageStore:
    """addImageStore / addSecondaryStorage / createSecondaryStagingStore (NFS stores)."""
    s = ctx.session
    wanted = (provider or "NFS").strip()
    if wanted.lower() in ("s3", "swift"):
        raise InvalidParameterValue(f"Image store provider {wanted} (parameter provider) is not available on this"
                                    " server; use NFS")
    provider_name = "NFS"  # CloudStack falls back to the default (NFS) for unknown providers, "SMB" included
    if not url or not url.strip():
        raise InvalidParameterValue("Please specify the url of the image store (parameter url)")
    protocol = store_url(url)
    if zone is None:
        raise InvalidParameterValue(f"The {provider_name} image store has to be associated with a zone (parameter"
                                    " zoneid)")
    store_name = (name or "").strip() or url.strip()
    if s.scalar(select(ImageStore.id).where(ImageStore.name == store_name, ImageStore.removed.is_(None))) is not None:
        raise InvalidParameterValue(f"The image store with name {store_name} already exists")
    if role == "Image":
        other = s.scalar(select(ImageStore.provider).where(ImageStore.role == "Image", ImageStore.removed.is_(None),
                                                           ImageStore.provider != provider_name))
        if other is not None:
            raise InvalidParameterValue(f"You can only add new image stores from the same provider {other} already"
                                        " added")
    store = ImageStore(name=store_name, zone_id=zone.id, provider=provider_name, protocol=protocol,
                       url=url.strip(), role=role, scope="ZONE", total_bytes=SIMULATED_STORE_BYTES, used_bytes=0,
                       details=json.dumps({k: v for k, v in details_map(details).items()
                                           if k.lower() not in ("password", "secretkey", "key")}))
    s.add(store)
    s.flush()
    if role == "Image":
        sync_templates_to_zone(s, zone, store)
    return store


@api_command("addImageStore", response=ImageStoreResponse, roles=ROOT_ADMIN, since="4.2.0",
             description="Adds backup image store.")
class AddImageStore(Command):
    name = Param(STRING, description="the name for the image store")
    url = Param(STRING, length=2048, description="the URL for the image store")
    zone = zone_param(required=False, description="the Zone ID for the image store")
    provider = Param(STRING, "provider", required=True, description="the image store provider name")
    details = Param(MAP, description="the details for the image store. Example:"
                    " details[0].key=accesskey&details[0].value=s389ddssaa&details[1].key=secretkey&details[1]"
                    ".value=8dshfsss")

    def execute(self, ctx: CallContext) -> Result:
        store = add_store(ctx, url=self.url or "", zone=self.zone, name=self.name, provider=self.provider,
                          details=self.details)
        return store_result(ctx, store)


@api_command("addSecondaryStorage", response=SecondaryStorageResponse, roles=ROOT_ADMIN,
             description="Adds secondary storage.")
class AddSecondaryStorage(Command):
    url = Param(STRING, required=True, length=2048, description="the URL for the secondary storage")
    zone = zone_param(required=False, description="the Zone ID for the secondary storage")

    def execute(self, ctx: CallContext) -> Result:
        return store_result(ctx, add_store(ctx, url=self.url, zone=self.zone, name=None, provider="NFS",
                                           details=None))


@api_command("listImageStores", response=ImageStoreResponse, roles=ROOT_ADMIN, is_list=True, since="4.2.0",
             description="Lists image stores.")
class ListImageStores(Command):
    id = Param(UUID, related=STORE_RELATED, description="the ID of the storage pool")
    name = Param(STRING, description="the name of the image store")
    zone = Param(UUID, "zoneid", related=ZONE_RELATED, description="the Zone ID for the image store")
    protocol = Param(STRING, description="the image store protocol")
    provider = Param(STRING, description="the image store provider")
    readonly = Param(BOOLEAN, since="4.15.0", description="read-only status of the image store")

    role = "Image"

    def execute(self, ctx: CallContext) -> Result:
        stmt = select(ImageStore).where(ImageStore.removed.is_(None), ImageStore.role == self.role).order_by(
            ImageStore.id)
        if self.id:
            stmt = stmt.where(ImageStore.uuid == self.id)
        if self.name:
            stmt = stmt.where(ImageStore.name == self.name)
        if self.zone:
            stmt = stmt.where(ImageStore.zone_id.in_(select(Zone.id).where(Zone.uuid == self.zone)))
        if self.protocol:
            stmt = stmt.where(func.lower(ImageStore.protocol) == self.protocol.lower())
        if self.provider:
            stmt = stmt.where(func.lower(ImageStore.provider) == self.provider.lower())
        if getattr(self, "readonly", None) is not None:
            stmt = stmt.where(ImageStore.readonly.is_(self.readonly))
        kw = keyword_filter(self.keyword, ImageStore.name)
        if kw is not None:
            stmt = stmt.where(kw)
        rows, total = fetch_page(ctx, stmt, self)
        return ListResult(store_payload(ctx.session, rows), total)


def store_param(role: str) -> Param:
    return Param(UUID, "id", required=True, entity=ImageStore, related=STORE_RELATED,
                 description="the image store ID" if role == "Image" else "the staging store ID")


def _store_of_role(store: ImageStore, role: str) -> ImageStore:
    if store.role != role:
        kind = "an image store" if role == "Image" else "a staging store"
        raise InvalidParameterValue(f"Store {store.name} (parameter id) is not {kind}")
    return store


@api_command("deleteImageStore", response=SuccessResponse, roles=ROOT_ADMIN, since="4.2.0",
             description="Deletes an image store or Secondary Storage.")
class DeleteImageStore(Command):
    store = store_param("Image")

    def execute(self, ctx: CallContext) -> Result:
        s = ctx.session
        store = _store_of_role(self.store, "Image")
        user_templates = s.scalar(select(func.count()).select_from(TemplateZone).join(
            Template, Template.id == TemplateZone.template_id).where(
            TemplateZone.store_id == store.id, TemplateZone.removed.is_(None), Template.removed.is_(None),
            Template.template_type.not_in(("BUILTIN", "SYSTEM"))))
        if user_templates:
            raise ResourceInUse("Cannot delete image store with active templates backup!",
                                uuids=[(store.uuid, "storeId")])
        others = count(ctx, ImageStore, ImageStore.zone_id == store.zone_id, ImageStore.role == "Image",
                       ImageStore.removed.is_(None), ImageStore.id != store.id)
        if not others and count(ctx, Snapshot, Snapshot.zone_id == store.zone_id, Snapshot.removed.is_(None),
                                Snapshot.state == "BackedUp"):
            raise ResourceInUse("Cannot delete image store with active snapshots backup!",
                                uuids=[(store.uuid, "storeId")])
        now = utcnow()
        for ref in s.scalars(select(TemplateZone).where(TemplateZone.store_id == store.id,
                                                        TemplateZone.removed.is_(None))):
            ref.removed = now
        store.removed = now
        return Success()


@api_command("createSecondaryStagingStore", response=SecondaryStorageResponse, roles=ROOT_ADMIN,
             description="create secondary staging store.")
class CreateSecondaryStagingStore(Command):
    url = Param(STRING, required=True, length=2048, description="the URL for the staging store")
    zone = zone_param(required=False, description="the Zone ID for the staging store")
    details = Param(MAP, description="the details for the staging store")
    scope = Param(STRING, description="the scope of the staging store: zone only for now")
    provider = Param(STRING, description="the staging store provider name")

    def execute(self, ctx: CallContext) -> Result:
        if self.scope is not None and self.scope.strip().lower() != "zone":
            raise InvalidParameterValue(f"Invalid scope {self.scope} for parameter scope: only zone is supported")
        store = add_store(ctx, url=self.url, zone=self.zone, name=None, provider=self.provider,
                          details=self.details, role="ImageCache")
        return store_result(ctx, store)


@api_command("listSecondaryStagingStores", response=StagingStoreResponse, roles=ROOT_ADMIN, is_list=True,
             since="4.2.0", description="Lists secondary staging stores.")
class ListSecondaryStagingStores(ListImageStores):
    id = Param(UUID, description="the ID of the staging store")
    name = Param(STRING, description="the name of the staging store")
    zone = Param(UUID, "zoneid", related=ZONE_RELATED, description="the Zone ID for the staging store")
    protocol = Param(STRING, description="the staging store protocol")
    provider = Param(STRING, description="the staging store provider")
    readonly = None  # type: ignore[assignment]

    role = "ImageCache"


@api_command("deleteSecondaryStagingStore", response=SuccessResponse, roles=ROOT_ADMIN, since="4.2.0",
             description="Deletes a secondary staging store .")
class DeleteSecondaryStagingStore(Command):
    store = store_param("ImageCache")

    def execute(self, ctx: CallContext) -> Result:
        store = _store_of_role(self.store, "ImageCache")
        store.removed = utcnow()
        return Success()


__all__ = ["AddImageStore", "CreateStoragePool", "add_store"]
