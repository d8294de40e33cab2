"""Server settings: how this process runs (address, storage, workers).

Sources, later ones winning: built-in defaults, a TOML file (``--config FILE`` or ``OVERCAST_CONFIG``),
``OVERCAST_*`` environment variables, then command-line flags. CloudStack's own tunables (page size,
session timeout, ...) are global settings in the database instead: see :mod:`overcast.config.globals`.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OVERCAST_", extra="forbid")

    host: str = "127.0.0.1"
    port: int = 8080
    #: SQLite database and local files live here unless ``db`` points elsewhere.
    data_dir: Path = Field(default_factory=lambda: Path.home() / ".overcast")
    #: SQLAlchemy URL; empty means SQLite in ``data_dir``.
    db: str = ""
    #: Async job worker threads in this process; 0 makes an API-only node.
    job_workers: int = 4
    #: A node whose heartbeat is older than this many seconds is taken for dead; its jobs are recovered.
    node_timeout: float = 30.0
    #: Name of this node in listManagementServers and job records; defaults to the host name.
    node_name: str = ""
    #: Seconds between heartbeats and scans for jobs of dead nodes.
    heartbeat_interval: float = 5.0
    #: Log level of the server and of the access log.
    log_level: str = "INFO"
    #: Turn off the per-request access log (benchmarks only).
    access_log: bool = True

    @property
    def database_url(self) -> str:
        if self.db:
            return self.db
        return f"sqlite:///{self.data_dir / 'overcast.db'}"


def load_settings(config_file: str | os.PathLike[str] | None = None, **overrides: Any) -> ServerSettings:
    """Settings from the file (if any), the environment, and explicit overrides (non-None only)."""
    file_values: dict[str, Any] = {}
    path = config_file or os.environ.get("OVERCAST_CONFIG")
    if path:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
        file_values = dict(data.get("server", data))
    env = ServerSettings()  # environment over defaults
    merged = {**file_values}
    for name in ServerSettings.model_fields:
        if f"OVERCAST_{name.upper()}" in os.environ:
            merged[name] = getattr(env, name)
    merged.update({k: v for k, v in overrides.items() if v is not None})
    return ServerSettings.model_validate(merged)
