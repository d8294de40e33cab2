"""``GET /latest/user-data`` of the guest metadata service at 32 concurrent guests.

Usage (root: guests are network namespaces): .venv/bin/python bench/metadata_userdata.py [--db URL]
           [--guests 32] [--processes 2] [--duration 5] [--warmup 1]

1. Puts a bridge holding a guest network's gateway on this machine and starts ``overcast serve
   --sandbox`` (SQLite in a temporary data dir unless ``--db``) with its metadata service on that
   address.
2. Creates an isolated network with that gateway and deploys ``--guests`` VMs in it, each with 1 KB of
   user data, through the API.
3. Gives one network namespace every VM's address, and runs the load generator (bench/loadgen.py's
   keep-alive connections) inside it: one connection per guest, each bound to its own VM's address,
   so the server looks every request up by a different guest's source address.

Prints req/s and p50/p99, with the load average. Target (issue 5): at least 3,000 req/s at 32 guests.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing as mp
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import ServerProcess, free_port, loadavg, machine, table  # noqa: E402
from loadgen import Result, _Conn, percentile  # noqa: E402

TARGET_RPS = 3000.0


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


async def _load(host: str, port: int, sources: list[str], t0: float, warmup: float, duration: float) -> Result:
    res = Result()
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, t0 - time.time()))
    window = (t0 + warmup, t0 + warmup + duration)
    request = f"GET /latest/user-data HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    futures, transports = [], []
    for i, source in enumerate(sources):
        done: asyncio.Future[None] = loop.create_future()
        tr, _ = await loop.create_connection(
            lambda done=done, i=i: _Conn(lambda _seq: request, window, res, done, i * 1_000_000), host, port,
            local_addr=(source, 0))
        transports.append(tr)
        futures.append(done)
    await asyncio.sleep(max(0.0, window[0] - time.time()))
    cpu0 = time.process_time()
    await asyncio.wait(futures, timeout=warmup + duration + 30)
    res.cpu = time.process_time() - cpu0
    for tr in transports:
        tr.close()
    return res


def _worker(host: str, port: int, sources: list[str], t0: float, warmup: float, duration: float,
            out: Any) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    try:
        out.put(asyncio.run(_load(host, port, sources, t0, warmup, duration)))
    except Exception as exc:
        out.put(Result(errors=1, first_error=repr(exc)))


def load_main(args: argparse.Namespace) -> None:
    """Inside the guests' namespace: run the load, print a JSON summary."""
    sources = args.sources.split(",")
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    t0 = time.time() + 0.3
    groups = [sources[i::args.processes] for i in range(args.processes)]
    procs = [ctx.Process(target=_worker, args=(args.host, args.port, g, t0, args.warmup, args.duration, out),
                         daemon=True) for g in groups if g]
    for p in procs:
        p.start()
    results = [out.get(timeout=args.warmup + args.duration + 60) for _ in procs]
    lat = sorted(x for r in results for x in r.latencies)
    ok = sum(r.ok for r in results)
    statuses: dict[int, int] = {}
    for r in results:
        for k, v in r.statuses.items():
            statuses[k] = statuses.get(k, 0) + v
    print(json.dumps({"rps": ok / args.duration, "ok": ok, "errors": sum(r.errors for r in results),
                      "p50_ms": percentile(lat, 0.5) * 1000, "p99_ms": percentile(lat, 0.99) * 1000,
                      "statuses": statuses, "first_error": next((r.first_error for r in results if r.first_error), "")}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default="")
    parser.add_argument("--guests", type=int, default=32)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--load", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--host", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--sources", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        load_main(args)
        return
    if os.geteuid() != 0:
        sys.exit("needs root: the guests are network namespaces")
    from cs import CloudStack

    tag = uuid.uuid4().hex[:6]
    gateway = f"10.{random.randint(200, 250)}.{random.randint(0, 255)}.1"
    bridge, ns, host_end, guest_end = f"ocbr{tag}", f"ocbench{tag}", f"ocb{tag}h", f"ocb{tag}g"
    port = free_port()
    server = None
    try:
        ip("link", "add", bridge, "type", "bridge")
        ip("addr", "add", f"{gateway}/24", "dev", bridge)
        ip("link", "set", bridge, "up")
        data_dir = Path(tempfile.mkdtemp(prefix="overcast-bench-md-"))
        extra = ["--sandbox", "--metadata-host", gateway, "--metadata-port", str(port)]
        if args.db:
            extra += ["--db", args.db]
        server = ServerProcess(data_dir, extra_args=extra).start()
        key, secret = server.keys()
        server.wait_ready()
        api = CloudStack(endpoint=f"http://127.0.0.1:{server.port}/client/api", key=key, secret=secret,
                         fetch_result=True, timeout=60, poll_interval=0.05)
        zone = api.listZones(name="Sandbox-simulator-advanced")["zone"][0]["id"]
        template = next(t["id"] for t in api.listTemplates(templatefilter="all")["template"]
                        if t["name"].startswith("CentOS 5.6"))
        small = api.listServiceOfferings(name="Small Instance")["serviceoffering"][0]["id"]
        offering = next(o["id"] for o in api.listNetworkOfferings()["networkoffering"]
                        if o["name"] == "DefaultIsolatedNetworkOfferingWithSourceNatService")
        net = api.createNetwork(name="bench", displaytext="bench", zoneid=zone, networkofferingid=offering,
                                gateway=gateway, netmask="255.255.255.0")["network"]["id"]
        user_data = base64.b64encode(os.urandom(768)).decode()  # 1 KB of base64
        addresses = []
        for i in range(args.guests):
            vm = api.deployVirtualMachine(zoneid=zone, templateid=template, serviceofferingid=small,
                                          networkids=net, name=f"guest{i}", userdata=user_data)["virtualmachine"]
            addresses.append(vm["nic"][0]["ipaddress"])
        ip("netns", "add", ns)
        ip("link", "add", host_end, "type", "veth", "peer", "name", guest_end)
        ip("link", "set", host_end, "master", bridge)
        ip("link", "set", host_end, "up")
        ip("link", "set", guest_end, "netns", ns)
        for address in addresses:
            ip("-n", ns, "addr", "add", f"{address}/24", "dev", guest_end)
        ip("-n", ns, "link", "set", guest_end, "up")
        ip("-n", ns, "link", "set", "lo", "up")
        time.sleep(0.5)
        done = subprocess.run(["ip", "netns", "exec", ns, sys.executable, __file__, "--load", "--host", gateway,
                               "--port", str(port), "--sources", ",".join(addresses), "--processes",
                               str(args.processes), "--duration", str(args.duration), "--warmup", str(args.warmup)],
                              capture_output=True, text=True, timeout=args.duration + args.warmup + 120)
        if done.returncode != 0:
            sys.exit(f"load generator failed:\n{done.stderr}")
        out = json.loads(done.stdout.strip().splitlines()[-1])
        print(machine())
        print(f"load average before/after: {loadavg()}")
        print(table(["guests", "req/s", "p50 ms", "p99 ms", "statuses", "errors", "target"],
                    [[str(args.guests), f"{out['rps']:,.0f}", f"{out['p50_ms']:.1f}", f"{out['p99_ms']:.1f}",
                      json.dumps(out["statuses"]), str(out["errors"]),
                      f">= {TARGET_RPS:,.0f} {'met' if out['rps'] >= TARGET_RPS else 'NOT met'}"]]))
        if out["first_error"]:
            print("first error:", out["first_error"])
    finally:
        if server is not None:
            server.stop()
        for cmd in (["link", "del", host_end], ["netns", "del", ns], ["link", "del", bridge]):
            subprocess.run(["ip", *cmd], capture_output=True)


if __name__ == "__main__":
    main()
