"""POST /metadata: extraction without download, in a downloader child."""

from __future__ import annotations

from fastapi.testclient import TestClient

from squall.app import create_app
from squall.db import Database
from squall.settings import Settings
from squall.storage.local import LocalStorage
from tests.support.helpers import refused_as_private
from tests.support.server import MediaServer


def test_metadata_of_a_direct_file_and_an_hls_stream(
    client: TestClient, api_key: str, media: MediaServer
) -> None:
    headers = {"x-api-key": api_key}
    direct = client.post("/metadata", headers=headers, json={"url": media.url("media/tiny.mp4")})
    assert direct.status_code == 200, direct.text
    body = direct.json()
    assert (body["title"], body["extractor"]) == ("tiny", "generic")
    assert set(body) >= {"duration", "width", "height", "uploader", "thumbnail", "description", "upload_date",
                         "filesize_approx"}  # fmt: skip
    hls = client.post("/metadata", headers=headers, json={"url": media.url("media/hls/index.m3u8")}).json()
    assert hls["duration"] == 4
    assert client.get("/usage", headers=headers).json()["usage_count"] == 0  # not a job


def test_metadata_errors_are_clear(client: TestClient, api_key: str, media: MediaServer) -> None:
    headers = {"x-api-key": api_key}
    missing = client.post("/metadata", headers=headers, json={"url": media.url("status/404")})
    assert missing.status_code == 400
    assert missing.json() == {"error": "Video unavailable (the source answered HTTP 404)"}
    page = client.post("/metadata", headers=headers, json={"url": media.url("media/page.html")})
    assert page.json() == {"error": "Unsupported URL: no video or audio was found at this address"}
    assert client.post("/metadata", headers=headers, json={}).json() == {"error": "Field 'url' is required"}
    assert client.post("/metadata", json={"url": media.url("media/tiny.mp4")}).status_code == 401


def test_metadata_refuses_private_addresses(
    settings: Settings, db: Database, storage: LocalStorage, api_key: str, media: MediaServer
) -> None:
    settings.allow_private_urls = False
    with TestClient(create_app(settings, db=db, storage=storage)) as strict:
        response = strict.post(
            "/metadata", headers={"x-api-key": api_key}, json={"url": media.url("media/tiny.mp4")}
        )
    assert response.status_code == 400
    assert response.json() == {"error": refused_as_private("url")}
