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
@click.option("--node-name", help="Name of this node among several sharing a database.")
@click.option("--log-level", help="DEBUG, INFO, WARNING, ERROR.")
@click.option("--sandbox", is_flag=True, help="Seed the simulator sandbox zones and print the admin keys.")
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
    app = create_app(services)
    click.echo(f"Overcast {__version__} listening on http://{settings.host}:{settings.port}/client/api",
               err=True)
    # proxy_headers off: uvicorn would otherwise trust X-Forwarded-For from loopback peers; the
    # client address is decided by our own proxy.* settings only (CVE-2024-29006).
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", access_log=False,
                lifespan="on", proxy_headers=False, server_header=False)


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
