"""Webhooks: events from the outbox, signed per Standard Webhooks, retried, never lost."""

from __future__ import annotations

import threading
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from squall.db import Database
from squall.keys.service import rotate_webhook_secret
from squall.settings import Settings
from squall.webhooks.models import WebhookDelivery
from squall.webhooks.sender import WebhookSender
from squall.worker import Worker
from tests.support.helpers import KeyFactory, drain, refused_as_private
from tests.support.receiver import Received, WebhookReceiver
from tests.support.server import MediaServer


def submit(client: TestClient, key: str, **fields: Any) -> str:
    response = client.post("/jobs", headers={"x-api-key": key}, json=fields)
    assert response.status_code == 200, response.text
    return str(response.json()["job_id"])


def job(client: TestClient, key: str, job_id: str) -> dict[str, Any]:
    return dict(client.get(f"/jobs/{job_id}", headers={"x-api-key": key}).json())


def sender(settings: Settings, db: Database) -> WebhookSender:
    return WebhookSender(db, settings, owner="test-sender")


def verified(secret: str, received: Received) -> dict[str, Any]:
    """The payload, after the standardwebhooks package checked its signature."""
    return dict(Webhook(secret).verify(received.body, received.headers))


def test_completion_is_delivered_signed_with_size_and_link(
    client: TestClient, make_key: KeyFactory, db: Database, settings: Settings, worker: Worker,
    media: MediaServer, receiver: WebhookReceiver,
) -> None:  # fmt: skip
    key, key_id = make_key("Hooks")
    secret = webhook_secret(db, key_id)
    job_id = submit(
        client, key, url=media.url("media/tiny.mp4"), folder="f", webhook_url=receiver.url("done")
    )
    drain(worker)
    assert sender(settings, db).send_due() == 1
    (received,) = receiver.to("done")
    payload = verified(secret, received)
    done = job(client, key, job_id)
    assert payload["type"] == "job_completed" and payload["status"] == "completed"
    assert (payload["job_id"], payload["key"], payload["folder"]) == (job_id, done["s3_key"], "f")
    assert payload["file_size"] == done["file_size"] > 0
    assert client.get(payload["download_url"].removeprefix("http://testserver")).content[:8]  # a working link
    assert received.headers["webhook-id"].startswith("msg_")
    assert done["webhook"]["status"] == "delivered" and done["webhook"]["attempts"] == 1


def test_failures_and_skips_are_announced_but_content_warnings_are_not(
    client: TestClient, api_key: str, settings: Settings, db: Database, worker: Worker,
    media: MediaServer, receiver: WebhookReceiver,
) -> None:  # fmt: skip
    hook = receiver.url("events")
    submit(client, api_key, url=media.url("status/503"), webhook_url=hook)
    submit(client, api_key, url=media.url("octet/notmedia.bin"), webhook_url=hook)
    warned = submit(client, api_key, url=media.url("status/404"), webhook_url=hook)
    drain(worker)
    sender(settings, db).send_due()
    events = sorted(
        (r.payload["type"], r.payload.get("error") or r.payload.get("reason")) for r in receiver.to("events")
    )
    assert events == [("job_failed", "The source failed (HTTP 503)"),
                      ("job_skipped", "The downloaded file is not a media file")]  # fmt: skip
    assert job(client, api_key, warned)["webhook"] is None


def test_progress_events_follow_the_stages_in_order(
    client: TestClient, api_key: str, settings: Settings, db: Database, worker: Worker,
    media: MediaServer, receiver: WebhookReceiver,
) -> None:  # fmt: skip
    submit(
        client,
        api_key,
        url=media.url("media/tiny.mp4"),
        webhook_url=receiver.url("p"),
        enable_progress_webhook=True,
    )
    drain(worker)
    sender(settings, db).send_due()
    stages = [
        (r.payload["type"], r.payload.get("stage"), r.payload.get("progress")) for r in receiver.to("p")
    ]
    assert stages == [
        ("job_progress", "downloading", 0), ("job_progress", "download_complete", 33),
        ("job_progress", "muxing", 33), ("job_progress", "mux_complete", 66),
        ("job_progress", "uploading", 66), ("job_progress", "completed", 100), ("job_completed", None, None),
    ]  # fmt: skip


