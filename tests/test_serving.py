"""``squall serve --api-processes N`` (squall/serving.py): every process has its own listening
socket, so a burst of keep-alive connections is spread across them by the kernel instead of
landing on whichever process accepted first; a process that dies is replaced; SIGTERM stops
them all; a process that cannot start stops the server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import httpx
import pytest

from squall.serving import ApiProcesses
from squall.settings import Settings
from tests.support.fleet import free_port, wait_until
from tests.support.helpers import PYTHON, worker_env

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads connections per process from Linux's /proc"
)
CONNECTIONS = 24


def children(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in found]


def api_processes(serve_pid: int) -> list[int]:
    """serve's children that are API processes (multiprocessing spawns them with -c)."""
    return [c for c in children(serve_pid) if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


def socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def established_on(port: int) -> dict[str, int]:
    """inode -> client port of the server side of each established connection to ``port``."""
    found = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
        if state == "01" and int(local.split(":")[1], 16) == port:
            found[inode] = int(remote.split(":")[1], 16)
    return found


def serving(settings: Settings, tmp_path: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    env = worker_env(settings)
    env["SQUALL_DATA_DIR"] = str(tmp_path / "serve")
    command = [PYTHON, "-m", "squall", "serve", "--port", str(port), "--workers", "0", *extra]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


def test_connections_are_spread_a_dead_process_is_replaced_and_sigterm_stops_all(
    settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    proc = serving(settings, tmp_path, port, "--api-processes", "2")
    try:
        wait_until(lambda: answers(port) and len(api_processes(proc.pid)) == 2, 60, "two API processes")
        first, second = api_processes(proc.pid)
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(CONNECTIONS)]
        try:
            for client in clients:  # each connection answered, so each has been accepted
                client.sendall(b"GET /healthz HTTP/1.1\r\nhost: squall\r\n\r\n")
                assert client.recv(4096).startswith(b"HTTP/1.1 200")
            connections = established_on(port)
            owner = {inode: pid for pid in (first, second) for inode in socket_inodes(pid)}
            per_process = Counter(owner[inode] for inode in connections if inode in owner)
        finally:
            for client in clients:
                client.close()
        assert sum(per_process.values()) == CONNECTIONS
        # By a hash of the addresses: all 24 on one of two processes has odds of 2 in 16 million.
        assert per_process[first] > 0 and per_process[second] > 0, per_process

        os.kill(first, signal.SIGKILL)
        wait_until(lambda: first not in api_processes(proc.pid) and len(api_processes(proc.pid)) == 2,
                   60, "a replacement for the killed API process")  # fmt: skip
        wait_until(lambda: answers(port), 30, "the server to answer")
        replaced = api_processes(proc.pid)
        assert second in replaced
    finally:
        code = stop(proc)
    assert code == 0
    for pid in replaced:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    assert not answers(port)


def unbuildable_app() -> None:
    """An app factory that fails, as a configuration that breaks only when the app is built."""
    raise RuntimeError("this app cannot be built")


def test_an_api_process_that_cannot_start_stops_the_server() -> None:
    processes = ApiProcesses("127.0.0.1", free_port(), 2, app="tests.test_serving:unbuildable_app")
    with pytest.raises(SystemExit, match="An API process failed to start"):
        processes.run()
    assert all(not process.is_alive() for process in processes.processes)
