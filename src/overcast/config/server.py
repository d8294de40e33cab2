"""Server settings: how this process runs (address, storage, workers).

Sources, later ones winning: built-in defaults, a TOML file (``--config FILE`` or ``OVERCAST_CONFIG``),
``OVERCAST_*`` environment variables, then command-line flags. CloudStack's own tunables (page size,
session timeout, ...) are global settings in the database instead: see :mod:`overcast.config.globals`.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# A plain dataclass rather than pydantic-settings: importing pydantic was a sixth of the server's
# start time, for a dozen fields. Values are coerced as pydantic did (``"8080"`` to 8080, ``"yes"`` to
# True, ...) and anything else is refused with a SettingsError naming the field.


class SettingsError(ValueError):
    """A server setting that is unknown or whose value does not fit its type."""


@dataclass
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    #: SQLite database and local files live here unless ``db`` points elsewhere.
    data_dir: Path = field(default_factory=lambda: Path.home() / ".overcast")
    #: SQLAlchemy URL; empty means SQLite in ``data_dir``.
    db: str = ""
    #: Async job worker threads in this process; 0 makes an API-only node.
    job_workers: int = 4
    #: Server processes sharing the listening port (``serve --processes``). Only the first runs job
    #: workers, heartbeats and periodic tasks; the others answer the API only.
    processes: int = 1
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
    #: On SQLite, run read-only commands signed with an API key on the event loop rather than in the
    #: thread pool: they wait for no lock, and a thread hop costs a fifth of such a request (the GIL
    #: lets no two requests run at once anyway). A long listing then holds up other requests for its
    #: length. Writes, logins and session requests always use the pool, as everything does on
    #: PostgreSQL and MariaDB.
    inline_reads: bool = True
    #: The guest metadata service (user data, metadata, password; docs/metadata.md). Off while its port
    #: is 0. ``metadata_host`` is the address it listens on, or several, comma separated: the guest
    #: networks' gateway addresses where the guests reach it (CloudStack's virtual router serves port 80
    #: there, the password on 8080).
    metadata_host: str = "0.0.0.0"
    #: Port of the metadata HTTP service (``/latest/user-data``, ``/latest/meta-data/...``); 0: off.
    metadata_port: int = 0
    #: Port of the password server (``DomU_Request: send_my_password``); 0: off.
    password_port: int = 0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, _coerce(f.name, f.type, getattr(self, f.name)))  # type: ignore[arg-type]
        if self.processes < 1:
            raise SettingsError("processes: must be at least 1")

    @property
    def database_url(self) -> str:
        if self.db:
            return self.db
        return f"sqlite:///{self.data_dir / 'overcast.db'}"


_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})


def _coerce(name: str, kind: str, value: Any) -> Any:
    """``value`` as the field's type (annotations are strings here), the way pydantic's lax mode did."""
    try:
        if kind == "str":
            if isinstance(value, str):
                return value
        elif kind == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, int | float) and value in (0, 1):
                return bool(value)
            if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
                return value.strip().lower() in _TRUE
        elif kind == "int":
            if isinstance(value, int):
                return int(value)
            if isinstance(value, str):
                try:
                    return int(value.strip())
                except ValueError:
                    value = float(value.strip())  # "8080.0" is 8080, "80.5" no int
            if isinstance(value, float) and value.is_integer():
                return int(value)
        elif kind == "float":
            if isinstance(value, int | float):
                return float(value)
            if isinstance(value, str):
                return float(value.strip())
        elif kind == "Path":
            if isinstance(value, str | os.PathLike):
                return Path(value)
        else:  # pragma: no cover - a field of a type added without a rule here
            raise AssertionError(f"no coercion for {kind}")
    except ValueError:
        pass
    raise SettingsError(f"{name}: {value!r} is not a valid {kind}")


def load_settings(config_file: str | os.PathLike[str] | None = None, **overrides: Any) -> ServerSettings:
    """Settings from the file (if any), the environment, and explicit overrides (non-None only)."""
    file_values: dict[str, Any] = {}
    path = config_file or os.environ.get("OVERCAST_CONFIG")
    if path:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
        file_values = dict(data.get("server", data))
    kinds = {f.name: f.type for f in dataclasses.fields(ServerSettings)}
    merged = {**file_values}
    for name, kind in kinds.items():  # environment over the file; checked even when a flag wins
        raw = os.environ.get(f"OVERCAST_{name.upper()}")
        if raw is not None:
            merged[name] = _coerce(name, kind, raw)  # type: ignore[arg-type]
    merged.update({k: v for k, v in overrides.items() if v is not None})
    unknown = sorted(set(merged) - set(kinds))
    if unknown:
        raise SettingsError(f"unknown server settings: {', '.join(unknown)}")
    return ServerSettings(**merged)
