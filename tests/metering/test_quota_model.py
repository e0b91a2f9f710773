"""A Hypothesis state machine over admissions, claims, completions, failures, cancels and
crashes (reaped leases), run against the real database. After every step the quota
invariant holds, reservations equal what active jobs hold, and `usage verify` finds no
drift."""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from hypothesis.strategies import integers, sampled_from
from sqlalchemy import func, select

from squall.audit.usage import verify
from squall.db import Database
from squall.errors import JobFailure, QuotaExceeded
from squall.jobs import queue
from squall.jobs import service as jobs
from squall.jobs.models import ACTIVE, Job
from squall.jobs.options import JobOptions
from squall.keys.service import AuthenticatedKey, KeyLimits, create_key
from squall.metering.counters import get_counters
from squall.pipeline.spec import PipelineResult
from tests.support.helpers import TEST_SECRET, wipe

LIMIT = 100_000
RESERVE = 20_000
LEASE = 1_000


def run_model(db: Database) -> None:
    class QuotaModel(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            wipe(db)
            with db.write() as session:
                new = create_key(
                    session, pepper=TEST_SECRET, name="model", limits=KeyLimits(storage_limit_bytes=LIMIT)
                )
            self.key = AuthenticatedKey(new.id, "model", "trial", None, None, None, None)
            self.now = 1_700_000_000_000
            self.running: list[queue.ClaimedJob] = []
            self.admitted = 0

        @rule()
        def admit(self) -> None:
            try:
                with db.write() as session:
                    jobs.create_job(
                        session,
                        self.key,
                        JobOptions(url="http://example.com/a.mp4"),
                        now=self.now,
                        admission=jobs.Admission(RESERVE, max_attempts=2),
                    )
                self.admitted += 1
            except QuotaExceeded:
                pass

        @rule()
        def claim(self) -> None:
            with db.write() as session:
                job = queue.claim(session, worker_id="model", now=self.now, lease_ms=LEASE)
            if job is not None:
                self.running.append(job)

        @precondition(lambda self: self.running)
        @rule(size=integers(0, 3 * RESERVE), pick=integers(0, 100))
        def finish(self, size: int, pick: int) -> None:
            job = self.running.pop(pick % len(self.running))
            with db.write() as session:
                grown = jobs.grow_job_reservation(session, job, size)
                if grown:
                    result = PipelineResult("k", size, size, 1.0, None, None, None)
                    jobs.complete_job(session, job, result, now=self.now)
                elif grown is False:
                    jobs.fail_job(session, job, JobFailure("quota"), now=self.now, retry_at=None)

        @precondition(lambda self: self.running)
        @rule(pick=integers(0, 100), retry=sampled_from([True, False]))
        def fail(self, pick: int, retry: bool) -> None:
            job = self.running.pop(pick % len(self.running))
            retry_at = self.now if retry and job.attempt < job.max_attempts else None
            with db.write() as session:
                jobs.fail_job(
                    session, job, JobFailure("boom", retryable=retry), now=self.now, retry_at=retry_at
                )

        @rule()
        def crash_and_reap(self) -> None:
            self.now += LEASE + 1  # every running worker "dies": leases expire, stale tokens stay in hand
            with db.write() as session:
                jobs.reap_expired(session, now=self.now)

        @rule()
        def cancel_oldest_pending(self) -> None:
            with db.read() as session:
                job_id = session.execute(
                    select(Job.id).where(Job.status == "Pending").order_by(Job.created_at).limit(1)
                ).scalar_one_or_none()
            if job_id is not None:
                with db.write() as session:
                    jobs.cancel_job(session, self.key.id, job_id, now=self.now)

        @invariant()
        def books_balance(self) -> None:
            with db.read() as session:
                c = get_counters(session, self.key.id)
                held = session.execute(
                    select(func.coalesce(func.sum(Job.reserved_bytes), 0)).where(Job.status.in_(ACTIVE))
                ).scalar_one()
                assert c.used_bytes + c.reserved_bytes <= LIMIT
                assert c.reserved_bytes == held
                assert c.usage_count == self.admitted
                assert not verify(session).drift

    run_state_machine_as_test(
        QuotaModel,
        settings=settings(
            max_examples=25, stateful_step_count=30, deadline=None, suppress_health_check=list(HealthCheck)
        ),
    )


def test_quota_and_counters_hold_under_any_sequence(db: Database) -> None:
    run_model(db)
