"""CloudStack global settings: typed, documented, scoped, stored as overrides in the database.

``listConfigurations`` and ``updateConfiguration`` work over :data:`SETTINGS`. A value set at a narrower
scope (account, domain, zone) wins over the global value for that scope.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, event, select
from sqlalchemy.orm import Session, sessionmaker

from overcast.db.models import ConfigValue
from overcast.errors import InvalidParameterValue


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    default: str | None
    #: CloudStack's type names: String, Integer, Long, Boolean, Float, Double.
    type: str
    description: str
    category: str = "Advanced"
    component: str = "ManagementServer"
    #: Scopes a value can be set at besides global: "zone", "account", "domain", ...
    scopes: tuple[str, ...] = ()
    is_dynamic: bool = True
    min_value: float | None = None
    max_value: float | None = None

    def parse(self, raw: str | None) -> Any:
        if raw is None:
            return None
        if self.type == "Boolean":
            return raw.strip().lower() == "true"
        if self.type in ("Integer", "Long"):
            return int(raw)
        if self.type in ("Float", "Double"):
            return float(raw)
        return raw

    def validate(self, raw: str) -> str:
        try:
            value = self.parse(raw)
        except ValueError:
            raise InvalidParameterValue(
                f"Value {raw} for configuration {self.name} is not a valid {self.type}"
            ) from None
        if self.type == "Boolean" and raw.strip().lower() not in ("true", "false"):
            raise InvalidParameterValue(f"Configuration {self.name} takes true or false, not {raw}")
        if self.min_value is not None and value is not None and value < self.min_value:
            raise InvalidParameterValue(f"Configuration {self.name} must be at least {self.min_value:g}")
        if self.max_value is not None and value is not None and value > self.max_value:
            raise InvalidParameterValue(f"Configuration {self.name} must be at most {self.max_value:g}")
        return raw.strip() if self.type != "String" else raw


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in [
        Setting("default.page.size", "500", "Long",
                "Default page size for API list* commands", min_value=1),
        Setting("default.ui.page.size", "20", "Long", "Default page size for the UI", min_value=1),
        Setting("session.timeout", "1800", "Integer",
                "Session timeout in seconds: a login session unused this long ends", min_value=60),
        Setting("enforce.post.requests.and.timestamps", "false", "Boolean",
                "Require signature version 3 with an expires timestamp at most"
                " api.request.expires.max.seconds ahead on every key-signed request"),
        Setting("api.request.expires.max.seconds", "3600", "Integer",
                "How far in the future a signature version 3 expires timestamp may be", min_value=60),
        Setting("api.sessionkey.check.locations", "CookieAndParameter", "String",
                "Where the session key must be presented: CookieAndParameter, CookieOrParameter or"
                " ParameterOnly"),
        Setting("proxy.header.verify", "false", "Boolean",
                "Take the client address from proxy.header.names, but only for requests whose peer"
                " is in proxy.cidr"),
        Setting("proxy.header.names", "X-Forwarded-For", "String",
                "Headers carrying the client address behind a trusted proxy, comma separated"),
        Setting("proxy.cidr", "", "String",
                "Comma-separated CIDRs of reverse proxies whose address headers are trusted"),
        Setting("allow.user.view.all.domain.accounts", "false", "Boolean",
                "Let users list every account of their domain", scopes=("domain",)),
        Setting("account.cleanup.interval", "86400", "Integer",
                "Seconds between sweeps that remove the resources of deleted accounts"),
        Setting("event.purge.delay", "15", "Integer",
                "Days after which events are purged (0: never)"),
        Setting("job.expire.minutes", "1440", "Long",
                "Minutes after which completed async job records are removed"),
        Setting("job.cancel.threshold.minutes", "60", "Long",
                "Minutes after which a job that has not started is cancelled"),
        Setting("expunge.delay", "86400", "Integer",
                "Seconds to wait before a destroyed VM is expunged", scopes=("account",)),
        Setting("expunge.interval", "86400", "Integer", "Seconds between expunge sweeps"),
        Setting("vm.userdata.max.length", "32768", "Integer",
                "Largest VM user data accepted, in bytes of base64 text", min_value=1),
        # guest metadata (overcast.metadata)
        Setting("cloud.identifier", "", "String",
                "Identifier of this cloud; guests see CloudStack-{<it>} as the cloud-identifier metadata item"
                " (none while empty)"),
        Setting("global.allow.expose.host.hostname", "false", "Boolean",
                "Tell guests the name of their host (hypervisor-host-name metadata item), if"
                " account.allow.expose.host.hostname also allows it"),
        Setting("account.allow.expose.host.hostname", "false", "Boolean",
                "Tell this account's guests the name of their host, if"
                " global.allow.expose.host.hostname also allows it", scopes=("account",)),
        Setting("metadata.custom.cloud.name", "", "String",
                "Cloud name guests see as the cloud-name metadata item (none while empty)", scopes=("zone",)),
        Setting("vm.configdrive.label", "config-2", "String",
                "Volume label of config drive ISO images"),
        Setting("cpu.overprovisioning.factor", "1.0", "Float",
                "CPU overprovisioning factor", category="Advanced", scopes=("cluster",), min_value=1),
        Setting("mem.overprovisioning.factor", "1.0", "Float",
                "Memory overprovisioning factor", scopes=("cluster",), min_value=1),
        Setting("storage.overprovisioning.factor", "2.0", "Float",
                "Primary storage overprovisioning factor", scopes=("storagepool",), min_value=1),
        Setting("staging.store.selection.policy", "leastused", "String",
                "How a staging (cache) store is chosen for a copy between an object store and primary"
                " storage: leastused (fewest bytes used) or roundrobin (the least recently chosen)"),
        Setting("vm.allocation.algorithm", "random", "String",
                "How hosts are ordered for a deployment: random, firstfit, userdispersing,"
                " firstfitleastconsumed", scopes=("zone",)),
        Setting("start.retry", "10", "Integer", "Number of times to retry a VM start on other hosts",
                min_value=1),
        Setting("vm.destroy.forcestop", "false", "Boolean", "Force-stop a VM when destroying it"),
        Setting("allow.user.expunge.recover.vm", "false", "Boolean",
                "Let users expunge and recover their destroyed VMs", scopes=("account",)),
        Setting("allow.user.view.destroyed.vm", "false", "Boolean",
                "Let users list their destroyed VMs", scopes=("account",)),
        Setting("ping.interval", "60", "Integer",
                "Seconds between host health checks; a host that misses one is taken for failed and its"
                " HA-enabled VMs restart elsewhere", min_value=1),
        Setting("instance.name", "VM", "String",
                "Name of the deployment instance, part of VM instance names", is_dynamic=False),
        Setting("max.account.user.vms", "20", "Long", "Maximum VMs per account",
                category="Account Defaults", scopes=("account",)),
        # volumes and snapshots
        Setting("storage.max.volume.size", "2000", "Long", "The maximum size of a volume, in GB"),
        Setting("custom.diskoffering.size.min", "1", "Long",
                "Smallest size (GB) a volume of a custom disk offering may have", min_value=1),
        Setting("custom.diskoffering.size.max", "1024", "Long",
                "Largest size (GB) a volume of a custom disk offering may have", min_value=1),
        Setting("allow.user.expunge.recover.volume", "true", "Boolean",
                "Let users expunge and recover their volumes", scopes=("account",)),
        Setting("storage.cleanup.enabled", "true", "Boolean", "Expunge destroyed volumes periodically"),
        Setting("storage.cleanup.interval", "86400", "Integer",
                "Seconds between sweeps that expunge destroyed volumes", min_value=1),
        Setting("storage.cleanup.delay", "86400", "Integer",
                "Seconds a destroyed volume is kept (and can be recovered) before it is expunged", min_value=0),
        Setting("snapshot.poll.interval", "30", "Integer",
                "Seconds between checks for snapshot policies whose next run has passed", min_value=1),
        Setting("snapshot.max.hourly", "8", "Integer", "Maximum maxsnaps of an HOURLY snapshot policy", min_value=1),
        Setting("snapshot.max.daily", "8", "Integer", "Maximum maxsnaps of a DAILY snapshot policy", min_value=1),
        Setting("snapshot.max.weekly", "8", "Integer", "Maximum maxsnaps of a WEEKLY snapshot policy", min_value=1),
        Setting("snapshot.max.monthly", "8", "Integer", "Maximum maxsnaps of a MONTHLY snapshot policy",
                min_value=1),
        Setting("vmsnapshot.max", "10", "Integer", "Maximum number of VM snapshots of one VM", min_value=1),
        Setting("allow.public.user.templates", "true", "Boolean",
                "Let users (not admins) make their templates and ISOs public", scopes=("account",)),
        # template and ISO downloads, uploads and extraction (overcast.storage.download)
        Setting("max.template.iso.size", "50", "Long",
                "Largest template or ISO that may be downloaded or uploaded, in GB", min_value=1),
        Setting("template.download.allow.private.addresses", "false", "Boolean",
                "Let template and ISO URLs reach loopback, link-local, private and metadata addresses"
                " (refused by default: CVE-2024-29007)"),
        Setting("template.download.timeout", "60", "Integer",
                "Seconds a template or ISO download may wait for the remote server (connect or read)",
                min_value=1),
        Setting("template.download.workers", "2", "Integer",
                "Template and ISO downloads run at the same time on each management server", min_value=1,
                is_dynamic=False),
        Setting("upload.operation.timeout", "60", "Integer",
                "Minutes a browser upload URL (getUploadParamsForTemplate/Iso) stays valid", min_value=1),
        Setting("extract.url.expiration.interval", "14400", "Integer",
                "Seconds an extractTemplate/extractIso/extractVolume download URL stays valid", min_value=1),
        Setting("storage.public.url", "", "String",
                "Base URL (http://host:port) clients reach this server at, for upload and download links;"
                " empty: the server's own address and port"),
        # the built-in KV storage (overcast.kv)
        Setting("storage.kv.vm.history.enabled", "false", "Boolean",
                "Keep the history of new VM KV storages (read when the storage is created)"),
        Setting("storage.kv.url.public", "", "String",
                "URL of the KV HTTP service returned to users as url; empty: the /kv/ base URL of this server"),
        Setting("storage.kv.key.max.bytes", "512", "Integer",
                "Longest KV key accepted, in UTF-8 bytes (at most 512)", min_value=1, max_value=512),
        Setting("storage.kv.value.max.bytes", "1048576", "Integer",
                "Longest KV value accepted, in UTF-8 bytes; -1 for no limit", min_value=-1),
        Setting("storage.kv.purge.interval", "600", "Integer",
                "Seconds between sweeps that remove deleted and expired KV storages with their data",
                min_value=1),
        Setting("storage.kv.purge.delay", "3600", "Integer",
                "Seconds a deleted or expired KV storage is kept (listed with deleted=true) before it is"
                " removed with its keys and history", min_value=0),
        Setting("storage.kv.reconcile.interval", "300", "Integer",
                "Seconds between checks that every live VM has its KV storage and that storages of expunged"
                " VMs and removed accounts are deleted", min_value=1),
    ]
}


class GlobalSettings:
    """Reads settings with their scoped overrides; caches until a value changes in this process.

    In distributed mode another node's update is seen after ``ttl`` seconds (the cache's lifetime).
    """

    def __init__(self, sessions: sessionmaker[Session], *, ttl: float = 5.0) -> None:
        self._sessions = sessions
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str, int], str | None] = {}
        self._loaded_at = 0.0
        self._ttl = ttl
        self._generation = 0  # bumped by invalidate(): a load that raced with a change isn't kept

    def _load(self) -> dict[tuple[str, str, int], str | None]:
        import time

        now = time.monotonic()
        with self._lock:
            if now - self._loaded_at < self._ttl and self._cache:
                return self._cache
            generation = self._generation
        with self._sessions() as s:
            rows = s.execute(select(ConfigValue.name, ConfigValue.scope, ConfigValue.scope_id, ConfigValue.value))
            cache = {(n, sc, sid): v for n, sc, sid, v in rows}
        cache[("", "", 0)] = None  # never empty, so the TTL check holds
        with self._lock:
            if generation == self._generation:
                self._cache, self._loaded_at = cache, now
        return cache

    def invalidate(self) -> None:
        with self._lock:
            self._loaded_at = 0.0
            self._generation += 1

    def raw(self, name: str, *, scope: str = "global", scope_id: int = 0) -> str | None:
        setting = SETTINGS[name]
        cache = self._load()
        if scope != "global" and (name, scope, scope_id) in cache:
            return cache[(name, scope, scope_id)]
        return cache.get((name, "global", 0), setting.default)

    def get(self, name: str, *, scope: str = "global", scope_id: int = 0) -> Any:
        return SETTINGS[name].parse(self.raw(name, scope=scope, scope_id=scope_id))

    def set(self, session: Session, name: str, value: str | None, *, scope: str = "global", scope_id: int = 0) -> None:
        row = session.scalar(
            select(ConfigValue).where(
                ConfigValue.name == name, ConfigValue.scope == scope, ConfigValue.scope_id == scope_id
            )
        )
        if row is None:
            session.add(ConfigValue(name=name, scope=scope, scope_id=scope_id, value=value))
        else:
            row.value = value
        session.flush()
        self._changed(session)

    def reset(self, session: Session, name: str, *, scope: str = "global", scope_id: int = 0) -> None:
        """Drop the value set at this scope: the next scope up (or the default) applies again."""
        session.execute(delete(ConfigValue).where(ConfigValue.name == name, ConfigValue.scope == scope,
                                                  ConfigValue.scope_id == scope_id))
        self._changed(session)

    def _changed(self, session: Session) -> None:
        self.invalidate()
        # again once the change is committed: a read between the flush and the commit cached the old value
        event.listen(session, "after_commit", lambda _s: self.invalidate(), once=True)
