"""Storage quotas: a reservation never lets a key exceed its limit, even under a burst."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import update

from squall.db import Database
from squall.metering.counters import get_counters
from squall.metering.models import KeyCounters
from squall.settings import Settings
from squall.worker import Worker
from tests.support.helpers import KeyFactory, drain
from tests.support.server import MediaServer

GB = 1024**3


def test_burst_of_64_admits_exactly_what_fits(
    live_server: str, make_key: KeyFactory, db: Database, settings: Settings
) -> None:
    fits = 10
    secret, key_id = make_key("Trial", storage_limit_bytes=fits * settings.default_reservation_bytes)
    stop = threading.Event()
    worst: list[int] = []

    def watch() -> None:  # the invariant must hold at every instant, not just at the end
        while not stop.is_set():
            with db.read() as session:
                c = get_counters(session, key_id)
                assert c.storage_limit_bytes is not None
                worst.append(c.used_bytes + c.reserved_bytes - c.storage_limit_bytes)

    watcher = threading.Thread(target=watch)
    watcher.start()
    barrier = threading.Barrier(64)

    def post(i: int) -> httpx.Response:
        with httpx.Client(base_url=live_server, timeout=30) as http:
            barrier.wait()
            return http.post(
                "/jobs", headers={"x-api-key": secret}, json={"url": f"http://127.0.0.1:9/{i}.mp4"}
            )

    try:
        with ThreadPoolExecutor(64) as pool:
            responses = list(pool.map(post, range(64)))
    finally:
        stop.set()
        watcher.join()
    codes = [r.status_code for r in responses]
    assert codes.count(200) == fits and codes.count(403) == 64 - fits
    refused = next(r for r in responses if r.status_code == 403).json()
    assert refused["error"] == "Storage quota exceeded"
    assert (
        refused["limit_gb"] == refused["used_gb"] == f"{fits * settings.default_reservation_bytes / GB:.2f}"
    )
    assert max(worst) <= 0
    with db.read() as session:
        c = get_counters(session, key_id)
        assert (c.reserved_bytes, c.usage_count, c.jobs_pending) == (
            fits * settings.default_reservation_bytes,
            fits,
            fits,
        )


def test_quota_error_has_the_tornado_body(client: TestClient, make_key: KeyFactory, db: Database) -> None:
    secret, key_id = make_key("Full", storage_limit_bytes=1024 * GB)
    with db.write() as session:
        session.execute(update(KeyCounters).where(KeyCounters.key_id == key_id).values(used_bytes=1024 * GB))
    response = client.post("/jobs", headers={"x-api-key": secret}, json={"url": "http://127.0.0.1:9/a.mp4"})
    assert response.status_code == 403
    assert response.json() == {
        "error": "Storage quota exceeded",
        "limit_gb": "1024.00",
        "used_gb": "1024.00",
        "message": "This API key has a 1024 GB limit and has used 1024.00 GB",
        "stored_gb": "1024.00",
        "reserved_gb": "0.00",
    }
    assert (
        client.get("/usage", headers={"x-api-key": secret}).json()["usage_count"] == 0
    )  # refused, not counted


def test_reservation_grows_with_the_real_size_and_fails_when_it_cannot(
    client: TestClient, make_key: KeyFactory, worker: Worker, media: MediaServer, db: Database
) -> None:
    worker.settings.default_reservation_mb = 0
    client.app.state.settings.default_reservation_mb = 0  # type: ignore[attr-defined]
    secret, key_id = make_key("Tiny quota", storage_limit_bytes=30_000)  # the file is ~59 KB
    response = client.post("/jobs", headers={"x-api-key": secret}, json={"url": media.url("media/tiny.mp4")})
    assert response.status_code == 200
    drain(worker)
    job = client.get(f"/jobs/{response.json()['job_id']}", headers={"x-api-key": secret}).json()
    assert job["status"] == "Failed"
    assert job["error"] == "Storage quota exceeded"
    with db.read() as session:
        c = get_counters(session, key_id)
        assert (c.used_bytes, c.reserved_bytes) == (0, 0)


def test_usage_fields_by_key_type(client: TestClient, make_key: KeyFactory) -> None:
    common = {
        "client_name", "usage_count", "storage_usage_gb", "storage_reserved_gb", "storage_effective_usage_gb",
        "storage_usage_bytes", "storage_reserved_bytes",
    }  # fmt: skip
    unlimited, _ = make_key("Free")
    trial, _ = make_key("Trial", storage_limit_bytes=GB)
    limited, _ = make_key(
        "Limited", max_resolution=720, max_duration_seconds=600, max_filesize_bytes=50 * 1024 * 1024
    )
    assert set(client.get("/usage", headers={"x-api-key": unlimited}).json()) == common
    body = client.get("/usage", headers={"x-api-key": trial}).json()
    assert set(body) == common | {"storage_limit_gb", "storage_limit_bytes", "storage_remaining_gb"}
    assert (body["storage_limit_gb"], body["storage_limit_bytes"], body["storage_remaining_gb"]) == (
        1.0,
        GB,
        1.0,
    )
    body = client.get("/usage", headers={"x-api-key": limited}).json()
    assert body["max_resolution_limit"] == "720" and body["max_duration_limit_seconds"] == 600
    assert body["max_filesize_limit_bytes"] == 50 * 1024 * 1024 and body["max_filesize_limit_mb"] == 50.0
    assert "storage_limit_gb" not in body and "billing_error" not in body


def test_stripe_key_reports_that_billing_is_not_configured(client: TestClient, db: Database) -> None:
    from squall.keys.service import KeyLimits, create_key
    from tests.support.helpers import TEST_SECRET

    with db.write() as session:
        new = create_key(
            session,
            pepper=TEST_SECRET,
            name="Paying",
            key_type="stripe",
            limits=KeyLimits(),
            stripe_subscription_id="sub_1",
        )
    body = client.get("/usage", headers={"x-api-key": new.api_key}).json()
    assert body["billing_error"] == "Stripe billing is not configured on this server"
    assert "storage_limit_gb" not in body
