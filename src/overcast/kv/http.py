"""The secret-key HTTP service of the KV storages (spec section 4): the routes VMs and other clients
call with a storage's ``Secret-Key``, wire-compatible with the original cs-kv-storage service.

A plain ASGI application (no framework routing: the hot path is one header scan, one indexed query
and one response), mounted by ``overcast serve`` under ``/kv/`` and served alone by
``overcast kv serve``. Nothing about a storage is cached: every request reads the storage row in the
statement that does its work, so deletes, expiry and new secrets take effect at once on every process
sharing the database.

Reads on SQLite run on the event loop (a WAL reader waits for no lock); writes, and everything on
PostgreSQL and MariaDB, run in the thread pool, each write in one transaction with its history.
"""

from __future__ import annotations

import asyncio
import fcntl
import hmac
import logging
import os
import queue
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import orjson
from sqlalchemy import and_, bindparam, select, text
from starlette.concurrency import run_in_threadpool

from overcast.db.models import KvEntry, KvStorage
from overcast.db.retry import retrying
from overcast.db.session import is_sqlite
from overcast.kv import store
from overcast.kv.store import STORAGE_COLUMNS, KvBadRequest, KvError

if TYPE_CHECKING:
    from overcast.services import Services

logger = logging.getLogger(__name__)

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]

JSON = b"application/json;charset=utf-8"
TEXT = b"text/plain;charset=utf-8"

#: The storage row and, in the same statement, the value of one key (NULL columns when no such key).
_GET = (select(*STORAGE_COLUMNS, KvEntry.key.label("found"), KvEntry.value)
        .select_from(KvStorage)
        .outerjoin(KvEntry, and_(KvEntry.storage_id == KvStorage.id, KvEntry.key == bindparam("key")))
        .where(KvStorage.uuid == bindparam("uuid")))
_STORAGE = select(*STORAGE_COLUMNS).where(KvStorage.uuid == bindparam("uuid"))
_HEALTH_TABLES = ("kv_storage", "kv_entry", "kv_history", "kv_scroll")


class _Reply(Exception):
    """Answer with ``status`` and an empty body (every error of the service has one)."""

    def __init__(self, status: int) -> None:
        self.status = status


def _media_type_is(header: bytes | None, expected: str) -> bool:
    """``Content-Type`` is ``expected``, optionally with parameters; a charset must be UTF-8 (the
    original compared the whole header, so ``; charset=utf-8`` was refused)."""
    if header is None:
        return False
    try:
        value = header.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
        return False
    mime, _, params = value.partition(";")
    if mime.strip().lower() != expected:
        return False
    for param in params.split(";"):
        name, _, val = param.partition("=")
        if name.strip().lower() == "charset" and val.strip().strip('"').lower() not in ("utf-8", "utf8"):
            return False
    return True


def _authorized(storage: Any, secret: bytes) -> Any:
    """The storage when it is live and ``secret`` is its key: 404 when it does not exist, is deleted
    or has expired; 401 when the key is wrong (only for a storage that exists)."""
    if storage is None or not store.is_live(storage):
        raise _Reply(404)
    if not hmac.compare_digest(secret, storage.secret_key.encode("utf-8")):
        raise _Reply(401)
    return storage


def _dumps(data: Any) -> bytes:
    return orjson.dumps(data)


