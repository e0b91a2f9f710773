"""A local webhook receiver (port 0) that records every request and answers as told.

Each path has a script of answers, used in order, the last one repeating: ``200``, ``500``,
``410``, ``302`` (to ``/elsewhere``), ``"hang"`` (hold the request until ``release()``, never
answered), or ``"hold"`` (hold it until ``release()``, then answer 200: a slow receiver).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int | None  # None: the request was held and never answered

    @property
    def payload(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


class WebhookReceiver:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.scripts: dict[str, list[int | str]] = {}
        self.released = threading.Event()
        self.arrived = threading.Condition()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}/{path.lstrip('/')}"

    def script(self, path: str, *answers: int | str) -> str:
        """Answer requests to ``path`` with these, in order; returns its URL."""
        self.scripts["/" + path.lstrip("/")] = list(answers)
        return self.url(path)

    def release(self) -> None:
        self.released.set()

    def to(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == "/" + path.lstrip("/")]

    def wait_for(self, count: int, path: str, timeout: float = 30) -> list[Received]:
        """Until ``count`` requests to ``path`` arrived (answered or held)."""
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.to(path)) >= count, timeout=timeout)
        return self.to(path)

    def _answer_for(self, path: str) -> int | str:
        script = self.scripts.get(path, [200])
        return script.pop(0) if len(script) > 1 else script[0]

    def _record(self, received: Received) -> None:
        with self.arrived:
            self.received.append(received)
            self.arrived.notify_all()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                answer = receiver._answer_for(self.path)
                if answer == "hang":
                    receiver._record(Received(self.path, headers, body, None))
                    receiver.released.wait(60)
                    return  # never answered: the connection just closes
                code = 200 if answer == "hold" else int(answer)
                receiver._record(Received(self.path, headers, body, code))  # recorded as it arrives
                if answer == "hold":
                    receiver.released.wait(60)
                self.send_response(code)
                if code == 302:
                    self.send_header("Location", "/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

        return Handler

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self.httpd.shutdown()
        self.httpd.server_close()
