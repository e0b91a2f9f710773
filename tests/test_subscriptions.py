"""Domain events and their subscribers, directly: what a job's end sets off (webhook outbox
rows, batch progress, a Stripe meter report) is written in the same transaction, built from
the event alone, and rolled back with it."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from squall.batches.events import BatchEnded
from squall.batches.models import Batch, BatchStatus
from squall.billing.models import MeterReport
from squall.db import Database
from squall.events import DomainEvent, EventBus, pending, record
from squall.jobs.events import Hook, JobEnded, ObjectsStored, Output, StepReached
from squall.jobs.models import JobStatus, JobStep
from squall.metering.models import KeyCounters
from squall.webhooks.models import WebhookDelivery
from tests.support.helpers import KeyFactory

T0 = 1_900_000_000_000


def deliveries(db: Database) -> list[tuple[str, str]]:
    with db.read() as session:
        # In insertion order (seq): without an ORDER BY, PostgreSQL may return rows in any order.
        rows = session.execute(select(WebhookDelivery).order_by(WebhookDelivery.seq)).scalars()
        return [(row.event, row.payload) for row in rows]


def completed(key_id: str, *, hook: Hook | None, batch_id: str | None = None) -> JobEnded:
    output = Output(key="show/ep.mp4", subtitle_key=None, thumbnail_key=None, file_size=123, title="Ep",
                    description=None, release_date=None, download_url="http://x/files/j/ep.mp4")  # fmt: skip
    return JobEnded("job-1", key_id, "http://src/ep.mp4", JobStatus.COMPLETED, at=T0, batch_id=batch_id,
                    folder="show", hook=hook, output=output)  # fmt: skip


def test_a_completed_job_with_a_hook_gets_its_outbox_rows_from_the_event(
    db: Database, make_key: KeyFactory
) -> None:
    """JobEnded(Completed) with progress on: the 100 % progress event and job_completed, whose
    payload holds the event's own fields (nothing is read back from the jobs table)."""
    _, key_id = make_key()
    with db.write() as session:
        record(session, completed(key_id, hook=Hook("http://receiver/hook", progress=True)))
    rows = deliveries(db)
    assert [event for event, _ in rows] == ["job_progress", "job_completed"]
    payload = rows[1][1]
    for fragment in ('"key":"show/ep.mp4"', '"file_size":123', '"download_url":"http://x/files/j/ep.mp4"'):
        assert fragment in payload


def test_a_warning_sends_nothing_and_no_hook_sends_nothing(db: Database, make_key: KeyFactory) -> None:
    """As in Tornado, a content warning is not announced; a job without webhook_url neither."""
    _, key_id = make_key()
    hook = Hook("http://receiver/hook")
    with db.write() as session:
        record(
            session, JobEnded("j", key_id, "http://s", JobStatus.WARNING, at=T0, hook=hook, error="private")
        )
        record(session, completed(key_id, hook=None))
    assert deliveries(db) == []


def test_steps_send_progress_only_when_asked(db: Database, make_key: KeyFactory) -> None:
    """StepReached(Muxing) is two progress events with enable_progress_webhook, none without."""
    _, key_id = make_key()
    with db.write() as session:
        record(
            session, StepReached("j", key_id, "http://s", JobStep.MUXING, at=T0, hook=Hook("http://r", True))
        )
        record(
            session, StepReached("j", key_id, "http://s", JobStep.MUXING, at=T0, hook=Hook("http://r", False))
        )
    assert len(deliveries(db)) == 2


def test_the_last_episode_closes_its_batch_and_announces_it_once(db: Database, make_key: KeyFactory) -> None:
    """Two episodes: the first moves the count, the second closes the batch (finished: one
    failed) and its BatchEnded becomes one batch_completed row."""
    _, key_id = make_key()
    with db.write() as session:
        session.add(Batch(id="b" * 36, key_id=key_id, kind="bulk", options={}, status=BatchStatus.PROCESSING,
                          total_episodes=2, completed_episodes=0, failed_episodes=0, created_at=T0,
                          webhook_url="http://receiver/batch"))  # fmt: skip
    hook = None
    with db.write() as session:
        record(session, completed(key_id, hook=hook, batch_id="b" * 36))
    with db.read() as session:
        batch = session.get(Batch, "b" * 36)
        assert batch is not None and batch.status == BatchStatus.PROCESSING and batch.completed_episodes == 1
    with db.write() as session:
        record(session, JobEnded("job-2", key_id, "http://s", JobStatus.FAILED, at=T0 + 1, batch_id="b" * 36,
                                 error="boom"))  # fmt: skip
    with db.read() as session:
        batch = session.get(Batch, "b" * 36)
        assert batch is not None and batch.status == BatchStatus.FINISHED and batch.finished_at == T0 + 1
    rows = deliveries(db)
    assert [event for event, _ in rows] == ["batch_completed"]
    assert '"completed":1' in rows[0][1] and '"failed":1' in rows[0][1]