class KvService:
    """The ASGI application. ``standalone``: it answers lifespan events itself (``overcast kv
    serve``) and closes the services at shutdown."""

    def __init__(self, services: Services, *, standalone: bool = False) -> None:
        self.services = services
        self.standalone = standalone
        engine = services.db.engine
        self.sqlite = is_sqlite(engine)
        self.reader = engine
        self.writer = engine.execution_options(sqlite_immediate=True) if self.sqlite else engine
        self.inline_reads = self.sqlite and services.config.inline_reads
        self._batcher = _GroupCommit(self.writer, _lock_path(services.db.url)) if self.sqlite else None

    # -- plumbing --------------------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.close()
                if self.standalone:
                    self.services.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def close(self) -> None:
        if self._batcher is not None:
            self._batcher.stop()

    async def _read(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self.inline_reads:
            return fn(*args)
        return await run_in_threadpool(fn, *args)

    def _in_read(self, fn: Callable[..., Any], *args: Any) -> Any:
        with self.reader.connect() as conn:
            return fn(conn, *args)

    def _in_write(self, fn: Callable[..., Any], *args: Any) -> Any:
        def attempt() -> Any:
            with self.writer.begin() as conn:
                return fn(conn, *args)

        return retrying(attempt, what="KV write")

    async def _write(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._batcher is not None:
            return await self._batcher.submit(lambda conn: fn(conn, *args))
        return await run_in_threadpool(self._in_write, fn, *args)

    def _limits(self) -> tuple[int, int]:
        return store.kv_limits(None, self.services.settings)

    async def _http(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):]
        method: str = scope["method"]
        secret: bytes | None = None
        ctype: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"secret-key":
                secret = value
            elif name == b"content-type":
                ctype = value
        try:
            status, body, media = await self._route(method, path, scope, secret, ctype, receive, send)
        except _Reply as reply:
            status, body, media = reply.status, b"", TEXT
        except KvError as exc:
            status, body, media = exc.status, b"", TEXT
        except Exception:
            logger.exception("KV request %s %s failed", method, path.split("/", 2)[1] if "/" in path else path)
            status, body, media = 500, b"", TEXT
        if status < 0:  # streamed already
            return
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", media), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    async def _body(receive: Receive, limit: int = -1) -> bytes:
        """The request body; 400 as soon as it grows past ``limit`` bytes (-1: no limit), unread."""
        chunks = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Reply(400)
            chunk = message.get("body", b"")
            size += len(chunk)
            if 0 <= limit < size:
                raise _Reply(400)
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    async def _json_body(self, receive: Receive, ctype: bytes | None) -> Any:
        if not _media_type_is(ctype, "application/json"):
            raise _Reply(400)
        value_limit = self._limits()[1]
        # A batch may carry many values: up to 64 MiB, or 16 values' worth when values are larger.
        limit = -1 if value_limit < 0 else max(64 << 20, 16 * value_limit)
        try:
            return orjson.loads(await self._body(receive, limit))
        except orjson.JSONDecodeError:
            raise _Reply(400) from None

    # -- routes ----------------------------------------------------------------------------------

    async def _route(self, method: str, path: str, scope: dict[str, Any], secret: bytes | None,
                     ctype: bytes | None, receive: Receive, send: Send) -> tuple[int, bytes, bytes]:
        parts = path.split("/", 3)  # "", op, uuid, key
        op = parts[1] if len(parts) > 1 else ""
        if op == "health" and len(parts) == 2:
            if method != "GET":
                raise _Reply(405)
            return await self._health(scope)
        if op == "history" and len(parts) == 2:
            if method != "POST":
                raise _Reply(405)
            return await self._scroll(receive, ctype)
        if op not in ("get", "set", "delete", "list", "clear", "history", "storage") or len(parts) < 3 or not parts[2]:
            raise _Reply(404)
        uuid = parts[2]
        key = parts[3] if len(parts) == 4 else None
        route = _ROUTES.get((method, op, key is not None))
        if route is None:
            raise _Reply(405 if any(r[1] == op for r in _ROUTES) else 404)
        if secret is None:
            raise _Reply(401)
        if key is not None and not key:
            if op == "set":
                raise _Reply(400)  # an empty key: nothing to set
            raise _Reply(404)
        return await route(self, uuid, key, secret, scope, ctype, receive, send)

    async def _get_one(self, uuid: str, key: str, secret: bytes, *_: Any) -> tuple[int, bytes, bytes]:
        # A key with a NUL can't be stored (PostgreSQL refuses NUL in text): look for "", never a key.
        params = {"uuid": uuid, "key": key if "\x00" not in key else ""}
        row = await self._read(self._in_read, lambda c: c.execute(_GET, params).first())
        _authorized(row, secret)
        if row.found is None:
            raise _Reply(404)
        return 200, row.value.encode("utf-8"), TEXT

    async def _get_many(self, uuid: str, _key: None, secret: bytes, _scope: Any, ctype: bytes | None,
                        receive: Receive, _send: Send) -> tuple[int, bytes, bytes]:
        keys = await self._json_body(receive, ctype)
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise _Reply(400)

        def work(conn: Any) -> dict[str, str | None]:
            storage = _authorized(conn.execute(_STORAGE, {"uuid": uuid}).first(), secret)
            return store.get_values(conn, storage, keys)

        return 200, _dumps(await self._read(self._in_read, work)), JSON

    async def _set_one(self, uuid: str, key: str, secret: bytes, _scope: Any, ctype: bytes | None,
                       receive: Receive, _send: Send) -> tuple[int, bytes, bytes]:
        if not _media_type_is(ctype, "text/plain"):
            raise _Reply(400)
        limits = self._limits()
        try:
            # A body longer than the value limit is refused before it is all read.
            value = (await self._body(receive, limits[1])).decode("utf-8")
        except UnicodeDecodeError:
            raise _Reply(400) from None
        ts = store.now_ms()

        def work(conn: Any) -> Any:
            storage = _authorized(conn.execute(_STORAGE, {"uuid": uuid}).first(), secret)
            store.set_value(conn, storage, key, value, limits=limits, ts=ts)
            return storage

        storage = await self._write(work)
        if to_call := store.watchers(storage, (key,)):  # e.g. a guest reporting ready (engine.readiness)
            await run_in_threadpool(store.notify, self.services, storage, to_call)
        return 200, b"", TEXT

    async def _set_many(self, uuid: str, _key: None, secret: bytes, _scope: Any, ctype: bytes | None,
                        receive: Receive, _send: Send) -> tuple[int, bytes, bytes]:
        items = await self._json_body(receive, ctype)
        if not isinstance(items, dict) or not all(isinstance(v, str) for v in items.values()):
            raise _Reply(400)
        limits = self._limits()
        ts = store.now_ms()

        def work(conn: Any) -> tuple[Any, dict[str, bool]]:
            storage = _authorized(conn.execute(_STORAGE, {"uuid": uuid}).first(), secret)
            return storage, store.set_values(conn, storage, items, limits=limits, ts=ts)

        storage, written = await self._write(work)
        if to_call := store.watchers(storage, [k for k, ok in written.items() if ok]):
            await run_in_threadpool(store.notify, self.services, storage, to_call)
        return 200, _dumps(written), JSON

    async def _delete_one(self, uuid: str, key: str, secret: bytes, *_: Any) -> tuple[int, bytes, bytes]:
        ts = store.now_ms()

        def work(conn: Any) -> None:
            storage = _authorized(conn.execute(_STORAGE, {"uuid": uuid}).first(), secret)
            store.delete_key(conn, storage, key, ts=ts)

        await self._write(work)
        return 200, b"", TEXT

    async def _delete_many(self, uuid: str, _key: None, secret: bytes, _scope: Any, ctype: bytes | None,
                           receive: Receive, _send: Send) -> tuple[int, bytes, bytes]:
        keys = await self._json_body(receive, ctype)
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise _Reply(400)
        ts = store.now_ms()

        def work(conn: Any) -> dict[str, bool]:
            storage = _authorized(conn.execute(_STORAGE, {"uuid": uuid}).first(), secret)
            return store.delete_keys(conn, storage, keys, ts=ts)

        return 200, _dumps(await self._write(work)), JSON

    async def _clear(self, uuid: str, _key: None, secret: bytes, *_: Any) -> tuple[int, bytes, bytes]:
        ts = store.now_ms()

        def work(conn: Any) -> None:
            storage = _authorized(conn.execute(_STORAGE, {"uuid": uuid}).first(), secret)
            store.clear(conn, storage, ts=ts)

        await self._write(work)
        return 200, b"", TEXT

    async def _list(self, uuid: str, _key: None, secret: bytes, _scope: Any, _ctype: Any, _receive: Any,
                    send: Send) -> tuple[int, bytes, bytes]:
        """The JSON array of every key, streamed in pages of keys (chunked), never all in memory."""
        conn = await run_in_threadpool(self.reader.connect)
        try:
            storage = await run_in_threadpool(
                lambda: _authorized(conn.execute(_STORAGE, {"uuid": uuid}).first(), secret))
            pages = _json_array_pages(store.list_keys(conn, storage))
            first = await run_in_threadpool(next, pages)
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", JSON)]})
            try:
                chunk: bytes | None = first
                while chunk is not None:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    chunk = await run_in_threadpool(next, pages, None)
                await send({"type": "http.response.body", "body": b""})
            except Exception:
                # Too late for a status: the response ends unfinished, so the client sees a broken
                # transfer rather than a short list.
                logger.exception("Listing the keys of a KV storage failed")
        finally:
            await run_in_threadpool(conn.close)
        return -1, b"", JSON

    async def _history(self, uuid: str, _key: None, secret: bytes, scope: dict[str, Any], *_: Any
                       ) -> tuple[int, bytes, bytes]:
        query: dict[str, str] = {}
        for name, value in parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True):
            query.setdefault(name, value)
        args = {name: query.get(name) for name in ("keys", "operations", "start", "end", "sort", "page", "size",
                                                   "scroll")}

        def work(conn: Any) -> dict[str, Any]:
            storage = _authorized(conn.execute(_STORAGE, {"uuid": uuid}).first(), secret)
            return store.history(conn, storage, **args)

        # A scroll writes its state; a page only reads, in the pool: counting a long history takes a while.
        result = await (self._write(work) if args["scroll"] else run_in_threadpool(self._in_read, work))
        return 200, _dumps(result), JSON

    async def _scroll(self, receive: Receive, ctype: bytes | None) -> tuple[int, bytes, bytes]:
        data = await self._json_body(receive, ctype)
        if not isinstance(data, dict):
            raise _Reply(400)
        scroll_id, timeout = data.get("scrollId"), data.get("timeout")
        if not isinstance(scroll_id, str) or isinstance(timeout, bool) or not isinstance(timeout, int) or timeout <= 0:
            raise _Reply(400)
        return 200, _dumps(await self._write(lambda conn: store.scroll(conn, scroll_id, timeout))), JSON

    async def _storage_ttl(self, uuid: str, _key: None, secret: bytes, scope: dict[str, Any], *_: Any
                           ) -> tuple[int, bytes, bytes]:
        values = [v for k, v in parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
                  if k == "ttl"]
        raw = values[0].strip() if values else ""
        if not raw.lstrip("-").isdigit() or not -(2**63) <= int(raw) < 2**63:
            raise _Reply(400)
        ttl = int(raw)

        def work(conn: Any) -> None:
            storage = _authorized(conn.execute(_STORAGE, {"uuid": uuid}).first(), secret)
            store.update_ttl(conn, storage, ttl)

        await self._write(work)
        return 200, b"", TEXT

    async def _storage_delete(self, uuid: str, _key: None, secret: bytes, *_: Any) -> tuple[int, bytes, bytes]:
        def work(conn: Any) -> None:
            storage = _authorized(conn.execute(_STORAGE, {"uuid": uuid}).first(), secret)
            if storage.kind != "TEMP":
                raise KvBadRequest("The storage type is not temp")
            store.soft_delete(conn, storage)

        await self._write(work)
        return 200, b"", TEXT

    async def _health(self, scope: dict[str, Any]) -> tuple[int, bytes, bytes]:
        detailed = "false"
        for name, value in parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True):
            if name == "detailed":
                detailed = value.strip().lower()
        if detailed not in ("true", "false"):
            raise _Reply(400)
        if detailed == "false":
            return 200, b"", TEXT

        def check(conn: Any) -> list[dict[str, str]]:
            checks = []
            for table in _HEALTH_TABLES:
                try:
                    conn.execute(text(f"SELECT 1 FROM {table} WHERE 1 = 0")).all()
                    checks.append({"name": table.upper(), "status": "HEALTHY", "message": "OK"})
                except Exception as exc:  # a missing table, a lost connection: reported, not raised
                    conn.rollback()
                    checks.append({"name": table.upper(), "status": "UNHEALTHY",
                                   "message": type(exc).__name__ + ": " + str(getattr(exc, "orig", exc))[:200]})
            return checks

        try:
            checks = await run_in_threadpool(self._in_read, check)
        except Exception as exc:  # no connection at all
            checks = [{"name": "DATABASE", "status": "UNHEALTHY", "message": type(exc).__name__}]
        healthy = all(c["status"] == "HEALTHY" for c in checks)
        body = {"status": "HEALTHY" if healthy else "UNHEALTHY", "checks": checks}
        return (200 if healthy else 500), _dumps(body), JSON


