"""A fault proxy between Squall and an S3 server (moto), programmed by the test.

A real HTTP/1.1 proxy on 127.0.0.1, port 0, one thread per connection. Each request is sorted
into a kind (``put``, ``part``, ``create_multipart``, ``complete_multipart``, ``abort_multipart``,
``get``, ``head``, ``delete``, ``list``, ``bucket``) and either passed on or met with a fault:

- ``"503"``: 503 SlowDown (S3's throttling answer), nothing forwarded;
- ``"500"``: 500 InternalError, nothing forwarded;
- ``"reset"``: half the request body is read, then the connection is reset (TCP RST);
- ``"lost"``: forwarded (the bucket acts on it), then the connection is reset: the answer is lost;
- ``"stall"``: the request is read and never answered (until the client gives up or the test ends).

``proxy.fail("put", "503", times=2)`` faults the next two PUTs; ``times=None`` faults every one
until ``proxy.clear()``. ``proxy.seen`` lists (kind, what was done) for every request."""

from __future__ import annotations

import http.client
import socket
import struct
import threading
from dataclasses import dataclass
from types import TracebackType
from typing import BinaryIO
from urllib.parse import parse_qs, urlsplit

FAULTS = ("503", "500", "reset", "lost", "stall")
ERRORS = {
    "503": (503, "Service Unavailable", "SlowDown", "Please reduce your request rate."),
    "500": (500, "Internal Server Error", "InternalError", "We encountered an internal error."),
}
STALL_CAP_SECONDS = 30.0  # a stalled request is let go by then even if the client still waits


@dataclass
class Rule:
    kinds: frozenset[str]
    fault: str
    left: int | None  # None: every matching request


def kind_of(method: str, target: str) -> str:
    parts = urlsplit(target)
    query = parse_qs(parts.query, keep_blank_values=True)
    has_key = "/" in parts.path.strip("/")  # path-style: /bucket/key
    if method == "PUT":
        return "part" if "partNumber" in query else ("put" if has_key else "bucket")
    if method == "POST":
        return (
            "create_multipart"
            if "uploads" in query
            else "complete_multipart"
            if "uploadId" in query
            else "post"
        )
    if method == "DELETE":
        return "abort_multipart" if "uploadId" in query else ("delete" if has_key else "bucket")
    if method == "HEAD":
        return "head"
    if method == "GET":
        return "get" if has_key and "uploadId" not in query else "list"
    return method.lower()


class S3FaultProxy:
    def __init__(self, upstream: str) -> None:
        split = urlsplit(upstream)
        self.upstream = (split.hostname or "127.0.0.1", split.port or 80)
        self.rules: list[Rule] = []
        self.seen: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._open: set[socket.socket] = set()
        self._thread = threading.Thread(target=self._accept, name="s3-fault-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def fail(self, kinds: str | tuple[str, ...], fault: str, *, times: int | None = 1) -> None:
        assert fault in FAULTS, fault
        names = frozenset((kinds,) if isinstance(kinds, str) else kinds)
        with self._lock:
            self.rules.append(Rule(names, fault, times))

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def count(self, kind: str, done: str | None = None) -> int:
        with self._lock:
            return sum(1 for k, d in self.seen if k == kind and (done is None or d == done))

    def _decide(self, kind: str) -> str:
        with self._lock:
            for rule in self.rules:
                if kind in rule.kinds and rule.left != 0:
                    if rule.left is not None:
                        rule.left -= 1
                    self.seen.append((kind, rule.fault))
                    return rule.fault
            self.seen.append((kind, "pass"))
            return "pass"

    # -- serving ---------------------------------------------------------------------------
    def __enter__(self) -> S3FaultProxy:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._closing.set()
        self._listener.close()
        self._thread.join(5)
        with self._lock:
            for conn in list(self._open):
                conn.close()

    def _accept(self) -> None:
        self._listener.settimeout(0.2)
        while not self._closing.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._open.add(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        try:
            while not self._closing.is_set() and self._one(conn, reader):
                pass
        except OSError:
            pass  # the client went away
        finally:
            reader.close()
            conn.close()
            with self._lock:
                self._open.discard(conn)

    def _one(self, conn: socket.socket, reader: BinaryIO) -> bool:
        """Serve one request; False when the connection is done."""
        line = reader.readline(65537)
        if not line.strip():
            return False
        method, target, _ = line.decode("latin-1").split(" ", 2)
        headers: list[tuple[str, str]] = []
        while (header := reader.readline(65537)) not in (b"\r\n", b"\n", b""):
            name, _, value = header.decode("latin-1").partition(":")
            headers.append((name.strip(), value.strip()))
        lower = {name.lower(): value for name, value in headers}
        length = int(lower.get("content-length", "0") or 0)
        if lower.get("expect", "").lower() == "100-continue":
            conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        fault = self._decide(kind_of(method, target))
        if fault == "reset":
            reader.read(length // 2)
            self._reset(conn)
            return False
        body = reader.read(length) if length else b""
        if fault == "stall":
            self._closing.wait(STALL_CAP_SECONDS)
            return False
        if fault in ERRORS:
            status, reason, code, message = ERRORS[fault]
            xml = (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
                   f"<Message>{message}</Message></Error>").encode()  # fmt: skip
            conn.sendall(f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\n"
                         f"Content-Length: {len(xml)}\r\n\r\n".encode() + (b"" if method == "HEAD" else xml))  # fmt: skip
            return True
        answer = self._forward(method, target, headers, body)
        if fault == "lost":
            self._reset(conn)
            return False
        conn.sendall(answer)
        return True

    def _forward(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes) -> bytes:
        upstream = http.client.HTTPConnection(*self.upstream, timeout=30)
        try:
            upstream.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            for name, value in headers:
                if name.lower() not in ("expect", "connection", "transfer-encoding"):
                    upstream.putheader(name, value)
            upstream.endheaders(body or None)
            response = upstream.getresponse()
            data = response.read()
            lines = [f"HTTP/1.1 {response.status} {response.reason}"]
            for name, value in response.getheaders():
                if name.lower() in ("connection", "transfer-encoding", "keep-alive"):
                    continue
                if name.lower() == "content-length" and method != "HEAD":
                    continue
                lines.append(f"{name}: {value}")
            if method != "HEAD":
                lines.append(f"Content-Length: {len(data)}")
            return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data
        finally:
            upstream.close()

    @staticmethod
    def _reset(conn: socket.socket) -> None:
        """Close with a TCP RST (linger 0), as a failing load balancer does."""
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
