"""The worker's job logic with a stand-in pipeline (no downloader, no FFmpeg) and in-memory
storage: what a run's outcome does to the job, its reservation and its usage. The real
pipeline's end-to-end tests are in tests/pipeline and tests/test_workers.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from squall.audit.usage import verify
from squall.clock import ManualClock
from squall.db import Database
from squall.errors import JobFailure
from squall.metering.counters import get_counters
from squall.pipeline.run import store
from squall.pipeline.spec import JobSpec, PipelineEvents, PipelineResult
from squall.settings import Settings
from squall.storage.base import Storage
from squall.storage.memory import MemoryStorage
from squall.worker import Pipeline, Worker
from tests.support.helpers import KeyFactory, drain

MB = 1024 * 1024
T0 = 1_900_000_000_000


def stand_in(size: int = 1000, *, fail: JobFailure | None = None) -> Pipeline:
    """A pipeline that goes through the steps, asks for ``size`` bytes and stores them with the
    pipeline's own store step (so storage errors are classified as in production)."""

    def run(spec: JobSpec, workdir: Path, storage: Storage, events: PipelineEvents) -> PipelineResult:
        events.step("Downloading")
        if fail is not None:
            raise fail
        events.step("Muxing")
        if not events.need_bytes(size):
            raise JobFailure("Storage quota exceeded: this job does not fit in the key's remaining storage")
        output = workdir / "out.mp4"
        output.write_bytes(b"x" * size)
        events.step("Uploading")
        key = store(storage, output, f"{spec.filename or 'video'}.mp4", spec.job_id)  # the real store step
        return PipelineResult(output_key=key, file_size=size, downloaded_bytes=size, duration_seconds=2.0,
                              width=1280, height=720, title="stand-in")  # fmt: skip

    return run


@pytest.fixture
def memory() -> MemoryStorage:
    return MemoryStorage()


def make_worker(settings: Settings, db: Database, memory: MemoryStorage, pipeline: Pipeline) -> Worker:
    return Worker(settings, db=db, storage=memory, clock=ManualClock(T0), pipeline=pipeline)


def submit(client: TestClient, key: str, **fields: object) -> str:
    response = client.post(
        "/jobs", headers={"x-api-key": key}, json={"url": "http://127.0.0.1:9/v.mp4", **fields}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["job_id"])


def job(client: TestClient, key: str, job_id: str) -> dict[str, object]:
    return dict(client.get(f"/jobs/{job_id}", headers={"x-api-key": key}).json())


def test_a_completed_run_stores_counts_and_releases_the_reservation(
    client: TestClient, make_key: KeyFactory, db: Database, settings: Settings, memory: MemoryStorage
) -> None:
    """The stand-in's 1000 bytes end up in storage, in used bytes and in the ledger; the
    reservation is released; the books verify; completion is stamped with the worker's clock."""
    key, key_id = make_key()
    job_id = submit(client, key, filename="one")
    assert drain(make_worker(settings, db, memory, stand_in(1000))) == 1
    body = job(client, key, job_id)
    assert (body["status"], body["file_size"], body["finished_at"]) == ("Completed", 1000, T0)
    assert memory.objects == {"one.mp4": b"x" * 1000}
    with db.read() as session:
        c = get_counters(session, key_id)
        assert (c.used_bytes, c.reserved_bytes, c.stored_objects, c.jobs_completed) == (1000, 0, 1, 1)
        assert verify(session).drift == []


def test_a_retryable_failure_is_retried_until_its_attempts_are_used(
    client: TestClient, make_key: KeyFactory, db: Database, settings: Settings, memory: MemoryStorage
) -> None:
    """A retryable failure requeues the job (reservation kept); after max_attempts it fails
    for good and the reservation is released."""
    key, key_id = make_key()
    job_id = submit(client, key)
    worker = make_worker(settings, db, memory, stand_in(fail=JobFailure("The source failed", retryable=True)))
    assert drain(worker) == settings.max_attempts
    body = job(client, key, job_id)
    assert (body["status"], body["error"], body["attempt"]) == (
        "Failed",
        "The source failed",
        settings.max_attempts,
    )
    with db.read() as session:
        c = get_counters(session, key_id)
        assert (c.reserved_bytes, c.jobs_failed, c.jobs_pending) == (0, 1, 0)
        assert verify(session).drift == []


def test_a_run_that_outgrows_the_quota_fails_and_bills_nothing(
    client: TestClient, make_key: KeyFactory, db: Database, settings: Settings, memory: MemoryStorage
) -> None:
    """need_bytes beyond the key's limit: the job fails with the quota error, nothing is stored
    or counted as used, and the invariant used + reserved <= limit held."""
    key, key_id = make_key(storage_limit_bytes=2 * MB)
    job_id = submit(client, key)
    drain(make_worker(settings, db, memory, stand_in(3 * MB)))
    body = job(client, key, job_id)
    assert body["status"] == "Failed" and "Storage quota exceeded" in str(body["error"])
    assert memory.objects == {}
    with db.read() as session:
        c = get_counters(session, key_id)
        assert (c.used_bytes, c.reserved_bytes) == (0, 0)


def test_a_storage_outage_is_retried(
    client: TestClient, make_key: KeyFactory, db: Database, settings: Settings, memory: MemoryStorage
) -> None:
    """The in-memory backend fails its next call: the upload's StorageError is retryable, and
    the next attempt stores the file."""
    key, _ = make_key()
    job_id = submit(client, key, filename="two")
    memory.fail_next = "the bucket is down"
    assert drain(make_worker(settings, db, memory, stand_in(500))) == 2
    body = job(client, key, job_id)
    assert (body["status"], body["attempt"]) == ("Completed", 2)
    assert memory.objects == {"two.mp4": b"x" * 500}


def test_the_pipeline_is_asked_with_the_keys_and_the_requests_limits(
    client: TestClient, make_key: KeyFactory, db: Database, settings: Settings, memory: MemoryStorage
) -> None:
    """The one mapping from options to spec: the lower of the key's and the request's
    resolution caps, the key's duration limit, the container for audio only."""
    key, _ = make_key(max_resolution=720, max_duration_seconds=60)
    submit(client, key, max_resolution="1080", audio_only=True)
    seen: list[JobSpec] = []
    inner = stand_in()

    def spy(spec: JobSpec, workdir: Path, storage: Storage, events: PipelineEvents) -> PipelineResult:
        seen.append(spec)
        return inner(spec, workdir, storage, events)

    drain(make_worker(settings, db, memory, spy))
    (spec,) = seen
    assert (spec.max_resolution, spec.max_duration_seconds, spec.container, spec.audio_only) == (
        720,
        60,
        "m4a",
        True,
    )
