"""Throughput and latency of a signed ``listAccounts`` at 32 concurrent keep-alive clients.

Usage: .venv/bin/python bench/api_throughput.py [--servers 1,2] [--connections 32] [--processes 2]
           [--duration 5] [--warmup 1] [-- extra serve args]

For each server configuration (``--servers 1,2``: ``overcast serve`` as it comes, then
``overcast serve --processes 2``; default settings otherwise: access log on, 4 job worker threads)
it starts the server on a free loopback port in a temporary data dir and runs, one after another,
with the same generator settings:

1. (first configuration only) the generator's own ceiling, against a trivial fixed-response server
   in its own process (no overcast at all; body as long as the listAccounts response);
2. ``GET /health`` of overcast: the same server processes and stack (uvicorn, Starlette), no work;
3. ``listAccounts`` signed with the admin's API key, pre-signed: each connection repeats one URL
   (signature version 3, HMAC-SHA1, the ``cs`` client's canonical form);
4. the same, freshly signed: the client signs every request, with an ``expires`` that changes from
   one request to the next, so no two consecutive requests of a connection are alike.

The server does not cache signatures, so 3 and 4 cost the server the same; 4 costs the generator
more. Client and server share the machine's cores; see docs/benchmarks.md. Each configuration takes
about half a minute.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from _harness import (HOST, ServerProcess, free_port, get_request, http_get, loadavg, machine, signed_query,
                      table, tree_rss_mb)
from loadgen import Summary, proc_cpu_seconds, run_load, trivial_server

TARGET_RPS = 2000.0
TARGET_P99_MS = 50.0


def run_server(serve_args: list[str], load: dict[str, Any], ceiling: bool) -> tuple[list[tuple[str, Summary]], float, str]:
    """Start ``overcast serve`` with ``serve_args``; measure /health and listAccounts (and first the
    generator's ceiling, when ``ceiling``). Returns the rows, the server's RSS after, and its log."""
    data_dir = Path(tempfile.mkdtemp(prefix="overcast-bench-"))
    srv = ServerProcess(data_dir, extra_args=serve_args)
    rows: list[tuple[str, Summary]] = []
    rss = float("nan")
    try:
        srv.start()
        key, secret = srv.keys()
        srv.wait_ready()
        api = "/client/api?"
        params = {"command": "listAccounts", "response": "json"}
        presigned = get_request(api + signed_query(key, secret, params))
        status, body = http_get(srv.port, api + signed_query(key, secret, params))
        if status != 200 or b'"account"' not in body:
            raise RuntimeError(f"listAccounts answered {status}: {body[:300]!r}")

        def fresh(seq: int) -> bytes:
            return get_request(api + signed_query(key, secret, params, expires_in=600 + seq % 1200))

        health = get_request("/health")
        if ceiling:
            tport = free_port()
            trivial = trivial_server(tport, body_size=len(body))
            try:
                rows.append(("generator ceiling (trivial server)",
                             run_load(HOST, tport, make=lambda _s: health, **load,
                                      cpu_of=lambda: proc_cpu_seconds(trivial.pid))))
            finally:
                trivial.terminate()
                trivial.join(5)

        def server_cpu() -> float:
            total = proc_cpu_seconds(srv.pid)
            kids = Path(f"/proc/{srv.pid}/task/{srv.pid}/children").read_text().split()
            return total + sum(proc_cpu_seconds(int(k)) for k in kids)

        for label, make in [("GET /health (no-op)", lambda _s: health), ("listAccounts, pre-signed", lambda _s: presigned),
                            ("listAccounts, freshly signed", fresh)]:
            rows.append((label, run_load(HOST, srv.port, make=make, **load, cpu_of=server_cpu)))
        rss = tree_rss_mb(srv.pid)
    finally:
        srv.stop()
        log = srv.log()
        shutil.rmtree(data_dir, ignore_errors=True)
    return rows, rss, log


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--processes", type=int, default=2, help="load generator processes (default 2)")
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per row (default 5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each row")
    parser.add_argument("--servers", default="1,2",
                        help="server configurations to measure: comma-separated `overcast serve --processes`"
                             " counts (default 1,2)")
    parser.add_argument("extra", nargs="*", help="extra arguments for `overcast serve`")
    args = parser.parse_args()

    load: dict[str, Any] = dict(connections=args.connections, processes=args.processes, duration=args.duration,
                                warmup=args.warmup)
    load_before = loadavg()
    results = []
    for i, count in enumerate(int(n) for n in args.servers.split(",")):
        serve_args = [*(["--processes", str(count)] if count > 1 else []), *args.extra]
        label = f"serve{' ' + ' '.join(serve_args) if serve_args else ''}"
        rows, rss, log = run_server(serve_args, load, ceiling=i == 0)
        results.append((label, rows, rss, log))

    print(f"{args.connections} keep-alive connections over {args.processes} generator processes, "
          f"{args.warmup:g} s warm-up + {args.duration:g} s measured per row; {machine()}; "
          f"load average before/after: {load_before} / {loadavg()}")
    out = []
    for label, rows, _, _ in results:
        health_rps = next(s.rps for name, s in rows if name.startswith("GET /health"))
        for name, s in rows:
            server = "-" if name.startswith("generator") else label
            out.append([server, name, f"{s.rps:,.0f}", f"{s.p50_ms:.1f}", f"{s.p90_ms:.1f}", f"{s.p99_ms:.1f}",
                        f"{s.max_ms:.1f}", f"{s.errors}", f"{s.server_cpu:.2f}",
                        f"{s.server_cpu / s.rps * 1e6:.0f}" if s.rps else "-", f"{s.gen_cpu:.2f}",
                        f"{s.rps / health_rps:.2f}"])
    print(table(["server", "scenario", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors", "server CPU",
                 "server CPU us/req", "gen CPU", "x /health"], out))
    for label, rows, rss, log in results:
        print(f"{label}: RSS after the runs {rss:.1f} MB (all its processes)")
        for name, s in rows:
            if s.errors:
                print(f"  {name}: statuses {s.statuses} {s.first_error}")
            if name.startswith("listAccounts"):
                met = s.rps >= TARGET_RPS and s.p99_ms <= TARGET_P99_MS and not s.errors
                print(f"  target >= {TARGET_RPS:,.0f} req/s and p99 <= {TARGET_P99_MS:g} ms, {name}: "
                      f"{'met' if met else 'NOT met'}")
        if any(s.errors for _, s in rows):
            print("  server log tail:\n" + "\n".join(log.splitlines()[-20:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
