"""A newcomer's first contact, run as real subprocesses: `squall serve --port N` (links that
agree with the port, a taken port) and `python3 run.py serve` stopped by a signal."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from squall.db import Database
from squall.keys.service import any_key_exists
from squall.settings import Settings
from tests.support.helpers import PYTHON, KeyFactory, worker_env
from tests.support.receiver import WebhookReceiver
from tests.support.server import MediaServer

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_healthy(base: str, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "serve exited before answering"
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{base} did not answer within {timeout} s")


def stop(proc: subprocess.Popen[str], how: signal.Signals = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(how)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def squall_processes(data_dir: Path) -> list[int]:
    """Pids of live processes started with SQUALL_DATA_DIR=data_dir (Linux /proc)."""
    marker = f"SQUALL_DATA_DIR={data_dir}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        try:
            environ = (proc / "environ").read_bytes()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, ValueError, IndexError):
            continue
        if marker in environ.split(b"\x00") and state != "Z":
            found.append(int(proc.name))
    return found


def test_webhook_download_url_of_serve_on_another_port_fetches_the_file(
    settings: Settings,
    db: Database,
    make_key: KeyFactory,
    media: MediaServer,
    receiver: WebhookReceiver,
) -> None:
    key, _ = make_key("Hooks")
    port = free_port()
    env = worker_env(settings)  # no SQUALL_PUBLIC_URL: serve derives it from --port
    proc = subprocess.Popen(
        [PYTHON, "-m", "squall", "serve", "--port", str(port), "--workers", "1"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(base, proc)
        hook = receiver.script("hook", 200)
        answer = httpx.post(
            f"{base}/jobs",
            headers={"x-api-key": key},
            json={"url": media.url("media/tiny.mp4"), "webhook_url": hook},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        deadline = time.monotonic() + 90
        completed: list[dict[str, object]] = []
        while not completed and time.monotonic() < deadline:
            received = receiver.wait_for(len(receiver.to("hook")) + 1, "hook", timeout=2)
            completed = [r.payload for r in received if r.payload.get("type") == "job_completed"]
        assert completed, f"no job_completed webhook: {[r.payload for r in receiver.to('hook')]}"
        download_url = str(completed[0]["download_url"])
        assert download_url.startswith(f"{base}/"), download_url  # the port serve listens on
        fetched = httpx.get(download_url, timeout=30)
        assert fetched.status_code == 200
        assert len(fetched.content) == completed[0]["file_size"] > 0
    finally:
        stop(proc)


def test_a_taken_port_fails_at_once_and_creates_no_key(settings: Settings, db: Database) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [PYTHON, "-m", "squall", "serve", "--port", str(port), "--workers", "1"],
            env=worker_env(settings), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert f"squall serve --port {port + 1}" in result.stderr
    assert "sk_" not in result.stdout and "shown" not in result.stdout
    with db.read() as session:
        assert not any_key_exists(session)


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_to_the_launcher_stops_serve_and_its_workers(
    settings: Settings, db: Database, tmp_path: Path, how: signal.Signals
) -> None:
    port = free_port()
    env = worker_env(settings)
    env["SQUALL_DATA_DIR"] = str(tmp_path / "launched")  # marks every process of this run
    proc = subprocess.Popen(
        [PYTHON, str(ROOT / "run.py"), "serve", "--port", str(port), "--workers", "2"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}", proc)
        deadline = time.monotonic() + 30
        while len(squall_processes(tmp_path / "launched")) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(squall_processes(tmp_path / "launched")) >= 3  # serve and its two workers
    finally:
        stop(proc, how)
    assert squall_processes(tmp_path / "launched") == []  # nothing of this run is left


def read_until(proc: subprocess.Popen[str], marker: str, timeout: float = 60) -> str:
    """What ``proc`` printed up to the line holding ``marker`` (bounded in time)."""
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    stdout = proc.stdout
    threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True).start()
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            seen.append(lines.get(timeout=0.5))
        except queue.Empty:
            continue
        if marker in seen[-1]:
            return "".join(seen)
    raise AssertionError(f"no {marker!r} in {''.join(seen)!r}")


def test_first_start_banner_says_where_squall_is_and_how_to_try_it(
    settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    env = worker_env(settings)
    env["SQUALL_DATA_DIR"] = str(tmp_path / "fresh")
    env.pop("SQUALL_DATABASE_URL")  # a fresh install: the embedded SQLite
    proc = subprocess.Popen(
        [PYTHON, "-m", "squall", "serve", "--port", str(port), "--workers", "0"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        output = read_until(proc, "Stop it with Ctrl-C")
    finally:
        stop(proc)
    base = f"http://127.0.0.1:{port}"
    key = next(word for word in output.split() if word.startswith("sk_"))
    secret = next(word for word in output.split() if word.startswith("whsec_"))
    assert f"Squall is listening on 127.0.0.1:{port}\n" in output
    assert f"Dashboard: {base}/  (sign in with an API key)" in output
    assert f"API docs:  {base}/docs  and  {base}/redoc" in output
    assert f"Webhooks to this key are signed with {secret}" in output
    assert "only its hash\nis stored, so it cannot be shown again" in output
    assert f"curl -s -X POST {base}/jobs -H 'x-api-key: {key}'" in output
    assert (
        '"url": "https://download.blender.org/peach/bigbuckbunny_movies/BigBuckBunny_320x180.mp4"' in output
    )
    assert "example.com" not in output
    assert output.index(key) < output.index("Squall is listening")  # the key first, then where to go
    assert os.path.exists(tmp_path / "fresh" / "squall.db")
