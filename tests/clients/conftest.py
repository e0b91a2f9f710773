"""A real `squall serve` (API and one embedded worker, as a subprocess on a free port) on the
test database, shared by the client library's tests; keys are made per test."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from squall.db import Database
from squall.keys.service import KeyLimits, NewKey, create_key
from squall.settings import Settings
from tests.support.helpers import PYTHON, TEST_SECRET, worker_env

KeyMaker = Callable[..., NewKey]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="package")
def squall_url(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a `squall serve` started for these tests (stopped after them)."""
    data_dir = tmp_path_factory.mktemp("client-serve")
    settings = Settings(data_dir=data_dir, database_url=database_url, secret_key=TEST_SECRET,
                        default_reservation_mb=1, lease_seconds=3, heartbeat_seconds=0.5)  # fmt: skip
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # auth cache 0: each test's keys are new, and the tables are wiped between tests.
    env = {**worker_env(settings), "SQUALL_PUBLIC_URL": base, "SQUALL_AUTH_CACHE_SECONDS": "0"}
    log = (data_dir / "serve.log").open("w")
    proc = subprocess.Popen(
        [PYTHON, "-m", "squall", "serve", "--port", str(port), "--workers", "1"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        _wait_until_healthy(base, proc, data_dir / "serve.log")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()


def _wait_until_healthy(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"squall serve exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"squall serve did not answer within 60 s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def new_key(db: Database) -> KeyMaker:
    """Create a key directly in the test database (with its webhook secret, which the CLI
    prints once); ``storage_limit_bytes=…`` makes a trial key."""

    def make(name: str = "client tests", **limits: int) -> NewKey:
        with db.write() as session:
            return create_key(session, pepper=TEST_SECRET, name=name, limits=KeyLimits(**limits))

    return make
