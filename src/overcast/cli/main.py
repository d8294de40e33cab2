"""The ``overcast`` command line."""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from overcast import CLOUDSTACK_VERSION, __version__
from overcast.config.server import ServerSettings, load_settings


def _settings(kwargs: dict[str, Any]) -> ServerSettings:
    config = kwargs.pop("config", None)
    return load_settings(config, **kwargs)


def _logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)


def server_options(fn: Any) -> Any:
    for opt in reversed([
        click.option("--config", type=click.Path(exists=True, dir_okay=False), help="TOML settings file."),
        click.option("--data-dir", type=click.Path(file_okay=False), help="Where SQLite and local files live."),
        click.option("--db", help="Database URL (postgresql+psycopg://..., mysql+pymysql://...)."),
    ]):
        fn = opt(fn)
    return fn


@click.group()
@click.version_option(__version__, message=f"overcast %(version)s (CloudStack API {CLOUDSTACK_VERSION})")
def main() -> None:
    """Overcast: a cloud management server that speaks the Apache CloudStack API."""


def prepare_database(settings: ServerSettings) -> tuple[Any, tuple[str, str] | None]:
    """Migrate the schema and seed a new database. Returns (services, new admin keys or None)."""
    from overcast.access.bootstrap import bootstrap
    from overcast.db.migrate import upgrade
    from overcast.services import Services

    from overcast.db.migrate import setup_lock
    from overcast.engine.catalog_seed import seed_catalog

    services = Services.build(settings)
    with setup_lock(services.db.engine):
        upgrade(services.db.engine)
        with services.db.writer.begin() as s:
            keys = bootstrap(s)
            seed_catalog(s)  # idempotent: also fills in catalogues added by upgrades
    return services, keys


