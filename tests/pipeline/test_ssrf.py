"""The connect-time guard end to end: a job whose source is allowed at submission is still
stopped when a redirect or a manifest leads it to a private address.

Loopback is private, so the "allowed" source lives on 127.0.0.2, a network the operator
lists in SQUALL_ALLOWED_PRIVATE_NETWORKS; the forbidden target is 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from squall.settings import Settings
from squall.worker import Worker
from tests.support.helpers import drain, refused_as_private
from tests.support.server import MediaServer

REFUSED = refused_as_private("The URL (or a redirect or stream it leads to)")


@pytest.fixture
def guarded(settings: Settings) -> Settings:
    settings.allow_private_urls = False
    settings.allowed_private_networks = "127.0.0.2/32"
    settings.max_attempts = 1
    return settings


@pytest.fixture
def allowed_host(media_dir: Path) -> Iterator[MediaServer]:
    with MediaServer(media_dir, host="127.0.0.2") as server:
        yield server


@pytest.fixture
def forbidden_host(media_dir: Path) -> Iterator[MediaServer]:
    """Loopback, and this test's own server, so its request log is this test's alone."""
    with MediaServer(media_dir) as server:
        yield server


def run(client: TestClient, key: str, worker: Worker, url: str) -> dict[str, Any]:
    response = client.post("/jobs", headers={"x-api-key": key}, json={"url": url})
    assert response.status_code == 200, response.text
    drain(worker)
    return dict(client.get(f"/jobs/{response.json()['job_id']}", headers={"x-api-key": key}).json())


def test_a_source_on_an_allowed_private_network_is_fetched(
    guarded: Settings, client: TestClient, api_key: str, worker: Worker, allowed_host: MediaServer
) -> None:
    job = run(client, api_key, worker, allowed_host.url("media/tiny.mp4"))
    assert job["status"] == "Completed", job


def test_loopback_is_still_refused_at_submission(
    guarded: Settings, client: TestClient, api_key: str, media: MediaServer
) -> None:
    response = client.post("/jobs", headers={"x-api-key": api_key}, json={"url": media.url("media/tiny.mp4")})
    assert response.status_code == 400
    assert response.json() == {"error": refused_as_private("url")}


def test_a_redirect_to_loopback_is_refused_by_the_downloader(
    guarded: Settings,
    client: TestClient,
    api_key: str,
    worker: Worker,
    allowed_host: MediaServer,
    forbidden_host: MediaServer,
) -> None:
    job = run(
        client, api_key, worker, allowed_host.url(f"redirect?to={forbidden_host.url('media/tiny.mp4')}")
    )
    assert (job["status"], job["error"]) == ("Failed", REFUSED)
    assert any(path.startswith("/redirect") for path in allowed_host.requests)
    assert forbidden_host.requests == []  # the guard stopped it before a connection was made


def test_a_manifest_pointing_at_loopback_is_refused_by_the_downloader(
    guarded: Settings,
    client: TestClient,
    api_key: str,
    worker: Worker,
    allowed_host: MediaServer,
    forbidden_host: MediaServer,
) -> None:
    url = allowed_host.url(f"pointing/hls/index.m3u8?to={forbidden_host.url('media/hls/')}")
    job = run(client, api_key, worker, url)
    assert (job["status"], job["error"]) == ("Failed", REFUSED)
    assert forbidden_host.requests == []  # not one segment was fetched from the forbidden host
