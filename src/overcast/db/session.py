"""Database engines and sessions: SQLite (WAL) by default, PostgreSQL and MariaDB by URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import sessionmaker


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``. SQLite gets WAL, a busy timeout and foreign keys on every connection."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            # Many connections: a request thread waiting on SQLite's write lock holds one, and the thread
            # holding the lock may need a second (settings, keys, the simulator's reads). With fewer
            # connections than threads could ask for, 45+ concurrent writers starved the lock holder
            # until the pool timeout. SQLite connections cost little.
            url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=64, max_overflow=192,
            **kwargs,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy's BEGIN drive transactions; make BEGIN take the write lock at once so two
            # writers never deadlock on a lock upgrade.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            if conn.get_execution_options().get("sqlite_immediate", False):
                conn.exec_driver_sql("BEGIN IMMEDIATE")  # may wait for the lock: errors wrapped as usual
            else:
                # A deferred BEGIN takes no lock and can't fail on a busy database: straight to the
                # driver, skipping SQLAlchemy's statement machinery (a fifth of a cached read's cost).
                conn.connection.driver_connection.execute("BEGIN")

        return engine
    if url.startswith("mysql") or url.startswith("mariadb"):
        kwargs.setdefault("isolation_level", "READ COMMITTED")
    return create_engine(url, pool_pre_ping=True, pool_size=20, max_overflow=20, **kwargs)


class Database:
    """An engine and its two session factories.

    ``writer`` sessions take SQLite's write lock when they begin (``BEGIN IMMEDIATE``), so concurrent
    writers queue on the busy timeout instead of failing on a lock upgrade; ``reader`` sessions never
    block writers. On PostgreSQL and MariaDB both are the same.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.reader = sessionmaker(self.engine, expire_on_commit=False)
        if is_sqlite(self.engine):
            self.writer = sessionmaker(
                self.engine.execution_options(sqlite_immediate=True), expire_on_commit=False
            )
        else:
            self.writer = self.reader

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def dispose(self) -> None:
        self.engine.dispose()


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"