@main.command()
@server_options
@click.option("--host", help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (default 8080).")
@click.option("--workers", "job_workers", type=int, help="Async job worker threads (0: API only).")
@click.option("--processes", type=int, help="Server processes sharing the port (default 1); the first"
              " runs the job workers.")
@click.option("--node-name", help="Name of this node among several sharing a database.")
@click.option("--log-level", help="DEBUG, INFO, WARNING, ERROR.")
@click.option("--sandbox", is_flag=True, help="Seed the simulator sandbox zones and print the admin keys.")
@click.option("--metadata-host", help="Address(es), comma separated, of the guest metadata and password services"
              " (default 0.0.0.0).")
@click.option("--metadata-port", type=int, help="Port of the guest metadata service (default 0: off; the"
              " virtual router's is 80).")
@click.option("--password-port", type=int, help="Port of the guest password server (default 0: off; the"
              " virtual router's is 8080).")
def serve(sandbox: bool, **kwargs: Any) -> None:
    """Run the management server."""
    import uvicorn

    from overcast.api.app import create_app

    settings = _settings(kwargs)
    _logging(settings.log_level)
    services, keys = prepare_database(settings)
    if sandbox:
        _seed_sandbox(services, settings)
        if keys is None:
            from overcast.access.bootstrap import admin_keys

            with services.db.reader() as s:
                api_key, secret = admin_keys(s)
            keys = (api_key or "", secret or "")
    if keys is not None:
        click.echo("Admin API key:    " + keys[0], err=True)
        click.echo("Admin secret key: " + keys[1], err=True)
        click.echo("(shown once; `overcast admin keys` prints them again)", err=True)
    if settings.processes > 1:
        _serve_processes(settings, services)
        return
    app = create_app(services)
    click.echo(f"Overcast {__version__} listening on http://{settings.host}:{settings.port}/client/api",
               err=True)
    uvicorn.run(app, host=settings.host, port=settings.port, **UVICORN_OPTIONS)


# proxy_headers off: uvicorn would otherwise trust X-Forwarded-For from loopback peers; the client
# address is decided by our own proxy.* settings only (CVE-2024-29006).
UVICORN_OPTIONS: dict[str, Any] = dict(log_level="warning", access_log=False, lifespan="on", proxy_headers=False,
                                       server_header=False)


def _listening_sockets(host: str, port: int, count: int) -> list[Any]:
    """``count`` listening sockets on one address, with SO_REUSEPORT: the kernel spreads new
    connections evenly over them (one shared socket would leave most keep-alive connections with
    whichever process happened to accept first). The address is first bound without SO_REUSEPORT,
    so a port another server holds is refused as usual instead of shared with it."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
        sockets = []
        for _ in range(count):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port if not sockets else sockets[0].getsockname()[1]))
            sock.listen(2048)
            sockets.append(sock)
    except OSError as exc:
        raise click.ClickException(f"can't listen on {host}:{port}: {exc}") from None
    return sockets


def _serve_processes(settings: ServerSettings, services: Any, make_app: Any = None, what: str = "/client/api") -> None:
    """``serve --processes N``: N processes forked once the database is ready, each accepting on its
    own socket of the port (SO_REUSEPORT). The first runs the job workers, heartbeats and periodic tasks; the others
    answer the API only (a job they queue waits for the first's next poll, at most half a second).
    Each process caches credentials and settings as a node of a cluster does (see ``Authenticator``).
    SIGTERM or SIGINT stops them all; if one exits by itself the others are stopped and the exit
    status is 1.
    """
    import os
    import signal
    import threading

    import uvicorn

    from overcast.api.app import create_app
    from overcast.api.commands import load_all
    from overcast.services import Services

    if not hasattr(os, "fork"):
        raise click.ClickException("--processes needs a system with fork()")
    log = logging.getLogger("overcast.cli")
    services.close()  # nothing may cross the fork: no threads, no open database connections
    if threading.active_count() > 1:
        raise click.ClickException(f"threads still running before fork: {threading.enumerate()}")
    load_all()  # imported once, shared by the children
    sockets = _listening_sockets(settings.host, settings.port, settings.processes)
    click.echo(f"Overcast {__version__} listening on http://{settings.host}:{settings.port}{what}"
               f" ({settings.processes} processes)", err=True)
    sys.stderr.flush()
    children: dict[int, int] = {}
    stopping = False

    def stop(signum: int | None = None, frame: Any = None) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for index in range(settings.processes):
        if stopping:
            break
        pid = os.fork()
        if pid == 0:  # a server process: uvicorn handles its signals (and re-raises them when done)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            code = 0
            try:
                app = (make_app or create_app)(Services.build(settings), start_workers=index == 0)
                for other in sockets[:index] + sockets[index + 1:]:
                    other.close()  # the kernel routes connections only to sockets someone accepts on
                uvicorn.Server(uvicorn.Config(app, **UVICORN_OPTIONS)).run(sockets=[sockets[index]])
            except KeyboardInterrupt:
                pass
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                log.exception("Server process %d failed", index)
                code = 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        children[pid] = index
    for sock in sockets:
        sock.close()  # the children hold them
    status = 0
    while children:
        try:
            pid, wait_status = os.wait()
        except ChildProcessError:
            break
        index = children.pop(pid, -1)
        code = os.waitstatus_to_exitcode(wait_status)
        if not stopping:
            log.error("Server process %d exited with %d; stopping the others", index, code)
            status = 1
            stop()
        elif code not in (0, -signal.SIGTERM, -signal.SIGINT):
            status = 1
    sys.exit(status)


@main.group()
def kv() -> None:
    """The KV storages' secret-key HTTP service."""


def _kv_app(services: Any, start_workers: bool = False) -> Any:
    from overcast.engine.readiness import watch_kv_reports
    from overcast.kv.http import PrefixStrip, create_kv_app

    watch_kv_reports()  # guests may report ready through a KV node of their own
    return PrefixStrip(create_kv_app(services, standalone=True))


@kv.command("serve")
@server_options
@click.option("--host", help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (default 8080).")
@click.option("--processes", type=int, help="Server processes sharing the port (default 1).")
@click.option("--log-level", help="DEBUG, INFO, WARNING, ERROR.")
def kv_serve(**kwargs: Any) -> None:
    """Run only the KV HTTP service (at / and at /kv/), on the management server's database: several
    KV nodes can share one database with it."""
    import uvicorn

    settings = _settings(kwargs)
    _logging(settings.log_level)
    services, keys = prepare_database(settings)
    if keys is not None:
        click.echo("Admin API key:    " + keys[0], err=True)
        click.echo("Admin secret key: " + keys[1], err=True)
    if settings.processes > 1:
        _serve_processes(settings, services, _kv_app, "/kv/")
        return
    click.echo(f"Overcast {__version__} KV service listening on http://{settings.host}:{settings.port}/kv/",
               err=True)
    uvicorn.run(_kv_app(services), host=settings.host, port=settings.port, **UVICORN_OPTIONS)


def _seed_sandbox(services: Any, settings: ServerSettings) -> None:
    from overcast.engine.sandbox import seed_sandbox

    with services.db.writer.begin() as s:
        zones = seed_sandbox(s, str(settings.data_dir))
    click.echo("Sandbox zones: " + ", ".join(z.name for z in zones), err=True)


@main.command("sandbox")
@server_options
def sandbox_cmd(**kwargs: Any) -> None:
    """Seed the simulator sandbox into a server's database (running or not)."""
    settings = _settings(kwargs)
    services, _ = prepare_database(settings)
    _seed_sandbox(services, settings)
    services.db.dispose()


@main.group()
def metadata() -> None:
    """The guest metadata service (docs/metadata.md)."""


@metadata.command("serve")
@server_options
@click.option("--metadata-host", help="Address(es) to listen on, comma separated (default 0.0.0.0).")
@click.option("--metadata-port", type=int, help="Port of the metadata service (0: off).")
@click.option("--password-port", type=int, help="Port of the password server (0: off).")
@click.option("--log-level", help="DEBUG, INFO, WARNING, ERROR.")
def metadata_serve(**kwargs: Any) -> None:
    """Serve only the guest metadata and password services, from a server's database."""
    import asyncio
    import signal

    from overcast.metadata.service import MetadataServers
    from overcast.services import Services

    settings = _settings(kwargs)
    _logging(settings.log_level)
    if not settings.metadata_port and not settings.password_port:
        raise click.UsageError("Give --metadata-port or --password-port (or set them in the settings).")
    services = Services.build(settings)

    async def run() -> None:
        servers = MetadataServers(services)
        try:
            await servers.start()
        except RuntimeError as exc:
            raise click.ClickException(str(exc)) from None
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        click.echo(f"Overcast guest metadata on {settings.metadata_host}: metadata port"
                   f" {settings.metadata_port or 'off'}, password port {settings.password_port or 'off'}", err=True)
        await stop.wait()
        await servers.stop()

    try:
        asyncio.run(run())
    finally:
        services.db.dispose()


@main.group()
def db() -> None:
    """Database schema commands."""


@db.command("upgrade")
@server_options
def db_upgrade(**kwargs: Any) -> None:
    """Create or migrate the schema to the current version."""
    from overcast.db.migrate import current_revision

    settings = _settings(kwargs)
    services, keys = prepare_database(settings)
    click.echo(f"Database at revision {current_revision(services.db.engine)}")
    if keys is not None:
        click.echo(f"Admin API key: {keys[0]}\nAdmin secret key: {keys[1]}")
    services.db.dispose()


@main.group()
def admin() -> None:
    """Administration helpers."""


@admin.command("keys")
@server_options
def admin_keys_cmd(**kwargs: Any) -> None:
    """Print the admin user's API key and secret key."""
    from overcast.access.bootstrap import admin_keys

    settings = _settings(kwargs)
    services, _ = prepare_database(settings)
    with services.db.reader() as s:
        api_key, secret = admin_keys(s)
    services.db.dispose()
    if not api_key:
        raise click.ClickException("The admin user has no API keys; call registerUserKeys for it.")
    click.echo(f"apikey={api_key}\nsecretkey={secret}")


@main.command("deploy-datacenter")
@click.argument("config_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--url", help="API endpoint (default: the local server's, from its settings). The file's"
              " mgtSvr section is not used: it names CloudStack's unauthenticated port 8096.")
@click.option("--apikey", help="API key of a root admin.")
@click.option("--secretkey", help="Secret key of that API key.")
@server_options
def deploy_datacenter(config_file: str, url: str | None, apikey: str | None, secretkey: str | None,
                      **kwargs: Any) -> None:
    """Create the zones of a Marvin configuration file (advanced.cfg, basic.cfg) through the API.

    Keys come from --apikey/--secretkey, or from the admin user of the server's database (--data-dir,
    --db, --config)."""
    import json

    from overcast.cli.deploy import ApiClient, ApiError, DataCenterDeployer

    try:
        with open(config_file, encoding="utf-8") as fh:
            config = json.load(fh)
    except ValueError as exc:
        raise click.ClickException(f"{config_file} is not valid JSON: {exc}") from exc
    if bool(apikey) != bool(secretkey):
        raise click.UsageError("Pass both --apikey and --secretkey, or neither.")
    settings = None
    if not apikey:
        from sqlalchemy.exc import SQLAlchemyError

        from overcast.access.bootstrap import admin_keys
        from overcast.db.session import Database

        settings = _settings(kwargs)
        database = Database(settings.database_url)
        try:
            with database.reader() as s:
                apikey, secretkey = admin_keys(s)
        except SQLAlchemyError as exc:
            raise click.ClickException(f"Cannot read the admin keys from {settings.database_url}: {exc}") from exc
        finally:
            database.dispose()
        if not apikey or not secretkey:
            raise click.ClickException("The admin user has no API keys; pass --apikey and --secretkey.")
    if url is None:
        settings = settings or _settings(kwargs)
        url = f"http://{settings.host}:{settings.port}/client/api"
    client = ApiClient(url, apikey, secretkey or "")
    try:
        created = DataCenterDeployer(client, config, echo=click.echo, supports=client.supports).deploy()
    except ApiError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        client.close()
    click.echo("Deployed: " + ", ".join(f"{len(v)} {k}" for k, v in created.items()))


@main.group()
def docs() -> None:
    """Generate the API documents (Markdown, on standard output) from the command declarations."""


@docs.command("coverage")
@click.option("--catalog", required=True, type=click.Path(exists=True, dir_okay=False),
              help="CloudStack API catalogue JSON (name -> {async, listkey, params, required, response,"
                   " service}).")
def docs_coverage(catalog: str) -> None:
    """Which CloudStack commands are implemented, and how they differ (docs/api-coverage.md)."""
    from overcast.docs import coverage, load_catalog

    click.echo(coverage(load_catalog(catalog)), nl=False)


@docs.command("reference")
def docs_reference() -> None:
    """Every command, its parameters and response, and the global settings (docs/api-reference.md)."""
    from overcast.docs import reference

    click.echo(reference(), nl=False)


if __name__ == "__main__":  # pragma: no cover
    main()
