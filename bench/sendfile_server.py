"""A minimal HTTP/1.0 file server that sends files with ``socket.sendfile`` (the kernel's ``sendfile``:
page cache to socket, no copy through user space), as nginx or any production web server does.

Usage: python bench/sendfile_server.py PORT DIRECTORY [--bind 127.0.0.1]

It answers ``GET /<name>`` for regular files directly inside DIRECTORY (200 with a Content-Length, then
the bytes, then it closes the connection) and 404 for anything else. No keep-alive, no ranges, no
directory listings: it exists so the template download benchmark measures the downloader, not the
file server (``python -m http.server`` copies every byte through Python and reaches only 1-3 GB/s).
"""

from __future__ import annotations

import argparse
import os
import socketserver
from pathlib import Path
from urllib.parse import unquote, urlsplit


class Handler(socketserver.StreamRequestHandler):
    server: Server

    def handle(self) -> None:
        request = self.rfile.readline(8192).decode("latin-1").split()
        while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
            pass  # the request's headers: nothing in them matters here
        name = unquote(urlsplit(request[1]).path).lstrip("/") if len(request) == 3 and request[0] == "GET" else ""
        path = self.server.root / name
        if not name or "/" in name or name.startswith(".") or not path.is_file():
            self.wfile.write(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            self.wfile.write(f"HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {size}\r\n"
                             "Connection: close\r\n\r\n".encode())
            self.wfile.flush()
            try:
                self.connection.sendfile(fh)
            except OSError:
                pass  # the client went away


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    root: Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("directory")
    parser.add_argument("--bind", default="127.0.0.1")
    args = parser.parse_args()
    with Server((args.bind, args.port), Handler) as server:
        server.root = Path(args.directory)
        server.serve_forever()


if __name__ == "__main__":
    main()
