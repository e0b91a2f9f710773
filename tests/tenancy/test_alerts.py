"""Usage alerts: each quota threshold once (re-armed only below it), the failure rate raised
and resolved, signed deliveries through the outbox, and the dashboard's banner data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select, update
from standardwebhooks.webhooks import Webhook

from squall.db import Database
from squall.keys.models import ApiKey
from squall.pipeline.spec import JobSpec, PipelineEvents, PipelineResult
from squall.settings import Settings
from squall.storage.base import Storage
from squall.storage.memory import MemoryStorage
from squall.webhooks.models import WebhookDelivery
from squall.webhooks.sender import WebhookSender
from squall.worker import Worker
from tests.support.helpers import KeyFactory, drain
from tests.support.receiver import WebhookReceiver

MB = 1024 * 1024


def alert_to(db: Database, key_id: str, url: str) -> str:
    """Point the key's alerts at ``url``; returns its webhook signing secret."""
    with db.write() as session:
        session.execute(update(ApiKey).where(ApiKey.id == key_id).values(alert_webhook_url=url))
        return str(session.get(ApiKey, key_id).webhook_secret)  # type: ignore[union-attr]


def submit(client: TestClient, key: str, count: int = 1) -> list[str]:
    ids = []
    for _ in range(count):
        answer = client.post("/jobs", headers={"x-api-key": key}, json={"url": "http://127.0.0.1:9/v.mp4"})
        assert answer.status_code == 200, answer.text
        ids.append(answer.json()["job_id"])
    return ids


def alerts_in_outbox(db: Database) -> list[dict[str, Any]]:
    with db.read() as session:
        rows = session.execute(select(WebhookDelivery.payload).order_by(WebhookDelivery.created_at)).scalars()
        return [json.loads(p) for p in rows if json.loads(p)["type"].startswith("usage.")]


def test_a_trial_key_gets_each_threshold_once_signed_and_again_only_after_going_below(
    client: TestClient, make_key: KeyFactory, db: Database, settings: Settings, receiver: WebhookReceiver
) -> None:
    key, key_id = make_key("Trial", storage_limit_bytes=10 * MB)  # each job reserves 1 MB
    secret = alert_to(db, key_id, receiver.url("alerts"))
    submit(client, key, 4)
    assert alerts_in_outbox(db) == []
    ids = submit(client, key, 1) + submit(client, key, 1) + submit(client, key, 2) + submit(client, key, 2)
    assert [a["threshold_percent"] for a in alerts_in_outbox(db)] == [50, 75, 90, 100]
    assert (
        client.post("/jobs", headers={"x-api-key": key}, json={"url": "http://127.0.0.1:9/v.mp4"}).status_code
        == 403
    )
    assert WebhookSender(db, settings, owner="test").send_due() == 4
    payloads = [Webhook(secret).verify(r.body, r.headers) for r in receiver.to("alerts")]
    assert sorted(p["threshold_percent"] for p in payloads) == [50, 75, 90, 100]
    banner = client.get("/dashboard/alerts", headers={"x-api-key": key}).json()["alerts"]
    assert banner[0]["threshold_percent"] == 100 and "quota" in banner[0]["message"]

    for job_id in ids[:5]:  # down to 50 %: 75, 90 and 100 re-armed, 50 not (never below it)
        assert client.delete(f"/jobs/{job_id}", headers={"x-api-key": key}).status_code == 200
    submit(client, key, 3)  # 80 %: 75 again, once
    assert [a["threshold_percent"] for a in alerts_in_outbox(db)] == [50, 75, 90, 100, 75]


def test_failure_rate_fires_past_five_percent_of_enough_jobs_and_resolves(
    client: TestClient, make_key: KeyFactory, db: Database, settings: Settings, receiver: WebhookReceiver
) -> None:
    key, key_id = make_key("Busy")
    alert_to(db, key_id, receiver.url("alerts"))
    worker = Worker(settings, db=db, storage=MemoryStorage(), pipeline=stand_in_completes)
    cancelled = submit(client, key, 2)
    for job_id in cancelled:  # two failures of two: too few jobs to page anyone
        client.delete(f"/jobs/{job_id}", headers={"x-api-key": key})
    assert alerts_in_outbox(db) == []
    submit(client, key, 18)
    assert drain(worker, limit=18) == 18  # 2 of 20 failed: 10 %
    assert [a["type"] for a in alerts_in_outbox(db)] == ["usage.failure_rate"]
    assert (
        client.get("/dashboard/alerts", headers={"x-api-key": key}).json()["alerts"][0]["type"]
        == "usage.failure_rate"
    )
    submit(client, key, 20)
    assert drain(worker, limit=20) == 20  # 2 of 40: 5 %, not over it
    assert [a["type"] for a in alerts_in_outbox(db)] == ["usage.failure_rate", "usage.failure_rate.resolved"]
    assert client.get("/dashboard/alerts", headers={"x-api-key": key}).json()["alerts"] == []


def stand_in_completes(
    spec: JobSpec, workdir: Path, storage: Storage, events: PipelineEvents
) -> PipelineResult:
    """A stand-in pipeline: every job succeeds with a tiny output (no download, no FFmpeg)."""
    key = f"{spec.job_id}/out.mp4"
    output = workdir / "out.mp4"
    output.write_bytes(b"x")
    storage.put(output, key, overwrite=True)
    return PipelineResult(output_key=key, file_size=1, downloaded_bytes=1, duration_seconds=1.0,
                          width=2, height=2, title="stand-in")  # fmt: skip
