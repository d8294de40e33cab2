"""listVirtualMachines latency (pagesize=500, page 1) over 1k, 10k and 100k VMs, with and without
details=min.

Usage: .venv/bin/python bench/list_vms.py [--sizes 1000,10000,100000] [--calls 20]

Starts ``overcast serve --sandbox`` in a temporary data dir (SQLite), deploys one VM through the API
as the admin (advanced zone, Small Instance, the sandbox template, the admin's default network) and
stops the server. The other VMs are NOT deployed through the API: their rows are BULK-INSERTED into
the server's SQLite database with SQLAlchemy Core (overcast.db.models VirtualMachine, Nic and Volume
tables, executemany in batches of 5,000) while the server is stopped, each a copy of the deployed
VM's rows (same account, zone, host, template, offering and network, Running) with a new id, uuid,
name, instance name, MAC and IP (the IPs are distinct, from 100.64.0.0/10, not inside the network's /24, and the
host's capacity counters are not raised). Then the server is started again on that data dir and each
listing is called ``--calls`` times (after 2 warm-up calls) with a signed GET on a fresh connection;
the table gives median and p90 wall-clock latency. Targets: at 10k VMs median ≤ 100 ms, ≤ 40 ms with
details=min; the cost of the page should not grow with the total.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
import uuid as uuidlib
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, insert, select

from _harness import ServerProcess, http_get, loadavg, machine, signed_query, table
from overcast.db.models import Nic, Volume, VirtualMachine

TARGET_MS = 100.0
TARGET_MIN_MS = 40.0
BATCH = 5000


def call(srv: ServerProcess, key: str, secret: str, params: dict[str, str]) -> dict[str, Any]:
    status, body = http_get(srv.port, "/client/api?" + signed_query(key, secret, params), timeout=120)
    if status != 200:
        raise RuntimeError(f"{params['command']} answered {status}: {body[:300]!r}")
    return json.loads(body)  # type: ignore[no-any-return]


def deploy_one(srv: ServerProcess, key: str, secret: str) -> None:
    def c(**p: str) -> dict[str, Any]:
        return call(srv, key, secret, {**p, "response": "json"})

    zone = c(command="listZones", name="Sandbox-simulator-advanced")["listzonesresponse"]["zone"][0]["id"]
    tmpl = c(command="listTemplates", templatefilter="executable", zoneid=zone)["listtemplatesresponse"]["template"][0]["id"]
    off = c(command="listServiceOfferings", name="Small Instance")["listserviceofferingsresponse"]["serviceoffering"][0]["id"]
    job = c(command="deployVirtualMachine", zoneid=zone, templateid=tmpl, serviceofferingid=off,
            name="seed-0")["deployvirtualmachineresponse"]["jobid"]
    for _ in range(600):
        r = c(command="queryAsyncJobResult", jobid=job)["queryasyncjobresultresponse"]
        if r["jobstatus"] == 1:
            return
        if r["jobstatus"] == 2:
            raise RuntimeError(f"deploy failed: {r}")
        time.sleep(0.05)
    raise RuntimeError("deploy did not finish")


def bulk_insert(db_path: Path, total: int) -> tuple[int, float]:
    """Copy the seed VM until the admin has ``total`` VMs; (rows added, seconds)."""
    engine = create_engine(f"sqlite:///{db_path}")
    vt, nt, volt = VirtualMachine.__table__, Nic.__table__, Volume.__table__
    t0 = time.perf_counter()
    with engine.begin() as c:
        have = c.execute(select(func.count()).select_from(vt).where(vt.c.removed.is_(None))).scalar_one()
        seed = c.execute(select(vt).where(vt.c.name == "seed-0")).mappings().one()
        seed_nics = c.execute(select(nt).where(nt.c.vm_id == seed["id"])).mappings().all()
        seed_vols = c.execute(select(volt).where(volt.c.vm_id == seed["id"])).mappings().all()
        next_vm = c.execute(select(func.max(vt.c.id))).scalar_one() + 1
        next_nic = c.execute(select(func.max(nt.c.id))).scalar_one() + 1
        next_vol = c.execute(select(func.max(volt.c.id))).scalar_one() + 1
        add = total - have
        for start in range(0, add, BATCH):
            vms, nics, vols = [], [], []
            for k in range(start, min(add, start + BATCH)):
                vm_id = next_vm + k
                n = have + k
                vms.append({**seed, "id": vm_id, "uuid": str(uuidlib.uuid4()), "name": f"bulk-{n}",
                            "display_name": f"bulk-{n}", "instance_name": f"i-2-{vm_id}-VM"})
                for j, nic in enumerate(seed_nics):
                    nid = next_nic + k * len(seed_nics) + j
                    nics.append({**nic, "id": nid, "uuid": str(uuidlib.uuid4()), "vm_id": vm_id,
                                 "mac_address": "02:%02x:%02x:%02x:%02x:%02x" % tuple(nid.to_bytes(5, "big")),
                                 "ip_address": "100.%d.%d.%d" % tuple(((64 << 16) + n).to_bytes(3, "big"))})
                for j, vol in enumerate(seed_vols):
                    vols.append({**vol, "id": next_vol + k * len(seed_vols) + j, "uuid": str(uuidlib.uuid4()),
                                 "vm_id": vm_id, "name": f"ROOT-{vm_id}"})
            c.execute(insert(vt), vms)
            if nics:
                c.execute(insert(nt), nics)
            if vols:
                c.execute(insert(volt), vols)
    engine.dispose()
    return max(add, 0), time.perf_counter() - t0


def measure(srv: ServerProcess, key: str, secret: str, calls: int, minimal: bool) -> tuple[list[float], int, int]:
    params = {"command": "listVirtualMachines", "response": "json", "pagesize": "500", "page": "1"}
    if minimal:
        params["details"] = "min"
    for _ in range(2):
        call(srv, key, secret, params)
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        r = call(srv, key, secret, params)["listvirtualmachinesresponse"]
        times.append((time.perf_counter() - t0) * 1000)
    return times, r.get("count", 0), len(r.get("virtualmachine", []))


def p90(v: list[float]) -> float:
    return statistics.quantiles(v, n=10)[-1] if len(v) > 1 else v[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--calls", type=int, default=20)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    data_dir = Path(tempfile.mkdtemp(prefix="overcast-bench-"))
    rows = []
    loads = []
    try:
        srv = ServerProcess(data_dir, extra_args=["--sandbox"]).start()
        try:
            key, secret = srv.keys()
            srv.wait_ready()
            deploy_one(srv, key, secret)
        finally:
            srv.stop()
        for total in sizes:
            added, secs = bulk_insert(data_dir / "overcast.db", total)
            print(f"bulk-inserted {added} VMs (+ NIC and volume rows) with SQLAlchemy Core in {secs:.1f} s "
                  f"-> {total} VMs", flush=True)
            before = loadavg()
            srv = ServerProcess(data_dir, extra_args=["--sandbox"]).start()
            try:
                srv.wait_ready(timeout=120)
                for minimal in (False, True):
                    times, count, got = measure(srv, key, secret, args.calls, minimal)
                    med = statistics.median(times)
                    target = TARGET_MIN_MS if minimal else TARGET_MS
                    met = ("yes" if med <= target else "NO") if total == 10000 else "-"
                    rows.append([f"{total:,}", "min" if minimal else "(all)", f"{count:,}", str(got),
                                 f"{med:.1f}", f"{p90(times):.1f}", f"{target:.0f}" if total == 10000 else "-", met])
            finally:
                srv.stop()
            loads.append(f"{total}: {before} / {loadavg()}")
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    print(f"listVirtualMachines pagesize=500 page=1 as the admin, {args.calls} calls each (signed GET, fresh "
          f"connection); overcast serve --sandbox, SQLite data dir; VM rows BULK-INSERTED (not deployed); "
          f"{machine()}")
    print("load average before/after each size:", "; ".join(loads))
    print(table(["VMs", "details", "count", "rows returned", "median ms", "p90 ms", "target ms", "met (median)"],
                rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
