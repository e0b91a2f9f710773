"""Each failure class, from a local server that answers with it."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from squall.worker import Worker
from tests.support.helpers import drain
from tests.support.server import MediaServer


def run_one(client: TestClient, key: str, worker: Worker, url: str) -> dict[str, Any]:
    response = client.post("/jobs", headers={"x-api-key": key}, json={"url": url})
    assert response.status_code == 200, response.text
    drain(worker)
    job = client.get(f"/jobs/{response.json()['job_id']}", headers={"x-api-key": key}).json()
    usage = client.get("/usage", headers={"x-api-key": key}).json()
    assert (
        usage["storage_reserved_bytes"] == 0 and usage["storage_usage_bytes"] == 0
    )  # nothing billed or held
    return dict(job)


@pytest.mark.parametrize("code", [403, 404, 410])
def test_unavailable_source_is_a_warning(
    client: TestClient, api_key: str, worker: Worker, media: MediaServer, code: int
) -> None:
    job = run_one(client, api_key, worker, media.url(f"status/{code}"))
    assert (job["status"], job["error_type"]) == ("Warning", "warning")
    assert job["error"] == f"Video unavailable (the source answered HTTP {code})"
    assert job["attempt"] == 1  # content problems are not retried


def test_rate_limiting_is_retried_then_fails(
    client: TestClient, api_key: str, worker: Worker, media: MediaServer
) -> None:
    job = run_one(client, api_key, worker, media.url("status/429"))
    assert (job["status"], job["error_type"]) == ("Failed", "error")
    assert job["error"] == "The source is rate limiting downloads (HTTP 429)"
    assert job["attempt"] == worker.settings.max_attempts


def test_server_errors_are_retried(
    client: TestClient, api_key: str, worker: Worker, media: MediaServer
) -> None:
    job = run_one(client, api_key, worker, media.url("status/503"))
    assert job["status"] == "Failed" and job["error"] == "The source failed (HTTP 503)"
    assert job["attempt"] == worker.settings.max_attempts


def test_page_without_media_is_unsupported(
    client: TestClient, api_key: str, worker: Worker, media: MediaServer
) -> None:
    job = run_one(client, api_key, worker, media.url("media/page.html"))
    assert (job["status"], job["error_type"]) == ("Failed", "error")
    assert job["error"] == "Unsupported URL: no video or audio was found at this address"


def test_a_file_that_is_not_media_is_skipped(
    client: TestClient, api_key: str, worker: Worker, media: MediaServer
) -> None:
    job = run_one(client, api_key, worker, media.url("octet/notmedia.bin"))
    assert (job["status"], job["error_type"]) == ("Skipped", "warning")
    assert job["error"] == "The downloaded file is not a media file"
    stats = client.get("/dashboard/stats", headers={"x-api-key": api_key}).json()
    assert stats["failed_jobs"] == 1  # Failed, Warning and Skipped all count as failed


def test_unreachable_host_is_a_network_error(client: TestClient, api_key: str, worker: Worker) -> None:
    job = run_one(client, api_key, worker, "http://127.0.0.1:9/video.mp4")  # port 9: nothing listens
    assert job["status"] == "Failed"
    assert job["error"] == "Network error while downloading (timeout or connection failure)"


def test_messages_never_name_the_downloader_tool(
    client: TestClient, api_key: str, worker: Worker, media: MediaServer
) -> None:
    for path in ("status/404", "media/page.html", "octet/notmedia.bin"):
        job = run_one(client, api_key, worker, media.url(path))
        assert "yt-dlp" not in job["error"].lower() and "yt_dlp" not in job["error"].lower()


def test_a_stalled_source_is_a_network_timeout(
    client: TestClient, api_key: str, worker: Worker, media: MediaServer
) -> None:
    worker.settings.socket_timeout_seconds = 1
    worker.settings.max_attempts = 1
    job = run_one(client, api_key, worker, media.url("stall/tiny.mp4"))
    assert (job["status"], job["error_type"]) == ("Failed", "error")
    assert job["error"] == "Network error while downloading (timeout or connection failure)"