class _GroupCommit:
    """SQLite's writes, one thread per process committing them in groups.

    SQLite admits one writer at a time, so writes gain nothing from threads: they queued in SQLite's
    busy handler, whose growing sleeps gave a p99 of 300 ms, and each paid a transaction of its own.
    Here one thread takes every write waiting, runs each in a SAVEPOINT of one transaction (a write
    that fails rolls back alone) and commits them together; each request is answered after the
    commit that holds its change and its history. A transaction that fails as a whole (a busy
    database, a lost connection) runs its writes again one by one.
    """

    def __init__(self, engine: Any, lock_path: str | None = None, max_batch: int = 256) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self.lock_path = lock_path
        self.lock_fd: int | None = None
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()

    def _start(self) -> None:
        with self.lock:
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="kv-writer", daemon=True)
                self.thread.start()

    def stop(self) -> None:
        if self.thread is not None:
            self.queue.put(None)
            self.thread.join(10)
            self.thread = None

    @contextmanager
    def _turn(self) -> Iterator[None]:
        """The KV writers of all processes on this database take turns on an advisory file lock
        before asking SQLite for its write lock: the kernel hands it over the moment it is released,
        where SQLite's busy handler polls with sleeps of up to 100 ms (a p99 of 90 ms for SETs with two
        processes)."""
        if self.lock_path is None:
            yield
            return
        if self.lock_fd is None:
            try:
                self.lock_fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError:
                self.lock_path = None  # a read-only directory: SQLite's own locking alone
                yield
                return
        fcntl.flock(self.lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self.lock_fd, fcntl.LOCK_UN)

    async def submit(self, fn: Callable[[Any], Any]) -> Any:
        if self.thread is None:
            self._start()
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.queue.put((fn, future, loop))
        return await future

    @staticmethod
    def _deliver(job: Any, ok: bool, value: Any) -> None:
        _fn, future, loop = job

        def settle() -> None:
            if future.done():
                return
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

        try:
            loop.call_soon_threadsafe(settle)
        except RuntimeError:  # the loop is closed: nobody waits any more
            pass

    def _run(self) -> None:
        while True:
            job = self.queue.get()
            if job is None:
                return
            jobs = [job]
            while len(jobs) < self.max_batch:
                try:
                    more = self.queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self.queue.put(None)
                    break
                jobs.append(more)
            try:
                with self._turn():
                    outcomes = self._batch(jobs)
            except Exception:
                logger.info("A KV write batch of %d failed; running its writes one by one", len(jobs))
                outcomes = []
                for j in jobs:
                    with self._turn():
                        outcomes.append(self._single(j))
            for j, (ok, value) in zip(jobs, outcomes):
                self._deliver(j, ok, value)

    def _batch(self, jobs: list[Any]) -> list[tuple[bool, Any]]:
        if len(jobs) == 1:
            return [self._single(jobs[0])]
        outcomes: list[tuple[bool, Any]] = []
        with self.engine.begin() as conn:
            for fn, _future, _loop in jobs:
                try:
                    with conn.begin_nested():
                        outcomes.append((True, fn(conn)))
                except (_Reply, KvError) as exc:
                    outcomes.append((False, exc))
        return outcomes

    def _single(self, job: Any) -> tuple[bool, Any]:
        fn = job[0]

        def attempt() -> Any:
            with self.engine.begin() as conn:
                return fn(conn)

        try:
            return True, retrying(attempt, what="KV write")
        except Exception as exc:
            return False, exc


