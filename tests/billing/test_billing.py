"""Stripe billing against a local Stripe stand-in (tests/support/stripe_standin.py says why
not localstripe): periods in /usage, rollovers, Stripe down, signed Stripe webhooks, meter
reports sent exactly once, and reconciliation."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from squall.app import create_app
from squall.billing.models import MeterReport
from squall.billing.refresher import PeriodRefresher
from squall.billing.reporter import MeterReporter
from squall.billing.stripe_api import StripeApi
from squall.clock import ManualClock
from squall.db import Database
from squall.settings import Settings
from squall.storage.local import LocalStorage
from squall.worker import Worker
from tests.support.helpers import PYTHON, KeyFactory, drain, worker_env
from tests.support.server import MediaServer
from tests.support.stripe_standin import StripeStandIn, signed_event

WEBHOOK_SECRET = "whsec_test_stripe"
DAY_S = 86_400


@pytest.fixture
def stripe_server() -> Iterator[StripeStandIn]:
    with StripeStandIn() as server:
        yield server


@pytest.fixture
def billing_settings(settings: Settings, stripe_server: StripeStandIn) -> Settings:
    settings.stripe_api_key = "sk_test_squall"
    settings.stripe_api_base = stripe_server.base
    settings.stripe_webhook_secret = WEBHOOK_SECRET
    settings.stripe_timeout_seconds = 1
    return settings


@pytest.fixture
def billed(billing_settings: Settings, db: Database, storage: LocalStorage) -> Iterator[TestClient]:
    with TestClient(create_app(billing_settings, db=db, storage=storage)) as client:
        yield client


def stripe_key(make_key: KeyFactory, stripe_server: StripeStandIn, sub: str = "sub_1", customer: str = "cus_1",
               start: int | None = None, end: int | None = None) -> tuple[str, str]:  # fmt: skip
    now = int(time.time())
    stripe_server.subscribe(sub, customer, start or now - 10 * DAY_S, end or now + 20 * DAY_S)
    from squall.keys.service import KeyLimits, create_key

    with make_key.db.write() as session:
        new = create_key(session, pepper="test-secret-key", name="Billed", key_type="stripe",
                         limits=KeyLimits(), stripe_subscription_id=sub)  # fmt: skip
    return new.api_key, new.id


def refresh_periods(client: TestClient) -> None:
    """What a worker's billing thread does every few seconds, in this thread, on the API's clock."""
    state = client.app.state  # type: ignore[attr-defined]
    if state.settings.stripe_api_key:
        PeriodRefresher(state.db, StripeApi(state.settings), state.clock).refresh_due()


def usage(client: TestClient, key: str) -> dict[str, Any]:
    refresh_periods(client)
    response = client.get("/usage", headers={"x-api-key": key})
    assert response.status_code == 200, response.text
    return dict(response.json())


def upload(client: TestClient, key: str, worker: Worker, media: MediaServer, name: str) -> int:
    job_id = client.post("/jobs", headers={"x-api-key": key},
                         json={"url": media.url("media/tiny.mp4"), "filename": name}).json()["job_id"]  # fmt: skip
    drain(worker)
    job = client.get(f"/jobs/{job_id}", headers={"x-api-key": key}).json()
    assert job["status"] == "Completed", job
    return int(job["file_size"])


def report_all(db: Database, settings: Settings) -> None:
    """What a worker's reporter thread does, in this thread, until nothing is due."""
    reporter = MeterReporter(db, settings)
    while reporter.send_due():
        pass


