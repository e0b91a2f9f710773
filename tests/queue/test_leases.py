"""The leased-queue primitive (squall.queue) directly, for each of its three users: jobs,
webhook deliveries and meter reports. Claim order, one claimer per row, lease expiry,
fencing by the claim's token, and the retry policy each of them configures."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, update

from squall.billing import reports
from squall.billing.models import MeterReport, ReportStatus
from squall.db import Database
from squall.jobs import queue as job_queue
from squall.jobs import service as jobs
from squall.jobs.models import Job, JobStatus
from squall.jobs.options import JobOptions
from squall.keys.service import AuthenticatedKey, authenticate
from squall.queue import RetryPolicy
from squall.webhooks import outbox
from squall.webhooks.models import DeliveryStatus, WebhookDelivery
from tests.support.helpers import TEST_SECRET, KeyFactory

T0 = 1_700_000_000_000  # in the past: a due-at-once row keeps the time it was written with (due_at_once)
LEASE = 1_000


def a_key(db: Database, make_key: KeyFactory) -> AuthenticatedKey:
    secret, _ = make_key()
    with db.read() as session:
        key = authenticate(session, secret, TEST_SECRET)
    assert key is not None
    return key


def add_job(db: Database, key: AuthenticatedKey, *, at: int, priority: int = 5) -> str:
    with db.write() as session:
        return jobs.create_job(session, key, JobOptions(url="http://example.com/v.mp4", priority=priority),
                               now=at, admission=jobs.Admission(reservation_bytes=0, max_attempts=3))  # fmt: skip


def add_delivery(db: Database, key_id: str, *, at: int) -> str:
    with db.write() as session:
        return outbox.enqueue(
            session, key_id=key_id, url="http://example.com/hook", payload={"type": "t"}, now=at
        )


def add_report(db: Database, key_id: str, report_id: str, *, at: int) -> None:
    with db.write() as session:
        session.add(MeterReport(id=report_id, key_id=key_id, value=10, occurred_at=at,
                                status=ReportStatus.PENDING, attempts=0, next_attempt_at=at))  # fmt: skip


def claim_delivery(db: Database, *, now: int, limit: int = 10) -> list[outbox.ClaimedDelivery]:
    with db.write() as session:
        return outbox.claim(session, owner="w", now=now, lease_ms=LEASE, limit=limit)


def claim_report(db: Database, *, now: int) -> list[reports.ClaimedReport]:
    with db.write() as session:
        return reports.claim(session, now=now, lease_ms=LEASE, limit=10)


def test_jobs_are_claimed_by_priority_then_age_and_only_once(db: Database, make_key: KeyFactory) -> None:
    """The claim takes the highest priority first, then the oldest; a claimed job is not claimed again."""
    key = a_key(db, make_key)
    old_low = add_job(db, key, at=T0, priority=1)
    new_high = add_job(db, key, at=T0 + 5, priority=9)
    old_high = add_job(db, key, at=T0 + 1, priority=9)
    order = []
    for _ in range(3):
        with db.write() as session:
            claimed = job_queue.claim(session, worker_id="w", now=T0 + 10, lease_ms=LEASE)
        assert claimed is not None and claimed.attempt == 1
        order.append(claimed.id)
    assert order == [old_high, new_high, old_low]
    with db.write() as session:
        assert job_queue.claim(session, worker_id="w", now=T0 + 10, lease_ms=LEASE) is None


def test_a_job_not_yet_due_is_not_claimed(db: Database, make_key: KeyFactory) -> None:
    """``run_after`` in the future (a retry's backoff) keeps a job in the queue until then."""
    key = a_key(db, make_key)
    job_id = add_job(db, key, at=T0)
    with db.write() as session:
        session.execute(update(Job).where(Job.id == job_id).values(run_after=T0 + 60_000))
    with db.write() as session:
        assert job_queue.claim(session, worker_id="w", now=T0, lease_ms=LEASE) is None
        assert job_queue.claim(session, worker_id="w", now=T0 + 60_000, lease_ms=LEASE) is not None


def test_a_job_lease_expires_for_the_reaper_and_the_old_claim_is_fenced_off(
    db: Database, make_key: KeyFactory
) -> None:
    """After the lease runs out the reaper requeues the job; the next claim's token is 2, and
    every write under token 1 (renew, record) changes nothing."""
    key = a_key(db, make_key)
    job_id = add_job(db, key, at=T0)
    with db.write() as session:
        first = job_queue.claim(session, worker_id="a", now=T0, lease_ms=LEASE)
    assert first is not None
    with db.write() as session:
        assert job_queue.expired_leases(session, now=T0 + LEASE - 1) == []  # still valid
        assert jobs.reap_expired(session, now=T0 + LEASE + 1) == 1
    with db.write() as session:
        second = job_queue.claim(session, worker_id="b", now=T0 + LEASE + 2, lease_ms=LEASE)
    assert second is not None and second.id == job_id and second.attempt == 2
    with db.write() as session:
        assert not job_queue.JOBS.renew(session, job_id, 1, now=T0 + LEASE + 3, lease_ms=LEASE)
        assert not job_queue.JOBS.record(session, job_id, 1, {"step": "Uploading"})
        assert job_queue.JOBS.renew(session, job_id, 2, now=T0 + LEASE + 3, lease_ms=LEASE)
    with db.read() as session:
        job = session.get(Job, job_id)
        assert job is not None and job.step == "Downloading" and job.lease_owner == "b"
        assert job.status == JobStatus.PROCESSING


def test_deliveries_come_oldest_first_and_an_expired_lease_is_due_again(
    db: Database, make_key: KeyFactory
) -> None:
    """Outbox rows: claimed oldest first; while leased nobody else gets them; once the lease
    runs out (a sender died) the row is claimed again with the next token."""
    _, key_id = make_key()
    later = add_delivery(db, key_id, at=T0 + 5)
    first = add_delivery(db, key_id, at=T0)
    (oldest,) = claim_delivery(db, now=T0 + 10, limit=1)
    (other,) = claim_delivery(db, now=T0 + 10)
    assert (oldest.id, other.id) == (first, later) and oldest.attempts == other.attempts == 1
    assert claim_delivery(db, now=T0 + 10 + LEASE - 1) == []  # leased
    again = claim_delivery(db, now=T0 + 10 + LEASE + 1)
    assert sorted(c.id for c in again) == sorted([first, later]) and {c.attempts for c in again} == {2}


def test_a_delivery_outcome_is_fenced_by_its_claim(db: Database, make_key: KeyFactory) -> None:
    """A sender whose claim was taken over cannot record its outcome; the current claim can."""
    _, key_id = make_key()
    delivery_id = add_delivery(db, key_id, at=T0)
    (stale,) = claim_delivery(db, now=T0)
    (current,) = claim_delivery(db, now=T0 + LEASE + 1)
    with db.write() as session:
        common: dict[str, Any] = {"now": T0 + LEASE + 2, "status_code": 200, "error": None}
        assert not outbox.record(session, stale, status=DeliveryStatus.DELIVERED, **common)
        assert outbox.record(session, current, status=DeliveryStatus.DELIVERED, **common)
    with db.read() as session:
        row = session.get(WebhookDelivery, delivery_id)
        assert row is not None and row.status == DeliveryStatus.DELIVERED and row.attempts == 2
        assert row.lease_expires_at is None and row.lease_owner is None
    assert claim_delivery(db, now=T0 + 10 * LEASE) == []  # delivered rows are never due


def test_meter_reports_keep_their_first_attempt_time_across_claims(
    db: Database, make_key: KeyFactory
) -> None:
    """Meter reports: the claim sets ``first_attempt_at`` once; a retry waits until its time; a
    sent report is fenced and never claimed again."""
    _, key_id = make_key()
    add_report(db, key_id, "r1", at=T0)
    (first,) = claim_report(db, now=T0 + 1)
    with db.write() as session:
        reports.record(session, first, now=T0 + 2, sent=False, error="down", retry_at=T0 + 500)
    assert claim_report(db, now=T0 + 499) == []  # backing off
    (second,) = claim_report(db, now=T0 + 500)
    assert second.attempts == 2 and second.first_attempt_at == T0 + 1
    with db.write() as session:
        reports.record(session, first, now=T0 + 501, sent=True)  # the old claim: ignored
    with db.read() as session:
        assert session.execute(select(MeterReport.status)).scalar_one() == ReportStatus.PENDING
    with db.write() as session:
        reports.record(session, second, now=T0 + 502, sent=True)
    with db.read() as session:
        assert session.execute(select(MeterReport.status)).scalar_one() == ReportStatus.SENT
    assert claim_report(db, now=T0 + 10 * LEASE) == []


def test_the_claim_statement_skips_locked_rows_on_postgresql(db: Database) -> None:
    """On PostgreSQL every claim's candidate query says FOR UPDATE SKIP LOCKED."""
    from sqlalchemy.dialects import postgresql

    for leased in (job_queue.JOBS, outbox.DELIVERIES, reports.REPORTS):
        candidates = select(leased.id).where(leased.due(T0)).limit(1).with_for_update(skip_locked=True)
        assert "FOR UPDATE SKIP LOCKED" in str(candidates.compile(dialect=postgresql.dialect()))


@pytest.mark.parametrize(
    ("policy", "waits"),
    [
        # jobs: SQUALL_RETRY_BACKOFF_SECONDS x 2^(attempt-1), until the job's max_attempts (3)
        (RetryPolicy.exponential(5_000, max_attempts=3), [5_000, 10_000, None]),
        # meter reports: 10 s doubling, at most an hour, no cap on attempts
        (RetryPolicy.exponential(10_000, max_ms=3_600_000), [10_000, 20_000, 40_000]),
        # webhooks: the schedule, then give up
        (RetryPolicy.scheduled((5_000.0, 300_000.0)), [5_000, 300_000, None]),
    ],
)
def test_retry_policies_give_the_documented_waits(policy: RetryPolicy, waits: list[int | None]) -> None:
    """Each user's policy: the wait after attempts 1, 2 and 3 (None: no attempt left)."""
    assert [policy.delay_ms(attempt) for attempt in (1, 2, 3)] == waits


def test_a_retry_policy_caps_exponential_waits_and_jitters_within_bounds() -> None:
    """``max_ms`` caps the doubling; jitter stays within its fraction; a job's own
    ``max_attempts`` overrides the policy's."""
    assert RetryPolicy.exponential(10_000, max_ms=3_600_000).delay_ms(20) == 3_600_000
    jittered = RetryPolicy.scheduled((1000.0,), jitter=0.1)
    assert all(900 <= (jittered.delay_ms(1) or 0) <= 1100 for _ in range(200))
    assert RetryPolicy.exponential(1).delay_ms(5, max_attempts=5) is None
    assert RetryPolicy.exponential(1).delay_ms(4, max_attempts=5) == 8