def _lock_path(url: str) -> str | None:
    """The KV writers' lock file beside a SQLite database file (None for an in-memory database)."""
    path = url.split("///", 1)[-1].split("?", 1)[0] if url.startswith("sqlite") and "///" in url else ""
    if not path or path == ":memory:":
        return None
    return path + "-kvwrite.lock"


def _json_array_pages(keys: Iterator[str], per_chunk: int = 1000) -> Iterator[bytes]:
    """A JSON array of ``keys`` in pieces: ``[`` with the first keys, ``,``-led pieces, then ``]``."""
    batch: list[str] = []
    opened = False
    for key in keys:
        batch.append(key)
        if len(batch) == per_chunk:
            piece = _dumps(batch)[1:-1]
            yield (b"," if opened else b"[") + piece
            opened, batch = True, []
    tail = _dumps(batch)[1:-1] if batch else b""
    if not opened:
        yield b"[" + tail + b"]"
    else:
        yield (b"," + tail if tail else b"") + b"]"


#: (method, first path segment, with a key segment) -> handler.
_ROUTES: dict[tuple[str, str, bool], Callable[..., Awaitable[tuple[int, bytes, bytes]]]] = {
    ("GET", "get", True): KvService._get_one,
    ("POST", "get", False): KvService._get_many,
    ("PUT", "set", True): KvService._set_one,
    ("PUT", "set", False): KvService._set_many,
    ("DELETE", "delete", True): KvService._delete_one,
    ("POST", "delete", False): KvService._delete_many,
    ("GET", "list", False): KvService._list,
    ("POST", "clear", False): KvService._clear,
    ("GET", "history", False): KvService._history,
    ("PUT", "storage", False): KvService._storage_ttl,
    ("DELETE", "storage", False): KvService._storage_delete,
}


def create_kv_app(services: Services, *, standalone: bool = False) -> KvService:
    return KvService(services, standalone=standalone)


class PrefixStrip:
    """``overcast kv serve``: the service at ``/`` and at ``/kv/`` alike."""

    def __init__(self, app: KvService, prefix: str = "/kv") -> None:
        self.app, self.prefix = app, prefix

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if path == self.prefix or path.startswith(self.prefix + "/"):
                scope = {**scope, "root_path": scope.get("root_path", "") + self.prefix}
        await self.app(scope, receive, send)
