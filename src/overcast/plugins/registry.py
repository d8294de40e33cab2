"""Finding plug-ins through entry points, lazily, checked against their contract.

Usage::

    drivers = PluginRegistry("overcast.hypervisors", HypervisorDriver)
    sim = drivers.get("simulator")          # the class, loaded on first use
    drivers.override("simulator", FakeSim)  # tests
"""

from __future__ import annotations

import threading
from importlib.metadata import entry_points
from typing import Generic, TypeVar

T = TypeVar("T")


class PluginNotFound(LookupError):
    pass


class PluginLoadError(RuntimeError):
    pass


class PluginRegistry(Generic[T]):
    def __init__(self, group: str, contract: type[T]) -> None:
        self.group = group
        self.contract = contract
        self._loaded: dict[str, type[T]] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        found = {ep.name for ep in entry_points(group=self.group)}
        return sorted(found | set(self._loaded))

    def get(self, name: str) -> type[T]:
        key = name.lower()
        with self._lock:
            if key in self._loaded:
                return self._loaded[key]
            matches = [ep for ep in entry_points(group=self.group) if ep.name.lower() == key]
            if not matches:
                raise PluginNotFound(f"No {self.group} plug-in named {name!r}")
            try:
                cls = matches[0].load()
            except Exception as exc:  # a broken plug-in must not take the server down
                raise PluginLoadError(f"Plug-in {name!r} of {self.group} failed to load: {exc}") from exc
            if not (isinstance(cls, type) and issubclass(cls, self.contract)):
                raise PluginLoadError(f"Plug-in {name!r} of {self.group} is not a {self.contract.__name__}")
            self._loaded[key] = cls
            return cls

    def override(self, name: str, cls: type[T]) -> None:
        """Use ``cls`` for ``name`` in this process (tests)."""
        with self._lock:
            self._loaded[name.lower()] = cls
