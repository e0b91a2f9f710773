"""Real local outbound proxies for the tests: pproxy (a PyPI HTTP/SOCKS proxy server) in a
process of its own on 127.0.0.1, so its connections can be told apart from the worker's."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

# pproxy 2.7.9 installs uvloop when it can and then asks for the current event loop, which
# uvloop refuses outside a running loop: it is run with uvloop hidden (asyncio's own loop).
_LAUNCH = (
    "import sys; sys.modules['uvloop'] = None; from pproxy.server import main; "
    "sys.argv = ['pproxy', '-l', sys.argv[1]]; main()"
)


@dataclass(frozen=True)
class LocalProxy:
    url: str
    pid: int


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def local_proxy(scheme: str = "http") -> Iterator[LocalProxy]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", _LAUNCH, f"{scheme}://127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        while True:  # ready once it accepts connections
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("pproxy did not start") from None
                time.sleep(0.05)
        yield LocalProxy(f"{scheme}://127.0.0.1:{port}", process.pid)
    finally:
        process.terminate()
        process.wait(timeout=10)
