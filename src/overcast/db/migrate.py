"""Schema migrations with Alembic: ``overcast db upgrade`` and the automatic upgrade at start."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import DBAPIError

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic is imported only when there is something to migrate: loading it is a fifth of the start
# time of a server whose schema is already current.

MIGRATIONS = Path(__file__).parent / "migrations"

_REVISION = re.compile(r"^revision\s*(?::[^=\n]*)?=\s*(.+?)\s*$", re.M)
_DOWN_REVISION = re.compile(r"^down_revision\s*(?::[^=\n]*)?=\s*(.+?)\s*$", re.M)
_QUOTED = re.compile(r"""^(['"])([^'"]+)\1$""")


def alembic_config(url: str = "") -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision``. Idempotent; safe to run from several nodes one after another."""
    if revision == "head" and _is_current(engine):
        return
    from alembic import command

    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        if revision == "head" and not inspect(conn).get_table_names():
            # A new database: create the schema from the models and mark it current, rather than
            # replaying every migration (Alembic's own recipe; tests/test_migrations.py proves the
            # migrations and the models describe the same schema).
            from overcast.db.models import Base

            Base.metadata.create_all(conn)
            command.stamp(cfg, "head")
            return
        command.upgrade(cfg, revision)


def _script_heads() -> set[str] | None:
    """The head revisions of the migration scripts, read from their text without Alembic; None when
    a script is not in the plain generated form (Alembic then decides)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        rev, down = _REVISION.findall(source), _DOWN_REVISION.findall(source)
        if len(rev) != 1 or len(down) != 1:
            return None
        rev_id = _QUOTED.match(rev[0])
        if rev_id is None:
            return None
        revisions.add(rev_id.group(2))
        if down[0] != "None":
            down_id = _QUOTED.match(down[0])
            if down_id is None:
                return None  # a merge point or something unusual
            parents.add(down_id.group(2))
    return (revisions - parents) or None


def _is_current(engine: Engine) -> bool:
    """True when the database is at the scripts' head revision(s) already."""
    heads = _script_heads()
    if heads is None:
        return False
    try:
        with engine.connect() as conn:
            stamped = set(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
    except DBAPIError:  # no version table: a new database
        return False
    return stamped == heads


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

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
