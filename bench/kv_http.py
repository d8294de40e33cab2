"""The KV storages' HTTP service at 32 concurrent keep-alive clients, against etcd in the same run.

Usage: .venv/bin/python bench/kv_http.py [--db URL] [--server-processes 2] [--keys 1000]
           [--connections 32] [--processes 2] [--duration 5] [--warmup 1] [--no-etcd]

1. Starts ``overcast serve --processes N`` (SQLite in a temporary data dir unless ``--db``), creates an
   account storage with history on through the API (``createAccountKvStorage``, signed with the
   admin's keys) and loads ``--keys`` keys through ``PUT /kv/set/{id}``.
2. GET: ``GET /kv/get/{id}/{key}`` with the storage's ``Secret-Key``, keys in turn.
3. SET: ``PUT /kv/set/{id}/{key}`` (``text/plain``), history on: every SET also writes a history row.
4. etcd (Debian package ``etcd-server``; installed with apt-get when missing), started on free
   loopback ports in a temporary dir, through its v3 JSON gateway: ``POST /v3/kv/range`` and
   ``POST /v3/kv/put`` with base64 keys and values, the same keys, the same load generator.

Prints req/s, p50/p99 and the ratio Overcast/etcd for each operation, with the load average. Targets
(issue 4): GET >= 5,000 req/s with p99 <= 20 ms; SET >= 2,000 req/s.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _harness import HOST, ServerProcess, free_port, loadavg, machine, signed_query, table
from loadgen import Summary, proc_cpu_seconds, run_load

GET_RPS, GET_P99_MS, SET_RPS = 5000.0, 20.0, 2000.0


def request(port: int, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
            ) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        conn.request(method, path, body=body or None, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def api(port: int, key: str, secret: str, **params: str) -> dict[str, Any]:
    status, body = request(port, "GET", "/client/api?" + signed_query(key, secret, {**params, "response": "json"}))
    if status != 200:
        raise RuntimeError(f"{params['command']} answered {status}: {body[:300]!r}")
    return json.loads(body)  # type: ignore[no-any-return]


def create_storage(port: int, key: str, secret: str) -> tuple[str, str]:
    """An account storage with history on, through the API: (id, secret key)."""
    accounts = api(port, key, secret, command="listAccounts")["listaccountsresponse"]["account"]
    admin = next(a for a in accounts if a["name"] == "admin")
    job = api(port, key, secret, command="createAccountKvStorage", accountid=admin["id"], name="bench",
              historyenabled="true")["createaccountkvstorageresponse"]["jobid"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        res = api(port, key, secret, command="queryAsyncJobResult", jobid=job)["queryasyncjobresultresponse"]
        if res["jobstatus"] == 1:
            storage = res["jobresult"]["kvstorage"]
            return storage["id"], storage["secretkey"]
        if res["jobstatus"] == 2:
            raise RuntimeError(f"createAccountKvStorage failed: {res}")
        time.sleep(0.05)
    raise RuntimeError("createAccountKvStorage did not finish")


def http_request(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}", *(f"{k}: {v}" for k, v in headers.items())]
    if body or method in ("PUT", "POST"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def overcast_rows(args: argparse.Namespace, load: dict[str, Any], keys: list[str]) -> tuple[list[tuple[str, Summary]], str]:
    data_dir = Path(tempfile.mkdtemp(prefix="overcast-kv-bench-"))
    serve = ["--log-level", "WARNING", *(["--db", args.db] if args.db else [])]
    if args.server_processes > 1:
        serve += ["--processes", str(args.server_processes)]
    srv = ServerProcess(data_dir, extra_args=serve)
    rows: list[tuple[str, Summary]] = []
    try:
        srv.start()
        api_key, api_secret = srv.keys()
        srv.wait_ready()
        sid, secret = create_storage(srv.port, api_key, api_secret)
        auth = {"Secret-Key": secret}
        for i in range(0, len(keys), 500):
            body = json.dumps({k: f"value-of-{k}" for k in keys[i:i + 500]}).encode()
            status, out = request(srv.port, "PUT", f"/kv/set/{sid}", body,
                                  {**auth, "Content-Type": "application/json"})
            if status != 200 or b"false" in out:
                raise RuntimeError(f"loading keys: {status} {out[:200]!r}")
        status, out = request(srv.port, "GET", f"/kv/get/{sid}/{keys[0]}", headers=auth)
        if status != 200 or out != f"value-of-{keys[0]}".encode():
            raise RuntimeError(f"GET answered {status} {out[:200]!r}")

        gets = [http_request("GET", f"/kv/get/{sid}/{k}", auth) for k in keys]
        sets = [http_request("PUT", f"/kv/set/{sid}/{k}", {**auth, "Content-Type": "text/plain"},
                             f"new-value-of-{k}".encode()) for k in keys]

        def server_cpu() -> float:
            total = proc_cpu_seconds(srv.pid)
            kids = Path(f"/proc/{srv.pid}/task/{srv.pid}/children").read_text().split()
            return total + sum(proc_cpu_seconds(int(k)) for k in kids)

        rows.append(("GET", run_load(HOST, srv.port, make=lambda s: gets[s % len(gets)], cpu_of=server_cpu, **load)))
        rows.append(("SET", run_load(HOST, srv.port, make=lambda s: sets[s % len(sets)], cpu_of=server_cpu, **load)))
        status, out = request(srv.port, "GET", f"/kv/history/{sid}?size=1", headers=auth)
        history = json.loads(out)["total"] if status == 200 else f"history answered {status}"
        print(f"history records after the run: {history}", file=sys.stderr)
    finally:
        srv.stop()
        log = srv.log()
        shutil.rmtree(data_dir, ignore_errors=True)
    return rows, log


def etcd_binary() -> str:
    found = shutil.which("etcd")
    if found:
        return found
    print("etcd not found: installing the Debian package etcd-server", file=sys.stderr)
    subprocess.run(["apt-get", "install", "-y", "etcd-server"], check=True, stdout=subprocess.DEVNULL,
                   env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    found = shutil.which("etcd") or "/usr/bin/etcd"
    return found


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def etcd_rows(load: dict[str, Any], keys: list[str]) -> tuple[list[tuple[str, Summary]], str]:
    data_dir = Path(tempfile.mkdtemp(prefix="etcd-bench-"))
    port, peer = free_port(), free_port()
    url, peer_url = f"http://{HOST}:{port}", f"http://{HOST}:{peer}"
    log_path = data_dir / "etcd.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [etcd_binary(), "--name", "bench", "--data-dir", str(data_dir / "data"), "--listen-client-urls", url,
             "--advertise-client-urls", url, "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls",
             peer_url, "--initial-cluster", f"bench={peer_url}"],
            stdout=log, stderr=subprocess.STDOUT)
    rows: list[tuple[str, Summary]] = []
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if request(port, "GET", "/health")[0] == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"etcd did not start:\n{log_path.read_text()[-2000:]}")
            time.sleep(0.05)
        json_headers = {"Content-Type": "application/json"}
        for k in keys:
            body = json.dumps({"key": b64(k), "value": b64(f"value-of-{k}")}).encode()
            status, out = request(port, "POST", "/v3/kv/put", body, json_headers)
            if status != 200:
                raise RuntimeError(f"etcd put answered {status} {out[:200]!r}")
        status, out = request(port, "POST", "/v3/kv/range", json.dumps({"key": b64(keys[0])}).encode(), json_headers)
        if status != 200 or b64(f"value-of-{keys[0]}") not in out.decode():
            raise RuntimeError(f"etcd range answered {status} {out[:200]!r}")
        gets = [http_request("POST", "/v3/kv/range", json_headers, json.dumps({"key": b64(k)}).encode())
                for k in keys]
        puts = [http_request("POST", "/v3/kv/put", json_headers,
                             json.dumps({"key": b64(k), "value": b64(f"new-value-of-{k}")}).encode()) for k in keys]
        rows.append(("GET", run_load(HOST, port, make=lambda s: gets[s % len(gets)],
                                     cpu_of=lambda: proc_cpu_seconds(proc.pid), **load)))
        rows.append(("SET", run_load(HOST, port, make=lambda s: puts[s % len(puts)],
                                     cpu_of=lambda: proc_cpu_seconds(proc.pid), **load)))
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log = log_path.read_text(errors="replace")
        shutil.rmtree(data_dir, ignore_errors=True)
    return rows, log


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="", help="database URL for the server (default: SQLite in a temp dir)")
    parser.add_argument("--server-processes", type=int, default=2, help="`overcast serve --processes` (default 2)")
    parser.add_argument("--keys", type=int, default=1000, help="keys loaded and cycled through (default 1000)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--processes", type=int, default=2, help="load generator processes (default 2)")
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per row (default 5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each row")
    parser.add_argument("--no-etcd", action="store_true", help="measure Overcast only")
    args = parser.parse_args()

    load: dict[str, Any] = dict(connections=args.connections, processes=args.processes, duration=args.duration,
                                warmup=args.warmup)
    keys = [f"key-{i:06d}" for i in range(args.keys)]
    load_before = loadavg()
    ours, log = overcast_rows(args, load, keys)
    theirs, etcd_log = ([], "") if args.no_etcd else etcd_rows(load, keys)
    print(f"{args.connections} keep-alive connections over {args.processes} generator processes, "
          f"{args.warmup:g} s warm-up + {args.duration:g} s measured per row, {args.keys} keys; {machine()}; "
          f"overcast serve --processes {args.server_processes} on {args.db.split(':')[0] if args.db else 'sqlite'}; "
          f"load average before/after: {load_before} / {loadavg()}")
    rows = []
    for who, results in (("overcast", ours), ("etcd", theirs)):
        for name, s in results:
            rows.append([who, name, f"{s.rps:,.0f}", f"{s.p50_ms:.1f}", f"{s.p90_ms:.1f}", f"{s.p99_ms:.1f}",
                         f"{s.max_ms:.1f}", str(s.errors), f"{s.server_cpu:.2f}",
                         f"{s.server_cpu / s.rps * 1e6:.0f}" if s.rps else "-", f"{s.gen_cpu:.2f}"])
    print(table(["server", "op", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors", "server CPU",
                 "server CPU us/req", "gen CPU"], rows))
    theirs_by = dict(theirs)
    for name, s in ours:
        if name in theirs_by and theirs_by[name].rps:
            print(f"{name}: Overcast/etcd = {s.rps / theirs_by[name].rps:.2f} (req/s), "
                  f"p99 {s.p99_ms:.1f} ms vs {theirs_by[name].p99_ms:.1f} ms")
    for name, s in ours:
        if name == "GET":
            met = s.rps >= GET_RPS and s.p99_ms <= GET_P99_MS and not s.errors
            print(f"target GET >= {GET_RPS:,.0f} req/s, p99 <= {GET_P99_MS:g} ms: {'met' if met else 'NOT met'}")
        if name == "SET":
            met = s.rps >= SET_RPS and not s.errors
            print(f"target SET >= {SET_RPS:,.0f} req/s (history on): {'met' if met else 'NOT met'}")
    for who, results, text in (("overcast", ours, log), ("etcd", theirs, etcd_log)):
        for name, s in results:
            if s.errors:
                print(f"{who} {name}: statuses {s.statuses} {s.first_error}")
                print("  log tail:\n" + "\n".join(text.splitlines()[-20:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