def test_a_receiver_that_fails_twice_gets_one_accepted_delivery_with_one_id(
    client: TestClient, api_key: str, settings: Settings, db: Database, worker: Worker,
    media: MediaServer, receiver: WebhookReceiver,
) -> None:  # fmt: skip
    settings.webhook_retry_seconds = "0,0,0"
    job_id = submit(
        client, api_key, url=media.url("media/tiny.mp4"), webhook_url=receiver.script("flaky", 500, 503, 200)
    )
    drain(worker)
    hooks = sender(settings, db)
    for _ in range(5):
        hooks.send_due()
    attempts = receiver.to("flaky")
    assert [r.answered for r in attempts] == [500, 503, 200]
    assert len({r.headers["webhook-id"] for r in attempts}) == 1
    assert len({r.body for r in attempts}) == 1  # the same event, byte for byte
    status = job(client, api_key, job_id)["webhook"]
    assert (status["status"], status["attempts"], status["last_status_code"]) == ("delivered", 3, 200)


def test_gone_stops_retries_and_redirects_are_failures(
    client: TestClient, api_key: str, settings: Settings, db: Database, worker: Worker,
    media: MediaServer, receiver: WebhookReceiver,
) -> None:  # fmt: skip
    settings.webhook_retry_seconds = "0,0"
    gone = submit(client, api_key, url=media.url("media/tiny.mp4"), webhook_url=receiver.script("gone", 410))
    moved = submit(
        client, api_key, url=media.url("media/tiny.mp4"), webhook_url=receiver.script("moved", 302)
    )
    drain(worker)
    hooks = sender(settings, db)
    for _ in range(5):
        hooks.send_due()
    assert len(receiver.to("gone")) == 1 and job(client, api_key, gone)["webhook"]["status"] == "gone"
    assert len(receiver.to("moved")) == 3 and receiver.to("elsewhere") == []  # never followed
    status = job(client, api_key, moved)["webhook"]
    assert status["status"] == "failed" and "Redirects are not followed" in status["last_error"]


def test_a_hanging_receiver_does_not_hold_up_other_deliveries(
    client: TestClient, api_key: str, settings: Settings, db: Database, worker: Worker,
    media: MediaServer, receiver: WebhookReceiver,
) -> None:  # fmt: skip
    submit(client, api_key, url=media.url("media/tiny.mp4"), webhook_url=receiver.script("slow", "hang"))
    drain(worker)
    stopping = threading.Event()
    hooks = sender(settings, db)
    dispatcher = threading.Thread(target=hooks.run, args=(stopping, 2), daemon=True)
    dispatcher.start()
    try:
        receiver.wait_for(1, "slow")  # one sender is now stuck on it
        submit(client, api_key, url=media.url("media/tiny.mp4"), webhook_url=receiver.url("fast"))
        drain(worker)
        assert len(receiver.wait_for(1, "fast")) == 1
        assert receiver.to("slow")[0].answered is None  # still held while the other was delivered
    finally:
        stopping.set()
        receiver.release()
        dispatcher.join(timeout=10)


def test_a_rotated_secret_signs_alongside_the_old_one(
    client: TestClient, make_key: KeyFactory, db: Database, settings: Settings, worker: Worker,
    media: MediaServer, receiver: WebhookReceiver,
) -> None:  # fmt: skip
    key, key_id = make_key("Rotating")
    old = webhook_secret(db, key_id)
    with db.write() as session:
        new = rotate_webhook_secret(session, key_id, now=0 + 10**13)  # grace ends far in the future
    submit(client, key, url=media.url("media/tiny.mp4"), webhook_url=receiver.url("r"))
    drain(worker)
    sender(settings, db).send_due()
    (received,) = receiver.to("r")
    assert len(received.headers["webhook-signature"].split(" ")) == 2
    assert verified(old, received) == verified(new, received)


def test_webhook_urls_are_checked_at_submission_and_at_delivery(
    client: TestClient, api_key: str, settings: Settings, db: Database, worker: Worker,
    media: MediaServer, receiver: WebhookReceiver,
) -> None:  # fmt: skip
    job_id = submit(client, api_key, url=media.url("media/tiny.mp4"), webhook_url=receiver.url("x"))
    drain(worker)
    settings.allow_private_urls = False  # the receiver's address is no longer allowed
    sender(settings, db).send_due()
    assert receiver.to("x") == []
    status = job(client, api_key, job_id)["webhook"]
    assert status["status"] == "failed" and status["last_error"] == refused_as_private("webhook_url")
    settings.allowed_private_networks = "127.0.0.2/32"  # the source's network, not the hook's
    refused = client.post("/jobs", headers={"x-api-key": api_key},
                          json={"url": "http://127.0.0.2:9/v.mp4", "webhook_url": "http://127.0.0.1:9/h"})  # fmt: skip
    assert refused.status_code == 400
    assert refused.json() == {"error": refused_as_private("webhook_url")}
    no_url = client.post("/jobs", headers={"x-api-key": api_key},
                         json={"url": media.url("media/tiny.mp4"), "enable_progress_webhook": True})  # fmt: skip
    assert no_url.status_code == 400 and "needs a webhook_url" in no_url.json()["error"]


def test_a_batch_announces_each_episode_and_its_end(
    client: TestClient, make_key: KeyFactory, db: Database, settings: Settings, worker: Worker,
    media: MediaServer, receiver: WebhookReceiver,
) -> None:  # fmt: skip
    key, key_id = make_key("Show")
    secret = webhook_secret(db, key_id)
    url = media.url("feed/show.rss?episodes=tiny.mp4,long.mp4,octet-is-missing.mp4")
    created = client.post(
        "/jobs", headers={"x-api-key": key}, json={"url": url, "webhook_url": receiver.url("b")}
    ).json()
    drain(worker)
    sender(settings, db).send_due()
    payloads = [verified(secret, r) for r in receiver.to("b")]
    types = sorted(p["type"] for p in payloads)
    assert types == ["batch_completed", "job_completed", "job_completed"]  # the 404 episode is a warning
    (end,) = [p for p in payloads if p["type"] == "batch_completed"]
    assert (end["batch_id"], end["completed"], end["failed"], end["total"], end["status"]) == (
        created["batch_id"], 2, 1, 3, "finished")  # fmt: skip
    assert all(p["batch_id"] == created["batch_id"] for p in payloads)


def webhook_secret(db: Database, key_id: str) -> str:
    from squall.keys.models import ApiKey

    with db.read() as session:
        key = session.get(ApiKey, key_id)
        assert key is not None and key.webhook_secret
        return key.webhook_secret


def test_a_name_that_does_not_resolve_is_retried_not_dropped(
    settings: Settings, db: Database, make_key: KeyFactory
) -> None:
    from squall.clock import now_ms
    from squall.webhooks import outbox

    _, key_id = make_key("Dns")
    with db.write() as session:
        outbox.enqueue(session, key_id=key_id, url="http://no-such-host.invalid/hook",
                       payload={"type": "job_failed"}, now=now_ms())  # fmt: skip
    settings.allow_private_urls = False  # the guard resolves the name itself
    assert sender(settings, db).send_due() == 1
    with db.read() as session:
        (row,) = session.execute(select(WebhookDelivery)).scalars()
    assert row.status == "pending" and row.attempts == 1 and "could not be resolved" in (row.last_error or "")
    assert row.next_attempt_at > now_ms()


def test_episode_titles_become_valid_file_names() -> None:
    from squall.batches.service import episode_filename

    assert episode_filename("Part 1... The End") == "Part 1. The End"
    assert episode_filename("a/b:c?") and ".." not in episode_filename("x..y")
    assert episode_filename("///") == ""
