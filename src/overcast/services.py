"""The process-wide services a server runs with, wired once at start."""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from overcast.access.auth import Authenticator
from overcast.access.identity import Identity
from overcast.config.globals import GlobalSettings
from overcast.config.server import ServerSettings
from overcast.db.session import Database
from overcast.events.bus import EventBus
from overcast.events.recorder import EventRecorder
from overcast.jobs.scheduler import Scheduler
from overcast.plugins.hypervisor import HypervisorDriver
from overcast.plugins.network import NetworkElement
from overcast.plugins.registry import PluginRegistry
from overcast.plugins.storage import ImageStoreDriver

#: Hypervisor drivers by name, from the ``overcast.hypervisors`` entry points.
HYPERVISORS: PluginRegistry[HypervisorDriver] = PluginRegistry("overcast.hypervisors", HypervisorDriver)
#: Network elements by provider name (lower case), from the ``overcast.network.elements`` entry points.
NETWORK_ELEMENTS: PluginRegistry[NetworkElement] = PluginRegistry("overcast.network.elements", NetworkElement)

if TYPE_CHECKING:
    from overcast.api.context import CallContext
    from overcast.db.models import ImageStore
    from overcast.engine.template_downloads import TemplateDownloads
    from overcast.jobs.queue import JobQueue

logger = logging.getLogger(__name__)


@dataclass
class Services:
    config: ServerSettings
    db: Database
    settings: GlobalSettings
    bus: EventBus
    events: EventRecorder
    auth: Authenticator
    node_id: str
    node_name: str
    jobs: JobQueue = field(init=False)
    scheduler: Scheduler = field(init=False)
    _drivers: dict[str, HypervisorDriver] = field(init=False, default_factory=dict)
    _elements: dict[str, NetworkElement] = field(init=False, default_factory=dict)
    _base_url: str | None = field(init=False, default=None)
    _stores: dict[tuple[int, str, str | None], ImageStoreDriver] = field(init=False, default_factory=dict)
    #: Template and ISO download workers (started with the job workers; overcast.engine.template_downloads).
    downloads: TemplateDownloads | None = field(init=False, default=None)

    @classmethod
    def build(cls, config: ServerSettings) -> Services:
        import uuid

        from overcast.jobs.queue import JobQueue

        db = Database(config.database_url)
        bus = EventBus()
        events = EventRecorder(bus)
        events.attach(db.reader)
        if db.writer is not db.reader:
            events.attach(db.writer)
        node_name = config.node_name or f"{socket.gethostname()}:{config.port}"
        svc = cls(
            config=config, db=db, settings=GlobalSettings(db.reader), bus=bus, events=events,
            auth=Authenticator(db.reader), node_id=str(uuid.uuid4()), node_name=node_name,
        )  # fmt: skip
        svc.jobs = JobQueue(svc)
        svc.scheduler = Scheduler(db, svc.node_id)
        from overcast.plugins.simulator.driver import SimulatorDriver

        SimulatorDriver.sessions, SimulatorDriver.readers = db.writer, db.reader  # injections: this database
        ImageStoreDriver.data_dir = config.data_dir
        return svc

    def hypervisor(self, hypervisor_type: str) -> HypervisorDriver:
        """The driver instance for a hypervisor type ("Simulator", "KVM"), one per process."""
        key = hypervisor_type.lower()
        driver = self._drivers.get(key)
        if driver is None:
            from overcast.plugins.registry import PluginLoadError, PluginNotFound

            try:
                driver = HYPERVISORS.get(key)()
            except (PluginNotFound, PluginLoadError) as exc:
                from overcast.errors import ResourceUnavailable

                raise ResourceUnavailable(f"No driver for hypervisor {hypervisor_type}: {exc}") from exc
            self._drivers[key] = driver
        return driver

    def network_element(self, provider: str) -> NetworkElement:
        """The element instance of a network service provider ("VirtualRouter"), one per process."""
        key = provider.lower()
        element = self._elements.get(key)
        if element is None:
            from overcast.plugins.registry import PluginLoadError, PluginNotFound

            try:
                element = NETWORK_ELEMENTS.get(key)()
            except (PluginNotFound, PluginLoadError) as exc:
                from overcast.errors import ResourceUnavailable

                raise ResourceUnavailable(f"No network element for provider {provider}: {exc}") from exc
            element = self._elements.setdefault(key, element)
        return element

    def image_store(self, store: ImageStore) -> ImageStoreDriver:
        """The driver instance of an image or staging store row, one per store (and configuration) per process;
        an unknown provider is an InvalidParameterValue."""
        key = (store.id, store.url, store.details)
        driver = self._stores.get(key)
        if driver is None:
            from overcast.plugins.storage import provider_class, store_details

            driver = provider_class(store.provider)(store.url, store_details(store))
            driver = self._stores.setdefault(key, driver)
        return driver

    def base_url(self) -> str:
        """``http://host:port`` of this server as clients reach it: its listening address, or the
        machine's name (looked up once) when it listens on every address. The KV service's URL and
        upload/download links start with it unless their settings name another."""
        if self._base_url is None:
            host = self.config.host
            if host in ("0.0.0.0", "::", ""):
                host = socket.getfqdn()
            if ":" in host:
                host = f"[{host}]"
            self._base_url = f"http://{host}:{self.config.port}"
        return self._base_url

    def identity(self, ctx: CallContext) -> Identity:
        return Identity(ctx.session, self.events)

    def close(self) -> None:
        self.scheduler.stop()
        if self.downloads is not None:
            self.downloads.stop()
        self.jobs.stop()
        self.bus.drain(5)
        self.bus.close()
        for store in self._stores.values():
            store.close()
        self.db.dispose()
