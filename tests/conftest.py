"""Shared fixtures: a real server process for the session, and clients pointed at it.

Every test that uses a server runs once per database in ``OVERCAST_TEST_DBS`` (default
``sqlite,postgresql,mariadb``; a fresh database is created per server). A database that is not
reachable skips its runs with a one-line reason.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cs import CloudStack

from servers import BACKENDS, Server, backend_unavailable, drop_database, free_port, new_database


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``@pytest.mark.backends("sqlite")``: run a test only on the databases named (client-compatibility
    tests whose subject is the wire, not the database, run once instead of once per database)."""
    keep, drop = [], []
    for item in items:
        marker = item.get_closest_marker("backends")
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("backend") if callspec is not None else None
        (drop if marker is not None and backend is not None and backend not in marker.args else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    reason = backend_unavailable(request.param)
    if reason:
        pytest.skip(reason)
    return str(request.param)


@pytest.fixture(scope="session")
def server_factory(tmp_path_factory: pytest.TempPathFactory, backend: str) -> Iterator[Any]:
    """Start extra servers: ``server_factory(env={...}, extra_args=[...], db_url=...)``."""
    session_servers: list[tuple[Server, str]] = []

    def start(*, db_url: str | None = None, data_dir: Path | None = None, port: int | None = None,
              session: bool = False, **kwargs: Any) -> Server:
        """``session=True``: the server lives until the end of the session; otherwise until the end of
        the module that started it (``_stop_module_servers``), so that servers don't pile up and take
        every connection PostgreSQL and MariaDB allow. A database it made goes with it."""
        owned = new_database(backend) if db_url is None else ""
        srv = Server(data_dir=data_dir or tmp_path_factory.mktemp("srv"), port=port or free_port(),
                     db_url=owned or db_url, **kwargs)
        (session_servers if session else _MODULE_SERVERS).append((srv, owned))
        return srv.start()

    yield start
    _stop(session_servers + _MODULE_SERVERS)
    _MODULE_SERVERS.clear()


#: Servers started for one module: (server, the database made for it or "").
_MODULE_SERVERS: list[tuple[Server, str]] = []


def _stop(servers: list[tuple[Server, str]]) -> None:
    for srv, _ in servers:
        srv.stop()
    for _, url in servers:
        drop_database(url)


@pytest.fixture(scope="module", autouse=True)
def _stop_module_servers() -> Iterator[None]:
    """Stops the servers a module started (see ``server_factory``) once the module is done."""
    yield
    _stop(list(_MODULE_SERVERS))
    _MODULE_SERVERS.clear()


@pytest.fixture(scope="session")
def server(server_factory: Any) -> Server:
    """The session's shared server."""
    return server_factory(session=True)  # type: ignore[no-any-return]


def client(server: Server, key: str, secret: str, **kwargs: Any) -> CloudStack:
    options: dict[str, Any] = {"fetch_result": True, "timeout": 30, "poll_interval": 0.1, **kwargs}
    return CloudStack(endpoint=server.url, key=key, secret=secret, **options)


@pytest.fixture(scope="session")
def admin(server: Server) -> CloudStack:
    """A ``cs`` client for the root admin, signing with signature version 3."""
    return client(server, server.api_key, server.secret_key)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class Tenant:
    """An account with its own API keys: ``tenant.api`` is a ``cs`` client acting as its user."""

    def __init__(self, server: Server, account: dict[str, Any], api: CloudStack, user: dict[str, Any]) -> None:
        self.server, self.account, self.api, self.user = server, account, api, user
        self.id = account["id"]
        self.name = account["name"]
        self.domain_id = account["domainid"]


def tenant_factory(server: Server, admin: CloudStack) -> Any:
    def make(*, accounttype: int | None = 0, domainid: str | None = None, roleid: str | None = None,
             password: str = "secret-pass") -> Tenant:
        name = unique("acct")
        params: dict[str, Any] = dict(username=name, password=password, email=f"{name}@example.com",
                                      firstname="Test", lastname="User")
        if roleid:
            params["roleid"] = roleid
        else:
            params["accounttype"] = accounttype
        if domainid:
            params["domainid"] = domainid
        account = admin.createAccount(**params)["account"]
        user = account["user"][0]
        keys = admin.registerUserKeys(id=user["id"])["userkeys"]
        return Tenant(server, account, client(server, keys["apikey"], keys["secretkey"]), user)

    return make


@pytest.fixture(scope="session")
def make_tenant(server: Server, admin: CloudStack) -> Any:
    """``make_tenant(accounttype=0, domainid=None, roleid=None)`` -> a Tenant with keys."""
    return tenant_factory(server, admin)


@pytest.fixture(scope="session")
def make_domain(admin: CloudStack) -> Any:
    def make(parent: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"name": unique("dom")}
        if parent:
            params["parentdomainid"] = parent
        return admin.createDomain(**params)["domain"]  # type: ignore[no-any-return]

    return make


class Sandbox:
    """UUIDs of what ``overcast serve --sandbox`` seeds, read from the server's database."""

    def __init__(self, server: Server) -> None:
        from sqlalchemy import create_engine, text

        self.server = server
        engine = create_engine(server.db_url or f"sqlite:///{server.data_dir / 'overcast.db'}")
        with engine.connect() as c:
            def one(sql: str, **params: Any) -> str:
                return str(c.execute(text(sql), params).scalar_one())

            self.advanced_zone = one("SELECT uuid FROM zone WHERE name = 'Sandbox-simulator-advanced'")
            self.basic_zone = one("SELECT uuid FROM zone WHERE name = 'Sandbox-simulator-basic'")
            self.template = one("SELECT uuid FROM vm_template WHERE name = :n",
                                n="CentOS 5.6 (64-bit) no GUI (Simulator)")
            self.small = one("SELECT uuid FROM service_offering WHERE name = 'Small Instance'")
            self.medium = one("SELECT uuid FROM service_offering WHERE name = 'Medium Instance'")
            self.disk_small = one("SELECT uuid FROM disk_offering WHERE name = 'Small' AND compute_only = :f", f=False)
            self.disk_custom = one("SELECT uuid FROM disk_offering WHERE name = 'Custom' AND compute_only = :f",
                                   f=False)
        engine.dispose()


@pytest.fixture(scope="session")
def sandbox_server(server_factory: Any) -> Server:
    """A server started with ``--sandbox`` (the simulator zones, template and offerings)."""
    return server_factory(extra_args=["--sandbox"], session=True)  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def sandbox(sandbox_server: Server) -> Sandbox:
    return Sandbox(sandbox_server)


@pytest.fixture(scope="session")
def sandbox_admin(sandbox_server: Server) -> CloudStack:
    return client(sandbox_server, sandbox_server.api_key, sandbox_server.secret_key)


@pytest.fixture(scope="session")
def make_sandbox_tenant(sandbox_server: Server, sandbox_admin: CloudStack) -> Any:
    """Like ``make_tenant``, on the sandbox server."""
    return tenant_factory(sandbox_server, sandbox_admin)
