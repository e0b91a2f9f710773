"""A database outage, on a throwaway PostgreSQL cluster this test stops and starts: the API
answers 503 with ``Retry-After`` and ``{"error": …}`` while it is down (no 500, no hang), and
works again by itself once it is back; a worker whose job finished during the outage keeps the
result and writes it when the database returns (fenced as usual), and the books agree.

Runs in the PostgreSQL pass only (it makes its own cluster either way; one pass is enough)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from squall.app import create_app
from squall.audit.usage import verify
from squall.db import Database
from squall.db.migrate import upgrade
from squall.jobs.models import Job, JobStep
from squall.pipeline.run import store
from squall.pipeline.spec import JobSpec, PipelineEvents, PipelineResult
from squall.settings import Settings
from squall.storage.base import Storage
from squall.storage.memory import MemoryStorage
from squall.subscriptions import wire
from squall.worker import Worker
from tests.support.helpers import TEST_SECRET, KeyFactory, submit_job
from tests.support.pgcluster import ThrowawayPostgres, unavailable_reason

pytestmark = [
    pytest.mark.skipif(
        not os.environ.get("SQUALL_TEST_DATABASE_URL"), reason="runs in the PostgreSQL pass only"
    ),
    pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason())),
]


@pytest.fixture(scope="module")
def cluster() -> Iterator[ThrowawayPostgres]:
    pg = ThrowawayPostgres()
    try:
        admin = create_engine(pg.url(), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("CREATE DATABASE squall"))
        admin.dispose()
        upgrade(pg.url("squall"))
        yield pg
    finally:
        pg.close()


def outage_settings(cluster: ThrowawayPostgres, tmp_path: Path, *, lease_seconds: float) -> Settings:
    return Settings(data_dir=tmp_path, database_url=cluster.url("squall"), secret_key=TEST_SECRET,
                    allow_private_urls=True, default_reservation_mb=1, lease_seconds=lease_seconds,
                    heartbeat_seconds=0.5, poll_seconds=0.05)  # fmt: skip


def stored_output(spec: JobSpec, workdir: Path, storage: Storage, name: str) -> PipelineResult:
    """What a stand-in run ends with: 1,000 bytes stored as ``name``."""
    output = workdir / "out.mp4"
    output.write_bytes(b"x" * 1000)
    key = store(storage, output, name, spec.job_id)
    return PipelineResult(output_key=key, file_size=1000, downloaded_bytes=1000, duration_seconds=1.0,
                          width=640, height=360, title="stand-in")  # fmt: skip


def test_an_outage_is_a_503_then_everything_resumes(cluster: ThrowawayPostgres, tmp_path: Path) -> None:
    settings = outage_settings(cluster, tmp_path, lease_seconds=3)
    db = wire(Database(settings.resolved_database_url))
    storage = MemoryStorage()
    started, release = threading.Event(), threading.Event()

    def slow_pipeline(
        spec: JobSpec, workdir: Path, storage: Storage, events: PipelineEvents
    ) -> PipelineResult:
        started.set()
        assert release.wait(60)  # the database goes down meanwhile
        return stored_output(spec, workdir, storage, "video.mp4")

    worker = Worker(settings, db=db, storage=storage, pipeline=slow_pipeline)
    key, _ = KeyFactory(db)("outage")
    headers = {"x-api-key": key}
    with TestClient(create_app(settings, db=db, storage=storage)) as client:
        job_id = submit_job(client, key)
        running = threading.Thread(target=worker.run_once)
        running.start()
        assert started.wait(30)

        cluster.stop()
        for answer in (client.get("/jobs", headers=headers),
                       client.post("/jobs", headers=headers, json={"url": "http://127.0.0.1:9/w.mp4"})):  # fmt: skip
            assert answer.status_code == 503, answer.text
            assert answer.headers["retry-after"] == "5"
            assert "database is unavailable" in answer.json()["error"]
        release.set()  # the run ends while the database is down: its result must wait
        running.join(timeout=1.5)
        assert running.is_alive()  # still holding the result, retrying

        cluster.start()
        running.join(timeout=60)
        assert not running.is_alive()
        listed = client.get("/jobs", headers=headers)  # the first request after the restart
        assert listed.status_code == 200, listed.text
        assert client.get(f"/jobs/{job_id}", headers=headers).json()["status"] == "Completed"
    with db.read() as session:
        assert session.get(Job, job_id) is not None
        report = verify(session)
    assert not report.drift, report.as_dict()
    db.dispose()


def test_a_recording_progress_write_skips_an_outage_and_the_run_goes_on(
    cluster: ThrowawayPostgres, tmp_path: Path
) -> None:
    """A live recording's progress is written once a second and is worth nothing late: one
    made while the database is down is skipped at once (the recording's pipe is read and
    cancels are seen meanwhile), without failing the run; the next one after the restart is
    written."""
    settings = outage_settings(cluster, tmp_path, lease_seconds=30)
    db = wire(Database(settings.resolved_database_url))
    storage = MemoryStorage()
    started, down, skipped, back, shown, finish = (threading.Event() for _ in range(6))
    seen: list[bool] = []

    def recording_pipeline(
        spec: JobSpec, workdir: Path, storage: Storage, events: PipelineEvents
    ) -> PipelineResult:
        events.step(JobStep.RECORDING)
        started.set()
        assert down.wait(60)
        events.recording(42.0, 4200)  # the database is down: skipped, not waited for
        seen.append(events.cancelled())
        skipped.set()
        assert back.wait(60)
        time.sleep(1.1)  # the next progress report, at the recording's pace of one a second
        events.recording(43.0, 4300)
        seen.append(events.cancelled())
        shown.set()
        assert finish.wait(60)
        return stored_output(spec, workdir, storage, "live.mp4")

    worker = Worker(settings, db=db, storage=storage, pipeline=recording_pipeline)
    key, _ = KeyFactory(db)("outage-live")
    with TestClient(create_app(settings, db=db, storage=storage)) as client:
        job_id = submit_job(client, key, "http://127.0.0.1:9/live")
        running = threading.Thread(target=worker.run_once)
        running.start()
        assert started.wait(30)
        cluster.stop()
        down.set()
        assert skipped.wait(30)  # returned while the database is still down
        cluster.start()
        back.set()
        assert shown.wait(60)
        assert seen == [False, False]  # the run goes on: the lease is still its own
        with db.read() as session:
            job = session.get(Job, job_id)
            assert job is not None and job.step == JobStep.RECORDING
            assert job.details == {"live": True, "recorded_seconds": 43.0, "recorded_bytes": 4300}
        finish.set()
        running.join(timeout=60)
        assert not running.is_alive()
        assert client.get(f"/jobs/{job_id}", headers={"x-api-key": key}).json()["status"] == "Completed"
    db.dispose()
