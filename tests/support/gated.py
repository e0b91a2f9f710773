"""A local source (port 0) that is picky about its clients, for the cookie and proxy tests:

- it answers 403 unless the request carries the cookie it wants (when it wants one);
- it answers 429 to connections owned by the processes it rate-limits (a proxy it refuses);
- it records, for each request, its path, its Cookie header, its headers, and the pid of the
  process that owns the client end of the connection (read from /proc, Linux only), so a
  test can tell a proxy's connection from a direct one.

Otherwise it serves files of ``root`` under ``/media/<name>``, and ``/redirect?to=<url>``
answers a 302 to that URL."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote


def socket_owner(port: int, candidates: set[int]) -> int | None:
    """The pid among ``candidates`` that owns the local TCP socket bound to 127.0.0.1:``port``."""
    inode = None
    with open("/proc/net/tcp") as table:
        for line in list(table)[1:]:
            columns = line.split()
            address, local_port = columns[1].split(":")
            if address == "0100007F" and int(local_port, 16) == port and columns[9] != "0":
                inode = columns[9]  # (an old connection in TIME_WAIT on the same port has inode 0)
    if inode is None:
        return None
    for pid in candidates:
        if f"socket:[{inode}]" in _fd_links(pid):
            return pid
    return None


def _fd_links(pid: int) -> set[str]:
    """What a process's open descriptors point at. One descriptor closing while they are read
    (a busy proxy) must not hide the others."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return set()
    links = set()
    for fd in fds:
        try:
            links.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            continue
    return links


@dataclass
class Seen:
    path: str
    cookie: str
    headers: dict[str, str]
    owner: int | None  # the pid of a watched process that made the connection, if any
    status: int


@dataclass
class GatedSource:
    root: Path
    cookie: str | None = None  # "name=value" the source insists on
    rate_limited: set[int] = field(default_factory=set)  # pids answered with 429
    watched: set[int] = field(default_factory=set)  # pids whose connections are recognised
    seen: list[Seen] = field(default_factory=list)
    host: str = "127.0.0.1"

    def __enter__(self) -> GatedSource:
        self.server = ThreadingHTTPServer((self.host, 0), self._handler())
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.server.server_address[1]}/{path}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        source = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                owner = socket_owner(self.client_address[1], source.watched | source.rate_limited)
                cookie = self.headers.get("Cookie", "")
                path = source.root / self.path.removeprefix("/media/").split("?")[0]
                status = 200
                if self.path.startswith("/redirect?to="):
                    source.seen.append(Seen(self.path, cookie, dict(self.headers), owner, 302))
                    self.send_response(302)
                    self.send_header("Location", unquote(self.path.removeprefix("/redirect?to=")))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if owner is not None and owner in source.rate_limited:
                    status = 429
                elif source.cookie and source.cookie not in [c.strip() for c in cookie.split(";")]:
                    status = 403
                elif not self.path.startswith("/media/") or not path.is_file():
                    status = 404
                source.seen.append(Seen(self.path, cookie, dict(self.headers), owner, status))
                body = path.read_bytes() if status == 200 else b""
                self.send_response(status)
                self.send_header("Content-Type", "video/mp4" if status == 200 else "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler
