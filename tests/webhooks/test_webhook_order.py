"""Webhook order: the events of one job reach its receiver in the order they happened, a
later one waiting until the earlier ones are delivered or given up; other jobs' events do
not wait; a batch's own event comes after its episodes' events."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, text

from squall.clock import now_ms
from squall.db import Database
from squall.db.migrate import upgrade
from squall.settings import Settings
from squall.webhooks import outbox
from squall.webhooks.models import DeliveryStatus, WebhookDelivery
from squall.webhooks.sender import WebhookSender
from squall.worker import Worker
from tests.support.helpers import KeyFactory, drain
from tests.support.receiver import WebhookReceiver
from tests.support.server import MediaServer

STAGES = [
    "downloading",
    "download_complete",
    "muxing",
    "mux_complete",
    "uploading",
    "completed",
    "job_completed",
]
LEASE = 60_000


def stages(receiver: WebhookReceiver, path: str) -> list[str]:
    return [r.payload.get("stage") or r.payload["type"] for r in receiver.to(path)]


def submit_with_progress(client: TestClient, key: str, source: str, hook: str) -> str:
    body = {"url": source, "webhook_url": hook, "enable_progress_webhook": True}
    response = client.post("/jobs", headers={"x-api-key": key}, json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["job_id"])


def test_a_slow_answer_holds_back_only_its_own_jobs_later_events(
    client: TestClient, api_key: str, settings: Settings, db: Database, worker: Worker,
    media: MediaServer, receiver: WebhookReceiver,
) -> None:  # fmt: skip
    """The first event of job X is held by its receiver: X's next events are not sent until
    it is answered, while job Y's seven events all go, in order; then X's follow, in order."""
    submit_with_progress(client, api_key, media.url("media/tiny.mp4"), receiver.script("x", "hold", 200))
    submit_with_progress(client, api_key, media.url("media/tiny.mp4"), receiver.url("y"))
    drain(worker)
    stopping = threading.Event()
    dispatcher = threading.Thread(
        target=WebhookSender(db, settings, owner="order").run, args=(stopping, 3), daemon=True
    )
    dispatcher.start()
    try:
        assert len(receiver.wait_for(7, "y")) == 7
        assert stages(receiver, "x") == ["downloading"]  # held, and nothing of X went past it
        receiver.release()
        assert len(receiver.wait_for(7, "x")) == 7
    finally:
        stopping.set()
        receiver.release()
        dispatcher.join(timeout=10)
    assert stages(receiver, "x") == stages(receiver, "y") == STAGES
    assert len({r.headers["webhook-id"] for r in receiver.to("x")}) == 7  # each sent once


def enqueue(db: Database, key_id: str, event: str, url: str, **ids: str) -> str:
    with db.write() as session:
        return outbox.enqueue(session, key_id=key_id, url=url, payload={"type": event}, now=now_ms(), **ids)


def test_an_event_given_up_on_lets_the_next_one_go(
    settings: Settings, db: Database, make_key: KeyFactory, receiver: WebhookReceiver
) -> None:
    """Job A's first event fails until its retries run out, then A's second goes; job B's
    first is answered 410 (gone), then B's second goes. Each second event is sent only after."""
    _, key_id = make_key("Order")
    settings.webhook_retry_seconds = "0,0"  # three attempts, no waiting
    failing, gone = receiver.script("a", 500, 500, 500, 200), receiver.script("b", 410, 200)
    enqueue(db, key_id, "first", failing, job_id="job-a")
    enqueue(db, key_id, "first", gone, job_id="job-b")
    enqueue(db, key_id, "second", failing, job_id="job-a")
    enqueue(db, key_id, "second", gone, job_id="job-b")
    WebhookSender(db, settings, owner="order").send_due()
    assert [(r.payload["type"], r.answered) for r in receiver.to("a")] == [
        ("first", 500), ("first", 500), ("first", 500), ("second", 200)]  # fmt: skip
    assert [(r.payload["type"], r.answered) for r in receiver.to("b")] == [("first", 410), ("second", 200)]
    with db.read() as session:
        columns = (WebhookDelivery.job_id, WebhookDelivery.event, WebhookDelivery.status)
        statuses = sorted(tuple(row) for row in session.execute(select(*columns)))
    assert statuses == [("job-a", "first", "failed"), ("job-a", "second", "delivered"),
                        ("job-b", "first", "gone"), ("job-b", "second", "delivered")]  # fmt: skip


def claim(db: Database, *, now: int) -> list[outbox.ClaimedDelivery]:
    with db.write() as session:
        return outbox.claim(session, owner="w", now=now, lease_ms=LEASE, limit=10)


def record(db: Database, claimed: outbox.ClaimedDelivery, status: str, **more: Any) -> None:
    with db.write() as session:
        assert outbox.record(
            session, claimed, status=status, now=now_ms(), status_code=None, error=None, **more
        )


def test_the_claim_takes_only_the_first_pending_event_of_each_job_and_batch(
    db: Database, make_key: KeyFactory
) -> None:
    """While an event is in flight or backing off, its job's later events are not claimed
    (nor due before its retry); a batch's end waits for its episodes' events."""
    _, key_id = make_key("Claims")
    hook = "http://example.com/hook"
    first = enqueue(db, key_id, "a1", hook, job_id="a", batch_id="show")
    second = enqueue(db, key_id, "a2", hook, job_id="a", batch_id="show")
    other = enqueue(db, key_id, "b1", hook, job_id="b")
    ended = enqueue(db, key_id, "batch_completed", hook, batch_id="show")
    now = now_ms() + 1
    claimed = {c.id: c for c in claim(db, now=now)}
    assert set(claimed) == {first, other}
    assert claim(db, now=now) == []  # in flight: nothing else of job a, nor the batch's end
    record(db, claimed[first], DeliveryStatus.PENDING, retry_at=now + 1000)  # backing off
    with db.read() as session:
        assert session.get(WebhookDelivery, second).next_attempt_at == now + 1000  # type: ignore[union-attr]
    assert claim(db, now=now + 999) == []  # a1 backs off, a2 waits behind it, b1 is in flight
    (again,) = claim(db, now=now + 1000)
    assert again.id == first and again.attempts == 2
    record(db, again, DeliveryStatus.DELIVERED)
    (next_one,) = claim(db, now=now + 1001)
    assert next_one.id == second  # the batch's end still waits for it
    record(db, next_one, DeliveryStatus.FAILED)  # given up
    assert [c.id for c in claim(db, now=now + 1002)] == [ended]


def test_rows_written_before_the_order_existed_are_numbered_by_age(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0005")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO api_keys (id, client_name, key_hash, key_prefix, key_type, created_at) "
                          "VALUES ('k1', 'Old', 'h', 'sk_', 'unlimited', 0)"))  # fmt: skip
        for delivery_id, created in (("msg_c", 30), ("msg_a", 10), ("msg_b", 10)):
            conn.execute(text(
                "INSERT INTO webhook_deliveries (id, key_id, job_id, event, url, payload, status, attempts, "
                "next_attempt_at, created_at) VALUES (:id, 'k1', 'j1', 'e', 'u', '{}', 'pending', 0, :at, :at)"
            ), {"id": delivery_id, "at": created})  # fmt: skip
    engine.dispose()
    upgrade(url)
    engine = create_engine(url)
    with engine.connect() as conn:
        numbered = conn.execute(text("SELECT id, seq FROM webhook_deliveries ORDER BY seq")).all()
    engine.dispose()
    assert [tuple(row) for row in numbered] == [("msg_a", 1), ("msg_b", 2), ("msg_c", 3)]
