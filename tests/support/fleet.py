"""Real Squall processes on this machine for fault tests: ``squall worker`` and API-only
``squall serve --workers 0`` processes, started (optionally under a command prefix such as
``faketime -f +10m``), SIGKILLed and restarted by the test; and a client that submits jobs
the way a real one does (retrying refused connections and 503s, with an Idempotency-Key on
some requests). Every wait is bounded."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from squall.db import Database
from squall.intake.models import IdempotentRequest
from squall.jobs.models import Job
from squall.metering import ledger
from squall.metering.models import UsageEvent
from squall.settings import Settings
from tests.support.helpers import PYTHON, worker_env

ACTIVE = ("Pending", "Processing")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


@dataclass
class Member:
    """One process of the fleet, restartable with the same command (an API keeps its port)."""

    name: str
    command: list[str]
    env: dict[str, str]
    port: int | None = None
    proc: subprocess.Popen[bytes] | None = None
    kills: int = 0
    log: Path | None = None  # its output, appended across restarts (for a failing test's reader)

    def start(self) -> None:
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115 (the child holds it)
        self.proc = subprocess.Popen(self.command, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)  # fmt: skip
        if self.log:
            out.close()  # type: ignore[union-attr]

    def kill(self) -> None:
        """SIGKILL, as the OOM killer or a pulled plug would: nothing runs after it."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)  # its group: a worker's yt-dlp/FFmpeg children too
            self.proc.wait(timeout=10)
            self.kills += 1

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Fleet:
    settings: Settings
    members: list[Member] = field(default_factory=list)

    def log_of(self, name: str) -> Path:
        logs = self.settings.data_dir.parent / "fleet-logs"
        logs.mkdir(parents=True, exist_ok=True)
        return logs / f"{name}.log"

    def env(self, **extra: str) -> dict[str, str]:
        return {**worker_env(self.settings), **extra}

    def worker(self, name: str, *, prefix: Sequence[str] = (), **env: str) -> Member:
        member = Member(
            name,
            [*prefix, PYTHON, "-m", "squall", "worker", f"--exit-with-parent={os.getpid()}"],
            self.env(**env),
            log=self.log_of(name),
        )
        member.start()
        self.members.append(member)
        return member

    def api(self, name: str, **env: str) -> Member:
        port = free_port()
        command = [PYTHON, "-m", "squall", "serve", "--port", str(port), "--workers", "0"]
        member = Member(name, command, self.env(SQUALL_PUBLIC_URL=f"http://127.0.0.1:{port}", **env), port,
                        log=self.log_of(name))  # fmt: skip
        member.start()
        self.members.append(member)
        return member

    def wait_ready(self, member: Member, timeout: float = 60) -> None:
        def up() -> bool:
            try:
                return httpx.get(f"{member.url}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, timeout, f"{member.name} to answer")

    def all_running(self) -> bool:
        return all(m.proc is not None and m.proc.poll() is None for m in self.members)

    def close(self) -> None:
        for member in self.members:
            member.stop()


@dataclass
class Submitted:
    idempotency_key: str | None
    job_id: str | None = None
    attempts: int = 0
    lost_attempts: int = 0  # sent but unanswered (connection reset or timeout): may have been admitted


@dataclass
class RetryingClient:
    """Submits one job at a time to any of the API processes, as a real client would: a
    connection refused or reset, a timeout or a 503 is retried (up to ``patience`` seconds)
    with the same body and, if it had one, the same Idempotency-Key."""

    api_key: str
    urls: Callable[[], list[str]]
    patience: float = 40
    statuses: dict[int, int] = field(default_factory=dict)
    submitted: list[Submitted] = field(default_factory=list)

    def submit(self, body: dict[str, Any], *, idempotent: bool) -> Submitted:
        item = Submitted(uuid.uuid4().hex if idempotent else None)
        self.submitted.append(item)
        headers = {"x-api-key": self.api_key}
        if item.idempotency_key:
            headers["Idempotency-Key"] = item.idempotency_key
        deadline = time.monotonic() + self.patience
        while time.monotonic() < deadline:
            url = self.urls()[item.attempts % len(self.urls())]
            item.attempts += 1
            try:
                response = httpx.post(f"{url}/jobs", json=body, headers=headers, timeout=10)
            except httpx.ConnectError:  # nothing was sent: the process is down
                time.sleep(0.3)
                continue
            except httpx.HTTPError:  # sent, then the connection died: it may have been admitted
                item.lost_attempts += 1
                time.sleep(0.3)
                continue
            self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
            if response.status_code == 200:
                item.job_id = str(response.json()["job_id"])
                return item
            if response.status_code != 503:
                raise AssertionError(f"POST /jobs answered {response.status_code}: {response.text}")
            time.sleep(float(response.headers.get("retry-after", "1")))
        raise AssertionError(f"not admitted within {self.patience:g} s ({item.attempts} attempts)")


@dataclass
class Books:
    """What the database says about every job: states, ledger rows per job, the
    Idempotency-Key answers."""

    statuses: dict[str, str]
    attempts: dict[str, int]
    created: dict[str, int]  # jobs.created rows per job
    completed: dict[str, int]
    uploaded: dict[str, int]
    answers: dict[str, str]  # Idempotency-Key -> the job id it answered with

    @classmethod
    def read(cls, db: Database) -> Books:
        with db.read() as session:
            jobs = session.execute(select(Job.id, Job.status, Job.attempt)).all()

            def rows_per_job(metric: str) -> dict[str, int]:
                found = session.execute(
                    select(UsageEvent.job_id, func.count())
                    .where(UsageEvent.metric == metric)
                    .group_by(UsageEvent.job_id)
                ).all()
                return {str(job_id): int(n) for job_id, n in found}

            answers = {
                row.idempotency_key: str(row.response["job_id"])
                for row in session.execute(select(IdempotentRequest)).scalars()
            }
            return cls(
                statuses={j.id: j.status for j in jobs},
                attempts={j.id: j.attempt for j in jobs},
                created=rows_per_job(ledger.JOBS_CREATED),
                completed=rows_per_job(ledger.JOBS_COMPLETED),
                uploaded=rows_per_job(ledger.BYTES_UPLOADED),
                answers=answers,
            )

    def active(self) -> int:
        return sum(1 for s in self.statuses.values() if s in ACTIVE)

    def billed_once(self) -> list[str]:
        """Jobs whose ledger rows are not exactly one creation and, if completed, one
        completion and one upload (none otherwise): empty when nothing was billed twice."""
        wrong = []
        for job_id, status in self.statuses.items():
            done = 1 if status == "Completed" else 0
            rows = (self.created.get(job_id, 0), self.completed.get(job_id, 0), self.uploaded.get(job_id, 0))
            if rows != (1, done, done):
                wrong.append(f"{job_id} {status}: created/completed/uploaded rows {rows}")
        return wrong


def squall_json(settings: Settings, *args: str) -> dict[str, Any]:
    """A ``squall`` command's ``--json`` report (``usage verify``, ``storage reconcile``)."""
    done = subprocess.run([PYTHON, "-m", "squall", *args, "--json"], env=worker_env(settings),
                          capture_output=True, timeout=120, check=False)  # fmt: skip
    report: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return report
