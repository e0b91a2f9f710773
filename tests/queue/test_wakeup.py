"""An idle worker claims a submitted job at once, woken by the submission (PostgreSQL
LISTEN/NOTIFY; on SQLite a datagram among the machine's processes), not by its poll: the
poll here is 60 s, far past the test's wait. Prints the queue wait (claim minus submission)."""

from __future__ import annotations

import statistics
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from squall.db import Database
from squall.db.wakeup import Wakeup
from squall.errors import JobFailure
from squall.jobs.models import Job
from squall.pipeline.spec import JobSpec, PipelineEvents, PipelineResult
from squall.settings import Settings
from squall.storage.base import Storage
from squall.storage.memory import MemoryStorage
from squall.worker import Worker
from tests.support.helpers import KeyFactory

JOBS = 5


@pytest.fixture
def idle_worker(settings: Settings, db: Database) -> Iterator[tuple[Worker, list[str]]]:
    claimed: list[str] = []
    arrived = threading.Semaphore(0)

    def pipeline(spec: JobSpec, workdir: Path, storage: Storage, events: PipelineEvents) -> PipelineResult:
        claimed.append(spec.job_id)
        arrived.release()
        raise JobFailure("stand-in pipeline: the claim is what is measured")  # not retried

    patient = settings.model_copy(update={"poll_seconds": 60.0, "webhook_concurrency": 0})
    worker = Worker(patient, db=db, storage=MemoryStorage(), pipeline=pipeline)
    worker.reap_if_due = lambda: None  # type: ignore[method-assign]  # no housekeeping between jobs
    thread = threading.Thread(target=worker.run, args=(1,), daemon=True)
    thread.start()
    assert worker.wakeup.listening.wait(30), "the wake-up listener did not start"
    worker.arrived = arrived  # type: ignore[attr-defined]
    yield worker, claimed
    worker.stop()
    thread.join(timeout=30)


def test_an_idle_worker_is_woken_by_a_submission(
    client: TestClient, make_key: KeyFactory, db: Database, idle_worker: tuple[Worker, list[str]]
) -> None:
    worker, claimed = idle_worker
    key, _ = make_key("wake")
    submitted = []
    for _ in range(JOBS):
        answer = client.post("/jobs", headers={"x-api-key": key}, json={"url": "http://127.0.0.1:9/v.mp4"})
        submitted.append(answer.json()["job_id"])
        assert worker.arrived.acquire(timeout=20), "not claimed: the wake-up did not arrive"  # type: ignore[attr-defined]
    assert claimed == submitted
    with db.read() as session:
        waits = [job.started_at - job.created_at for job in (session.get(Job, i) for i in submitted) if job]
    print(f"queue wait on an idle worker: p50={statistics.median(waits)} ms max={max(waits)} ms")


def test_a_wake_up_that_comes_before_the_wait_is_not_lost(tmp_path: Path) -> None:
    """A job committed between a worker's empty claim and its wait: the wake-up arrives while
    nobody waits, and the next wait must return at once, not after the poll."""
    wakeup = Wakeup(f"sqlite:///{tmp_path / 'squall.db'}")  # not started: wake_all is called by hand
    wakeup.wake_all()
    waiting = threading.Thread(target=wakeup.wait, args=(600.0,), daemon=True)
    waiting.start()
    waiting.join(timeout=30)
    assert not waiting.is_alive(), "the wake-up was lost: the wait runs to the poll"
