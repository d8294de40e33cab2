"""Transient database conflicts: deadlocks and serialization failures worth running again.

Under concurrent writes MariaDB and PostgreSQL abort one transaction of a deadlocked pair, and SQLite
may report a busy database; the aborted transaction did nothing, so the request can simply run again.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: MySQL/MariaDB: deadlock, lock wait timeout. PostgreSQL SQLSTATEs: deadlock, serialization failure.
_MYSQL_CODES = {1213, 1205}
_PG_STATES = {"40P01", "40001"}


def is_transient(exc: BaseException) -> bool:
    # A deadlock inside a savepoint rolls MariaDB's whole transaction back, and the ROLLBACK TO SAVEPOINT
    # that follows fails ("SAVEPOINT ... does not exist"): the deadlock is that error's context.
    seen: BaseException | None = exc
    for _ in range(4):
        if seen is None:
            break
        if _transient(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _transient(exc: BaseException) -> bool:
    if not isinstance(exc, DBAPIError):
        return False
    orig = exc.orig
    code = getattr(orig, "args", (None,))[0] if orig is not None else None
    if isinstance(code, int) and code in _MYSQL_CODES:
        return True
    if getattr(orig, "sqlstate", None) in _PG_STATES or getattr(orig, "pgcode", None) in _PG_STATES:
        return True
    return "database is locked" in str(orig)


def retrying(fn: Callable[[], T], *, attempts: int = 6, what: str = "transaction") -> T:
    """Run ``fn`` (a whole transaction) again when it fails on a transient conflict."""
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except DBAPIError as exc:
            if attempt == attempts or not is_transient(exc):
                raise
            logger.info("Retrying %s after a transient database conflict (%d/%d)", what, attempt, attempts)
            time.sleep(random.uniform(0.005, 0.05) * attempt)
    raise AssertionError("unreachable")
