"""Requests written from Tornado's documentation, sent as raw JSON over HTTP to a real server,
are accepted as a Tornado client means them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from squall.db import Database
from squall.jobs.models import Job
from squall.jobs.options import JobOptions
from tests.support.helpers import KeyFactory

URL = "http://127.0.0.1:9/video.mp4"


@pytest.fixture
def http(live_server: str, make_key: KeyFactory) -> Iterator[httpx.Client]:
    secret, _ = make_key("Tornado client")
    with httpx.Client(base_url=live_server, headers={"x-api-key": secret}, timeout=30) as client:
        yield client


def raw_post(http: httpx.Client, path: str, body: dict[str, Any]) -> httpx.Response:
    """The body as JSON text, as any HTTP client sends it (``None`` becomes ``null``)."""
    return http.post(path, content=json.dumps(body).encode(), headers={"content-type": "application/json"})


def stored_options(db: Database, job_id: str) -> dict[str, Any]:
    """The options the job was stored with, besides its URL (defaults are not stored)."""
    with db.read() as session:
        options = dict(session.execute(select(Job.options).where(Job.id == job_id)).scalar_one())
    options.pop("url", None)
    return options


def test_null_means_the_default_for_every_optional_field(http: httpx.Client, db: Database) -> None:
    optional = [name for name in JobOptions.model_fields if name != "url"]
    assert len(optional) >= 20
    response = raw_post(http, "/jobs", {"url": URL, **dict.fromkeys(optional)})
    assert response.status_code == 200, response.text
    assert stored_options(db, response.json()["job_id"]) == {}  # every field at its default
    job = http.get(f"/jobs/{response.json()['job_id']}").json()
    assert job["status"] == "Pending"


def test_clips_in_seconds_as_numbers_and_a_numeric_resolution(http: httpx.Client, db: Database) -> None:
    response = raw_post(http, "/jobs", {"url": URL, "clip_start": 1.5, "clip_end": 90, "max_resolution": 720})
    assert response.status_code == 200, response.text
    options = stored_options(db, response.json()["job_id"])
    assert (options["clip_start"], options["clip_end"], options["max_resolution"]) == ("1.5", "90", "720")
    refused = raw_post(http, "/jobs", {"url": URL, "clip_start": -3})
    assert refused.status_code == 400
    assert refused.json() == {"error": "clip_start and clip_end must not be negative"}
    backwards = raw_post(http, "/jobs", {"url": URL, "clip_start": 30, "clip_end": 10})
    assert backwards.json() == {"error": "clip_end must be greater than clip_start"}


@pytest.mark.parametrize("fmt", ["m4a", "mp3", "ogg", "opus"])
def test_an_audio_format_alone_asks_for_audio_only(http: httpx.Client, db: Database, fmt: str) -> None:
    response = raw_post(http, "/jobs", {"url": URL, "format": fmt})
    assert response.status_code == 200, response.text
    assert stored_options(db, response.json()["job_id"]) == {"format": fmt, "audio_only": True}


def test_an_audio_format_with_audio_only_false_is_still_a_contradiction(http: httpx.Client) -> None:
    refused = raw_post(http, "/jobs", {"url": URL, "format": "mp3", "audio_only": False})
    assert refused.status_code == 400
    assert "audio-only" in refused.json()["error"]


def test_status_filters_take_the_names_the_api_writes(http: httpx.Client) -> None:
    job_id = raw_post(http, "/jobs", {"url": URL}).json()["job_id"]
    for written in ("Pending", "pending", "PENDING"):
        listed = http.get("/jobs", params={"status": written}).json()
        assert [job["id"] for job in listed["jobs"]] == [job_id], written
    assert http.get("/jobs", params={"status": "Completed"}).json()["jobs"] == []
    assert http.get("/dashboard/jobs", params={"status": "Pending"}).json()["total"] == 1
    refused = http.get("/jobs", params={"status": "Done"})
    assert refused.status_code == 400 and "Invalid status filter 'done'" in refused.json()["error"]


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("resolution", "Unknown field 'resolution'; did you mean 'max_resolution'?"),
        ("webhook", "Unknown field 'webhook'; did you mean 'webhook_url'?"),
        ("audioonly", "Unknown field 'audioonly'; did you mean 'audio_only'?"),
        ("file_name", "Unknown field 'file_name'; did you mean 'filename'?"),
        ("colour", "Unknown field 'colour'"),
    ],
)
def test_an_unknown_field_names_the_closest_known_one(http: httpx.Client, field: str, message: str) -> None:
    refused = raw_post(http, "/jobs", {"url": URL, field: "720"})
    assert refused.status_code == 400
    assert refused.json() == {"error": message}
    in_bulk = raw_post(http, "/jobs/bulk", {"jobs": [{"url": URL}], field: "720"})
    assert in_bulk.status_code == 400 and in_bulk.json() == {"error": message}


def test_dashboard_batches_without_paging_lists_them_all(http: httpx.Client) -> None:
    for _ in range(55):  # more than one page of the old default (50)
        assert raw_post(http, "/jobs/bulk", {"jobs": [{"url": URL}]}).status_code == 200
    listed = http.get("/dashboard/batches").json()
    assert (len(listed["batches"]), listed["total"], listed["limit"], listed["offset"]) == (55, 55, 1000, 0)
    paged = http.get("/dashboard/batches", params={"limit": 10, "offset": 50}).json()
    assert len(paged["batches"]) == 5
    assert http.get("/dashboard/batches", params={"limit": 1001}).status_code == 400


def test_the_bulk_body_is_documented_with_an_example(http: httpx.Client) -> None:
    schema = http.get("/openapi.json").json()["components"]["schemas"]["BulkRequest"]
    example = schema["examples"][0]
    assert {"url", "filename"} <= set(example["jobs"][0]) and "description" in schema["properties"]["jobs"]
    assert raw_post(http, "/jobs/bulk", example).status_code == 200
