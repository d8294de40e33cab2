"""The data plane of the KV storages: keys, values, history and scrolls, on the main database.

Every function runs in the caller's transaction (a ``Session`` or a Core ``Connection``: only Core
statements are executed here) and never commits; writes need a writer session (SQLite's write lock is
taken at BEGIN). A write and its history records (spec 3.5) go to the database in the same
transaction, with one timestamp per request, so no history record is ever lost or written for a
change that did not happen.

``storage`` arguments need only the attributes ``id``, ``kind`` and ``history_enabled`` (and, for
:func:`update_ttl`, ``ttl_ms`` / ``expires_at_ms``): a :class:`KvStorage` row or a Core row of
:data:`STORAGE_COLUMNS`.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, case, delete, false, func, insert, select, update
from sqlalchemy.dialects import mysql, postgresql, sqlite

from overcast.db.models import ConfigValue, KvEntry, KvHistory, KvScroll, KvStorage

if TYPE_CHECKING:
    from overcast.services import Services

__all__ = [
    "KvBadRequest", "KvConflict", "KvError", "KvNotFound", "KvUnauthorized", "clear", "delete_key",
    "delete_keys", "find_live", "get_value", "get_values", "history", "kv_limits", "list_keys", "new_secret",
    "now_ms", "public_url", "scroll", "set_value", "set_values", "soft_delete", "update_ttl",
]

#: The hard cap of a key's UTF-8 length (the original's, the ES ``_id`` limit).
MAX_KEY_BYTES = 512
KEY_LIMIT_SETTING = "storage.kv.key.max.bytes"
VALUE_LIMIT_SETTING = "storage.kv.value.max.bytes"
PUBLIC_URL_SETTING = "storage.kv.url.public"
DEFAULT_VALUE_LIMIT = 1048576
#: History page size when ``size`` is not given (the original's ``app.default-page-size``).
DEFAULT_PAGE_SIZE = 50
#: Largest history page: the original failed (500) past ES's 10,000-document window; here it is a 400.
MAX_PAGE_SIZE = 10_000
#: Keys read per query while listing a storage.
LIST_BATCH = 1000

_INT_MAX = 2**31 - 1
_LONG_MAX = 2**63 - 1
_OPERATIONS = ("set", "delete", "clear")
_SORT_COLUMNS = {"key": KvHistory.key, "value": KvHistory.value, "timestamp": KvHistory.timestamp_ms,
                 "operation": KvHistory.operation}

#: The storage columns the HTTP service reads with each request.
STORAGE_COLUMNS = (KvStorage.id, KvStorage.uuid, KvStorage.kind, KvStorage.secret_key, KvStorage.history_enabled,
                   KvStorage.deleted, KvStorage.expires_at_ms, KvStorage.ttl_ms)


class KvError(Exception):
    """A KV request that can't be served; ``status`` is the HTTP status the service answers."""

    status = 500

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message


class KvBadRequest(KvError):
    status = 400


class KvUnauthorized(KvError):
    status = 401


class KvNotFound(KvError):
    status = 404


class KvConflict(KvError):
    status = 409


# -- basics --------------------------------------------------------------------------------------


#: Who wants to hear of writes to one key of one kind of storage, by (kind, key): layers above this one
#: (the engine watches VM storages' ``ready``, a guest's readiness report) without the KV layer
#: importing them. Each watcher is called with (services, storage, session): in the writer's
#: transaction when ``session`` is given, else right after the write's own commit.
_WATCHERS: dict[tuple[str, str], list[Callable[[Any, Any, Any], None]]] = {}


def watch(kind: str, key: str, watcher: Callable[[Any, Any, Any], None]) -> None:
    """Call ``watcher`` whenever ``key`` is written into a storage of ``kind`` (once per process)."""
    watchers = _WATCHERS.setdefault((kind, key), [])
    if watcher not in watchers:
        watchers.append(watcher)


def watchers(storage: Any, keys: Iterable[str]) -> list[Callable[[Any, Any, Any], None]]:
    """The watchers of these written keys (cheap when there are none: safe on the event loop)."""
    if not _WATCHERS:
        return []
    return [w for key in keys for w in _WATCHERS.get((storage.kind, key), ())]


