"""The `squall` command line, run as a real subprocess against the test database."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import text

from squall.db import Database
from squall.settings import Settings
from squall.worker import Worker
from tests.support.helpers import PYTHON, drain, worker_env
from tests.support.server import MediaServer


def squall(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "squall", *args], env=worker_env(settings), capture_output=True, text=True, timeout=60
    )


def test_keys_create_list_revoke(settings: Settings, db: Database, client: TestClient) -> None:
    created = squall(settings, "keys", "create", "--name", "Acme", "--type", "trial", "--storage-limit-gb", "2",
                     "--max-resolution", "720", "--max-duration-seconds", "600", "--max-filesize-mb", "50",
                     "--retention-days", "30", "--json")  # fmt: skip
    assert created.returncode == 0, created.stderr
    new = json.loads(created.stdout)
    assert set(new) == {"api_key", "client_name", "id", "webhook_secret"} and new["client_name"] == "Acme"
    assert new["webhook_secret"].startswith("whsec_")
    usage = client.get("/usage", headers={"x-api-key": new["api_key"]}).json()
    assert usage["storage_limit_bytes"] == 2 * 1024**3 and usage["max_resolution_limit"] == "720"
    assert usage["max_filesize_limit_mb"] == 50.0 and usage["max_duration_limit_seconds"] == 600

    listed = json.loads(squall(settings, "keys", "list", "--json").stdout)
    assert [(k["id"], k["type"], k["revoked"], k["retention_days"]) for k in listed] == [
        (new["id"], "trial", False, 30)
    ]
    assert new["api_key"] not in json.dumps(listed)

    rotated = json.loads(squall(settings, "keys", "rotate-webhook-secret", new["id"], "--json").stdout)
    assert rotated["id"] == new["id"] and rotated["webhook_secret"].startswith("whsec_")
    assert rotated["webhook_secret"] != new["webhook_secret"]

    assert squall(settings, "keys", "revoke", new["id"]).returncode == 0
    assert client.get("/usage", headers={"x-api-key": new["api_key"]}).status_code == 401
    again = squall(settings, "keys", "revoke", new["id"])
    assert again.returncode == 2 and "No active key" in again.stderr
    gone = squall(settings, "keys", "rotate-webhook-secret", new["id"])
    assert gone.returncode == 2 and "No active key" in gone.stderr


def test_keys_create_refuses_contradictions(settings: Settings, db: Database) -> None:
    result = squall(settings, "keys", "create", "--name", "X", "--type", "trial")
    assert result.returncode == 2 and "needs a storage limit" in result.stderr
    result = squall(settings, "keys", "create", "--name", "X", "--max-resolution", "999")
    assert result.returncode == 2 and "Max resolution must be one of" in result.stderr
    result = squall(settings, "keys", "create", "--name", "X", "--max-duration-seconds", "0")
    assert result.returncode == 2 and "Max duration must be greater than zero" in result.stderr


def test_usage_verify_finds_drift(
    settings: Settings, db: Database, client: TestClient, worker: Worker, media: MediaServer
) -> None:
    key = json.loads(squall(settings, "keys", "create", "--name", "V", "--json").stdout)
    for _ in range(2):
        client.post("/jobs", headers={"x-api-key": key["api_key"]}, json={"url": media.url("media/tiny.mp4")})
    drain(worker)
    clean = squall(settings, "usage", "verify", "--json")
    assert clean.returncode == 0, clean.stdout
    assert json.loads(clean.stdout)["ok"] is True

    with db.write() as session:
        session.execute(text("UPDATE key_counters SET used_bytes = used_bytes + 1"))
        session.execute(
            text("UPDATE daily_rollups SET quantity = quantity + 5 WHERE metric = 'jobs.created'")
        )
    drifted = squall(settings, "usage", "verify", "--json")
    assert drifted.returncode == 1
    report = json.loads(drifted.stdout)
    whats = {d["what"] for d in report["drift"]}
    assert "counter used_bytes" in whats
    assert any(w.startswith("rollup ") and w.endswith("jobs.created") for w in whats)
    text_report = squall(settings, "usage", "verify")
    assert text_report.returncode == 1 and "differences" in text_report.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_migrates_prints_a_first_key_and_answers(tmp_path: object, settings: Settings) -> None:
    port = free_port()
    env = worker_env(settings)
    env["SQUALL_DATA_DIR"] = str(settings.data_dir / "fresh")
    env.pop("SQUALL_DATABASE_URL")  # the embedded default: SQLite in the data directory
    env["SQUALL_METRICS_ALLOW"] = "127.0.0.1/32"  # a scraper on this machine, no operator token
    proc = subprocess.Popen(
        [PYTHON, "-m", "squall", "serve", "--port", str(port), "--workers", "1"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if line.startswith("Stop it with Ctrl-C"):
                break
        output = "".join(lines)
        key = next(word for word in output.split() if word.startswith("sk_"))
        assert f"curl -s -X POST http://127.0.0.1:{port}/jobs -H 'x-api-key: {key}'" in output
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"{base}/healthz")
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert health.json()["status"] == "ok"
        assert httpx.get(f"{base}/usage", headers={"x-api-key": key}).json()["client_name"] == "default"
        assert "swagger" in httpx.get(f"{base}/docs").text.lower()
        assert "/jobs" in httpx.get(f"{base}/openapi.json").json()["paths"]
        assert "squall_jobs" in httpx.get(f"{base}/metrics").text
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert (settings.data_dir / "fresh" / "squall.db").exists()
    deadline = time.monotonic() + 15
    while workers_using(env["SQUALL_DATA_DIR"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert workers_using(env["SQUALL_DATA_DIR"]) == []  # serve stopped its embedded workers


def workers_using(data_dir: str) -> list[int]:
    """Pids of `squall worker` processes whose SQUALL_DATA_DIR is ``data_dir`` (Linux /proc)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes()
            environ = (proc / "environ").read_bytes()
        except (OSError, ValueError):
            continue
        if b"squall\x00worker" in cmdline and f"SQUALL_DATA_DIR={data_dir}".encode() in environ.split(
            b"\x00"
        ):
            found.append(int(proc.name))
    return found


