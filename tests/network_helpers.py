"""Helpers for the network, address, security group and NIC tests: deploys on the sandbox, network
offerings by name, error assertions and reads of the server's database."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from cs import CloudStack, CloudStackApiException
from sqlalchemy import create_engine, text

from conftest import Sandbox, unique
from servers import Server

ISOLATED_SNAT = "DefaultIsolatedNetworkOfferingWithSourceNatService"
ISOLATED_NO_SNAT = "DefaultIsolatedNetworkOffering"
SHARED = "DefaultSharedNetworkOffering"
SHARED_SG = "DefaultSharedNetworkOfferingWithSGService"
L2 = "DefaultL2NetworkOffering"
#: The basic zone's guest range in the sandbox.
BASIC_RANGE = (ipaddress.ip_address("10.147.29.100"), ipaddress.ip_address("10.147.29.250"))
#: The advanced zone's public range in the sandbox.
PUBLIC_RANGE = (ipaddress.ip_address("192.168.2.2"), ipaddress.ip_address("192.168.2.200"))
NO_SUCH_UUID = "00000000-0000-4000-8000-000000000000"


def db_rows(server: Server, sql: str, **params: Any) -> list[Any]:
    engine = create_engine(server.db_url or f"sqlite:///{server.data_dir / 'overcast.db'}")
    with engine.connect() as c:
        rows = list(c.execute(text(sql), params))
    engine.dispose()
    return rows


def error_of(call: Any) -> dict[str, Any]:
    with pytest.raises(CloudStackApiException) as err:
        call()
    return err.value.error  # type: ignore[no-any-return]


def offering(api: CloudStack, name: str) -> str:
    found = [o for o in api.listNetworkOfferings(name=name)["networkoffering"] if o["name"] == name]
    assert found, name
    return str(found[0]["id"])


def deploy(api: CloudStack, sandbox: Sandbox, **params: Any) -> dict[str, Any]:
    params.setdefault("zoneid", sandbox.advanced_zone)
    params.setdefault("templateid", sandbox.template)
    params.setdefault("serviceofferingid", sandbox.small)
    params.setdefault("name", unique("vm"))
    return api.deployVirtualMachine(**params)["virtualmachine"]  # type: ignore[no-any-return]


def isolated(api: CloudStack, sandbox: Sandbox, **params: Any) -> dict[str, Any]:
    """A new isolated network (source NAT offering) in the advanced zone."""
    params.setdefault("name", unique("net"))
    params.setdefault("displaytext", params["name"])
    params.setdefault("zoneid", sandbox.advanced_zone)
    if "networkofferingid" not in params:
        params["networkofferingid"] = offering(api, ISOLATED_SNAT)
    return api.createNetwork(**params)["network"]  # type: ignore[no-any-return]


def in_range(ip: str, bounds: tuple[Any, Any]) -> bool:
    return bounds[0] <= ipaddress.ip_address(ip) <= bounds[1]


def expunge(admin: CloudStack, vm_ids: list[str]) -> None:
    for vm_id in vm_ids:
        admin.destroyVirtualMachine(id=vm_id, expunge=True)


def events(api: CloudStack, event_type: str, **params: Any) -> list[dict[str, Any]]:
    return [e for e in api.listEvents(type=event_type, pagesize=500, page=1, **params).get("event", [])
            if e["type"] == event_type]


# -- guests as network namespaces --------------------------------------------------------------------

def netns_unavailable() -> str | None:
    """Why guests can't be stood up as network namespaces here, or None when they can."""
    import os
    import shutil
    import subprocess
    import uuid

    if shutil.which("ip") is None:
        return "iproute2's ip command is not installed"
    if os.geteuid() != 0:
        return "network namespaces need root"
    probe = f"ocprobe{uuid.uuid4().hex[:6]}"
    done = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if done.returncode != 0:
        return f"ip netns is not permitted here: {done.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


