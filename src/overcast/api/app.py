"""The ASGI application: ``/client/api`` by GET and form POST."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from overcast.api.commands import load_all
from overcast.api.declare import registry
from overcast.api.dispatch import Dispatcher, Request
from overcast.db.session import is_sqlite
from overcast.api.transfer import routes as transfer_routes
from overcast.kv.http import create_kv_app
from overcast.services import Services

logger = logging.getLogger(__name__)

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-xss-protection", b"1;mode=block"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
]


def client_address(request: HttpRequest, services: Services) -> str:
    """The caller's address. Proxy headers count only when the peer is a configured proxy
    (``proxy.header.verify`` and ``proxy.cidr``), so a client can't claim another address
    (CVE-2024-29006)."""
    peer = request.client.host if request.client else ""
    settings = services.settings
    if not settings.get("proxy.header.verify"):
        return peer
    cidrs = [c.strip() for c in str(settings.get("proxy.cidr") or "").split(",") if c.strip()]
    try:
        peer_ip = ipaddress.ip_address(peer)
        trusted = any(peer_ip in ipaddress.ip_network(c, strict=False) for c in cidrs)
    except ValueError:
        trusted = False
    if not trusted:
        return peer
    for header in str(settings.get("proxy.header.names") or "").split(","):
        value = request.headers.get(header.strip())
        if value:
            candidate = value.split(",")[0].strip()
            try:
                return str(ipaddress.ip_address(candidate))
            except ValueError:
                continue
    return peer


def _key_signed_read(pairs: list[tuple[str, str]]) -> bool:
    """A read-only command signed with an API key: on SQLite it waits for no lock (readers never do,
    and the key is looked up by a read), so it may run on the event loop (``inline_reads``)."""
    command = next((v for k, v in pairs if k.lower() == "command"), "")
    cls = registry.get(command)
    return (cls is not None and cls.read_only and command.lower() not in ("login", "logout")
            and any(k.lower() == "apikey" for k, _ in pairs))


def create_app(services: Services, *, start_workers: bool = True) -> Starlette:
    load_all()
    dispatcher = Dispatcher(services)
    inline_reads = services.config.inline_reads and is_sqlite(services.db.engine)

    async def api(request: HttpRequest) -> Response:
        pairs = parse_qsl(request.url.query, keep_blank_values=True)
        if request.method == "POST":
            ctype = request.headers.get("content-type", "")
            if ctype.startswith("application/x-www-form-urlencoded"):
                body = await request.body()
                pairs += parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        req = Request(request.method, pairs, dict(request.cookies), client_address(request, services))
        if inline_reads and _key_signed_read(pairs):
            result = dispatcher.handle(req)
        else:
            result = await run_in_threadpool(dispatcher.handle, req)
        response = Response(result.body, status_code=result.status, media_type=result.content_type)
        response.raw_headers.extend(SECURITY_HEADERS)
        for name, value in result.headers:
            response.raw_headers.append((name.lower().encode(), value.encode("latin-1", "replace")))
        return response

    async def health(request: HttpRequest) -> Response:
        return JSONResponse({"status": "ok", "node": services.node_name})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        from overcast.kv.registry import subscribe as follow_kv_lifecycle
        from overcast.engine.readiness import watch_kv_reports
        from overcast.plugins.simulator.guest import subscribe as simulate_guests

        follow_kv_lifecycle(services)  # every process that records VM and account events
        simulate_guests(services)  # simulator VMs with the simulator.guest.ready detail report ready
        watch_kv_reports()  # a guest writing `ready` into its VM storage is its readiness report
        if start_workers:
            services.jobs.start(dispatcher.job_hooks(), services.config.job_workers)
            if services.config.job_workers > 0:
                from overcast.engine.tasks import register_tasks

                register_tasks(services)
                services.scheduler.start()
        guest_services = None
        if start_workers:  # the guest metadata and password listeners, and the config drive builder
            from overcast.metadata.configdrive import watch_config_drives
            from overcast.metadata.service import MetadataServers

            watch_config_drives(services)
            guest_services = MetadataServers(services)
            await guest_services.start()
        try:
            yield
        finally:
            if guest_services is not None:
                await guest_services.stop()
            services.close()

    app = Starlette(
        routes=[Route("/client/api", api, methods=["GET", "POST"]),
                Route("/client/api/", api, methods=["GET", "POST"]),
                Route("/health", health, methods=["GET"]),
                Mount("/kv", app=create_kv_app(services)),  # the KV storages' secret-key service
                *transfer_routes(services)],  # template/ISO uploads, extract downloads
        lifespan=lifespan,
    )
    app.state.services = services
    app.state.dispatcher = dispatcher
    return app
