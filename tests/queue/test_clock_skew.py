"""Every due time and lease that one host writes and another compares is on the database's
clock: a job admitted by an API host 10 minutes ahead is due at once, a retry's backoff set by
a worker 10 minutes ahead is neither 10 minutes late nor, for one behind, early; webhook
deliveries and meter reports likewise, and a host ahead never takes a live lease from one
behind (``tests/queue/test_database_time.py`` covers the jobs' leases and the reaper)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from squall.app import create_app
from squall.billing import reports
from squall.billing.models import MeterReport
from squall.clock import MINUTE_MS, SYSTEM
from squall.db import Database
from squall.db.dbtime import database_now_ms
from squall.errors import JobFailure
from squall.jobs.events import ObjectsStored
from squall.jobs.models import Job
from squall.keys.models import ApiKey
from squall.pipeline.spec import JobSpec, PipelineEvents, PipelineResult
from squall.settings import Settings
from squall.storage.base import Storage
from squall.storage.memory import MemoryStorage
from squall.webhooks import outbox
from squall.webhooks.models import DeliveryStatus, WebhookDelivery
from squall.webhooks.sender import Attempted, Outcome, WebhookSender
from squall.worker import Worker
from tests.support.clocks import SkewedClock
from tests.support.helpers import KeyFactory, submit_job
from tests.support.receiver import WebhookReceiver

AHEAD, BEHIND = 10 * MINUTE_MS, -10 * MINUTE_MS


def db_now(db: Database) -> int:
    with db.read() as session:
        return database_now_ms(session)


def failing(spec: JobSpec, workdir: Path, storage: Storage, events: PipelineEvents) -> PipelineResult:
    raise JobFailure("stand-in pipeline: the source answered 503", retryable=True)


def skewed_worker(settings: Settings, db: Database, offset_ms: int) -> Worker:
    return Worker(settings, db=db, storage=MemoryStorage(), clock=SkewedClock(offset_ms), pipeline=failing,
                  leases_on_database_time=True)  # fmt: skip


@pytest.fixture
def ahead_api(settings: Settings, db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(settings, db=db, storage=MemoryStorage(), clock=SkewedClock(AHEAD))) as client:
        yield client


def test_a_job_admitted_by_an_api_host_ahead_is_due_at_once(
    ahead_api: TestClient, make_key: KeyFactory, db: Database, settings: Settings
) -> None:
    key, _ = make_key("skew")
    job_id = submit_job(ahead_api, key)
    with db.read() as session:
        job = session.get(Job, job_id)
        assert job is not None and job.run_after <= database_now_ms(session)
    assert skewed_worker(settings, db, BEHIND).run_once()  # a worker host behind claims it now


def test_a_retry_backoff_set_by_a_worker_ahead_is_on_database_time(
    client: TestClient, make_key: KeyFactory, db: Database, settings: Settings
) -> None:
    key, _ = make_key("skew")
    job_id = submit_job(client, key)
    backoff = settings.model_copy(update={"retry_backoff_seconds": 60})
    ahead, behind = skewed_worker(backoff, db, AHEAD), skewed_worker(backoff, db, BEHIND)
    before = db_now(db)
    assert ahead.run_once()  # fails retryably: due again in 60 s of database time
    after = db_now(db)
    with db.read() as session:
        job = session.get(Job, job_id)
        assert job is not None and (job.status, job.attempt) == ("Pending", 1)
        delay = ahead.retry_policy.delay_ms(1, max_attempts=job.max_attempts)
        assert delay is not None and before + delay <= job.run_after <= after + delay
    assert not behind.run_once()  # not early on the host behind either
    with db.write() as session:  # once due (moved, not waited for), the host behind claims it
        session.execute(update(Job).where(Job.id == job_id).values(run_after=before))
    assert behind.run_once()


def test_webhook_deliveries_are_due_and_leased_on_database_time(
    make_key: KeyFactory, db: Database, settings: Settings, receiver: WebhookReceiver
) -> None:
    _, key_id = make_key("skew")
    with db.write() as session:  # enqueued by a host ahead (the event's time is its clock's)
        delivery_id = outbox.enqueue(session, key_id=key_id, url=receiver.url("/hook"),
                                     payload={"type": "job_completed"}, now=SYSTEM.now_ms() + AHEAD)  # fmt: skip

    def sender(name: str, offset_ms: int) -> WebhookSender:
        return WebhookSender(db, settings, name, clock=SkewedClock(offset_ms), on_database_time=True)

    behind, ahead = sender("behind", BEHIND), sender("ahead", AHEAD)
    claimed = behind.round([], limit=1)  # due at once for a sender behind
    assert [c.claimed.id for c in claimed] == [delivery_id]
    assert ahead.round([], limit=1) == []  # its lease is live by the database's clock
    # The receiver is down: a retry in 30 s by the host behind's clock is 30 s of database time.
    retry = ahead.retry(claimed[0].claimed, 503, "down")
    assert retry.retry_at is not None
    retry_in = retry.retry_at - ahead.clock.now_ms()
    before = db_now(db)
    ahead.round([Attempted(claimed[0].claimed, Outcome(retry.status, 503, "down", retry.retry_at))], limit=0)
    after = db_now(db)
    with db.read() as session:
        row = session.get(WebhookDelivery, delivery_id)
        assert row is not None and row.status == DeliveryStatus.PENDING
        assert before + retry_in - 1_000 <= row.next_attempt_at <= after + retry_in + 1_000
    with db.write() as session:  # made due now: the sender ahead sends it (its lease is not "too old")
        session.execute(update(WebhookDelivery).values(next_attempt_at=before))
    assert ahead.send_due() == 1
    assert len(receiver.wait_for(1, "/hook")) == 1
    with db.read() as session:
        row = session.get(WebhookDelivery, delivery_id)
        assert row is not None and row.status == DeliveryStatus.DELIVERED


def test_a_meter_report_queued_by_a_host_ahead_is_due_at_once(make_key: KeyFactory, db: Database) -> None:
    _, key_id = make_key("skew")
    event_id = str(uuid.uuid4())
    with db.write() as session:
        session.execute(
            update(ApiKey)
            .where(ApiKey.id == key_id)
            .values(key_type="stripe", stripe_subscription_id="sub_skew")
        )
        reports.on_objects_stored(session, ObjectsStored(job_id=str(uuid.uuid4()), key_id=key_id, keys=("k",),
                                  stored_bytes=10, uploaded_event_id=event_id, at=SYSTEM.now_ms() + AHEAD))  # fmt: skip
    with db.write() as session:  # a reporter claims on the database's clock (MeterReporter.send_due)
        claimed = reports.claim(session, now=database_now_ms(session), lease_ms=60_000, limit=10)
        assert [r.id for r in claimed] == [event_id]
    with db.write() as session:  # and the lease holds against a second reporter
        assert reports.claim(session, now=database_now_ms(session), lease_ms=60_000, limit=10) == []
        row = session.get(MeterReport, event_id)
        assert row is not None and row.attempts == 1
