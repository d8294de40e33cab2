"""The built-in commands, one module per area, and the plug-in commands from entry points."""

from __future__ import annotations

import importlib
import logging
from importlib.metadata import entry_points

logger = logging.getLogger(__name__)

BUILTIN = ("accounts", "addresses", "affinity", "bundles", "config", "discovery", "domains", "events", "infra", "infra_network", "infra_storage", "jobs", "kv", "limits", "networks", "nics", "offerings", "roles", "securitygroups", "snapshots", "sshkeys", "tags", "templates", "userdata", "users", "vms", "volumes")
_loaded = False


def load_all() -> None:
    """Import every command module so the registry is complete. Idempotent."""
    global _loaded
    if _loaded:
        return
    importlib.import_module("overcast.api.auth_commands")
    for name in BUILTIN:
        importlib.import_module(f"overcast.api.commands.{name}")
    for ep in entry_points(group="overcast.api.commands"):
        ep.load()  # the module registers its commands on import
        logger.info("Loaded commands from plug-in %s", ep.name)
    _loaded = True
