"""The guest metadata service and password server, as CloudStack's virtual router serves them.

Two small ASGI applications, each on its own port (``metadata_port``, ``password_port``):

- metadata: ``GET /latest/user-data``, ``/latest/meta-data/`` (the manifest: one item name a line),
  ``/latest/meta-data/<item>`` and the router's legacy ``/latest/<item>`` shortcuts (spec 3.6), and
  Overcast's ``POST /latest/ready`` by which a guest reports it is configured (engine.readiness);
- password: ``DomU_Request: send_my_password`` answers the VM's pending password (or
  ``saved_password`` when there is none), ``DomU_Request: saved_password`` forgets it (spec 3.7).

The guest is the VM whose NIC holds the request's source address (the TCP peer; no header counts).
An address that is no served VM's gets 404 (metadata) or ``saved_password`` (password), the same as
a VM without that item, so the answers tell nobody which addresses are guests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from starlette.concurrency import run_in_threadpool

from overcast.db.models import Nic, VirtualMachine
from overcast.metadata.guest import (
    GUEST_USER_DATA_QUERY,
    VR_ITEMS,
    VmData,
    clear_password,
    decode_user_data,
    find_guest,
    normalize_address,
    pick_guest,
    take_password,
    vm_data,
)

logger = logging.getLogger(__name__)

#: ``/latest/<name>`` shortcuts of the router's .htaccess (no hypervisor-host-name, no variables).
LEGACY_ITEMS = frozenset(("availability-zone", "cloud-identifier", "instance-id", "local-hostname", "local-ipv4",
                          "public-hostname", "public-ipv4", "public-keys", "service-offering", "vm-id"))

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def _respond(send: Send, status: int, body: bytes, *, content_type: bytes = b"text/plain",
                   extra: list[tuple[bytes, bytes]] | None = None, head: bool = False) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()),
               *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})


#: ASGI scope key naming the NIC a request comes from. Only an in-process caller can set it (no header
#: or other part of an HTTP request reaches the scope's keys): the simulated guest, which has no network
#: of its own to tell apart two networks whose guests hold one address behind one gateway address.
NIC_SCOPE_KEY = "overcast.guest_nic"


def _addresses(scope: Scope) -> tuple[str, str | None]:
    """(source address, where the request came in): the server address, or ``nic:<id>`` from
    :data:`NIC_SCOPE_KEY` (see :func:`overcast.metadata.guest.pick_guest`)."""
    client = scope.get("client") or ("", 0)
    if scope.get(NIC_SCOPE_KEY) is not None:
        return str(client[0] or ""), f"nic:{int(scope[NIC_SCOPE_KEY])}"
    server = scope.get("server") or (None, 0)
    return str(client[0] or ""), server[0]


def _route(path: str) -> tuple[str, str | None] | None:
    """``("user-data", None)``, ``("manifest", None)`` or ``("item", name)`` for a request path."""
    if not path.startswith("/latest/"):
        return None
    rest = path[len("/latest/"):]
    lowered = rest.lower()
    if lowered in ("user-data", "user-data/"):
        return ("user-data", None)
    if lowered in ("meta-data", "meta-data/"):
        return ("manifest", None)
    if lowered.startswith("meta-data/"):
        name = rest[len("meta-data/"):]
        if name.endswith("/"):
            name = name[:-1]
        if not name or "/" in name:
            return None
        return ("item", name)
    name = lowered[:-1] if lowered.endswith("/") else lowered
    if name in LEGACY_ITEMS:
        return ("item", name)
    return None


class MetadataApp:
    """ASGI application of the metadata HTTP service."""

    def __init__(self, services: Any) -> None:
        from overcast.db.session import is_sqlite

        self.services = services
        self.inline = services.config.inline_reads and is_sqlite(services.db.engine)

    def lookup(self, source: str, local: str | None) -> VmData | None:
        with self.services.db.reader() as s:
            guest = find_guest(s, source, local)
            if guest is None:
                return None
            vm = s.get(VirtualMachine, guest.vm_id)
            nic = s.get(Nic, guest.nic_id)
            if vm is None or nic is None:
                return None
            return vm_data(s, self.services, vm, nic)

    def lookup_user_data(self, source: str, local: str | None) -> bytes | None:
        """The guest's user data: one query on a plain connection, for the busiest path."""
        address = normalize_address(source)
        if address is None:
            return None
        with self.services.db.engine.connect() as conn:
            rows = conn.execute(GUEST_USER_DATA_QUERY, {"address": address}).all()
        row = pick_guest(rows, local)
        return decode_user_data(row.user_data) if row is not None else None

    def report_ready(self, source: str, local: str | None) -> bool:
        """The guest at ``source`` says it is configured and ready (Overcast's ``POST /latest/ready``)."""
        from overcast.engine.readiness import report_ready

        with self.services.db.writer.begin() as s:
            guest = find_guest(s, source, local)
            vm = s.get(VirtualMachine, guest.vm_id) if guest is not None else None
            return vm is not None and report_ready(s, self.services, vm.uuid, via="metadata service")

    async def ready(self, scope: Scope, receive: Receive, send: Send) -> None:
        while (await receive()).get("more_body"):  # the body says nothing: drain it
            pass
        source, local = _addresses(scope)
        try:
            reported = await run_in_threadpool(self.report_ready, source, local)
        except Exception:
            logger.exception("Readiness report from %s failed", source)
            await _respond(send, 503, b"Service Unavailable")
            return
        # Like every item: an address of no running VM gets 404, and learns nothing more.
        await _respond(send, 200 if reported else 404, b"" if reported else b"Not Found")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        method = scope.get("method", "GET")
        if method == "POST" and scope.get("path", "").rstrip("/").lower() == "/latest/ready":
            await self.ready(scope, receive, send)
            return
        if method not in ("GET", "HEAD"):
            await _respond(send, 405, b"Method Not Allowed", extra=[(b"allow", b"GET, HEAD")])
            return
        head = method == "HEAD"
        route = _route(scope.get("path", ""))
        if route is None:
            await _respond(send, 404, b"Not Found", head=head)
            return
        source, local = _addresses(scope)
        kind, name = route
        try:
            if kind == "user-data":
                if self.inline:  # SQLite: a read waits for no lock; a thread hop costs more than the query
                    user_data = self.lookup_user_data(source, local)
                else:
                    user_data = await run_in_threadpool(self.lookup_user_data, source, local)
                if user_data is None:
                    await _respond(send, 404, b"Not Found", head=head)
                else:
                    await _respond(send, 200, user_data, content_type=b"application/octet-stream", head=head)
                return
            data = await run_in_threadpool(self.lookup, source, local)
        except Exception:  # a database outage: the guest retries, as it does when the router is down
            logger.exception("Metadata lookup for %s failed", source)
            await _respond(send, 503, b"Service Unavailable", head=head)
            return
        if data is None:
            await _respond(send, 404, b"Not Found", head=head)
            return
        if kind == "manifest":
            names = [n for n in VR_ITEMS if n in data.items]
            names += [n for n in data.items if n not in names]
            await _respond(send, 200, "".join(f"{n}\n" for n in names).encode(), head=head)
            return
        value = data.items.get(name or "")
        if value is None:
            await _respond(send, 404, b"Not Found", head=head)
            return
        await _respond(send, 200, value.encode("utf-8"), head=head)


