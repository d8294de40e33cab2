"""Starting real ``overcast serve`` processes for tests, on SQLite, PostgreSQL or MariaDB."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

#: The databases the suite runs on.
BACKENDS = [b.strip() for b in os.environ.get("OVERCAST_TEST_DBS", "sqlite,postgresql,mariadb").split(",") if b.strip()]
PG_ADMIN_URL = os.environ.get("OVERCAST_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
MARIADB_ADMIN_URL = os.environ.get("OVERCAST_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306/test")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def new_database(backend: str) -> str:
    """Create an empty database on ``backend`` and return its URL ("" for SQLite: the data dir's)."""
    if backend == "sqlite":
        return ""
    from sqlalchemy import create_engine, text

    name = f"overcast_test_{uuid.uuid4().hex[:12]}"
    if backend == "postgresql":
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    if backend == "mariadb":
        admin = create_engine(MARIADB_ADMIN_URL)
        with admin.connect() as c:
            c.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"))
        admin.dispose()
        return MARIADB_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}?charset=utf8mb4"
    raise ValueError(f"unknown backend {backend}")


def drop_database(url: str) -> None:
    """Drop a database ``new_database`` created (its server stopped); SQLite's goes with its data dir."""
    if not url:
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    if not name or not name.startswith("overcast_test_"):
        return
    if url.startswith("postgresql"):
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        statement = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    else:
        admin = create_engine(MARIADB_ADMIN_URL)
        statement = f"DROP DATABASE IF EXISTS `{name}`"
    try:
        with admin.connect() as c:
            c.execute(text(statement))
    finally:
        admin.dispose()


def backend_unavailable(backend: str) -> str | None:
    """Why ``backend`` can't be used here, or None when it can."""
    if backend == "postgresql" and not reachable("127.0.0.1", 5432):
        return "PostgreSQL is not reachable on 127.0.0.1:5432"
    if backend == "mariadb" and not reachable("127.0.0.1", 3306):
        return "MariaDB is not reachable on 127.0.0.1:3306"
    return None


@dataclass
class Server:
    """A running ``overcast serve`` process."""

    data_dir: Path
    port: int
    db_url: str = ""
    env: dict[str, str] = field(default_factory=dict)
    extra_args: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None
    api_key: str = ""
    secret_key: str = ""
    log_path: Path | None = None
    #: The address the API (and the KV HTTP service under /kv/) listens on: ``serve --host``.
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/client/api"

    def start(self, timeout: float = 30.0) -> Server:
        self.log_path = self.data_dir / f"server-{self.port}-{int(time.time() * 1000)}.log"
        args = [sys.executable, "-m", "overcast.cli.main", "serve", "--port", str(self.port),
                "--data-dir", str(self.data_dir), *self.extra_args]
        if self.host != "127.0.0.1":
            args += ["--host", self.host]
        if self.db_url:
            args += ["--db", self.db_url]
        env = {**os.environ, "OVERCAST_HEARTBEAT_INTERVAL": "0.5", **self.env}
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log_path.read_text()}")
            try:
                if httpx.get(f"http://{self.host}:{self.port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        else:
            raise RuntimeError(f"server did not start:\n{self.log_path.read_text()}")
        text = self.log_path.read_text()
        key = re.search(r"Admin API key:\s+(\S+)", text)
        secret = re.search(r"Admin secret key:\s+(\S+)", text)
        if key and secret:
            self.api_key, self.secret_key = key.group(1), secret.group(1)
        elif not self.api_key:
            self.api_key, self.secret_key = self.admin_keys()
        return self

    def admin_keys(self) -> tuple[str, str]:
        args = [sys.executable, "-m", "overcast.cli.main", "admin", "keys", "--data-dir", str(self.data_dir)]
        if self.db_url:
            args += ["--db", self.db_url]
        out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
        values = dict(line.split("=", 1) for line in out.strip().splitlines())
        return values["apikey"], values["secretkey"]

    def kill(self) -> None:
        """kill -9: no shutdown hooks run."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path else ""