def help_of(*args: str) -> str:
    env = {**os.environ, "COLUMNS": "200"}  # wide enough that no help line wraps
    result = subprocess.run([PYTHON, *args, "--help"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_help_reads_like_a_well_kept_cli() -> None:
    top = help_of("-m", "squall")
    assert "Usage: squall [OPTIONS] COMMAND" in top and "python -m" not in top
    assert "--install-completion" not in top and "--show-completion" not in top
    assert "Run `squall COMMAND --help`" in top
    serve = help_of("-m", "squall", "serve")
    assert "Usage: squall serve [OPTIONS]" in serve and "[default: 8000]" in serve
    assert "--port" in serve and "INTEGER" in serve and "squall serve --port 9000 --workers 4" in serve
    create = help_of("-m", "squall", "keys", "create")
    assert "[default: (unlimited, or trial with --storage-limit-gb)]" in create
    assert 'squall keys create --name "Trial user" --storage-limit-gb 1' in create
    for shown in (top, serve, create):
        assert "<bool>" not in shown and "<str>" not in shown and "<int>" not in shown


def test_run_py_help_names_its_own_commands_and_squalls() -> None:
    shown = help_of(str(Path(__file__).resolve().parents[1] / "run.py"))
    assert "python3 run.py serve" in shown and "python3 run.py test" in shown
    assert "python3 run.py develop" in shown and "Usage: squall [OPTIONS] COMMAND" in shown


def test_keys_list_has_a_header_row(settings: Settings, db: Database) -> None:
    assert squall(settings, "keys", "list").stdout.startswith("no keys yet")
    created = json.loads(squall(settings, "keys", "create", "--name", "Acme Corp", "--json").stdout)
    listed = squall(settings, "keys", "list").stdout.splitlines()
    assert listed[0].split() == ["ID", "PREFIX", "TYPE", "STATE", "CLIENT"]
    assert listed[1].split() == [
        created["id"],
        created["api_key"][:10] + "…",
        "unlimited",
        "active",
        "Acme",
        "Corp",
    ]
    assert listed[0].index("CLIENT") == listed[1].index("Acme Corp")  # columns line up
