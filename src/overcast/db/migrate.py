"""Schema migrations with Alembic: ``overcast db upgrade`` and the automatic upgrade at start."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str = "") -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision``. Idempotent; safe to run from several nodes one after another."""
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


@contextmanager
def setup_lock(engine: Engine, timeout: int = 120) -> Iterator[None]:
    """Serialise schema upgrades and first-start seeding among nodes starting together.

    PostgreSQL: an advisory lock; MariaDB: GET_LOCK; SQLite needs none (one file, one writer).
    """
    if engine.dialect.name == "sqlite":
        yield
        return
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_lock(7270001)"))
        else:
            got = conn.execute(text("SELECT GET_LOCK('overcast_setup', :t)"), {"t": timeout}).scalar()
            if got != 1:
                raise RuntimeError("timed out waiting for another node to finish setting up the database")
        conn.commit()
        try:
            yield
        finally:
            if engine.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_unlock(7270001)"))
            else:
                conn.execute(text("SELECT RELEASE_LOCK('overcast_setup')"))
            conn.commit()
