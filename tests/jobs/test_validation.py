"""Every field of POST /jobs is validated with a 400 a person understands."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

URL = "http://127.0.0.1:9/video.mp4"

CASES: list[tuple[dict[str, Any], str]] = [
    ({"folder": "x" * 201}, "Folder name too long (max 200 characters)"),
    ({"folder": "a/../b"}, "Folder name cannot contain '..'"),
    ({"folder": "/abs"}, "Folder name cannot start with '/' or '\\'"),
    ({"folder": "\\abs"}, "Folder name cannot start with '/' or '\\'"),
    ({"folder": "   "}, "Folder name cannot be empty or whitespace"),
    ({"filename": "x" * 256}, "Filename too long (max 255 characters)"),
    ({"filename": "a/b"}, "Filename cannot contain '/' or '\\'"),
    ({"filename": "a\\b"}, "Filename cannot contain '/' or '\\'"),
    ({"filename": "..hidden"}, "Filename cannot contain '..'"),
    ({"filename": "nul\x00byte"}, "Filename cannot contain null bytes"),
    (
        {"url": "http://127.0.0.1:9/a\x00b.mp4"},  # PostgreSQL cannot store it: a 400, not a 500
        "url cannot contain control characters (a NUL byte, a line break); percent-encode them",
    ),
    (
        {"webhook_url": "http://127.0.0.1:9/hook\nX-Injected: 1"},
        "webhook_url cannot contain control characters (a NUL byte, a line break); percent-encode them",
    ),
    ({"format": "avi"}, "Invalid format 'avi'. Allowed: mp4, mkv, webm, mov, m4a, mp3, ogg, opus"),
    ({"video_codec": "av1"}, "Invalid video_codec 'av1'. Allowed: copy, h264, h265, vp9"),
    ({"audio_codec": "flac"}, "Invalid audio_codec 'flac'. Allowed: copy, aac, opus, mp3"),
    ({"audio_bitrate": "100k"}, "Invalid audio_bitrate '100k'. Allowed: 64k, 128k, 192k, 256k, 320k"),
    ({"video_quality": 52}, "video_quality must be a CRF value from 0 (best) to 51 (smallest)"),
    (
        {"quality_preset": "ultra"},
        "Invalid quality_preset 'ultra'. Allowed: highest, high, medium, low, lowest",
    ),
    (
        {"max_resolution": "999"},
        "Invalid max_resolution '999'. Allowed: best, 2160, 1440, 1080, 720, 480, 360",
    ),
    (
        {"clip_start": "1:2:3:4"},
        "clip_start '1:2:3:4' is not a valid timestamp: use HH:MM:SS, MM:SS or seconds",
    ),
    ({"clip_end": "abc"}, "clip_end 'abc' is not a valid timestamp: use HH:MM:SS, MM:SS or seconds"),
    (
        {"clip_start": "00:75"},
        "clip_start '00:75' is not a valid timestamp: minutes and seconds must be below 60",
    ),
    ({"clip_start": "00:01:30", "clip_end": "90"}, "clip_end must be greater than clip_start"),
    ({"clip_start": "2:00", "clip_end": "1:00"}, "clip_end must be greater than clip_start"),
    ({"format": "webm", "audio_codec": "aac"}, "Audio codec 'aac' cannot be stored in webm (use opus)"),
    ({"format": "webm", "video_codec": "h264"}, "Video codec 'h264' cannot be stored in webm (use vp9)"),
    ({"format": "mov", "video_codec": "vp9"}, "Video codec 'vp9' cannot be stored in mov (use h264, h265)"),
    (
        {"format": "mp3", "audio_only": False},
        "Format 'mp3' is audio-only: set audio_only to true or pick mp4, mkv, webm or mov",
    ),
    (
        {"audio_only": True, "format": "mp4"},
        "Format 'mp4' is a video container; with audio_only use m4a, mp3, ogg or opus",
    ),
    (
        {"audio_only": True, "video_codec": "h264"},
        "video_codec cannot be set with audio_only (there is no video to encode)",
    ),
    (
        {"audio_only": True, "format": "ogg", "audio_codec": "aac"},
        "Audio codec 'aac' cannot be stored in ogg (use opus)",
    ),
    ({"priority": 11}, "priority must be an integer from 0 (lowest) to 10 (highest)"),
    ({"priority": -1}, "priority must be an integer from 0 (lowest) to 10 (highest)"),
    (
        {"priority": "high"},
        "Field 'priority': input should be a valid integer, unable to parse string as an integer",
    ),
    ({"max_duration": 0}, "max_duration must be a positive number of seconds"),
    ({"colour": "blue"}, "Unknown field 'colour'"),
]


@pytest.mark.parametrize(("fields", "message"), CASES, ids=[c[1][:40] for c in CASES])
def test_invalid_fields_are_a_clear_400(
    client: TestClient, api_key: str, fields: dict[str, Any], message: str
) -> None:
    response = client.post("/jobs", headers={"x-api-key": api_key}, json={"url": URL, **fields})
    assert response.status_code == 400
    assert response.json() == {"error": message}


def test_url_is_required(client: TestClient, api_key: str) -> None:
    response = client.post("/jobs", headers={"x-api-key": api_key}, json={"format": "mp4"})
    assert response.status_code == 400
    assert response.json() == {"error": "Field 'url' is required"}


def test_body_must_be_json(client: TestClient, api_key: str) -> None:
    response = client.post(
        "/jobs", headers={"x-api-key": api_key, "content-type": "application/json"}, content=b"{not json"
    )
    assert response.status_code == 400
    assert response.json() == {"error": "Request body is not valid JSON"}


def test_missing_body_is_400(client: TestClient, api_key: str) -> None:
    response = client.post("/jobs", headers={"x-api-key": api_key})
    assert response.status_code == 400
    assert response.json() == {"error": "A JSON request body is required"}


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/a.mp4", "url must start with http:// or https://"),
        ("file:///etc/passwd", "url must start with http:// or https://"),
        ("data:video/mp4;base64,AAAA", "url must start with http:// or https://"),
        ("http://user:pw@example.com/a.mp4", "url cannot contain a user name or password"),
        ("http:///nohost", "url has no host name"),
    ],
)
def test_bad_urls_are_refused(client: TestClient, api_key: str, url: str, message: str) -> None:
    response = client.post("/jobs", headers={"x-api-key": api_key}, json={"url": url})
    assert response.status_code == 400
    assert response.json() == {"error": message}


def test_harmless_tornado_defaults_are_accepted(client: TestClient, api_key: str) -> None:
    body = {"url": URL, "format": "mkv", "video_codec": "copy", "audio_codec": "copy", "audio_bitrate": "192k",
            "video_quality": 23, "max_resolution": "best", "audio_only": False, "priority": 9}  # fmt: skip
    response = client.post("/jobs", headers={"x-api-key": api_key}, json=body)
    assert response.status_code == 200, response.text
    job = client.get(f"/jobs/{response.json()['job_id']}", headers={"x-api-key": api_key}).json()
    assert (
        job["format"] == "mkv"
        and job["priority"] == 9
        and job["status"] == "Pending"
        and job["step"] == "Queued"
    )
