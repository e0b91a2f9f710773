"""Real worker processes (`python -m squall worker`) sharing the test database."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from squall.audit.usage import verify
from squall.db import Database
from squall.jobs.models import Job
from squall.metering.counters import get_counters
from squall.metering.models import UsageEvent
from squall.settings import Settings
from squall.storage.memory import MemoryStorage
from squall.webhooks.models import WebhookDelivery
from squall.webhooks.outbox import latest_for_job
from squall.worker import Worker
from tests.support.helpers import PYTHON, KeyFactory, drain, worker_env
from tests.support.receiver import WebhookReceiver
from tests.support.server import MediaServer
from tests.tenancy.test_alerts import stand_in_completes

pytestmark = pytest.mark.slow


@contextmanager
def workers(settings: Settings, count: int, **env: str) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs = [
        subprocess.Popen(
            [PYTHON, "-m", "squall", "worker"], env={**worker_env(settings), **env}, stderr=subprocess.DEVNULL
        )
        for _ in range(count)
    ]
    try:
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def wait_until(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def count(db: Database, *where: object) -> int:
    with db.read() as session:
        return int(session.execute(select(func.count()).select_from(Job).where(*where)).scalar_one())  # type: ignore[arg-type]


def submit_slow_job(client: TestClient, secret: str, media: MediaServer, kbps: int = 20) -> str:
    """A job whose download is slow: ~3 s at the default 20 KB/s (the file is ~58 KB)."""
    url = media.url(f"slow/tiny.mp4?kbps={kbps}")
    response = client.post("/jobs", headers={"x-api-key": secret}, json={"url": url})
    return str(response.json()["job_id"])


def downloading(db: Database, job_id: str) -> bool:
    return count(db, Job.id == job_id, Job.step == "Downloading") == 1


def test_several_workers_drain_the_queue_each_job_completed_once(
    client: TestClient, make_key: KeyFactory, db: Database, settings: Settings, media: MediaServer
) -> None:
    jobs = 90  # 30 a worker: enough interleaving to double a claim, bounded for CI
    secret, key_id = make_key("Bulk")
    for i in range(jobs):
        response = client.post(
            "/jobs",
            headers={"x-api-key": secret},
            json={"url": media.url("media/tiny.mp4"), "filename": f"f{i}"},
        )
        assert response.status_code == 200
    with workers(settings, 3):
        wait_until(lambda: count(db, Job.status == "Completed") == jobs, 240, "the queue to drain")
    with db.read() as session:
        per_job = session.execute(
            select(UsageEvent.job_id, func.count())
            .where(UsageEvent.metric == "jobs.completed")
            .group_by(UsageEvent.job_id)
        ).all()
        assert len(per_job) == jobs and all(n == 1 for _, n in per_job)
        owners = session.execute(select(func.count(func.distinct(Job.output_key)))).scalar_one()
        assert owners == jobs  # every job stored its own file
        c = get_counters(session, key_id)
        sizes = session.execute(select(func.sum(Job.file_size))).scalar_one()
        assert (c.jobs_completed, c.jobs_pending, c.jobs_processing, c.reserved_bytes) == (jobs, 0, 0, 0)
        assert c.used_bytes == sizes
        assert not verify(session).drift
    assert len(list(settings.storage_dir.glob("*.mp4"))) == jobs


def test_a_worker_killed_mid_job_loses_nothing(
    client: TestClient, make_key: KeyFactory, db: Database, settings: Settings, media: MediaServer
) -> None:
    secret, key_id = make_key("Crash")
    job_id = submit_slow_job(client, secret, media)
    with workers(settings, 1) as (first,):
        wait_until(lambda: downloading(db, job_id), 30, "the download to start")
        time.sleep(0.5)
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    with db.read() as session:
        job = session.get(Job, job_id)
        assert (
            job is not None and job.status == "Processing" and job.attempt == 1
        )  # orphaned, lease still held
        assert get_counters(session, key_id).reserved_bytes == settings.default_reservation_bytes

    with workers(settings, 1):  # a new worker reaps the expired lease and runs the job again
        wait_until(
            lambda: count(db, Job.id == job_id, Job.status == "Completed") == 1, 60, "the job to complete"
        )
    with db.read() as session:
        job = session.get(Job, job_id)
        assert job is not None and job.attempt == 2 and job.file_size
        c = get_counters(session, key_id)
        assert (c.reserved_bytes, c.used_bytes, c.jobs_completed, c.jobs_processing) == (
            0,
            job.file_size,
            1,
            0,
        )
        assert not verify(session).drift
    leftovers = [p for p in settings.work_dir.iterdir()] if settings.work_dir.exists() else []
    assert all(not p.name.endswith("-2") for p in leftovers)  # the second run cleaned up after itself


def test_a_worker_killed_while_delivering_a_webhook_still_delivers_it_once(
    client: TestClient, api_key: str, db: Database, settings: Settings, media: MediaServer,
    receiver: WebhookReceiver,
) -> None:  # fmt: skip
    hook = receiver.script("k", "hang", 200)  # the first attempt never gets an answer
    body = {"url": media.url("media/tiny.mp4"), "webhook_url": hook}
    job_id = client.post("/jobs", headers={"x-api-key": api_key}, json=body).json()["job_id"]
    fast = {"SQUALL_WEBHOOK_TIMEOUT_SECONDS": "1"}  # a claim on a delivery then lasts 7 s
    with workers(settings, 1, **fast) as (first,):
        receiver.wait_for(1, "k")  # the job is completed and its event is on the wire
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    assert count(db, Job.id == job_id, Job.status == "Completed") == 1
    with workers(settings, 1, **fast):
        wait_until(lambda: len(receiver.to("k")) == 2, 60, "the webhook to be delivered again")
        wait_until(lambda: delivery_status(db, job_id) == "delivered", 10, "the delivery to be recorded")
    attempts = receiver.to("k")
    assert [r.answered for r in attempts] == [None, 200]  # one accepted delivery
    assert attempts[0].headers["webhook-id"] == attempts[1].headers["webhook-id"]
    assert attempts[0].body == attempts[1].body


def delivery_status(db: Database, job_id: str) -> str | None:
    with db.read() as session:
        found = latest_for_job(session, job_id)
        return None if found is None else found.status


def test_a_stopped_worker_hands_its_job_back_at_once(
    client: TestClient, make_key: KeyFactory, db: Database, settings: Settings, media: MediaServer
) -> None:
    secret, key_id = make_key("Deploy")
    job_id = submit_slow_job(client, secret, media)
    with workers(settings, 1) as (first,):
        wait_until(lambda: downloading(db, job_id), 30, "the download to start")
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=10) == 0
    with db.read() as session:
        job = session.get(Job, job_id)
        assert job is not None and (job.status, job.step, job.lease_owner) == ("Pending", "Queued", None)
        c = get_counters(session, key_id)
        # The job keeps its reservation for the next attempt: the default, or the source's size
        # if the download had already told it (a reservation shrinks to the known size).
        assert (c.jobs_pending, c.jobs_processing, c.reserved_bytes) == (1, 0, job.reserved_bytes)
        assert 0 < job.reserved_bytes <= settings.default_reservation_bytes
        assert not verify(session).drift


def test_cancelling_a_running_job_stops_it_and_releases_its_reservation(
    client: TestClient, make_key: KeyFactory, db: Database, settings: Settings, media: MediaServer
) -> None:
    secret, key_id = make_key("Impatient")
    job_id = submit_slow_job(client, secret, media, kbps=2)  # ~30 s: it can only end by being stopped
    settings.heartbeat_seconds, settings.lease_seconds = (
        30,
        90,
    )  # not the heartbeat: progress and cancel checks
    with workers(settings, 1) as (worker,):
        wait_until(lambda: downloading(db, job_id), 30, "the download to start")
        response = client.delete(f"/jobs/{job_id}", headers={"x-api-key": secret})
        assert response.status_code == 200
        assert response.json() == {"message": "Job cancelled successfully", "job_id": job_id}
        with db.read() as session:  # released at once, not when the worker notices
            c = get_counters(session, key_id)
            assert (c.reserved_bytes, c.jobs_processing, c.jobs_failed, c.used_bytes) == (0, 0, 1, 0)
        work = settings.work_dir / f"{job_id}-1"
        wait_until(lambda: not work.exists(), 10, "the worker to stop the download and remove its files")
        assert worker.poll() is None  # the worker itself carries on
    job = client.get(f"/jobs/{job_id}", headers={"x-api-key": secret}).json()
    assert (job["status"], job["error"], job["s3_key"]) == ("Failed", "Job cancelled by user", None)
    stored = list(settings.storage_dir.glob("*")) if settings.storage_dir.exists() else []
    assert stored == []
    with db.read() as session:
        assert not verify(session).drift


def test_a_worker_whose_serve_is_already_gone_stops_by_itself(settings: Settings, db: Database) -> None:
    """serve tells its workers its pid: a worker that starts after serve died (its parent is
    init by then) stops at once instead of running on unattended."""
    gone = subprocess.Popen([PYTHON, "-c", "pass"])
    gone.wait()  # a pid that no longer runs, standing for a serve that died during start-up
    worker = subprocess.Popen(
        [PYTHON, "-m", "squall", "worker", f"--exit-with-parent={gone.pid}"],
        env=worker_env(settings), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        output, _ = worker.communicate(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 0
    assert b"parent process is gone" in output


def test_a_worker_killed_mid_job_sends_its_usage_alert_once(
    client: TestClient, make_key: KeyFactory, db: Database, settings: Settings, media: MediaServer
) -> None:
    """The job whose end resolves a failure-rate alert is killed mid-download (SIGKILL); the
    retried run ends it, and the alert is in the outbox once (issue 15)."""
    secret, key_id = make_key("Alerts")
    hook = {"url": "http://127.0.0.1:9/v.mp4", "webhook_url": "http://127.0.0.1:9/hook"}
    for _ in range(2):  # two failures (cancelled) ...
        job = client.post("/jobs", headers={"x-api-key": secret}, json=hook).json()["job_id"]
        client.delete(f"/jobs/{job}", headers={"x-api-key": secret})
    for _ in range(37):  # ... of 39 ended: over 5 %, the alert is raised
        client.post("/jobs", headers={"x-api-key": secret}, json=hook)
    stand_in = Worker(settings, db=db, storage=MemoryStorage(), pipeline=stand_in_completes)
    assert drain(stand_in, limit=37) == 37

    def alerts() -> list[str]:
        with db.read() as session:
            events = session.execute(
                select(WebhookDelivery.event).where(WebhookDelivery.key_id == key_id)
            ).scalars()
            return [e for e in events if e.startswith("usage.")]

    assert alerts() == ["usage.failure_rate"]
    url = media.url("slow/tiny.mp4?kbps=20")
    job_id = client.post("/jobs", headers={"x-api-key": secret}, json={**hook, "url": url}).json()["job_id"]
    with workers(settings, 1) as (first,):
        wait_until(lambda: downloading(db, job_id), 30, "the download to start")
        time.sleep(0.5)
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    assert alerts() == ["usage.failure_rate"]  # nothing ended, nothing sent
    with workers(settings, 1):  # reaps the lease, runs the job again: 2 of 40 is 5 %, resolved
        wait_until(
            lambda: count(db, Job.id == job_id, Job.status == "Completed") == 1, 60, "the job to complete"
        )
    assert sorted(alerts()) == ["usage.failure_rate", "usage.failure_rate.resolved"]
