"""Several API processes on one port, each with its own listening socket (``SO_REUSEPORT``).

uvicorn's ``--workers`` shares one socket between its processes, and whichever process's event
loop wakes first accepts every connection waiting: a burst of keep-alive clients (a load
balancer's pool, a benchmark's 32 connections) lands on one process while the others idle.
With a socket per process the kernel spreads new connections across them by a hash of the
addresses, as nginx's ``reuseport`` does. Where the platform has no ``SO_REUSEPORT`` the
processes share one socket, as uvicorn's do.

The parent starts the processes, replaces one that dies after it started serving, and stops
them all on SIGTERM or Ctrl-C. A process that exits with an error before it serves (an app
that cannot be built) stops the whole server: the next one would fail the same way. One
killed by a signal is replaced, whenever it happened."""

from __future__ import annotations

import multiprocessing
import os
import socket
import sys
import threading
import time
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event as EventType

STOP_SECONDS = 10.0


def listener(host: str, port: int) -> socket.socket:
    """A listening socket on host:port that the other API processes (of this user) may also
    bind, where the platform balances such sockets."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port_supported():
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def reuse_port_supported() -> bool:
    return hasattr(socket, "SO_REUSEPORT") and sys.platform.startswith("linux")


def _serve_one(
    app: str, host: str, port: int, shared: socket.socket | None, parent_pid: int, ready: EventType
) -> None:
    """One API process: its app built from the environment, as uvicorn's workers build theirs."""
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                ready.set()

    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()
    sock = shared if shared is not None else listener(host, port)
    Server(uvicorn.Config(app, factory=True, log_level="warning")).run(sockets=[sock])


def _exit_with_parent(parent_pid: int) -> None:
    """An API process outlives a killed serve otherwise, holding the port."""
    while os.getppid() == parent_pid:
        time.sleep(1.0)
    os._exit(0)


class ApiProcesses:
    def __init__(self, host: str, port: int, count: int, app: str = "squall.app:create_app") -> None:
        """``app``: the factory each process builds its app with (from the environment)."""
        self.host, self.port, self.count, self.app = host, port, count, app
        self._context = multiprocessing.get_context("spawn")
        # Without SO_REUSEPORT one socket is bound here and handed to every process.
        self._shared = None if reuse_port_supported() else listener(host, port)
        self._running: list[tuple[BaseProcess, EventType]] = []

    @property
    def processes(self) -> list[BaseProcess]:
        return [process for process, _ in self._running]

    def _start(self) -> tuple[BaseProcess, EventType]:
        ready = self._context.Event()
        args = (self.app, self.host, self.port, self._shared, os.getpid(), ready)
        process = self._context.Process(target=_serve_one, args=args, name="squall-api", daemon=False)
        process.start()
        return process, ready

    def run(self) -> None:
        """Until SIGTERM/Ctrl-C (raised here as SystemExit/KeyboardInterrupt) or a failed start."""
        try:
            self._running = [self._start() for _ in range(self.count)]
            while True:
                time.sleep(0.5)
                for n, (process, ready) in enumerate(self._running):
                    if process.is_alive():
                        continue
                    failed = process.exitcode is not None and process.exitcode > 0  # not a signal
                    if failed and not ready.is_set():  # it would fail the same way again
                        raise SystemExit(f"An API process failed to start (exit code {process.exitcode})")
                    self._running[n] = self._start()  # it served, then died: replace it
        finally:
            self.stop()

    def stop(self) -> None:
        for process, _ in self._running:
            if process.is_alive():
                process.terminate()
        deadline = time.monotonic() + STOP_SECONDS
        for process, _ in self._running:
            process.join(max(0.1, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
        if self._shared is not None:
            self._shared.close()