def notify(services: Any, storage: Any, to_call: list[Callable[[Any, Any, Any], None]], session: Any = None) -> None:
    for watcher in to_call:
        watcher(services, storage, session)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def new_secret() -> str:
    """64 random bytes, URL-safe base64 without padding: 86 characters (the original's key length)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(64)).rstrip(b"=").decode("ascii")


def is_live(storage: Any, at_ms: int | None = None) -> bool:
    """Not deleted and, for a TEMP storage, not expired at ``at_ms`` (now)."""
    if storage is None or storage.deleted:
        return False
    if storage.kind == "TEMP" and storage.expires_at_ms is not None:
        return bool(storage.expires_at_ms > (now_ms() if at_ms is None else at_ms))
    return True


def find_live(session: Any, uuid: str) -> KvStorage | None:
    """The storage if it exists, is not deleted and (TEMP) not expired at this instant; else None."""
    storage = session.scalar(select(KvStorage).where(KvStorage.uuid == uuid))
    return storage if is_live(storage) else None


def public_url(services: Services) -> str:
    """Where clients reach the HTTP service: ``storage.kv.url.public`` when set, else the base URL where
    ``overcast serve`` mounts it (``http://<host>:<port>/kv/``)."""
    from overcast.config.globals import SETTINGS

    if PUBLIC_URL_SETTING in SETTINGS:
        configured = services.settings.get(PUBLIC_URL_SETTING)
        if configured and str(configured).strip():
            return str(configured).strip()
    return services.base_url() + "/kv/"


def kv_limits(session: Any, settings: Any = None) -> tuple[int, int]:
    """(key limit, value limit) in UTF-8 bytes; the value limit is -1 when unlimited. From
    ``settings`` (a :class:`GlobalSettings`, cached) when given, else read in ``session``."""
    from overcast.config.globals import SETTINGS

    raw: dict[str, str | None] = {}
    names = [n for n in (KEY_LIMIT_SETTING, VALUE_LIMIT_SETTING) if n in SETTINGS]
    if settings is not None:
        raw = {n: settings.raw(n) for n in names}
    elif names:
        rows = session.execute(select(ConfigValue.name, ConfigValue.value).where(
            ConfigValue.name.in_(names), ConfigValue.scope == "global", ConfigValue.scope_id == 0))
        raw = {n: SETTINGS[n].default for n in names}
        raw.update({n: v for n, v in rows})

    def number(name: str, default: int) -> int:
        try:
            return int(str(raw.get(name)).strip()) if raw.get(name) is not None else default
        except ValueError:
            return default

    key_limit = min(max(number(KEY_LIMIT_SETTING, MAX_KEY_BYTES), 1), MAX_KEY_BYTES)
    value_limit = number(VALUE_LIMIT_SETTING, DEFAULT_VALUE_LIMIT)
    return key_limit, (-1 if value_limit < 0 else value_limit)


def _valid_pair(key: Any, value: Any, limits: tuple[int, int]) -> bool:
    if not isinstance(key, str) or not isinstance(value, str) or not key or "\x00" in key or "\x00" in value:
        return False  # NUL: PostgreSQL can't store it in text, so no backend takes it
    try:
        if len(key.encode("utf-8")) > limits[0]:
            return False
        return limits[1] < 0 or len(value) <= limits[1] // 4 or len(value.encode("utf-8")) <= limits[1]
    except UnicodeEncodeError:  # a lone surrogate: not UTF-8 at all
        return False


_UPSERTS: dict[str, Any] = {}
_HISTORY_INSERT = insert(KvHistory)


def _upsert_statement(dialect: str) -> Any:
    """Insert or replace one (storage, key) row, built once per dialect: a statement built per call
    is compiled per call (a fifth of a SET's CPU)."""
    stmt = _UPSERTS.get(dialect)
    if stmt is None:
        table = KvEntry.__table__
        if dialect in ("mysql", "mariadb"):
            stmt = mysql.insert(table)
            stmt = stmt.on_duplicate_key_update(value=stmt.inserted.value)
        else:
            stmt = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
            stmt = stmt.on_conflict_do_update(index_elements=["storage_id", "key"], set_={"value": stmt.excluded.value})
        _UPSERTS[dialect] = stmt
    return stmt


def _upsert(session: Any, rows: list[dict[str, Any]]) -> None:
    """Insert or replace (storage, key) rows: atomic on every backend, so concurrent sets of one key
    never fail on the primary key."""
    dialect = (session.dialect if isinstance(session, Connection) else session.get_bind().dialect).name
    session.execute(_upsert_statement(dialect), rows[0] if len(rows) == 1 else rows)


def _history(session: Any, storage: Any, records: list[tuple[str | None, str | None, str]], ts: int) -> None:
    if storage.history_enabled and records:
        rows = [{"storage_id": storage.id, "key": k, "value": v, "operation": op, "timestamp_ms": ts}
                for k, v, op in records]
        session.execute(_HISTORY_INSERT, rows[0] if len(rows) == 1 else rows)


# -- keys ----------------------------------------------------------------------------------------


def get_value(session: Any, storage: Any, key: str) -> str | None:
    """The value of ``key``, or None when there is no such key."""
    if not _deletable(key):
        return None
    return session.scalar(select(KvEntry.value).where(KvEntry.storage_id == storage.id, KvEntry.key == key))


def get_values(session: Any, storage: Any, keys: list[str]) -> dict[str, str | None]:
    """Every asked key, with None for the missing ones."""
    wanted = [k for k in dict.fromkeys(keys) if isinstance(k, str)]
    found: dict[str, str] = {}
    possible = [k for k in wanted if _deletable(k)]
    for i in range(0, len(possible), 500):
        chunk = possible[i:i + 500]
        found.update(session.execute(select(KvEntry.key, KvEntry.value).where(
            KvEntry.storage_id == storage.id, KvEntry.key.in_(chunk))).tuples().all())
    return {k: found.get(k) for k in wanted}


def set_value(session: Any, storage: Any, key: str, value: str, *, limits: tuple[int, int] | None = None,
              ts: int | None = None) -> None:
    """Set one key. KvBadRequest when the key is empty or too long or the value too long."""
    limits = limits or kv_limits(session)
    if not key:
        raise KvBadRequest("Null or empty key")
    if not _valid_pair(key, value, limits):
        raise KvBadRequest("Key/value pair is invalid")
    _upsert(session, [{"storage_id": storage.id, "key": key, "value": value}])
    _history(session, storage, [(key, value, "set")], now_ms() if ts is None else ts)


def set_values(session: Any, storage: Any, items: dict[str, str], *, limits: tuple[int, int] | None = None,
               ts: int | None = None) -> dict[str, bool]:
    """Set many keys: ``{key: written}``; invalid pairs are False and not written."""
    limits = limits or kv_limits(session)
    result = {k: _valid_pair(k, v, limits) for k, v in items.items()}
    good = sorted(k for k, ok in result.items() if ok)  # one lock order for concurrent batches
    for i in range(0, len(good), 500):
        _upsert(session, [{"storage_id": storage.id, "key": k, "value": items[k]} for k in good[i:i + 500]])
    _history(session, storage, [(k, items[k], "set") for k in good], now_ms() if ts is None else ts)
    return result


def _deletable(key: Any) -> bool:
    """A string that can be a stored key: 1 to 512 UTF-8 bytes, no NUL."""
    try:
        return isinstance(key, str) and "\x00" not in key and 0 < len(key.encode("utf-8")) <= MAX_KEY_BYTES
    except UnicodeEncodeError:
        return False


def delete_key(session: Any, storage: Any, key: str, *, ts: int | None = None) -> None:
    """Delete one key; succeeds (and writes its history record) when the key did not exist too. A
    string that can't be a key at all (empty, over 512 bytes, with a NUL) changes and records nothing."""
    if not _deletable(key):
        return
    session.execute(delete(KvEntry).where(KvEntry.storage_id == storage.id, KvEntry.key == key))
    _history(session, storage, [(key, None, "delete")], now_ms() if ts is None else ts)


def delete_keys(session: Any, storage: Any, keys: list[str], *, ts: int | None = None) -> dict[str, bool]:
    """Delete many keys: ``{key: True}`` also for keys that did not exist, as the original answers;
    False only for what can't be a key (not a string, empty, over 512 UTF-8 bytes)."""
    result = {k: _deletable(k) for k in keys if isinstance(k, str)}
    good = sorted(k for k, ok in result.items() if ok)
    for i in range(0, len(good), 500):
        session.execute(delete(KvEntry).where(KvEntry.storage_id == storage.id, KvEntry.key.in_(good[i:i + 500])))
    _history(session, storage, [(k, None, "delete") for k in good], now_ms() if ts is None else ts)
    return result


def list_keys(session: Any, storage: Any, *, batch: int = LIST_BATCH) -> Iterator[str]:
    """Every key of the storage, in key order, read ``batch`` keys per query (keyset pages on the
    primary key): a storage of millions of keys is never loaded at once."""
    last: str | None = None
    while True:
        stmt = select(KvEntry.key).where(KvEntry.storage_id == storage.id)
        if last is not None:
            stmt = stmt.where(KvEntry.key > last)
        keys = list(session.scalars(stmt.order_by(KvEntry.key).limit(batch)))
        yield from keys
        if len(keys) < batch:
            return
        last = keys[-1]


def clear(session: Any, storage: Any, *, ts: int | None = None) -> None:
    """Delete every key (one statement, so never partially: the original's 409 can't happen)."""
    session.execute(delete(KvEntry).where(KvEntry.storage_id == storage.id))
    _history(session, storage, [(None, None, "clear")], now_ms() if ts is None else ts)


# -- storage management (the service's /storage routes) ------------------------------------------


def update_ttl(session: Any, storage: Any, ttl_ms: int) -> KvStorage:
    """A TEMP storage's new TTL (the storage re-read; on a Core connection ``storage`` as given): ``expires = expires - old ttl + new ttl`` (spec 4.4: counted from
    creation, not from now). KvBadRequest for other kinds or a TTL that is not positive; KvNotFound
    when the storage is gone (deleted or expired) by now."""
    if storage.kind != "TEMP":
        raise KvBadRequest("The storage type is not temp")
    if isinstance(ttl_ms, bool) or not isinstance(ttl_ms, int) or not 0 < ttl_ms <= _LONG_MAX // 2:
        raise KvBadRequest("Invalid TTL")
    now = now_ms()
    done = session.execute(
        update(KvStorage)
        .where(KvStorage.id == storage.id, KvStorage.kind == "TEMP", KvStorage.deleted.is_(False),
               KvStorage.expires_at_ms > now)
        # In this order: MariaDB evaluates SET left to right, later ones seeing the new values.
        .ordered_values((KvStorage.expires_at_ms, KvStorage.expires_at_ms - func.coalesce(KvStorage.ttl_ms, 0) + ttl_ms),
                        (KvStorage.ttl_ms, ttl_ms), (KvStorage.last_updated_ms, now))
        .execution_options(synchronize_session=False)
    ).rowcount
    if not done:
        raise KvNotFound("The KV storage does not exist")
    if isinstance(session, Connection):  # the HTTP service: it answers with an empty body
        return storage  # type: ignore[no-any-return]
    return session.get(KvStorage, storage.id, populate_existing=True)  # type: ignore[no-any-return]


def soft_delete(session: Any, storage: Any) -> None:
    """``deleted = true`` from this instant; the purge task removes the data later."""
    session.execute(update(KvStorage).where(KvStorage.id == storage.id)
                    .values(deleted=True, last_updated_ms=now_ms())
                    .execution_options(synchronize_session=False))
    if isinstance(storage, KvStorage):
        storage.deleted = True


# -- history -------------------------------------------------------------------------------------


def _number(name: str, value: Any, maximum: int) -> int | None:
    """A positive integer parameter (a string from HTTP or an int from the API); None when absent."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise KvBadRequest(f"Invalid {name}")
    if isinstance(value, int):
        number = value
    else:
        text = str(value).strip()
        if not text.lstrip("+-").isdigit():
            raise KvBadRequest(f"Invalid {name}")
        number = int(text)
    if not 0 < number <= maximum:
        raise KvBadRequest(f"Invalid {name}")
    return number


def _items(value: Any) -> list[str]:
    if value is None:
        return []
    parts = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    return list(dict.fromkeys(p.strip() for p in parts if p.strip()))


def _history_query(keys: Any, operations: Any, start: Any, end: Any, sort: Any) -> dict[str, Any]:
    """The validated query of spec 4.3 as plain JSON-able data (a scroll stores it)."""
    asked = [k for k in (keys.split(",") if isinstance(keys, str) else keys or []) if k]
    key_list = list(dict.fromkeys(k for k in asked if "\x00" not in k))  # a NUL key is never stored
    ops = _items(operations)
    for op in ops:
        if op not in _OPERATIONS:
            raise KvBadRequest(f"Invalid operation {op}")
    first = _number("start", start, _LONG_MAX)
    last = _number("end", end, _LONG_MAX)
    if first is not None and last is not None and first > last:
        raise KvBadRequest("start is after end")
    order: list[list[Any]] = []
    seen: dict[str, bool] = {}
    for item in _items(sort):
        descending = item.startswith("-")
        field = item[1:] if descending else item
        if field not in _SORT_COLUMNS:
            raise KvBadRequest(f"Invalid sort field {field}")
        if field in seen:
            if seen[field] != descending:
                raise KvBadRequest(f"Sort field {field} given in both directions")
            continue
        seen[field] = descending
        order.append([field, descending])
    return {"keys": key_list, "no_match": bool(asked) and not key_list, "operations": ops, "start": first,
            "end": last, "sort": order}


def _filtered(stmt: Any, storage_id: int, q: dict[str, Any]) -> Any:
    stmt = stmt.where(KvHistory.storage_id == storage_id)
    if q.get("no_match"):
        stmt = stmt.where(false())
    if q["keys"]:
        stmt = stmt.where(KvHistory.key.in_(q["keys"]))
    if q["operations"]:
        stmt = stmt.where(KvHistory.operation.in_(q["operations"]))
    if q["start"] is not None:
        stmt = stmt.where(KvHistory.timestamp_ms >= q["start"])
    if q["end"] is not None:
        stmt = stmt.where(KvHistory.timestamp_ms <= q["end"])
    if q.get("max_id") is not None:
        stmt = stmt.where(KvHistory.id <= q["max_id"])
    return stmt


def _ordered(stmt: Any, q: dict[str, Any]) -> Any:
    """Sort fields as asked, missing values (a clear's key) last either way as ES does; then the
    insertion order, so pages and scrolls are stable."""
    clauses: list[Any] = []
    for field, descending in q["sort"]:
        column = _SORT_COLUMNS[field]
        if field in ("key", "value"):
            clauses.append(case((column.is_(None), 1), else_=0))
        clauses.append(column.desc() if descending else column.asc())
    if not q["sort"]:
        clauses.append(KvHistory.timestamp_ms.asc())
    clauses.append(KvHistory.id.asc())
    return stmt.order_by(*clauses)


def _records(session: Any, storage_id: int, q: dict[str, Any], offset: int, size: int) -> list[dict[str, Any]]:
    stmt = _ordered(_filtered(select(KvHistory.key, KvHistory.value, KvHistory.timestamp_ms, KvHistory.operation),
                              storage_id, q), q)
    rows = session.execute(stmt.offset(offset).limit(size))
    return [{"key": k, "value": v, "timestamp": ts, "operation": op} for k, v, ts, op in rows]


def _count(session: Any, storage_id: int, q: dict[str, Any]) -> int:
    return int(session.scalar(_filtered(select(func.count()).select_from(KvHistory), storage_id, q)) or 0)


def _new_scroll(session: Any, storage_id: int, q: dict[str, Any], position: int, expires: int) -> str:
    scroll_id = secrets.token_urlsafe(32)
    session.execute(insert(KvScroll).values(id=scroll_id, storage_id=storage_id, query=json.dumps(q),
                                            position=position, expires_at_ms=expires))
    return scroll_id


def history(session: Any, storage: Any, *, keys: Any = None, operations: Any = None, start: Any = None,
            end: Any = None, sort: Any = None, page: Any = None, size: Any = None,
            scroll: Any = None) -> dict[str, Any]:
    """A history search (spec 4.3). Parameters are strings as the HTTP query has them, or typed
    values (lists, ints) from the API. Page mode answers ``{total, size, page, items}``; with
    ``scroll`` (ms) ``{total, size, scrollId, items}``, the scroll kept in the database for ``scroll``
    ms so any node can continue it (a snapshot: records written later are not part of it)."""
    if storage.kind == "TEMP" or not storage.history_enabled:
        raise KvBadRequest("The KV storage does not support history")
    q = _history_query(keys, operations, start, end, sort)
    page_no = _number("page", page, _INT_MAX) or 1
    page_size = _number("size", size, _INT_MAX) or DEFAULT_PAGE_SIZE
    if page_size > MAX_PAGE_SIZE:
        raise KvBadRequest(f"Invalid size: at most {MAX_PAGE_SIZE}")
    keep = _number("scroll", scroll, _LONG_MAX)
    if keep is None:
        total = _count(session, storage.id, q)
        items = _records(session, storage.id, q, page_size * (page_no - 1), page_size)
        return {"total": total, "size": len(items), "page": page_no, "items": items}
    q["max_id"] = session.scalar(select(func.max(KvHistory.id)).where(KvHistory.storage_id == storage.id)) or 0
    q["size"] = page_size
    total = _count(session, storage.id, q)
    q["total"] = total
    items = _records(session, storage.id, q, 0, page_size)
    scroll_id = _new_scroll(session, storage.id, q, len(items), min(now_ms() + keep, _LONG_MAX))
    return {"total": total, "size": len(items), "scrollId": scroll_id, "items": items}


def scroll(session: Any, scroll_id: str, timeout_ms: int) -> dict[str, Any]:
    """The next page of an open scroll, kept open ``timeout_ms`` more; answered with a new scroll id
    (the old one is spent). KvBadRequest when the id is unknown, spent or expired, or the storage gone."""
    if not isinstance(scroll_id, str) or not scroll_id or len(scroll_id) > 64:
        raise KvBadRequest("Scroll id is invalid or expired")
    if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int) or not 0 < timeout_ms <= _LONG_MAX:
        raise KvBadRequest("Invalid timeout")
    now = now_ms()
    row = session.execute(select(KvScroll.storage_id, KvScroll.query, KvScroll.position, KvScroll.expires_at_ms)
                          .where(KvScroll.id == scroll_id)).first()
    if row is None or row.expires_at_ms <= now:
        raise KvBadRequest("Scroll id is invalid or expired")
    # Spend the id: of two concurrent continuations of one id only one gets the page.
    if not session.execute(delete(KvScroll).where(KvScroll.id == scroll_id)).rowcount:
        raise KvBadRequest("Scroll id is invalid or expired")
    storage = session.execute(select(*STORAGE_COLUMNS).where(KvStorage.id == row.storage_id)).first()
    if not is_live(storage, now):
        raise KvBadRequest("Scroll id is invalid or expired")
    q = json.loads(row.query)
    items = _records(session, row.storage_id, q, row.position, q["size"])
    new_id = _new_scroll(session, row.storage_id, q, row.position + len(items), min(now + timeout_ms, _LONG_MAX))
    return {"total": q["total"], "size": len(items), "scrollId": new_id, "items": items}


def expired_scrolls(session: Any, at_ms: int | None = None) -> int:
    """Remove scrolls past their expiry (for the purge task); how many."""
    return int(session.execute(delete(KvScroll).where(
        KvScroll.expires_at_ms <= (now_ms() if at_ms is None else at_ms))).rowcount or 0)

