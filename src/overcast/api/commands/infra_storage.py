"""Storage infrastructure: primary storage pools, image (secondary) stores and staging (cache) stores.

Image stores come from the ``overcast.storage.image`` providers (NFS, S3, Swift; ``plugins/storage.py``).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

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
    BOOLEAN, INTEGER, LIST, LONG, MAP, STRING, UUID, ListResult, ObjectResult, Param, Result, Success,
    SuccessResponse, api_command,
)  # fmt: skip
from overcast.api.listing import fetch_page, keyword_filter, page_bounds
from overcast.api.params import details_map
from overcast.api.responses.infra import (
    ImageStoreResponse,
    SecondaryStorageResponse,
    StagingStoreResponse,
    StorageMigrationResponse,
    StoragePoolResponse,
    StorageProviderResponse,
    pool_payload,
    store_payload,
)
from overcast.db.models import (
    Cluster,
    Host,
    ImageStore,
    Pod,
    Snapshot,
    SnapshotStoreRef,
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
    canonical,
    cluster_in_pod,
    hypervisor_type,
    pod_in_zone,
    pool_url,
    sync_templates_to_zone,
)
from overcast.errors import CloudError, InvalidParameterValue, ResourceInUse
from overcast.plugins.storage import ImageStoreDriver, ImageStoreError, provider_class, provider_names

POOL_RELATED = ("createStoragePool", "listStoragePools", "updateStoragePool")
STORE_RELATED = ("addImageStore", "listImageStores", "updateImageStore", "deleteImageStore")
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


def _store_protocol(cls: type[ImageStoreDriver], url: str, details: dict[str, str]) -> str:
    if cls.provider == "NFS":
        return urlsplit(url.strip()).scheme.lower() or "file"
    if cls.provider == "S3":
        return "https" if details.get("usehttps", "true").strip().lower() in ("true", "1", "yes", "on") else "http"
    return urlsplit(url.strip()).scheme.lower() or "http"


def add_store(ctx: CallContext, *, url: str | None, zone: Zone | None, name: str | None, provider: str | None,
              details: list[dict[str, str]] | dict[str, str] | None, role: str = "Image") -> ImageStore:
    """addImageStore / addImageStoreS3 / addSecondaryStorage / createSecondaryStagingStore.

    The provider is looked up among the ``overcast.storage.image`` plug-ins; an unknown one is an error
    (CloudStack falls back to NFS). The configuration is checked, then the store is really written to
    (a probe object is put, read back and removed) before the row is added."""
    s = ctx.session
    if role == "ImageCache":
        wanted = (provider or "NFS").strip()
        cls = provider_class(wanted)
        if cls.region_wide:
            raise InvalidParameterValue(f"A staging store must be a directory store (NFS), not {cls.provider}"
                                        " (parameter provider)")
    else:
        cls = provider_class(provider)
    conf = dict(details) if isinstance(details, dict) else details_map(details)
    conf = {str(k).strip(): str(v) for k, v in conf.items() if str(k).strip()}
    url = (url or "").strip()
    cls.validate(url, conf)
    if cls.region_wide:
        if zone is not None:
            raise InvalidParameterValue(f"The {cls.provider} image store is region-wide: don't pass a zone (parameter"
                                        " zoneid)")
        scope = "REGION"
        if not url and cls.provider == "S3":
            endpoint = conf.get("endpoint") or "s3.amazonaws.com"
            url = f"{_store_protocol(cls, url, conf)}://{endpoint.split('://')[-1].rstrip('/')}/{conf['bucket']}"
    else:
        if zone is None:
            raise InvalidParameterValue(f"The {cls.provider} image store has to be associated with a zone (parameter"
                                        " zoneid)")
        scope = "ZONE"
    store_name = (name or "").strip() or url
    if s.scalar(select(ImageStore.id).where(ImageStore.name == store_name, ImageStore.removed.is_(None))) is not None:
        raise InvalidParameterValue(f"The image store with name {store_name} already exists")
    if role == "Image":
        other = s.scalar(select(ImageStore.provider).where(ImageStore.role == "Image", ImageStore.removed.is_(None),
                                                           ImageStore.provider != cls.provider))
        if other is not None:
            raise InvalidParameterValue(f"You can only add new image stores from the same provider {other} already"
                                        " added")
    driver = cls(url, conf)
    ctx.checkpoint()  # nothing written yet; no transaction held while the store is probed
    driver.probe()
    try:  # used: the bytes of the objects in it (what Overcast then keeps up to date); total: the disk's size
        used = sum(size for _, size in driver.list(""))
        total = None if cls.region_wide else driver.usage()[1]
    except ImageStoreError:
        used, total = 0, None
    store = ImageStore(name=store_name, zone_id=zone.id if zone is not None else None, provider=cls.provider,
                       protocol=_store_protocol(cls, url, conf), url=url, role=role, scope=scope,
                       total_bytes=total, used_bytes=used, details=json.dumps(conf))
    s.add(store)
    s.flush()
    if role == "Image":  # a region-wide store serves every zone
        for z in [zone] if zone is not None else s.scalars(select(Zone).where(Zone.removed.is_(None))):
            sync_templates_to_zone(s, z, store)
    return store


@api_command("addImageStore", response=ImageStoreResponse, roles=ROOT_ADMIN, since="4.2.0",
             description="Adds backup image store.")
class AddImageStore(Command):
    name = Param(STRING, description="the name for the image store")
    url = Param(STRING, length=2048, description="the URL for the image store")
    zone = zone_param(required=False, description="the Zone ID for the image store")
    provider = Param(STRING, "provider", required=True, description="the image store provider name")
    details = Param(MAP, sensitive=True, description="the details for the image store. Example:"
                    " details[0].key=accesskey&details[0].value=s389ddssaa&details[1].key=secretkey&details[1]"
                    ".value=8dshfsss")

    def execute(self, ctx: CallContext) -> Result:
        store = add_store(ctx, url=self.url, zone=self.zone, name=self.name, provider=self.provider,
                          details=self.details)
        return store_result(ctx, store)


@api_command("addImageStoreS3", response=ImageStoreResponse, roles=ROOT_ADMIN, since="4.7.0",
             description="Adds S3 Image Store")
class AddImageStoreS3(Command):
    access_key = Param(STRING, "accesskey", required=True, sensitive=True, description="S3 access key")
    secret_key = Param(STRING, "secretkey", required=True, sensitive=True, description="S3 secret key")
    endpoint = Param(STRING, required=True, description="S3 endpoint")
    bucket = Param(STRING, required=True, description="Name of the storage bucket")
    signer = Param(STRING, "s3signer", description="Signer Algorithm to use, either S3SignerType or"
                   " AWSS3V4SignerType")
    use_https = Param(BOOLEAN, "usehttps", description="Use HTTPS instead of HTTP")
    connection_timeout = Param(INTEGER, "connectiontimeout", description="Connection timeout (milliseconds)")
    max_error_retry = Param(INTEGER, "maxerrorretry", description="Maximum number of times to retry on error")
    socket_timeout = Param(INTEGER, "sockettimeout", description="Socket timeout (milliseconds)")
    connection_ttl = Param(INTEGER, "connectionttl", description="Connection TTL (milliseconds)")
    use_tcp_keepalive = Param(BOOLEAN, "usetcpkeepalive", description="Whether TCP keep-alive is used")

    def execute(self, ctx: CallContext) -> Result:
        details = {"accesskey": self.access_key, "secretkey": self.secret_key, "endpoint": self.endpoint,
                   "bucket": self.bucket}
        for key, value in (("s3signer", self.signer), ("usehttps", self.use_https),
                           ("connectiontimeout", self.connection_timeout), ("maxerrorretry", self.max_error_retry),
                           ("sockettimeout", self.socket_timeout), ("connectionttl", self.connection_ttl),
                           ("usetcpkeepalive", self.use_tcp_keepalive)):
            if value is not None:
                details[key] = str(value).lower() if isinstance(value, bool) else str(value)
        store = add_store(ctx, url=None, zone=None, name=None, provider="S3", details=details)
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
    if store.role != role or store.removed is not None:
        kind = "an image store" if role == "Image" else "a staging store"
        raise InvalidParameterValue(f"Store {store.name} (parameter id) is not {kind}")
    return store


@api_command("updateImageStore", response=ImageStoreResponse, roles=ROOT_ADMIN, since="4.15.0",
             description="Updates image store read-only status")
class UpdateImageStore(Command):
    store = store_param("Image")
    name = Param(STRING, since="4.19.0", description="The new name for the Image Store.")
    readonly = Param(BOOLEAN, description="If set to true, it designates the corresponding image store to read-only,"
                     " hence not considering them during storage migration")
    capacity_bytes = Param(LONG, "capacitybytes", since="4.19.0", description="The number of bytes CloudStack can"
                           " use on this image storage.\n\tNOTE: this will be overwritten by the StatsCollector as"
                           " soon as there is a SSVM to query the storage.")

    def execute(self, ctx: CallContext) -> Result:
        s = ctx.session
        store = _store_of_role(self.store, "Image")
        if self.name is None and self.readonly is None and self.capacity_bytes is None:
            raise InvalidParameterValue("Please specify something to change: name, readonly or capacitybytes")
        if self.name is not None:
            name = self.name.strip()
            if not name:
                raise InvalidParameterValue("Please specify a name for the image store (parameter name)")
            if s.scalar(select(ImageStore.id).where(ImageStore.name == name, ImageStore.removed.is_(None),
                                                    ImageStore.id != store.id)) is not None:
                raise InvalidParameterValue(f"The image store with name {name} already exists (parameter name)")
            store.name = name
        if self.readonly is not None:
            store.readonly = self.readonly
        if self.capacity_bytes is not None:
            if self.capacity_bytes <= 0:
                raise InvalidParameterValue("capacitybytes must be a positive number of bytes (parameter"
                                            " capacitybytes)")
            store.total_bytes = self.capacity_bytes
        return store_result(ctx, store)


def objects_in_use(ctx: CallContext, store: ImageStore) -> str | None:
    """What keeps a store from being deleted: user templates, snapshot backups (CloudStack's words)."""
    s = ctx.session
    user_templates = s.scalar(select(func.count()).select_from(TemplateZone).join(
        Template, Template.id == TemplateZone.template_id).where(
        TemplateZone.store_id == store.id, TemplateZone.removed.is_(None), Template.removed.is_(None),
        Template.template_type.not_in(("BUILTIN", "SYSTEM"))))
    if user_templates:
        return "templates"
    backups = s.scalar(select(func.count()).select_from(SnapshotStoreRef).join(
        Snapshot, Snapshot.id == SnapshotStoreRef.snapshot_id).where(
        SnapshotStoreRef.store_id == store.id, SnapshotStoreRef.removed.is_(None), Snapshot.removed.is_(None)))
    if backups:
        return "snapshots"
    return None


@api_command("deleteImageStore", response=SuccessResponse, roles=ROOT_ADMIN, since="4.2.0",
             description="Deletes an image store or Secondary Storage.")
class DeleteImageStore(Command):
    store = store_param("Image")

    def execute(self, ctx: CallContext) -> Result:
        s = ctx.session
        store = _store_of_role(self.store, "Image")
        busy = objects_in_use(ctx, store)
        if busy:
            raise ResourceInUse(f"Cannot delete image store with active {busy} backup!",
                                uuids=[(store.uuid, "storeId")])
        if store.zone_id is not None:
            others = count(ctx, ImageStore, ImageStore.zone_id == store.zone_id, ImageStore.role == "Image",
                           ImageStore.removed.is_(None), ImageStore.id != store.id)
            # snapshots taken before backups were kept as objects count as held by the zone's only store
            if not others and count(ctx, Snapshot, Snapshot.zone_id == store.zone_id, Snapshot.removed.is_(None),
                                    Snapshot.state == "BackedUp", Snapshot.id.not_in(
                                        select(SnapshotStoreRef.snapshot_id).where(
                                            SnapshotStoreRef.removed.is_(None)))):
                raise ResourceInUse("Cannot delete image store with active snapshots backup!",
                                    uuids=[(store.uuid, "storeId")])
        now = utcnow()
        for ref in s.scalars(select(TemplateZone).where(TemplateZone.store_id == store.id,
                                                        TemplateZone.removed.is_(None))):
            ref.removed = now
        store.removed = now
        return Success()


@api_command("listStorageProviders", response=StorageProviderResponse, roles=ROOT_ADMIN, is_list=True,
             description="Lists storage providers.")
class ListStorageProviders(Command):
    type = Param(STRING, required=True, description="the type of storage provider: either primary or image")

    def execute(self, ctx: CallContext) -> Result:
        kind = self.type.strip().lower()
        if kind == "primary":
            items = [{"name": "DefaultPrimary", "type": "PRIMARY"}]
        elif kind == "image":
            items = [{"name": n, "type": "IMAGE"} for n in provider_names()]
        elif kind == "imagecache":
            items = [{"name": n, "type": "ImageCache"} for n in provider_names()
                     if not provider_class(n).region_wide]
        elif kind == "object":
            items = []
        else:
            raise InvalidParameterValue(f"Invalid storage provider type {self.type} (parameter type): use primary,"
                                        " image, ImageCache or object")
        if self.keyword:
            items = [i for i in items if self.keyword.lower() in i["name"].lower()]
        offset, limit = page_bounds(ctx, self.page, self.page_size)
        return ListResult(items[offset:offset + limit if limit is not None else None], len(items))


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
        # what it cached is only a copy: the objects go with it
        driver = ctx.services.image_store(store)
        ctx.checkpoint()
        try:
            driver.delete_prefix("")
        except ImageStoreError:
            pass
        return Success()


@api_command("migrateSecondaryStorageData", response=StorageMigrationResponse, roles=ROOT_ADMIN, is_async=True,
             since="4.15.0", event_type="IMAGE.STORE.MIGRATE.DATA", description="migrates data objects from one"
             " secondary storage to destination image store(s)")
class MigrateSecondaryStorageData(Command):
    src = Param(UUID, "srcpool", required=True, entity=ImageStore, description="id of the image store from where"
                " the data is to be migrated")
    dests = Param(LIST, "destpools", required=True, item_type=UUID, entity=ImageStore, description="id(s) of the"
                  " destination secondary storage pool(s) to which the templates are to be migrated")
    migration_type = Param(STRING, "migrationtype", description="Balance: if you want data to be distributed evenly"
                           " among the destination stores, Complete: If you want to migrate the entire data from"
                           " source image store to the destination store(s). Default: Complete")

    def instance(self) -> tuple[str | None, str | None]:
        return "ImageStore", self.src.uuid

    def execute(self, ctx: CallContext) -> Result:
        from overcast.engine.storage_ops import migrate_store_data

        src = _store_of_role(self.src, "Image")
        kind = canonical(self.migration_type, ("Balance", "Complete"), "migrationtype", "the migration type") \
            if self.migration_type else "Complete"
        dests: list[ImageStore] = []
        for dest in self.dests or []:
            if dest.removed is not None or dest.role != "Image":
                raise InvalidParameterValue(f"Unable to find an image store with id {dest.uuid} (parameter"
                                            " destpools)")
            if dest.id == src.id:
                raise InvalidParameterValue("The source image store can't also be a destination (parameter"
                                            " destpools)")
            if dest.readonly:
                raise InvalidParameterValue(f"Image store {dest.name} is read-only (parameter destpools)")
            if dest.zone_id != src.zone_id:
                raise InvalidParameterValue(f"Image store {dest.name} is not in the zone of {src.name} (parameter"
                                            " destpools)")
            dests.append(dest)
        if not dests:
            raise InvalidParameterValue("Please specify at least one destination image store (parameter destpools)")
        was_readonly = src.readonly
        src.readonly = True  # nothing new lands on it while its objects move
        moved, left = migrate_store_data(ctx, src, dests, complete=kind == "Complete")
        if kind == "Balance":
            src.readonly = was_readonly
        message = f"Migrated {moved} object(s) from {src.name}" + (f"; {left} left on it" if left else "")
        ctx.event("IMAGE.STORE.MIGRATE.DATA", message, resource_type="ImageStore", resource_uuid=src.uuid)
        return ObjectResult({"message": message, "migrationtype": kind, "success": True})


__all__ = ["AddImageStore", "CreateStoragePool", "add_store"]
