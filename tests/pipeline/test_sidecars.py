"""Subtitles and thumbnails stored next to the media, linked from the job and metered."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import av
from fastapi.testclient import TestClient

from squall.settings import Settings
from squall.worker import Worker
from tests.support.helpers import KeyFactory, drain
from tests.support.media import SUBTITLES
from tests.support.probe import probe
from tests.support.server import MediaServer


def finished(client: TestClient, key: str, worker: Worker, url: str, **fields: Any) -> dict[str, Any]:
    response = client.post("/jobs", headers={"x-api-key": key}, json={"url": url, **fields})
    assert response.status_code == 200, response.text
    drain(worker)
    job = client.get(f"/jobs/{response.json()['job_id']}", headers={"x-api-key": key}).json()
    assert job["status"] == "Completed", job
    return dict(job)


def fetch(client: TestClient, url: str) -> bytes:
    response = client.get(url.removeprefix("http://testserver"))
    assert response.status_code == 200, response.text
    return response.content


def picture_size(data: bytes) -> tuple[int, int]:
    with av.open(io.BytesIO(data)) as image:
        frame = next(image.decode(video=0))
        return frame.width, frame.height


def test_page_with_a_player_gives_media_subtitles_and_its_poster(
    client: TestClient,
    make_key: KeyFactory,
    worker: Worker,
    media: MediaServer,
    media_dir: Path,
    settings: Settings,
) -> None:
    key, _ = make_key("Sidecars")
    job = finished(
        client, key, worker, media.url("media/player.html"),
        filename="talk", folder="shows", download_subtitles=True, download_thumbnail=True,
    )  # fmt: skip
    assert (job["s3_key"], job["subtitle_key"], job["thumbnail_key"]) == (
        "shows/talk.mp4",
        "shows/talk.en.vtt",
        "shows/talk.jpg",
    )
    out = probe(settings.storage_dir / "shows/talk.mp4")
    assert (out.video_codec, out.audio_codec, out.width, out.height) == ("h264", "aac", 320, 180)
    assert fetch(client, job["subtitle_url"]).decode() == SUBTITLES
    assert fetch(client, job["thumbnail_url"]) == (media_dir / "poster.jpg").read_bytes()
    # Every stored byte counts toward storage, the sidecars included; file_size is the media's.
    keys = (job["s3_key"], job["subtitle_key"], job["thumbnail_key"])
    sizes = [(settings.storage_dir / k).stat().st_size for k in keys]
    usage = client.get("/usage", headers={"x-api-key": key}).json()
    assert usage["storage_usage_bytes"] == sum(sizes) and job["file_size"] == sizes[0]


def test_without_a_source_thumbnail_one_frame_is_taken(
    client: TestClient, api_key: str, worker: Worker, media: MediaServer
) -> None:
    job = finished(
        client, api_key, worker, media.url("media/portrait.mp4"),
        filename="tall", download_thumbnail=True, download_subtitles=True,
    )  # fmt: skip
    assert job["thumbnail_key"] == "tall.jpg"
    assert picture_size(fetch(client, job["thumbnail_url"])) == (480, 854)
    assert job["subtitle_url"] is None and job["subtitle_key"] is None  # the source has none


def test_audio_only_output_takes_its_thumbnail_from_the_source_video(
    client: TestClient, api_key: str, worker: Worker, media: MediaServer, settings: Settings
) -> None:
    job = finished(
        client, api_key, worker, media.url("media/tiny.mp4"),
        filename="song", audio_only=True, download_thumbnail=True,
    )  # fmt: skip
    assert probe(settings.storage_dir / "song.m4a").video_codec is None
    assert picture_size(fetch(client, job["thumbnail_url"])) == (320, 180)


def test_deleting_the_file_deletes_its_sidecars_too(
    client: TestClient, api_key: str, worker: Worker, media: MediaServer, settings: Settings
) -> None:
    job = finished(
        client, api_key, worker, media.url("media/player.html"),
        filename="brief", download_subtitles=True, download_thumbnail=True,
    )  # fmt: skip
    old_links = [job["download_url"], job["subtitle_url"], job["thumbnail_url"]]
    response = client.delete(f"/jobs/{job['id']}/file", headers={"x-api-key": api_key})
    assert response.status_code == 200
    assert response.json()["deleted_keys"] == ["brief.mp4", "brief.en.vtt", "brief.jpg"]
    assert not any((settings.storage_dir / k).exists() for k in ("brief.mp4", "brief.en.vtt", "brief.jpg"))
    for link in old_links:
        assert client.get(link.removeprefix("http://testserver")).status_code == 404
    again = client.get(f"/jobs/{job['id']}", headers={"x-api-key": api_key}).json()
    assert (again["subtitle_url"], again["thumbnail_url"], again["s3_url"]) == (None, None, None)