class GuestLan:
    """A guest network on this machine: a bridge holding the network's gateway address (where the
    metadata service listens, as a virtual router does), and one network namespace per guest, joined
    to the bridge by a veth pair and holding the address the server gave that guest's NIC. ``close()``
    removes all of it; use it as a context manager so a failing test cleans up too."""

    def __init__(self, gateway: str, prefixlen: int = 24) -> None:
        import uuid

        self.gateway, self.prefixlen = gateway, prefixlen
        self.tag = uuid.uuid4().hex[:6]
        self.bridge = f"ocbr{self.tag}"
        self.namespaces: list[str] = []
        self._links: list[str] = []
        self._addresses: dict[str, str] = {}  # namespace -> the address it holds
        self._removed: list[str] = []  # names are never reused

    @staticmethod
    def _ip(*args: str) -> None:
        import subprocess

        done = subprocess.run(["ip", *args], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")

    def __enter__(self) -> GuestLan:
        try:
            # A fixed address: a bridge otherwise takes the lowest of its ports' addresses, so a guest added
            # later could change the gateway's MAC under the guests' ARP caches.
            mac = "02:" + ":".join(f"{b:02x}" for b in bytes.fromhex(self.tag + "0001"))
            self._ip("link", "add", self.bridge, "address", mac, "type", "bridge")
            self._links.append(self.bridge)
            self._ip("addr", "add", f"{self.gateway}/{self.prefixlen}", "dev", self.bridge)
            self._ip("link", "set", self.bridge, "up")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add_guest(self, address: str, *, hosts: dict[str, str] | None = None) -> str:
        """A namespace holding ``address`` with a default route through the gateway; ``hosts`` (name ->
        address) becomes its /etc/hosts (``ip netns exec`` mounts /etc/netns/<name>/hosts over it).
        An earlier guest holding the same address (its VM expunged, the address given to a new VM) is
        removed first: two holders of one address on the bridge would answer each other's ARP."""
        import os
        from pathlib import Path

        for old, held in list(self._addresses.items()):
            if held == address:
                self.remove_guest(old)
        index = len(self.namespaces) + len(self._removed)
        ns, host_end, guest_end = f"ocns{self.tag}{index}", f"ocv{self.tag}{index}h", f"ocv{self.tag}{index}g"
        self._ip("netns", "add", ns)
        self.namespaces.append(ns)
        self._ip("link", "add", host_end, "type", "veth", "peer", "name", guest_end)
        self._links.append(host_end)
        self._ip("link", "set", host_end, "master", self.bridge)
        self._ip("link", "set", host_end, "up")
        self._ip("link", "set", guest_end, "netns", ns)
        self._ip("-n", ns, "link", "set", "lo", "up")
        self._ip("-n", ns, "addr", "add", f"{address}/{self.prefixlen}", "dev", guest_end)
        self._ip("-n", ns, "link", "set", guest_end, "up")
        self._ip("-n", ns, "route", "add", "default", "via", self.gateway)
        self._addresses[ns] = address
        if hosts:
            etc = Path("/etc/netns") / ns
            etc.mkdir(parents=True, exist_ok=True)
            (etc / "hosts").write_text("127.0.0.1 localhost\n" + "".join(f"{ip} {name}\n" for name, ip in hosts.items()))
            os.chmod(etc / "hosts", 0o644)
        return ns

    def remove_guest(self, ns: str) -> None:
        """Remove the guest ``ns`` (its veth pair goes with it) and the host's ARP entry for its address."""
        import shutil
        import subprocess

        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        shutil.rmtree(f"/etc/netns/{ns}", ignore_errors=True)
        self.namespaces.remove(ns)
        self._removed.append(ns)
        address = self._addresses.pop(ns, None)
        if address is not None:
            subprocess.run(["ip", "neigh", "flush", "to", address, "dev", self.bridge], capture_output=True)

    def run(self, ns: str, args: list[str], **kwargs: Any) -> Any:
        """Run a command inside the guest ``ns``."""
        import subprocess

        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        kwargs.setdefault("timeout", 120)
        return subprocess.run(["ip", "netns", "exec", ns, *args], **kwargs)

    def close(self) -> None:
        import shutil
        import subprocess

        for link in reversed(self._links):
            subprocess.run(["ip", "link", "del", link], capture_output=True)
        for ns in self.namespaces:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
            shutil.rmtree(f"/etc/netns/{ns}", ignore_errors=True)
        self._links, self.namespaces = [], []


#: A small HTTP client run inside a guest namespace: argv[1] is a JSON list of [url, headers]; prints a
#: JSON list of {"status", "body" (base64), "headers"} (or {"error"} when the connection failed).
GUEST_FETCH = r"""
import base64, json, sys, urllib.error, urllib.request
out = []
for url, headers in json.loads(sys.argv[1]):
    req = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:
            out.append({"status": resp.status, "body": base64.b64encode(resp.read()).decode(),
                        "headers": dict(resp.headers)})
    except urllib.error.HTTPError as exc:
        out.append({"status": exc.code, "body": base64.b64encode(exc.read()).decode(), "headers": dict(exc.headers)})
    except OSError as exc:
        out.append({"error": str(exc)})
print(json.dumps(out))
"""


def guest_fetch(lan: GuestLan, ns: str, requests: list[tuple[str, dict[str, str]]]) -> list[tuple[int, bytes, dict[str, str]]]:
    """GET each ``(url, headers)`` from inside the guest ``ns``, in one client process:
    [(status, body, lower-cased headers)]."""
    import base64
    import json
    import sys

    done = lan.run(ns, [sys.executable, "-c", GUEST_FETCH, json.dumps([[u, h] for u, h in requests])])
    assert done.returncode == 0, done.stderr
    results = []
    for out in json.loads(done.stdout):
        assert "error" not in out, out
        results.append((int(out["status"]), base64.b64decode(out["body"]),
                        {k.lower(): v for k, v in out["headers"].items()}))
    return results


def guest_get(lan: GuestLan, ns: str, url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    """GET ``url`` from inside the guest ``ns``: (status, body, lower-cased headers)."""
    return guest_fetch(lan, ns, [(url, headers or {})])[0]
