"""The database queue: priority order, leases, heartbeats, the reaper and fencing."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from squall.audit.usage import verify
from squall.clock import now_ms
from squall.db import Database
from squall.errors import JobFailure
from squall.jobs import queue
from squall.jobs import service as jobs
from squall.jobs.models import Job
from squall.jobs.options import JobOptions
from squall.keys.service import AuthenticatedKey, authenticate
from squall.metering.counters import get_counters
from squall.metering.models import UsageEvent
from squall.pipeline.spec import PipelineResult
from tests.support.helpers import TEST_SECRET, KeyFactory

LEASE = 1000
MB = 1024 * 1024


def key_for(db: Database, secret: str) -> AuthenticatedKey:
    with db.read() as session:
        key = authenticate(session, secret, TEST_SECRET)
    assert key is not None
    return key


def add_job(db: Database, key: AuthenticatedKey, *, priority: int = 5, at: int | None = None) -> str:
    with db.write() as session:
        return jobs.create_job(
            session,
            key,
            JobOptions(url="http://example.com/v.mp4", priority=priority),
            now=at if at is not None else now_ms(),
            admission=jobs.Admission(reservation_bytes=MB, max_attempts=2),
        )


def claim(db: Database, now: int | None = None) -> queue.ClaimedJob | None:
    with db.write() as session:
        return queue.claim(
            session, worker_id="test", now=now if now is not None else now_ms(), lease_ms=LEASE
        )


def result(size: int = 1000) -> PipelineResult:
    return PipelineResult(
        output_key="x.mp4",
        file_size=size,
        downloaded_bytes=size,
        duration_seconds=1.0,
        width=2,
        height=2,
        title="t",
    )


def test_higher_priority_first_then_oldest(db: Database, make_key: KeyFactory) -> None:
    key = key_for(db, make_key()[0])
    t = now_ms() - 10_000
    low = add_job(db, key, priority=1, at=t)
    old_mid = add_job(db, key, priority=5, at=t + 1)
    high = add_job(db, key, priority=9, at=t + 2)
    new_mid = add_job(db, key, priority=5, at=t + 3)
    order = []
    while (job := claim(db)) is not None:
        order.append(job.id)
    assert order == [high, old_mid, new_mid, low]


def test_claim_skips_locked_rows_on_postgresql_and_relies_on_begin_immediate_on_sqlite() -> None:
    stmt = select(Job.id).with_for_update(skip_locked=True)
    assert "FOR UPDATE SKIP LOCKED" in str(stmt.compile(dialect=postgresql.dialect()))
    assert "FOR UPDATE" not in str(stmt.compile(dialect=sqlite.dialect()))


def test_claim_takes_a_lease_and_moves_counters(db: Database, make_key: KeyFactory) -> None:
    secret, key_id = make_key()
    key = key_for(db, secret)
    job_id = add_job(db, key)
    now = now_ms()
    claimed = claim(db, now)
    assert claimed is not None and claimed.id == job_id and claimed.attempt == 1
    with db.read() as session:
        job = session.get(Job, job_id)
        assert job is not None
        assert (job.status, job.step, job.lease_owner, job.lease_expires_at) == (
            "Processing",
            "Downloading",
            "test",
            now + LEASE,
        )
        c = get_counters(session, key_id)
        assert (c.jobs_pending, c.jobs_processing) == (0, 1)
    assert claim(db) is None  # nothing else waiting


def test_heartbeat_extends_the_lease_only_for_the_current_attempt(db: Database, make_key: KeyFactory) -> None:
    key = key_for(db, make_key()[0])
    add_job(db, key)
    claimed = claim(db)
    assert claimed is not None
    later = now_ms() + 5000
    with db.write() as session:
        assert queue.heartbeat(session, claimed, now=later, lease_ms=LEASE)
    with db.write() as session:
        assert jobs.reap_expired(session, now=later) == 0  # renewed, so not reaped
    stale = queue.ClaimedJob(**{**claimed.__dict__, "attempt": claimed.attempt + 1})
    with db.write() as session:
        assert not queue.heartbeat(session, stale, now=later, lease_ms=LEASE)


def test_reaped_job_runs_again_and_the_old_workers_late_write_is_fenced_off(
    db: Database, make_key: KeyFactory
) -> None:
    secret, key_id = make_key()
    key = key_for(db, secret)
    job_id = add_job(db, key)
    first = claim(db)
    assert first is not None
    expired = now_ms() + LEASE + 1
    with db.write() as session:
        assert jobs.reap_expired(session, now=expired) == 1
    second = claim(db, expired)
    assert second is not None and second.id == job_id and second.attempt == 2

    with db.write() as session:  # the first worker wakes up and tries to finish
        assert jobs.complete_job(session, first, result(999), now=expired) is False
        assert jobs.grow_job_reservation(session, first, 10 * MB) is None
        assert jobs.fail_job(session, first, JobFailure("late"), now=expired, retry_at=None) is False
        assert not queue.set_step(session, first, "Uploading")
    with db.read() as session:
        job = session.get(Job, job_id)
        assert job is not None and (job.status, job.attempt, job.reserved_bytes) == ("Processing", 2, MB)

    with db.write() as session:
        assert jobs.complete_job(session, second, result(1234), now=expired + 10)
    with db.read() as session:
        c = get_counters(session, key_id)
        assert (c.used_bytes, c.reserved_bytes, c.jobs_completed, c.jobs_processing) == (1234, 0, 1, 0)
        completions = session.execute(
            select(UsageEvent).where(UsageEvent.job_id == job_id, UsageEvent.metric == "jobs.completed")
        ).all()
        assert len(completions) == 1
        assert not verify(session).drift


def test_reaper_gives_up_after_max_attempts_and_releases_the_reservation(
    db: Database, make_key: KeyFactory
) -> None:
    secret, key_id = make_key()
    key = key_for(db, secret)
    job_id = add_job(db, key)  # max_attempts=2
    now = now_ms()
    for attempt in (1, 2):
        claimed = claim(db, now)
        assert claimed is not None and claimed.attempt == attempt
        now += LEASE + 1
        with db.write() as session:
            assert jobs.reap_expired(session, now=now) == 1
    with db.read() as session:
        job = session.get(Job, job_id)
        assert job is not None
        assert (job.status, job.error_type) == ("Failed", "error")
        assert job.error == "The job was interrupted 2 times and was given up"
        c = get_counters(session, key_id)
        assert (c.reserved_bytes, c.jobs_failed, c.jobs_processing, c.used_bytes) == (0, 1, 0, 0)
        assert not verify(session).drift


def test_retryable_failure_waits_for_its_backoff(db: Database, make_key: KeyFactory) -> None:
    key = key_for(db, make_key()[0])
    job_id = add_job(db, key)
    claimed = claim(db)
    assert claimed is not None
    now = now_ms()
    with db.write() as session:
        jobs.fail_job(session, claimed, JobFailure("flaky", retryable=True), now=now, retry_at=now + 60_000)
    assert claim(db, now + 1000) is None
    again = claim(db, now + 60_000)
    assert again is not None and again.id == job_id and again.attempt == 2
