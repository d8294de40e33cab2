"""Shared pieces of the benchmarks: start ``overcast serve``, sign requests, a tiny HTTP client.

Only the standard library is used here (the load generator adds uvloop when it is installed, as
uvicorn[standard] installs it), so the benchmarks run in the project's own virtualenv with no extra
tools, and sign requests independently of the server's code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

HOST = "127.0.0.1"
OVERCAST = str(Path(sys.executable).with_name("overcast"))  # the console script of this venv


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` in MB (VmRSS of /proc/PID/status)."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def tree_rss_mb(pid: int) -> float:
    """RSS of ``pid`` and its children (for ``--processes N``)."""
    total = rss_mb(pid)
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        kids = []
    for kid in kids:
        try:
            total += tree_rss_mb(int(kid))
        except OSError:
            pass
    return total


# -- signing, the way the ``cs`` client does it (sorted names, quote(v, safe="*"), HMAC-SHA1) ---------


def signed_query(api_key: str, secret: str, params: dict[str, str], *, expires_in: int = 3600) -> str:
    """A query string signed with signature version 3 (``expires`` ``expires_in`` seconds ahead)."""
    data = dict(params)
    data["apiKey"] = api_key
    data["signatureVersion"] = "3"
    expires = datetime.now(UTC) + timedelta(seconds=expires_in)
    data["expires"] = expires.strftime("%Y-%m-%dT%H:%M:%S+0000")
    text = "&".join(f"{k}={quote(v, safe='*')}" for k, v in sorted(data.items()))
    digest = hmac.new(secret.encode(), text.lower().encode(), hashlib.sha1).digest()
    data["signature"] = base64.b64encode(digest).decode()
    return "&".join(f"{k}={quote(v, safe='*')}" for k, v in data.items())


def get_request(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nUser-Agent: overcast-bench\r\n\r\n".encode()


def http_get(port: int, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """One GET on a fresh connection: (status, body). Raises OSError when nothing listens."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(get_request(path))
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("closed before headers")
            buf += chunk
        head, _, body = buf.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        length = int(m.group(1)) if m else 0
        while len(body) < length:
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
        return status, body


# -- the server process -------------------------------------------------------------------------


class ServerProcess:
    """``overcast serve`` on a free loopback port, its log in ``data_dir``."""

    def __init__(self, data_dir: Path, port: int | None = None, extra_args: list[str] | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.extra_args = extra_args or []
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / f"server-{self.port}.log"
        self.started_at = 0.0

    def start(self) -> ServerProcess:
        args = [OVERCAST, "serve", "--host", HOST, "--port", str(self.port), "--data-dir", str(self.data_dir),
                *self.extra_args]
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps its own descriptor
        self.started_at = time.perf_counter()
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def keys(self, timeout: float = 30.0) -> tuple[str, str]:
        """The admin keys a fresh server prints at start."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log()
            key = re.search(r"Admin API key:\s+(\S+)", text)
            secret = re.search(r"Admin secret key:\s+(\S+)", text)
            if key and secret:
                return key.group(1), secret.group(1)
            self.check_alive()
            time.sleep(0.005)
        raise RuntimeError(f"no admin keys printed:\n{self.log()}")

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")

    def wait_ready(self, path: str = "/health", timeout: float = 30.0) -> float:
        """Poll ``path`` every 2 ms until it answers 200; seconds since start."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                status, body = http_get(self.port, path, timeout=timeout)
                if status == 200:
                    return time.perf_counter() - self.started_at
                raise RuntimeError(f"{path} answered {status}: {body[:300]!r}")
            except OSError:
                self.check_alive()
                time.sleep(0.002)
        raise RuntimeError(f"server not ready after {timeout}s:\n{self.log()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def machine() -> str:
    """A line describing where the figures came from."""
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs ({cpu}), Python {sys.version.split()[0]}"


def loadavg() -> str:
    """The 1-minute load average: other work on the machine skews every figure."""
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in rows]
    return "\n".join([line, sep, *body])