def test_only_a_stripe_keys_new_upload_becomes_a_meter_report(db: Database, make_key: KeyFactory) -> None:
    """ObjectsStored queues a report with the ledger row's id for a stripe key; not for other
    keys, and not when a retried completion wrote no new ledger row."""
    from squall.keys.service import create_key

    with db.write() as session:
        stripe = create_key(session, pepper="p", name="S", key_type="stripe", stripe_subscription_id="sub_1")
    _, plain = make_key()
    with db.write() as session:
        record(session, ObjectsStored("j1", stripe.id, ("a.mp4",), 500, uploaded_event_id="ev-1", at=T0))
        record(session, ObjectsStored("j2", stripe.id, ("b.mp4",), 500, uploaded_event_id=None, at=T0))
        record(session, ObjectsStored("j3", plain, ("c.mp4",), 500, uploaded_event_id="ev-3", at=T0))
    with db.read() as session:
        found = session.execute(select(MeterReport.id, MeterReport.key_id, MeterReport.value)).all()
    assert [tuple(row) for row in found] == [("ev-1", stripe.id, 500)]


def test_a_key_gets_its_counters_from_key_created(db: Database, make_key: KeyFactory) -> None:
    """KeyCreated (recorded by create_key) is what gives a key its counters row, with its limit."""
    _, key_id = make_key(storage_limit_bytes=1000)
    with db.read() as session:
        assert session.get(KeyCounters, key_id).storage_limit_bytes == 1000  # type: ignore[union-attr]


def test_side_effects_roll_back_with_the_change(db: Database, make_key: KeyFactory) -> None:
    """An error after the events were recorded rolls back their outbox rows too (the outbox
    guarantee); a subscriber's own error rolls back the whole transaction."""
    _, key_id = make_key()
    with pytest.raises(RuntimeError), db.write() as session:
        record(session, completed(key_id, hook=Hook("http://receiver/hook")))
        raise RuntimeError("the change failed")
    assert deliveries(db) == []

    def broken(_session: Session, _event: BatchEnded) -> None:
        raise ValueError("subscriber failed")

    db.events.subscribe(BatchEnded, broken)
    try:
        with pytest.raises(ValueError), db.write() as session:
            record(session, completed(key_id, hook=Hook("http://receiver/hook")))
            record(session, BatchEnded("b", key_id, None, None, "completed", 1, 0, 1, None, at=T0))
        assert deliveries(db) == []
    finally:
        db.events.unsubscribe(BatchEnded, broken)


@dataclass(frozen=True)
class Ping(DomainEvent):
    n: int


def test_the_bus_runs_each_handler_once_and_follows_events_handlers_record() -> None:
    """Subscribing twice is a no-op; an event a handler records is handed out in the same
    dispatch; a loop of events is stopped."""
    bus, heard = EventBus(), []

    def on_ping(session: Session, event: Ping) -> None:
        heard.append(event.n)
        if event.n < 3:
            record(session, Ping(event.n + 1))

    bus.subscribe(Ping, on_ping)
    bus.subscribe(Ping, on_ping)
    session = Session()
    record(session, Ping(1))
    assert pending(session) == [Ping(1)]
    bus.dispatch(session)
    assert heard == [1, 2, 3] and pending(session) == []

    def forever(session: Session, event: Ping) -> None:
        record(session, Ping(event.n))

    loop = EventBus()
    loop.subscribe(Ping, forever)
    record(session, Ping(0))
    with pytest.raises(RuntimeError, match="rounds"):
        loop.dispatch(session)
