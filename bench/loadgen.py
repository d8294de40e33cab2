"""A lean closed-loop HTTP/1.1 load generator: keep-alive connections over raw asyncio protocols.

Each connection sends one GET, reads the whole response (``Content-Length`` framing; no chunked
bodies), records the latency and sends the next, until the end of the run. Connections are spread
over several processes (``multiprocessing``, fork) so that Python's one-core-per-process limit does
not cap the generator; each process runs uvloop when it is installed (uvicorn[standard] brings it).

Latency is measured by the client from just before its write to the end of the response, so on a
machine where client and server share cores it includes time the response waited for the client
process to be scheduled: it is an upper bound on the server's own latency.

Also here: :func:`trivial_server`, a fixed-response HTTP server with almost no per-request work, to
measure the generator's own ceiling.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

RequestFactory = Callable[[int], bytes]


@dataclass
class Result:
    ok: int = 0
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)  # seconds, of requests in the window
    cpu: float = 0.0  # CPU seconds the generator process used in the window
    first_error: str = ""


class _Conn(asyncio.Protocol):
    def __init__(self, make: RequestFactory, window: tuple[float, float], res: Result, done: asyncio.Future[None],
                 seq: int) -> None:
        self.make, self.window, self.res, self.done, self.seq = make, window, res, done, seq
        self.buf = bytearray()
        self.need = -1  # total bytes of the response being read, once its headers are in
        self.status = 0
        self.sent_at = 0.0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._send()

    def _send(self) -> None:
        self.seq += 1
        data = self.make(self.seq)
        self.sent_at = time.perf_counter()
        assert self.transport is not None
        self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            if self.need < 0:
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = bytes(self.buf[:end])
                self.status = int(head[9:12])
                lower = head.lower()
                i = lower.find(b"\r\ncontent-length:")
                if i < 0:
                    self._fail(f"response without content-length: {head[:200]!r}")
                    return
                j = lower.find(b"\r\n", i + 2)
                length = int(lower[i + 17: j if j >= 0 else None])
                self.need = end + 4 + length
            if len(self.buf) < self.need:
                return
            del self.buf[: self.need]
            self.need = -1
            self._finished()
            if self.done.done():
                return

    def _finished(self) -> None:
        now = time.perf_counter()
        wall = time.time()
        start, end = self.window
        res = self.res
        if start <= wall < end:
            if self.status == 200:
                res.ok += 1
            else:
                res.errors += 1
            res.statuses[self.status] = res.statuses.get(self.status, 0) + 1
            res.latencies.append(now - self.sent_at)
        if wall >= end:
            if not self.done.done():
                self.done.set_result(None)
            return
        self._send()

    def _fail(self, why: str) -> None:
        if not self.res.first_error:
            self.res.first_error = why
        self.res.errors += 1
        if self.transport is not None:
            self.transport.close()
        if not self.done.done():
            self.done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self._fail(f"connection lost: {exc!r}")


async def _run(host: str, port: int, conns: int, make: RequestFactory, t0: float, warmup: float,
               duration: float) -> Result:
    res = Result()
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, t0 - time.time()))
    window = (t0 + warmup, t0 + warmup + duration)
    futures = []
    transports = []
    for i in range(conns):
        done: asyncio.Future[None] = loop.create_future()
        tr, _ = await loop.create_connection(
            lambda done=done, i=i: _Conn(make, window, res, done, i * 1_000_000), host, port)
        transports.append(tr)
        futures.append(done)
    await asyncio.sleep(max(0.0, window[0] - time.time()))
    cpu0 = time.process_time()
    await asyncio.wait(futures, timeout=warmup + duration + 30)
    res.cpu = time.process_time() - cpu0
    for tr in transports:
        tr.close()
    return res


def _worker(host: str, port: int, conns: int, make: RequestFactory, t0: float, warmup: float, duration: float,
            out: mp.Queue) -> None:  # type: ignore[type-arg]
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - plain asyncio is slower but works
        pass
    try:
        res = asyncio.run(_run(host, port, conns, make, t0, warmup, duration))
    except Exception as exc:  # report, don't hang the parent
        res = Result(errors=1, first_error=repr(exc))
    out.put(res)


@dataclass
class Summary:
    rps: float
    ok: int
    errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    gen_cpu: float  # generator CPU seconds per second of run (1.0 = one core)
    server_cpu: float  # the same for the process sampled by ``cpu_of`` (nan without one)
    statuses: dict[int, int]
    first_error: str


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    i = min(len(sorted_values) - 1, max(0, int(round(q * (len(sorted_values) - 1)))))
    return sorted_values[i]


def run_load(host: str, port: int, *, make: RequestFactory, connections: int, processes: int,
             duration: float, warmup: float, cpu_of: Callable[[], float] | None = None) -> Summary:
    """``connections`` keep-alive clients over ``processes`` processes; figures of the last ``duration`` s."""
    ctx = mp.get_context("fork")
    out: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    t0 = time.time() + 0.3
    per = [connections // processes + (1 if i < connections % processes else 0) for i in range(processes)]
    procs = [ctx.Process(target=_worker, args=(host, port, n, make, t0, warmup, duration, out), daemon=True)
             for n in per if n]
    for p in procs:
        p.start()
    server_cpu = float("nan")
    if cpu_of is not None:
        time.sleep(max(0.0, t0 + warmup - time.time()))
        c0 = cpu_of()
        time.sleep(max(0.0, t0 + warmup + duration - time.time()))
        server_cpu = (cpu_of() - c0) / duration
    results = [out.get(timeout=warmup + duration + 60) for _ in procs]
    for p in procs:
        p.join(timeout=10)
    lat = sorted(x for r in results for x in r.latencies)
    ok = sum(r.ok for r in results)
    statuses: dict[int, int] = {}
    for r in results:
        for k, v in r.statuses.items():
            statuses[k] = statuses.get(k, 0) + v
    return Summary(
        rps=ok / duration, ok=ok, errors=sum(r.errors for r in results),
        p50_ms=percentile(lat, 0.50) * 1000, p90_ms=percentile(lat, 0.90) * 1000,
        p99_ms=percentile(lat, 0.99) * 1000, max_ms=(lat[-1] * 1000 if lat else float("nan")),
        gen_cpu=sum(r.cpu for r in results) / duration, server_cpu=server_cpu, statuses=statuses,
        first_error=next((r.first_error for r in results if r.first_error), ""),
    )


# -- a trivial server: the generator's ceiling ----------------------------------------------------


class _Trivial(asyncio.Protocol):
    def __init__(self, response: bytes) -> None:
        self.response = response
        self.buf = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        n = self.buf.count(b"\r\n\r\n")
        if n:
            self.buf = self.buf[self.buf.rfind(b"\r\n\r\n") + 4:]
            self.transport.write(self.response * n)  # type: ignore[attr-defined]


def _serve_trivial(port: int, body_size: int, ready: mp.Event) -> None:  # type: ignore[type-arg]
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    body = b"x" * body_size
    response = (b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: "
                + str(len(body)).encode() + b"\r\n\r\n" + body)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _Trivial(response), "127.0.0.1", port, backlog=1024)
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def trivial_server(port: int, body_size: int = 100) -> mp.Process:
    """A fixed-response keep-alive HTTP server in its own process (terminate() it when done)."""
    ctx = mp.get_context("fork")
    ready = ctx.Event()
    proc = ctx.Process(target=_serve_trivial, args=(port, body_size, ready), daemon=True)
    proc.start()
    if not ready.wait(10):
        proc.terminate()
        raise RuntimeError("trivial server did not start")
    return proc


def proc_cpu_seconds(pid: int) -> float:
    """user+system CPU seconds of ``pid`` so far (its threads included)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
