"""Idempotency-Key on POST /jobs and POST /jobs/bulk: one job however often a request is
sent, concurrent duplicates included."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from fastapi.testclient import TestClient

from tests.support.helpers import KeyFactory
from tests.support.server import MediaServer


def post(
    client: TestClient, key: str, body: dict[str, Any], idem: str, path: str = "/jobs"
) -> httpx.Response:
    return client.post(path, headers={"x-api-key": key, "Idempotency-Key": idem}, json=body)


def usage_count(client: TestClient, key: str) -> int:
    return int(client.get("/usage", headers={"x-api-key": key}).json()["usage_count"])


def test_a_repeated_request_gets_the_first_answer_and_no_second_job(
    client: TestClient, api_key: str, media: MediaServer
) -> None:
    body = {"url": media.url("media/tiny.mp4"), "folder": "a"}
    first = post(client, api_key, body, "order-1")
    again = post(client, api_key, body, "order-1")
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert usage_count(client, api_key) == 1
    other = post(client, api_key, body, "order-2")
    assert other.json()["job_id"] != first.json()["job_id"] and usage_count(client, api_key) == 2


def test_the_same_key_with_another_body_is_a_conflict(
    client: TestClient, api_key: str, media: MediaServer
) -> None:
    post(client, api_key, {"url": media.url("media/tiny.mp4")}, "k")
    clash = post(client, api_key, {"url": media.url("media/long.mp4")}, "k")
    assert clash.status_code == 409
    assert clash.json() == {"error": "This Idempotency-Key was already used with a different request"}
    assert post(client, api_key, {"url": media.url("media/tiny.mp4")}, "x" * 256).status_code == 400
    assert usage_count(client, api_key) == 1


def test_keys_are_scoped_to_the_api_key(client: TestClient, make_key: KeyFactory, media: MediaServer) -> None:
    one, _ = make_key("One")
    two, _ = make_key("Two")
    body = {"url": media.url("media/tiny.mp4")}
    assert post(client, one, body, "same").json() != post(client, two, body, "same").json()
    assert usage_count(client, one) == usage_count(client, two) == 1


def test_bulk_requests_are_idempotent_too(client: TestClient, api_key: str, media: MediaServer) -> None:
    body = {"jobs": [{"url": media.url("media/tiny.mp4")}] * 3}
    first = post(client, api_key, body, "bulk-1", path="/jobs/bulk")
    assert post(client, api_key, body, "bulk-1", path="/jobs/bulk").json() == first.json()
    assert post(client, api_key, {"url": media.url("media/tiny.mp4")}, "bulk-1").status_code == 409
    assert usage_count(client, api_key) == 3


def test_concurrent_duplicates_create_one_job(
    live_server: str, client: TestClient, api_key: str, media: MediaServer
) -> None:
    body = {"url": media.url("media/tiny.mp4")}

    def send(_: int) -> httpx.Response:
        headers = {"x-api-key": api_key, "Idempotency-Key": "burst"}
        return httpx.post(f"{live_server}/jobs", headers=headers, json=body, timeout=30)

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(send, range(32)))
    assert {r.status_code for r in answers} == {200}
    assert len({r.json()["job_id"] for r in answers}) == 1
    assert usage_count(client, api_key) == 1
    jobs = client.get("/jobs", headers={"x-api-key": api_key}).json()
    assert jobs["total"] == 1
