"""Real object storage servers for the image store tests: S3 (moto's server mode) and a one-node Swift
cluster (PyPI's ``swift``: account, container and object servers and a proxy with tempauth and tempurl)."""

from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from servers import free_port


@dataclass
class S3Server:
    endpoint: str
    access_key: str = "overcast-test"
    secret_key: str = "overcast-test-secret"


@contextmanager
def moto_s3() -> Iterator[S3Server]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield S3Server(endpoint=f"http://127.0.0.1:{port}")
    finally:
        server.stop()


@dataclass
class SwiftCluster:
    auth_url: str
    account: str = "test"
    user: str = "tester"
    key: str = "testing"


def swift_unavailable() -> str | None:
    """Why a Swift cluster can't run here, or None."""
    bindir = Path(sys.executable).parent
    if not (bindir / "swift-proxy-server").exists():
        return "PyPI's swift package is not installed (pip install -e '.[test]')"
    return None


def _ring(bindir: Path, root: Path, kind: str, port: int) -> None:
    builder = str(root / f"{kind}.builder")
    for args in (["create", "6", "1", "1"], ["add", f"r1z1-127.0.0.1:{port}/sdb1", "1"], ["rebalance"]):
        done = subprocess.run([str(bindir / "swift-ring-builder"), builder, *args], capture_output=True, text=True)
        if done.returncode not in (0, 1):  # 1: a warning (rebalance of a one-device ring)
            raise RuntimeError(f"swift-ring-builder {args[0]} failed: {done.stdout} {done.stderr}")


@contextmanager
def swift_cluster(root: Path) -> Iterator[SwiftCluster]:
    bindir = Path(sys.executable).parent
    (root / "node" / "sdb1").mkdir(parents=True)
    (root / "swift.conf").write_text(
        "[swift-hash]\nswift_hash_path_suffix = overcast\nswift_hash_path_prefix = overcast\n"
        "[storage-policy:0]\nname = gold\ndefault = yes\n")
    ports = {"object": free_port(), "container": free_port(), "account": free_port()}
    for kind, port in ports.items():
        _ring(bindir, root, kind, port)
        (root / f"{kind}-server.conf").write_text(
            f"[DEFAULT]\nswift_dir = {root}\ndevices = {root / 'node'}\nmount_check = false\n"
            f"bind_ip = 127.0.0.1\nbind_port = {port}\nworkers = 0\nlog_level = WARNING\n"
            f"[pipeline:main]\npipeline = {kind}-server\n[app:{kind}-server]\nuse = egg:swift#{kind}\n")
    proxy_port = free_port()
    fernet = base64.urlsafe_b64encode(os.urandom(32)).decode()
    (root / "proxy-server.conf").write_text(
        f"[DEFAULT]\nswift_dir = {root}\nbind_ip = 127.0.0.1\nbind_port = {proxy_port}\nworkers = 0\n"
        "log_level = WARNING\n[pipeline:main]\npipeline = catch_errors tempurl tempauth proxy-server\n"
        "[app:proxy-server]\nuse = egg:swift#proxy\naccount_autocreate = true\n"
        "[filter:tempauth]\nuse = egg:swift#tempauth\nuser_test_tester = testing .admin\n"
        f"fernet_key_1 = {fernet}\nactive_fernet_key_id = 1\n"  # tokens without memcached
        "[filter:tempurl]\nuse = egg:swift#tempurl\n[filter:catch_errors]\nuse = egg:swift#catch_errors\n")
    procs = []
    try:
        for kind in ("account", "container", "object", "proxy"):
            log = open(root / f"{kind}.log", "wb")  # noqa: SIM115 - the child keeps it
            procs.append(subprocess.Popen([str(bindir / f"swift-{kind}-server"), str(root / f"{kind}-server.conf")],
                                          stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
            log.close()
        auth = f"http://127.0.0.1:{proxy_port}/auth/v1.0"
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(auth, headers={"X-Auth-User": "test:tester", "X-Auth-Key": "testing"}, timeout=2)
                if r.status_code == 200:
                    token, url = r.headers["x-auth-token"], r.headers["x-storage-url"]
                    if httpx.put(f"{url}/probe", headers={"X-Auth-Token": token}, timeout=5).status_code < 300:
                        break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                logs = "\n".join((root / f"{k}.log").read_text() for k in ("account", "container", "object", "proxy"))
                raise RuntimeError(f"the Swift cluster did not start:\n{logs}")
            time.sleep(0.2)
        yield SwiftCluster(auth_url=auth)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(root / "node", ignore_errors=True)