def iso(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def test_usage_shows_the_period_and_the_bytes_uploaded_in_it(
    billed: TestClient, make_key: KeyFactory, stripe_server: StripeStandIn, worker: Worker, media: MediaServer
) -> None:
    start, end = int(time.time()) - 3 * DAY_S, int(time.time()) + 27 * DAY_S
    key, _ = stripe_key(make_key, stripe_server, start=start, end=end)
    before = usage(billed, key)
    assert (before["billing_period_start"], before["billing_period_end"]) == (iso(start), iso(end))
    assert before["current_period_usage_gb"] == 0 and "billing_error" not in before
    size = upload(billed, key, worker, media, "one")
    after = usage(billed, key)
    assert after["current_period_usage_bytes"] == size and after["current_period_usage_gb"] == size / 1024**3
    assert stripe_server.requests.count("GET subscription") == 1  # the period is cached


def test_a_rollover_starts_the_period_usage_again(
    billed: TestClient, make_key: KeyFactory, stripe_server: StripeStandIn, worker: Worker, media: MediaServer,
) -> None:  # fmt: skip
    key, _ = stripe_key(make_key, stripe_server)
    first = upload(billed, key, worker, media, "one")
    assert usage(billed, key)["current_period_usage_bytes"] == first
    # Stripe rolls the period over and says so: the new period holds nothing yet.
    now = int(time.time()) + 1
    subscription = stripe_server.subscribe("sub_1", "cus_1", now, now + 30 * DAY_S)
    body, signature = signed_event({"id": "evt_1", "object": "event", "type": "customer.subscription.updated",
                                    "data": {"object": subscription}}, WEBHOOK_SECRET)  # fmt: skip
    answer = billed.post("/stripe/webhook", content=body, headers={"stripe-signature": signature})
    assert answer.json() == {"received": True, "refreshing": 1}  # fetched again on the next /usage
    rolled = usage(billed, key)
    assert rolled["billing_period_start"] == iso(now) and rolled["current_period_usage_bytes"] == 0
    time.sleep(1.1)  # the upload must fall inside the new period, which starts at a whole second
    second = upload(billed, key, worker, media, "two")
    assert usage(billed, key)["current_period_usage_bytes"] == second
    # Without a webhook, an ended period is fetched again when /usage is asked after its end.
    stripe_server.subscribe("sub_1", "cus_1", now + 30 * DAY_S, now + 60 * DAY_S)
    billed.app.state.clock = ManualClock((now + 31 * DAY_S) * 1000)  # type: ignore[attr-defined]
    assert usage(billed, key)["billing_period_start"] == iso(now + 30 * DAY_S)


def test_stripe_down_gives_a_billing_error_and_the_last_known_period(
    billed: TestClient, make_key: KeyFactory, stripe_server: StripeStandIn
) -> None:
    start, end = int(time.time()) - DAY_S, int(time.time()) + DAY_S
    key, _ = stripe_key(make_key, stripe_server, start=start, end=end)
    usage(billed, key)  # the period is now known
    billed.app.state.clock = ManualClock((end + 60) * 1000)  # type: ignore[attr-defined]  # and has ended
    stripe_server.hang = True  # Stripe takes requests and never answers
    down = usage(billed, key)  # answered although Stripe never did
    assert down["billing_error"] == "Stripe could not be reached; billing figures may be out of date"
    assert (down["billing_period_start"], down["billing_period_end"]) == (iso(start), iso(end))
    asked = stripe_server.requests.count("GET subscription")
    assert usage(billed, key)["billing_error"]  # still failing: not asked again for 30 s
    assert stripe_server.requests.count("GET subscription") == asked


def test_a_key_stripe_has_never_answered_for_shows_the_error_without_a_period(
    billing_settings: Settings,
    db: Database,
    storage: LocalStorage,
    make_key: KeyFactory,
    stripe_server: StripeStandIn,
) -> None:
    billing_settings.stripe_api_base = "http://127.0.0.1:9"  # nothing listens: refused at once
    key, _ = stripe_key(make_key, stripe_server)
    with TestClient(create_app(billing_settings, db=db, storage=storage)) as client:
        body = usage(client, key)
    assert body["billing_error"] == "Stripe could not be reached; billing figures may be out of date"
    assert body["billing_period_start"] is None and body["current_period_usage_gb"] is None


def test_webhooks_with_a_bad_signature_are_refused(billed: TestClient) -> None:
    body, signature = signed_event(
        {"id": "evt_1", "type": "customer.subscription.updated"}, "whsec_someone_else"
    )
    refused = billed.post("/stripe/webhook", content=body, headers={"stripe-signature": signature})
    assert refused.status_code == 400 and refused.json() == {"error": "Invalid Stripe signature"}
    assert billed.post("/stripe/webhook", content=body).status_code == 400  # no signature at all


def test_uploads_are_reported_once_with_the_ledger_id(
    billed: TestClient, make_key: KeyFactory, stripe_server: StripeStandIn, worker: Worker, media: MediaServer,
    billing_settings: Settings, db: Database,
) -> None:  # fmt: skip
    key, _ = stripe_key(make_key, stripe_server)
    sizes = [upload(billed, key, worker, media, name) for name in ("one", "two")]
    report_all(db, billing_settings)
    assert sorted(e.value for e in stripe_server.events) == sorted(sizes)
    with db.read() as session:
        reports = session.execute(select(MeterReport)).scalars().all()
    assert {r.status for r in reports} == {"sent"} and {e.identifier for e in stripe_server.events} == {
        r.id for r in reports
    }
    assert stripe_server.total("cus_1") == sum(sizes)


def test_other_key_types_never_call_stripe(
    billed: TestClient, api_key: str, stripe_server: StripeStandIn, worker: Worker, media: MediaServer,
    billing_settings: Settings, db: Database,
) -> None:  # fmt: skip
    upload(billed, api_key, worker, media, "free")
    assert "billing_error" not in usage(billed, api_key)
    assert MeterReporter(db, billing_settings).send_due() == 0
    assert stripe_server.requests == []


def test_a_worker_killed_between_upload_and_report_still_reports_once(
    billed: TestClient, make_key: KeyFactory, stripe_server: StripeStandIn, media: MediaServer,
    billing_settings: Settings, db: Database,
) -> None:  # fmt: skip
    key, _ = stripe_key(make_key, stripe_server)
    stripe_server.hang_meter_event_after_recording = True  # Stripe records it; the answer is lost
    billed.post("/jobs", headers={"x-api-key": key}, json={"url": media.url("media/tiny.mp4")})
    env = {**worker_env(billing_settings), "SQUALL_STRIPE_API_KEY": "sk_test_squall",
           "SQUALL_STRIPE_API_BASE": stripe_server.base, "SQUALL_STRIPE_TIMEOUT_SECONDS": "1"}  # fmt: skip
    first = subprocess.Popen([PYTHON, "-m", "squall", "worker"], env=env, stderr=subprocess.DEVNULL)
    try:
        stripe_server.wait_for_meter_events(1)
        os.kill(first.pid, signal.SIGKILL)  # after the upload was committed, before the report was marked
        first.wait()
    finally:
        if first.poll() is None:
            first.kill()
    second = subprocess.Popen([PYTHON, "-m", "squall", "worker"], env=env, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not reported(db):
            time.sleep(0.2)
    finally:
        second.terminate()
        second.wait(timeout=15)
    assert reported(db)
    assert stripe_server.requests.count("POST meter_events") >= 2  # sent again after the crash
    assert len(set(stripe_server.identifiers_sent)) == 1  # always with the one identifier
    assert len(stripe_server.events) == 1  # counted once


def reported(db: Database) -> bool:
    with db.read() as session:
        return session.execute(select(MeterReport.status)).scalars().all() == ["sent"]


def run_reconcile(
    settings: Settings, stripe_server: StripeStandIn, *args: str
) -> subprocess.CompletedProcess[str]:
    env = {
        **worker_env(settings),
        "SQUALL_STRIPE_API_KEY": "sk_test_squall",
        "SQUALL_STRIPE_API_BASE": stripe_server.base,
    }
    return subprocess.run([PYTHON, "-m", "squall", "billing", "reconcile", *args], env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_reconcile_finds_a_dropped_meter_event(
    billed: TestClient, make_key: KeyFactory, stripe_server: StripeStandIn, worker: Worker, media: MediaServer,
    billing_settings: Settings, db: Database,
) -> None:  # fmt: skip
    key, _ = stripe_key(make_key, stripe_server)
    sizes = [upload(billed, key, worker, media, name) for name in ("one", "two")]
    report_all(db, billing_settings)
    ok = run_reconcile(billing_settings, stripe_server)
    assert ok.returncode == 0 and ok.stdout.strip().endswith("ok"), ok.stdout + ok.stderr
    stripe_server.events.pop()  # an event Stripe lost
    drift = run_reconcile(billing_settings, stripe_server, "--json")
    assert drift.returncode == 1
    (balance,) = json.loads(drift.stdout)
    assert (
        balance["ledger_bytes"] == sum(sizes)
        and balance["drift"] == balance["ledger_bytes"] - balance["stripe_bytes"] > 0
    )
    previous = run_reconcile(billing_settings, stripe_server, "--period", "previous")
    assert previous.returncode == 0  # nothing was uploaded in the previous period


def test_keys_update_links_another_subscription(
    billed: TestClient, make_key: KeyFactory, stripe_server: StripeStandIn, billing_settings: Settings
) -> None:
    key, key_id = stripe_key(make_key, stripe_server)
    usage(billed, key)
    start = int(time.time()) - 5 * DAY_S
    stripe_server.subscribe("sub_2", "cus_2", start, start + 30 * DAY_S)
    done = subprocess.run([PYTHON, "-m", "squall", "keys", "update", key_id, "--stripe-subscription", "sub_2"],
                          env=worker_env(billing_settings), capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert usage(billed, key)["billing_period_start"] == iso(start)
    bad = subprocess.run([PYTHON, "-m", "squall", "keys", "update", key_id, "--stripe-subscription", "nope"],
                         env=worker_env(billing_settings), capture_output=True, text=True, timeout=60)  # fmt: skip
    assert bad.returncode == 2 and "starts with sub_" in bad.stderr


def test_a_report_first_tried_over_23_hours_ago_is_not_sent_blindly_again(
    billed: TestClient,
    make_key: KeyFactory,
    stripe_server: StripeStandIn,
    billing_settings: Settings,
    db: Database,
) -> None:
    """Stripe's identifier check lasts "at least 24 hours": past that a resend could count twice."""
    _, key_id = stripe_key(make_key, stripe_server)
    day_ago = int(time.time() * 1000) - 24 * 3_600_000
    with db.write() as session:
        session.add(MeterReport(id="e1", key_id=key_id, value=10, occurred_at=day_ago, status="pending", attempts=1,
                                first_attempt_at=day_ago, next_attempt_at=0))  # fmt: skip
    report_all(db, billing_settings)
    with db.read() as session:
        report = session.get(MeterReport, "e1")
        assert report is not None and report.status == "failed" and "Not resent" in (report.last_error or "")
    assert "POST meter_events" not in stripe_server.requests
