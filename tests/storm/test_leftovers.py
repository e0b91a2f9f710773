"""What the SIGKILL storm found: a worker killed after its upload but before its outcome was
written left an object no job's books name (``squall storage reconcile``: "in storage, not in
the books"). Each stored object is now noted on the job (fenced) as soon as it is stored, and
whoever ends the job (the next attempt's completion, the reaper giving up, a final failure)
deletes the ones the books do not name. The kill is a stand-in here (an exception no handler
of the worker catches, raised right after the store), the rest is the worker's own code."""

from __future__ import annotations

import contextlib
from pathlib import Path

from fastapi.testclient import TestClient

from squall.audit.storage import reconcile
from squall.clock import ManualClock
from squall.db import Database
from squall.jobs.models import Job
from squall.pipeline.run import store
from squall.pipeline.spec import JobSpec, PipelineEvents, PipelineResult
from squall.settings import Settings
from squall.storage.base import Storage
from squall.storage.memory import MemoryStorage
from squall.worker import Pipeline, Worker
from tests.support.helpers import KeyFactory

T0 = 1_900_000_000_000


class KilledStandIn(BaseException):
    """Stands for SIGKILL: nothing of the worker runs after it (no failure is recorded)."""


def pipeline(*, killed: bool) -> Pipeline:
    def run(spec: JobSpec, workdir: Path, storage: Storage, events: PipelineEvents) -> PipelineResult:
        output = workdir / "out.mp4"
        output.write_bytes(b"x" * 100)
        key = store(storage, output, "clip.mp4", spec.job_id, events)
        if killed:
            raise KilledStandIn
        return PipelineResult(output_key=key, file_size=100, downloaded_bytes=100, duration_seconds=1.0,
                              width=320, height=180, title="stand-in")  # fmt: skip

    return run


def attempt(
    settings: Settings, db: Database, storage: MemoryStorage, clock: ManualClock, *, killed: bool
) -> None:
    worker = Worker(settings, db=db, storage=storage, clock=clock, pipeline=pipeline(killed=killed))
    clock.advance(int(settings.lease_seconds * 1000) + 1)  # the last attempt's lease ran out
    worker.reap()
    with contextlib.suppress(KilledStandIn):
        assert worker.run_once()


def books_match_storage(db: Database, storage: MemoryStorage) -> bool:
    with db.read() as session:
        return not reconcile(session, storage.listing()).drift


def submit(client: TestClient, make_key: KeyFactory) -> str:
    secret, _ = make_key("Leftovers")
    response = client.post("/jobs", headers={"x-api-key": secret}, json={"url": "http://127.0.0.1:9/v.mp4"})
    return str(response.json()["job_id"])


def test_an_upload_whose_worker_was_killed_is_deleted_when_a_later_attempt_completes(
    client: TestClient, make_key: KeyFactory, db: Database, settings: Settings
) -> None:
    job_id, storage, clock = submit(client, make_key), MemoryStorage(), ManualClock(T0)
    attempt(settings, db, storage, clock, killed=True)
    assert [key for key, _ in storage.listing()] == ["clip.mp4"]  # nobody's, as the storm found
    attempt(settings, db, storage, clock, killed=False)  # stores under another name, completes
    with db.read() as session:
        job = session.get(Job, job_id)
        assert job is not None and (job.status, job.attempt) == ("Completed", 2)
        assert job.output_key == f"clip-{job_id[:8]}.mp4"
    assert [key for key, _ in storage.listing()] == [f"clip-{job_id[:8]}.mp4"]
    assert books_match_storage(db, storage)


def test_uploads_of_a_job_given_up_after_kills_are_deleted_by_the_reaper(
    client: TestClient, make_key: KeyFactory, db: Database, settings: Settings
) -> None:
    job_id, storage, clock = submit(client, make_key), MemoryStorage(), ManualClock(T0)
    for _ in range(3):  # every attempt killed after its upload (max_attempts is 3)
        attempt(settings, db, storage, clock, killed=True)
    assert len(list(storage.listing())) == 3
    clock.advance(int(settings.lease_seconds * 1000) + 1)
    Worker(settings, db=db, storage=storage, clock=clock).reap()  # gives the job up
    with db.read() as session:
        job = session.get(Job, job_id)
        assert job is not None and job.status == "Failed" and "interrupted 3 times" in (job.error or "")
    assert list(storage.listing()) == []
    assert books_match_storage(db, storage)