class PasswordApp:
    """ASGI application of the password server (``passwd_server_ip.py``'s GET protocol)."""

    HEADERS = [(b"server", b"CloudStack Password Server")]

    def __init__(self, services: Any) -> None:
        self.services = services

    def send_my_password(self, source: str, local: str | None) -> str | None:
        with self.services.db.reader() as s:
            guest = find_guest(s, source, local)
            return take_password(s, guest.vm_id) if guest is not None else None

    def saved_password(self, source: str, local: str | None) -> None:
        with self.services.db.writer.begin() as s:
            guest = find_guest(s, source, local)
            if guest is not None:
                clear_password(s, guest.vm_id)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope.get("method") != "GET":
            # Saving passwords by POST is the management server's business; here it is done by the API.
            await _respond(send, 501, b"Unsupported method", extra=self.HEADERS)
            return
        request = ""
        for key, value in scope.get("headers", ()):
            if key.lower() == b"domu_request":
                request = value.decode("latin-1").strip()
                break
        source, local = _addresses(scope)
        try:
            if request == "send_my_password":
                password = await run_in_threadpool(self.send_my_password, source, local)
                body = password if password else "saved_password"
            elif request == "saved_password":
                await run_in_threadpool(self.saved_password, source, local)
                body = "saved_password"
            else:
                body = "bad_request"
        except Exception:
            logger.exception("Password request from %s failed", source)
            await _respond(send, 503, b"", extra=self.HEADERS)
            return
        await _respond(send, 200, body.encode("utf-8"), extra=self.HEADERS)


def listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class MetadataServers:
    """The metadata and password listeners of one process, run on the caller's event loop next to the
    API (``overcast serve``) or alone (``overcast metadata serve``)."""

    def __init__(self, services: Any) -> None:
        self.services = services
        self._servers: list[Any] = []
        self._tasks: list[asyncio.Task[None]] = []

    def listeners(self) -> list[tuple[str, int, Any]]:
        cfg = self.services.config
        out: list[tuple[str, int, Any]] = []
        if cfg.metadata_port:
            out.append(("metadata", cfg.metadata_port, MetadataApp(self.services)))
        if cfg.password_port:
            out.append(("password", cfg.password_port, PasswordApp(self.services)))
        return out

    async def start(self) -> None:
        import uvicorn

        class _Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:  # the API server (or the CLI) owns the signals
                yield

        # Several addresses (comma separated): a router listens on the gateway of each guest network.
        hosts = [h.strip() for h in self.services.config.metadata_host.split(",") if h.strip()] or ["0.0.0.0"]
        for name, port, app in self.listeners():
            sockets = []
            for host in hosts:
                try:
                    sockets.append(listening_socket(host, port))
                except OSError as exc:
                    for sock in sockets:
                        sock.close()
                    await self.stop()
                    raise RuntimeError(f"can't listen on {host}:{port} for the {name} service: {exc}") from exc
            config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                    proxy_headers=False, server_header=False, date_header=False)
            server = _Server(config)
            self._servers.append(server)
            self._tasks.append(asyncio.get_running_loop().create_task(server.serve(sockets=sockets)))
            logger.info("Guest %s service listening on port %d of %s", name, port, ", ".join(hosts))

    async def stop(self) -> None:
        for server in self._servers:
            server.should_exit = True
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._servers, self._tasks = [], []


__all__ = ["LEGACY_ITEMS", "MetadataApp", "MetadataServers", "PasswordApp"]
