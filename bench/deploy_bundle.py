"""What ``deployBundle`` costs over the equivalent ``deployVirtualMachine``.

Usage: .venv/bin/python bench/deploy_bundle.py [--deploys 200] [--clients 4] [--warmup 10]

Starts ``overcast serve --sandbox`` on a free loopback port in a temporary data dir (SQLite). Setup, not
timed, as the admin (no count limits): 4 simulator hosts are added to cluster C0 of the advanced zone (as
in bench/deploy_many.py), isolated networks are created (200 VMs each), and for each network a bundle
``bench-<n>`` whose recipe is the advanced zone, the sandbox template, the Small Instance offering, that
network and 1 KB of user data; one VM is deployed in each network (implementing it).

Timed: pairs of deploys with the same zone, template, offering, network and user data, one of each kind,
interleaved (A B A B ..., the order of the two swapped every other pair) so that drift (the database
growing, other work on the machine) hits both kinds alike:

- A: ``deployVirtualMachine zoneid templateid serviceofferingid networkids userdata``
- B: ``deployBundle bundle=bench-<n>``

Each deploy is timed from sending the request to the first ``queryAsyncJobResult`` (polled every 2 ms
on the same keep-alive connection) that shows the job done, and its synchronous part (request to the
answer with the job id) on its own. Two rounds, ``--deploys`` of each kind in each: one client
(sequential), then ``--clients`` concurrent clients (each on its own connection, alternating kinds).
Prints medians and p90 per kind, the ratio bundle / plain, and the load average before and after.
Target (issue 5): deployBundle costs at most 10 % more (ratio of the medians, request to job done).
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import HOST, ServerProcess, loadavg, machine, signed_query, table  # noqa: E402

TARGET_RATIO = 1.10
PER_NETWORK = 200
POLL_S = 0.002


class Api:
    """Signed GETs on one keep-alive connection."""

    def __init__(self, port: int, key: str, secret: str) -> None:
        self.port, self.key, self.secret = port, key, secret
        self.conn = http.client.HTTPConnection(HOST, port, timeout=120)

    def __call__(self, command: str, **params: Any) -> dict[str, Any]:
        query = signed_query(self.key, self.secret, {"command": command, "response": "json",
                                                     **{k: str(v) for k, v in params.items()}})
        self.conn.request("GET", f"/client/api?{query}")
        resp = self.conn.getresponse()
        body = json.loads(resp.read())
        answer = next(iter(body.values()))
        if resp.status != 200:
            raise RuntimeError(f"{command}: {resp.status} {answer}")
        return answer  # type: ignore[no-any-return]

    def close(self) -> None:
        self.conn.close()


def deploy(api: Api, command: str, params: dict[str, Any]) -> tuple[float, float, str | None]:
    """(seconds to the job id, seconds to the job done, error or None)."""
    t0 = time.perf_counter()
    answer = api(command, **params)
    t_sync = time.perf_counter() - t0
    while True:
        job = api("queryAsyncJobResult", jobid=answer["jobid"])
        if job["jobstatus"] != 0:
            t_done = time.perf_counter() - t0
            error = None if job["jobstatus"] == 1 else str(job.get("jobresult"))[:300]
            return t_sync, t_done, error
        time.sleep(POLL_S)


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deploys", type=int, default=200, help="deploys of each kind in each round")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients of the second round (0: none)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed deploys of each kind first")
    parser.add_argument("--extra-hosts", type=int, default=4)
    args = parser.parse_args()

    before = loadavg()
    data_dir = Path(tempfile.mkdtemp(prefix="overcast-bench-"))
    srv = ServerProcess(data_dir, extra_args=["--sandbox"]).start()
    try:
        key, secret = srv.keys()
        srv.wait_ready()
        api = Api(srv.port, key, secret)
        zone = api("listZones", name="Sandbox-simulator-advanced")["zone"][0]["id"]
        template = api("listTemplates", templatefilter="executable", zoneid=zone)["template"][0]["id"]
        offering = api("listServiceOfferings", name="Small Instance")["serviceoffering"][0]["id"]
        pod = api("listPods", zoneid=zone)["pod"][0]["id"]
        cluster = [c for c in api("listClusters", zoneid=zone)["cluster"] if c["name"] == "C0"][0]["id"]
        for n in range(args.extra_hosts):
            api("addHost", zoneid=zone, podid=pod, clusterid=cluster, hypervisor="Simulator", username="root",
                password="password", url=f"http://sim/c0/h{100 + n}?cpunumber=16&cpuspeed=4000&memory={64 * 1024**3}")
        netoff = [o for o in api("listNetworkOfferings", guestiptype="Isolated", state="Enabled")["networkoffering"]
                  if not o.get("forvpc")][0]["id"]
        user_data = base64.b64encode(b"#cloud-config\n" + b"# " + b"x" * 1000 + b"\n").decode()
        total = 2 * (args.warmup + (2 if args.clients > 0 else 1) * args.deploys)
        nets: list[str] = []
        for n in range((total + PER_NETWORK - 1) // PER_NETWORK):
            nets.append(api("createNetwork", zoneid=zone, networkofferingid=netoff, name=f"bench-{n}",
                            displaytext=f"bench-{n}")["network"]["id"])
            api("createBundle", name=f"bench-{n}", zoneid=zone, templateid=template, serviceofferingid=offering,
                networkids=nets[-1], userdata=user_data)
            # The first VM of a network implements it (its virtual router...): done here, untimed, so that
            # no timed deploy of either kind pays for it.
            _, _, error = deploy(api, "deployVirtualMachine", {"zoneid": zone, "templateid": template,
                                                               "serviceofferingid": offering, "networkids": nets[-1]})
            if error:
                raise RuntimeError(f"setup deploy failed: {error}")

        lock = threading.Lock()
        counter = [0]

        def params_of(kind: str) -> tuple[str, dict[str, Any]]:
            """The next deploy's command and parameters; both kinds of a pair land in the same network."""
            with lock:
                n = counter[0] // PER_NETWORK
                counter[0] += 1
            if kind == "bundle":
                return "deployBundle", {"bundle": f"bench-{n}"}
            return "deployVirtualMachine", {"zoneid": zone, "templateid": template, "serviceofferingid": offering,
                                            "networkids": nets[n], "userdata": user_data}

        failures: list[str] = []

        def run(client: Api, kinds: list[str], out: dict[str, list[tuple[float, float]]]) -> None:
            for kind in kinds:
                command, params = params_of(kind)
                t_sync, t_done, error = deploy(client, command, params)
                with lock:
                    if error:
                        failures.append(f"{command}: {error}")
                    else:
                        out[kind].append((t_sync, t_done))

        def order(pairs: int, offset: int = 0) -> list[str]:
            """plain bundle bundle plain plain bundle ...: each kind goes first in half of the pairs."""
            kinds = []
            for i in range(pairs):
                first, second = ("plain", "bundle") if (i + offset) % 2 == 0 else ("bundle", "plain")
                kinds += [first, second]
            return kinds

        warm: dict[str, list[tuple[float, float]]] = {"plain": [], "bundle": []}
        run(api, order(args.warmup), warm)

        rounds: list[tuple[str, dict[str, list[tuple[float, float]]], str, str]] = []
        seq: dict[str, list[tuple[float, float]]] = {"plain": [], "bundle": []}
        load0 = loadavg()
        run(api, order(args.deploys), seq)
        rounds.append(("1 client", seq, load0, loadavg()))

        if args.clients > 0:
            conc: dict[str, list[tuple[float, float]]] = {"plain": [], "bundle": []}
            shares = [args.deploys // args.clients + (1 if c < args.deploys % args.clients else 0)
                      for c in range(args.clients)]
            clients = [Api(srv.port, key, secret) for _ in range(args.clients)]
            threads = [threading.Thread(target=run, args=(clients[c], order(shares[c], c), conc), daemon=True)
                       for c in range(args.clients)]
            load0 = loadavg()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            rounds.append((f"{args.clients} clients", conc, load0, loadavg()))
            for c in clients:
                c.close()
        api.close()

        print(f"deployBundle vs deployVirtualMachine on overcast serve --sandbox, SQLite data dir; {machine()}; "
              f"admin account, Small Instance, isolated networks of {PER_NETWORK} VMs, 1 KB of user data; "
              f"{args.deploys} deploys of each kind per round, interleaved, after {args.warmup} of each untimed; "
              f"load average before/after: {before} / {loadavg()}")
        rows = []
        verdicts = []
        for name, got, l0, l1 in rounds:
            stats = {}
            for kind in ("plain", "bundle"):
                sync = [s * 1000 for s, _ in got[kind]]
                done = [d * 1000 for _, d in got[kind]]
                if not done:
                    continue
                stats[kind] = (statistics.median(sync), p90(sync), statistics.median(done), p90(done))
                label = "deployVirtualMachine" if kind == "plain" else "deployBundle"
                rows.append([name, label, str(len(done)), f"{stats[kind][0]:.1f}", f"{stats[kind][1]:.1f}",
                             f"{stats[kind][2]:.1f}", f"{stats[kind][3]:.1f}", f"{l0} / {l1}"])
            if len(stats) == 2:
                ratio = stats["bundle"][2] / stats["plain"][2]
                rows.append([name, "bundle / plain", "", f"{stats['bundle'][0] / stats['plain'][0]:.3f}",
                             f"{stats['bundle'][1] / stats['plain'][1]:.3f}", f"{ratio:.3f}",
                             f"{stats['bundle'][3] / stats['plain'][3]:.3f}", ""])
                verdicts.append(f"{name}: median ratio {ratio:.3f} (target <= {TARGET_RATIO:.2f}): "
                                f"{'met' if ratio <= TARGET_RATIO else 'NOT met'}")
        print(table(["round", "command", "n", "to job id p50 ms", "p90 ms", "to job done p50 ms", "p90 ms",
                     "load avg before / after"], rows))
        for line in verdicts:
            print(line)
        print(f"failed deploys: {len(failures)}")
        for f in failures[:5]:
            print("failure:", f)
        return 1 if failures else 0
    finally:
        srv.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
