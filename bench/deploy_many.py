"""Deploy many VMs on the simulated cloud through the API, from 50 concurrent clients, until all run.

Usage: .venv/bin/python bench/deploy_many.py [--vms 1000] [--clients 50]

Starts ``overcast serve --sandbox`` on a free loopback port in a temporary data dir (SQLite). Setup,
not timed: as the admin (no count limits), adds 4 simulator hosts to cluster C0 of the advanced zone
(addHost url http://sim/c0/hN?cpunumber=16&cpuspeed=4000&memory=64 GiB, like the seeded ones; without
the query the simulator's default host is 4 x 4 GHz / 16 GiB; the 4 seeded hosts hold about 500 Small
Instances by memory), and
creates enough isolated networks in the advanced zone (a /24 each, 200 VMs per network) for the VMs.
Timed: ``--clients`` threads, each with its own ``cs`` client (fetch_result=False), send
deployVirtualMachine (Small Instance, the sandbox template, one of the networks); the main thread polls
listVirtualMachines (state=Running / Error, pagesize=1, reading ``count``) every 0.25 s. The clock
runs from the first request to the poll that sees every VM Running (or Error). Target: ≤ 30 s.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from cs import CloudStack  # type: ignore[import-untyped]

from _harness import HOST, ServerProcess, loadavg, machine, table

TARGET_S = 30.0
PER_NETWORK = 200


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vms", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--extra-hosts", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=300.0, help="give up after this many seconds")
    args = parser.parse_args()

    before = loadavg()
    data_dir = Path(tempfile.mkdtemp(prefix="overcast-bench-"))
    srv = ServerProcess(data_dir, extra_args=["--sandbox"]).start()
    try:
        key, secret = srv.keys()
        srv.wait_ready()
        endpoint = f"http://{HOST}:{srv.port}/client/api"
        api = CloudStack(endpoint=endpoint, key=key, secret=secret, timeout=60)
        zone = api.listZones(name="Sandbox-simulator-advanced")["zone"][0]["id"]
        template = api.listTemplates(templatefilter="executable", zoneid=zone)["template"][0]["id"]
        offering = api.listServiceOfferings(name="Small Instance")["serviceoffering"][0]["id"]
        pod = api.listPods(zoneid=zone)["pod"][0]["id"]
        cluster = [c for c in api.listClusters(zoneid=zone)["cluster"] if c["name"] == "C0"][0]["id"]
        for n in range(args.extra_hosts):
            api.addHost(zoneid=zone, podid=pod, clusterid=cluster, url=f"http://sim/c0/h{100 + n}?cpunumber=16&cpuspeed=4000&memory={64 * 1024**3}",
                        hypervisor="Simulator", username="root", password="password")
        hosts = api.listHosts(zoneid=zone, type="Routing")["count"]
        netoff = [o for o in api.listNetworkOfferings(guestiptype="Isolated", state="Enabled")["networkoffering"]
                  if not o.get("forvpc")][0]["id"]
        nets = []
        for i in range((args.vms + PER_NETWORK - 1) // PER_NETWORK):
            nets.append(api.createNetwork(zoneid=zone, networkofferingid=netoff, name=f"bench-{i}",
                                          displaytext=f"bench-{i}")["network"]["id"])

        lock = threading.Lock()
        next_i = [0]
        failures: list[str] = []
        done_at: list[float] = []

        def worker() -> None:
            c = CloudStack(endpoint=endpoint, key=key, secret=secret, fetch_result=False, timeout=120)
            while True:
                with lock:
                    i = next_i[0]
                    next_i[0] += 1
                if i >= args.vms:
                    break
                try:
                    c.deployVirtualMachine(zoneid=zone, templateid=template, serviceofferingid=offering,
                                           networkids=nets[i // PER_NETWORK], name=f"bench-{i}")
                except Exception as exc:  # noqa: BLE001 - counted and reported
                    with lock:
                        failures.append(repr(exc)[:300])
            with lock:
                done_at.append(time.perf_counter())

        threads = [threading.Thread(target=worker, daemon=True) for _ in range(args.clients)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        running = errored = 0
        while True:
            running = api.listVirtualMachines(listall=True, state="Running", pagesize=1, page=1).get("count", 0)
            errored = api.listVirtualMachines(listall=True, state="Error", pagesize=1, page=1).get("count", 0)
            sent_all = not any(t.is_alive() for t in threads)
            if sent_all and running + errored + len(failures) >= args.vms:
                break
            if time.perf_counter() - t0 > args.timeout:
                print(f"gave up after {args.timeout} s")
                break
            time.sleep(0.25)
        total = time.perf_counter() - t0
        send_s = max(done_at) - t0 if done_at else float("nan")
        print(f"deploy {args.vms} VMs from {args.clients} concurrent clients on overcast serve --sandbox, "
              f"SQLite data dir; {machine()}; admin account, {hosts} hosts in the advanced zone "
              f"({args.extra_hosts} added), {len(nets)} isolated networks; "
              f"load average before/after: {before} / {loadavg()}")
        print(table(["measure", "value", "target", "met"], [
            ["first request -> all Running (s)", f"{total:.2f}", f"{TARGET_S:.0f}",
             "yes" if total <= TARGET_S and running == args.vms else "NO"],
            ["deploy requests answered (s)", f"{send_s:.2f}", "", ""],
            ["deploy requests/s", f"{args.vms / send_s:.0f}", "", ""],
            ["VMs Running", str(running), str(args.vms), ""],
            ["VMs in Error", str(errored), "0", ""],
            ["failed deploy requests", str(len(failures)), "0", ""],
        ]))
        for f in failures[:5]:
            print("failure:", f)
        if running < args.vms:
            print("server log tail:\n" + "\n".join(srv.log().splitlines()[-15:]))
        return 0
    finally:
        srv.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
