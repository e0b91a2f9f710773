"""Leases on the database's clock: a worker host whose clock is 10 minutes behind claims a job
submitted now, and one 10 minutes ahead neither reaps its live lease nor claims the job a
second time. The control (``leases_on_database_time=False``, each host's own clock) shows the
skew biting: the host behind does not even see the job as due."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from squall.clock import MINUTE_MS, SYSTEM
from squall.db import Database
from squall.db.dbtime import database_now_ms
from squall.jobs.models import Job
from squall.pipeline.spec import JobSpec, PipelineEvents, PipelineResult
from squall.settings import Settings
from squall.storage.base import Storage
from squall.storage.memory import MemoryStorage
from squall.worker import Worker
from tests.support.clocks import SkewedClock
from tests.support.helpers import KeyFactory, submit_job


def test_the_database_clock_is_close_to_this_hosts(db: Database) -> None:
    with db.read() as session:
        assert abs(database_now_ms(session) - SYSTEM.now_ms()) < MINUTE_MS


@pytest.mark.parametrize("on_database_time", [True, False])
def test_skewed_hosts_neither_reap_a_live_lease_nor_claim_it_twice(
    client: TestClient, make_key: KeyFactory, db: Database, settings: Settings, on_database_time: bool
) -> None:
    key, _ = make_key("skew")
    job_id = submit_job(client, key)
    seen: dict[str, object] = {}

    def host(offset_minutes: int) -> Worker:
        return Worker(settings, db=db, storage=MemoryStorage(), clock=SkewedClock(offset_minutes * MINUTE_MS),
                      pipeline=pipeline, leases_on_database_time=on_database_time)  # fmt: skip

    def pipeline(spec: JobSpec, workdir: Path, storage: Storage, events: PipelineEvents) -> PipelineResult:
        # While the job behind runs (its lease live), the host ahead reaps and claims.
        seen["reaped"] = ahead.reap()
        seen["claimed_again"] = ahead.run_once()
        with db.read() as session:
            seen["status"] = session.get(Job, spec.job_id).status  # type: ignore[union-attr]
        raise RuntimeError("stand-in pipeline: stop here")  # the run's outcome does not matter here

    behind, ahead = host(-10), host(+10)
    if not on_database_time:  # each host's own clock: a job submitted now is not due for 10 minutes
        assert not behind.run_once()
        return
    assert behind.run_once()
    assert seen == {"reaped": 0, "claimed_again": False, "status": "Processing"}
    with db.read() as session:  # the run's own failure was recorded (retried), by the one claim
        job = session.get(Job, job_id)
        assert job is not None and job.attempt == 1
