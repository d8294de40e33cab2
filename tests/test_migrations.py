"""The migrations and the models describe the same schema.

A new database is created from the models and stamped (db/migrate.py); an existing one is upgraded by
the migrations. Both paths must end at the same schema, on every database we support.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from overcast.db.migrate import alembic_config, current_revision, head_revision, upgrade
from overcast.db.models import Base
from servers import BACKENDS, backend_unavailable, drop_database, new_database


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """``database(backend)`` -> the URL of a new, empty database, dropped after the test."""
    made: list[str] = []

    def make(backend: str) -> str:
        url = new_database(backend)
        made.append(url)
        return url or f"sqlite:///{tmp_path / 'm.db'}"

    yield make
    for url in made:
        drop_database(url)


@pytest.mark.parametrize("backend", BACKENDS)
def test_migrations_reach_the_models_schema(backend: str, database: Callable[[str], str]) -> None:
    reason = backend_unavailable(backend)
    if reason:
        pytest.skip(reason)
    engine = create_engine(database(backend))
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")  # every migration, in order
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    engine.dispose()
    assert diff == [], f"the migrations and the models differ: {diff}"


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_new_database_is_created_from_the_models_and_stamped(backend: str,
                                                               database: Callable[[str], str]) -> None:
    reason = backend_unavailable(backend)
    if reason:
        pytest.skip(reason)
    engine = create_engine(database(backend))
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    upgrade(engine)  # idempotent
    engine.dispose()
