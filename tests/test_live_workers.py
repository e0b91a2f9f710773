"""A real worker process (`python -m squall worker`) killed while it records a live stream."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from squall.audit.usage import verify
from squall.db import Database
from squall.jobs.models import Job
from squall.metering.counters import get_counters
from squall.settings import Settings
from tests.support.helpers import KeyFactory
from tests.support.live_stream import LiveStream
from tests.support.server import MediaServer
from tests.test_workers import count, wait_until, workers

pytestmark = pytest.mark.slow


@pytest.fixture
def stream(tmp_path: Path) -> Iterator[tuple[MediaServer, LiveStream]]:
    with MediaServer(tmp_path / "live") as server, LiveStream(tmp_path / "live" / "on-air", window=4) as live:
        live.wait_for_segments(2)
        yield server, live


def recording(db: Database, job_id: str) -> bool:
    return count(db, Job.id == job_id, Job.step == "Recording") == 1


def test_a_worker_killed_mid_recording_leaves_consistent_books(
    client: TestClient, make_key: KeyFactory, db: Database, settings: Settings,
    stream: tuple[MediaServer, LiveStream],
) -> None:  # fmt: skip
    server, _ = stream
    secret, key_id = make_key("Live", key_type="trial", storage_limit_bytes=50 * 1024**2)
    response = client.post("/jobs", headers={"x-api-key": secret},
                           json={"url": server.url("media/on-air/index.m3u8"), "max_duration": 2})  # fmt: skip
    job_id = str(response.json()["job_id"])
    with workers(settings, 1) as (first,):
        wait_until(lambda: recording(db, job_id), 30, "the recording to start")
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    with db.read() as session:
        assert not verify(session).drift  # nothing was committed half-way
        assert get_counters(session, key_id).jobs_processing == 1  # orphaned, its reservation held
    with workers(settings, 1):  # reaps the lease and records again, from the live point
        wait_until(lambda: count(db, Job.id == job_id, Job.status == "Completed") == 1, 60, "the retry")
    with db.read() as session:
        job = session.get(Job, job_id)
        assert job is not None and job.attempt == 2 and job.file_size
        assert job.details and job.details["recording_stopped_by"] == "max_duration"
        c = get_counters(session, key_id)
        assert (c.reserved_bytes, c.used_bytes, c.jobs_processing, c.jobs_completed) == (
            0,
            job.stored_bytes,
            0,
            1,
        )
        assert not verify(session).drift
