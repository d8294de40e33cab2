"""Cold start of ``overcast serve`` to its first signed response, and its memory after start.

Usage: .venv/bin/python bench/startup.py [--runs N] [--bytecode both|compiled|source] [-- extra serve args]

Each run starts ``overcast serve`` (the venv's console script) on a free loopback port and polls a
signed ``listAccounts`` (signature version 3, HMAC-SHA1, the ``cs`` client's canonical form) every
2 ms until it answers 200. The clock runs from just before ``Popen`` to that first 200, so it covers
interpreter start, imports, migrations and seeding (fresh data dir) or the migration check (existing
data dir), and the listener coming up. Fresh runs read the admin keys from the server's log as soon
as it prints them; existing-dir runs restart the server on the data dir of a fresh run and reuse its
keys. The server process's CPU time (user + system) at that moment is shown too: on a machine shared
with other work the wall-clock figure grows with the load, the CPU time much less. RSS is
/proc/PID/status VmRSS of the server process, right after the first signed response and again
after 200 more signed requests.

Bytecode: this checkout is an editable install, and the machine sets PYTHONDONTWRITEBYTECODE=1, so
unless something byte-compiles the package every start compiles all of overcast's sources (the
installed libraries have their .pyc). ``compiled`` first byte-compiles the package in place
(``python -m compileall``, as ``pip install`` of a wheel leaves it; the __pycache__ folders are
git-ignored); ``source`` first removes those folders so each start compiles from source; ``both``
(the default) measures each in turn.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _harness import ServerProcess, http_get, loadavg, machine, rss_mb, signed_query, table
from loadgen import proc_cpu_seconds

TARGET_S = 1.0
TARGET_RSS_MB = 120.0


def first_signed(srv: ServerProcess, key: str, secret: str, timeout: float = 30.0) -> float:
    """Poll a signed listAccounts until 200; seconds since the server was started."""
    path = "/client/api?" + signed_query(key, secret, {"command": "listAccounts", "response": "json"})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status, body = http_get(srv.port, path)
        except OSError:
            srv.check_alive()
            time.sleep(0.002)
            continue
        elapsed = time.perf_counter() - srv.started_at
        if status != 200 or b'"account"' not in body:
            raise RuntimeError(f"signed listAccounts answered {status}: {body[:300]!r}\n{srv.log()}")
        return elapsed
    raise RuntimeError(f"no signed response after {timeout}s:\n{srv.log()}")


def warm_rss(srv: ServerProcess, key: str, secret: str, n: int = 200) -> float:
    path = "/client/api?" + signed_query(key, secret, {"command": "listAccounts", "response": "json"})
    for _ in range(n):
        status, _ = http_get(srv.port, path)
        assert status == 200
    return rss_mb(srv.pid)


def one_run(data_dir: Path, extra: list[str],
            keys: tuple[str, str] | None) -> tuple[float, float, float, float, tuple[str, str]]:
    srv = ServerProcess(data_dir, extra_args=extra).start()
    try:
        if keys is None:
            keys = srv.keys()
        elapsed = first_signed(srv, *keys)
        cpu = proc_cpu_seconds(srv.pid)
        rss_start = rss_mb(srv.pid)
        rss_warm = warm_rss(srv, *keys)
        return elapsed, cpu, rss_start, rss_warm, keys
    finally:
        srv.stop()


def summary(label: str, values: list[float], fmt: str, target: float) -> list[str]:
    med = statistics.median(values)
    return [label, fmt.format(med), fmt.format(min(values)), fmt.format(max(values)),
            fmt.format(target), "yes" if max(values) <= target else "NO"]


def package_dir() -> Path:
    spec = importlib.util.find_spec("overcast")
    assert spec is not None and spec.submodule_search_locations
    return Path(list(spec.submodule_search_locations)[0])


def set_bytecode(kind: str) -> None:
    pkg = package_dir()
    if kind == "compiled":
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(pkg)], check=True)
    else:
        for cache in pkg.rglob("__pycache__"):
            shutil.rmtree(cache, ignore_errors=True)


def measure(runs: int, extra: list[str]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {k: [] for k in ("fresh_t", "fresh_cpu", "fresh_rss", "fresh_warm", "exist_t",
                                                   "exist_cpu", "exist_rss", "exist_warm")}
    dirs: list[Path] = []
    try:
        for _ in range(runs):
            d = Path(tempfile.mkdtemp(prefix="overcast-bench-"))
            dirs.append(d)
            keys = None  # the fresh run's admin keys, reused by the run on the existing data dir
            for kind in ("fresh", "exist"):
                t, cpu, r0, r1, keys = one_run(d, extra, None if kind == "fresh" else keys)
                for name, value in (("t", t), ("cpu", cpu), ("rss", r0), ("warm", r1)):
                    out[f"{kind}_{name}"].append(value)
    finally:
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each kind (default 5)")
    parser.add_argument("--bytecode", choices=("both", "compiled", "source"), default="both")
    parser.add_argument("extra", nargs="*", help="extra arguments for `overcast serve`")
    args = parser.parse_args()

    kinds = ["compiled", "source"] if args.bytecode == "both" else [args.bytecode]
    load_before = loadavg()
    results = {}
    for kind in kinds:
        set_bytecode(kind)
        results[kind] = measure(args.runs, args.extra)
    set_bytecode("compiled")  # leave the checkout as an install would be
    print(f"overcast serve cold start, {args.runs} runs each; {machine()}; "
          f"load average before/after: {load_before} / {loadavg()}")
    if args.extra:
        print("serve args:", " ".join(args.extra))
    rows = []
    for kind in kinds:
        r = results[kind]
        label = "byte-compiled" if kind == "compiled" else "from source"
        rows += [
            summary(f"start -> 1st signed listAccounts, fresh data dir, {label} (s)", r["fresh_t"], "{:.3f}",
                    TARGET_S),
            summary(f"start -> 1st signed listAccounts, existing data dir, {label} (s)", r["exist_t"],
                    "{:.3f}", TARGET_S),
            summary(f"  server CPU time to it, fresh data dir, {label} (s)", r["fresh_cpu"], "{:.3f}", TARGET_S),
            summary(f"  server CPU time to it, existing data dir, {label} (s)", r["exist_cpu"], "{:.3f}",
                    TARGET_S),
            summary(f"RSS after start, fresh data dir, {label} (MB)", r["fresh_rss"], "{:.1f}", TARGET_RSS_MB),
            summary(f"RSS after start, existing data dir, {label} (MB)", r["exist_rss"], "{:.1f}",
                    TARGET_RSS_MB),
            summary(f"RSS after 200 more requests, existing data dir, {label} (MB)", r["exist_warm"], "{:.1f}",
                    TARGET_RSS_MB),
        ]
    print(table(["measure", "median", "min", "max", "target", "met (max)"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
