"""Every processing option on generated media, checked by reading the output back with PyAV."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from squall.settings import Settings
from squall.worker import Worker
from tests.support.helpers import drain
from tests.support.probe import Probed, probe
from tests.support.server import MediaServer


def run(
    client: TestClient, key: str, worker: Worker, settings: Settings, url: str, **fields: Any
) -> tuple[dict[str, Any], Probed]:
    response = client.post("/jobs", headers={"x-api-key": key}, json={"url": url, **fields})
    assert response.status_code == 200, response.text
    drain(worker)
    job = client.get(f"/jobs/{response.json()['job_id']}", headers={"x-api-key": key}).json()
    assert job["status"] == "Completed", job
    return job, probe(settings.storage_dir / job["s3_key"])


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"format": "mov"}, ("mov", "h264", "aac")),
        ({"format": "webm"}, ("matroska,webm", "vp9", "opus")),  # copy falls back to what webm holds
        ({"format": "mkv", "video_codec": "h265", "audio_codec": "opus"}, ("matroska,webm", "hevc", "opus")),
        ({"format": "mp4", "video_codec": "vp9", "audio_codec": "mp3"}, ("mov,mp4", "vp9", "mp3")),
        ({"audio_only": True}, ("mov,mp4", None, "aac")),
        ({"audio_only": True, "format": "mp3", "audio_bitrate": "128k"}, ("mp3", None, "mp3")),
        ({"audio_only": True, "format": "ogg"}, ("ogg", None, "opus")),
        ({"audio_only": True, "format": "opus"}, ("ogg", None, "opus")),
    ],
)
def test_containers_and_codecs(
    client: TestClient, api_key: str, worker: Worker, media: MediaServer, settings: Settings,
    fields: dict[str, Any], expected: tuple[str, str | None, str],
) -> None:  # fmt: skip
    job, out = run(client, api_key, worker, settings, media.url("media/tiny.mp4"), **fields)
    assert out.format_name.split(",")[0] in expected[0] and (out.video_codec, out.audio_codec) == expected[1:]
    assert job["s3_key"].endswith("." + fields.get("format", "m4a" if fields.get("audio_only") else "mp4"))
    assert abs(out.duration - 2.0) < 0.15


def test_clip_is_cut_to_the_frame_when_transcoding(
    client: TestClient, api_key: str, worker: Worker, media: MediaServer, settings: Settings
) -> None:
    _, out = run(client, api_key, worker, settings, media.url("media/long.mp4"), video_codec="h264",
                 clip_start="00:02.5", clip_end="6")  # fmt: skip
    assert abs(out.duration - 3.5) < 0.1


def test_request_resolution_cap_on_the_shorter_side(
    client: TestClient, api_key: str, worker: Worker, media: MediaServer, settings: Settings
) -> None:
    job, wide = run(
        client, api_key, worker, settings, media.url("media/landscape720.mp4"), max_resolution="480"
    )
    assert (wide.width, wide.height) == (854, 480) and job["requested_quality"] == "480"
    _, tall = run(client, api_key, worker, settings, media.url("media/portrait.mp4"), max_resolution="360")
    assert (tall.width, tall.height) == (360, 640)


def test_quality_presets_trade_size_for_quality(
    client: TestClient, api_key: str, worker: Worker, media: MediaServer, settings: Settings
) -> None:
    best, _ = run(client, api_key, worker, settings, media.url("media/landscape720.mp4"), video_codec="h264",
                  quality_preset="highest", filename="best")  # fmt: skip
    small, _ = run(client, api_key, worker, settings, media.url("media/landscape720.mp4"), video_codec="h264",
                   quality_preset="lowest", filename="small")  # fmt: skip
    crf40, _ = run(client, api_key, worker, settings, media.url("media/landscape720.mp4"), video_codec="h264",
                   video_quality=40, filename="crf40")  # fmt: skip
    assert best["file_size"] > small["file_size"] > crf40["file_size"]


def test_max_duration_caps_the_output(
    client: TestClient, api_key: str, worker: Worker, media: MediaServer, settings: Settings
) -> None:
    _, out = run(client, api_key, worker, settings, media.url("media/long.mp4"), max_duration=3)
    assert out.duration <= 3.1


def test_audio_only_from_a_silent_video_is_skipped(
    client: TestClient, api_key: str, worker: Worker, media: MediaServer
) -> None:
    response = client.post(
        "/jobs",
        headers={"x-api-key": api_key},
        json={"url": media.url("media/silent.mp4"), "audio_only": True},
    )
    drain(worker)
    job = client.get(f"/jobs/{response.json()['job_id']}", headers={"x-api-key": api_key}).json()
    assert (job["status"], job["error"]) == ("Skipped", "The source has no audio stream to extract")
