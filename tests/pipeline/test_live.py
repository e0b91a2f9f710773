"""Live recordings end to end: an HLS stream FFmpeg produces in real time during the test,
served from a local server on port 0, recorded by the real worker (yt-dlp in its child for
detection, our segment loop for the recording, FFmpeg for processing).

One DVR-like stream (every segment kept, no end list) serves the module; tests that end or
start a stream make their own. Each recording is capped at a few seconds."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from squall.audit.usage import verify
from squall.db import Database
from squall.metering.counters import get_counters
from squall.settings import Settings
from squall.worker import Worker
from tests.support.helpers import KeyFactory, drain, refused_as_private
from tests.support.live_stream import LiveStream
from tests.support.probe import probe
from tests.support.receiver import WebhookReceiver
from tests.support.server import MediaServer


@pytest.fixture(scope="module")
def live_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("live")


@pytest.fixture(scope="module")
def server(live_root: Path) -> Iterator[MediaServer]:
    with MediaServer(live_root) as served:
        yield served


@pytest.fixture(scope="module")
def dvr(live_root: Path) -> Iterator[LiveStream]:
    """On air for the whole module; the playlist keeps every segment (a long window)."""
    with LiveStream(live_root / "dvr", window=0, seconds=120) as stream:
        stream.wait_for_segments(3)
        yield stream


def submit(client: TestClient, key: str, **body: Any) -> str:
    response = client.post("/jobs", headers={"x-api-key": key}, json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["job_id"])


def get(client: TestClient, key: str, job_id: str) -> dict[str, Any]:
    return dict(client.get(f"/jobs/{job_id}", headers={"x-api-key": key}).json())


def wait_until(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def in_background(worker: Worker) -> threading.Thread:
    thread = threading.Thread(target=drain, args=(worker,), daemon=True)
    thread.start()
    return thread


def stored_duration(settings: Settings, job: dict[str, Any]) -> float:
    return probe(settings.storage_dir / job["s3_key"]).duration


def test_a_plain_job_on_a_live_stream_ends_at_the_operator_cap(
    settings: Settings, client: TestClient, api_key: str, worker: Worker, server: MediaServer, dvr: LiveStream
) -> None:
    settings.live_max_seconds = 2
    worker = Worker(settings, db=worker.db, storage=worker.storage)
    job_id = submit(client, api_key, url=server.url("media/dvr/index.m3u8"))
    drain(worker)
    job = get(client, api_key, job_id)
    assert job["status"] == "Completed", job
    assert job["live"] is True and job["recording_stopped_by"] == "operator_cap"
    assert "SQUALL_LIVE_MAX_SECONDS" in job["recording_note"]
    assert 1.0 <= stored_duration(settings, job) <= 2.2  # within a segment of the cap, and cut at it


def test_max_duration_stops_the_recording_with_progress_webhooks(
    settings: Settings, client: TestClient, api_key: str, worker: Worker, server: MediaServer,
    dvr: LiveStream, receiver: WebhookReceiver,
) -> None:  # fmt: skip
    job_id = submit(client, api_key, url=server.url("media/dvr/index.m3u8"), max_duration=3,
                    webhook_url=receiver.url("/hook"), enable_progress_webhook=True)  # fmt: skip
    drain(worker)
    job = get(client, api_key, job_id)
    assert job["status"] == "Completed", job
    assert job["recording_stopped_by"] == "max_duration" and job["recording_from"] == "live_point"
    assert abs(stored_duration(settings, job) - 3) <= 1.0
    assert job["recorded_seconds"] >= 2 and job["recorded_bytes"] > 0
    worker.webhooks.send_due()
    stages = [r.payload.get("stage") for r in receiver.to("/hook")]
    assert "recording" in stages
    recorded = [r.payload for r in receiver.to("/hook") if r.payload.get("recorded_seconds") is not None]
    assert recorded and recorded[0]["recorded_bytes"] > 0


def test_appending_an_end_list_ends_an_audio_only_recording(
    settings: Settings, client: TestClient, api_key: str, worker: Worker, server: MediaServer, live_root: Path
) -> None:
    with LiveStream(live_root / "ending", window=4) as stream:
        stream.wait_for_segments(2)
        job_id = submit(
            client, api_key, url=server.url("media/ending/index.m3u8"), max_duration=60, audio_only=True
        )  # the usual processing options apply to a recording
        thread = in_background(worker)
        wait_until(
            lambda: (get(client, api_key, job_id).get("recorded_seconds") or 0) >= 2, "two seconds recorded"
        )
        stream.end()
        thread.join(timeout=30)
    job = get(client, api_key, job_id)
    assert job["status"] == "Completed", job
    assert job["recording_stopped_by"] == "stream_ended"
    stored = probe(settings.storage_dir / job["s3_key"])
    assert job["s3_key"].endswith(".m4a") and stored.video_codec is None and stored.audio_codec == "aac"
    assert stored.duration >= 1.5


def test_stop_keeps_what_was_recorded_and_progress_shows_while_it_grows(
    settings: Settings, client: TestClient, api_key: str, worker: Worker, server: MediaServer, dvr: LiveStream
) -> None:
    job_id = submit(client, api_key, url=server.url("media/dvr/index.m3u8"), max_duration=60)
    thread = in_background(worker)
    wait_until(
        lambda: (get(client, api_key, job_id).get("recorded_seconds") or 0) >= 2, "two seconds recorded"
    )
    during = get(client, api_key, job_id)
    assert during["status"] == "Processing" and during["step"] == "Recording"
    assert during["recorded_bytes"] > 0 and during["live"] is True
    response = client.post(f"/jobs/{job_id}/stop", headers={"x-api-key": api_key})
    assert response.status_code == 200, response.text
    thread.join(timeout=30)
    job = get(client, api_key, job_id)
    assert job["status"] == "Completed", job
    assert job["recording_stopped_by"] == "user_stop"
    assert 1.5 <= stored_duration(settings, job) < 30
    again = client.post(f"/jobs/{job_id}/stop", headers={"x-api-key": api_key})
    assert again.status_code == 409 and "not recording" in again.json()["error"]


def test_a_full_quota_stops_the_recording_and_keeps_what_fits(
    settings: Settings, client: TestClient, make_key: KeyFactory, worker: Worker, db: Database,
    server: MediaServer, dvr: LiveStream,
) -> None:  # fmt: skip
    limit = 150 * 1024
    secret, key_id = make_key("Trial", key_type="trial", storage_limit_bytes=limit)
    job_id = submit(client, secret, url=server.url("media/dvr/index.m3u8"), max_duration=60)
    thread = in_background(worker)
    samples: list[tuple[int, int]] = []
    while thread.is_alive():  # the books and the work file, sampled throughout
        with db.read() as session:
            counters = get_counters(session, key_id)
        work = recording_size(settings.work_dir)
        samples.append((counters.reserved_bytes + counters.used_bytes, work))
        time.sleep(0.05)
    job = get(client, secret, job_id)
    assert job["status"] == "Completed", job
    assert job["recording_stopped_by"] == "quota" and "quota" in job["recording_note"]
    assert len(samples) > 10
    assert [(books, work) for books, work in samples if books > limit or work > limit] == []
    with db.read() as session:
        counters = get_counters(session, key_id)
        assert counters.reserved_bytes == 0 and 0 < counters.used_bytes <= limit
        assert not verify(session).drift


def recording_size(work_dir: Path) -> int:
    """The size of the recording in the work directory (0 before it starts and once it is gone)."""
    total = 0
    for path in work_dir.glob("*/source.*") if work_dir.exists() else []:
        with contextlib.suppress(FileNotFoundError):  # the run ended and cleaned up meanwhile
            total += path.stat().st_size
    return total


def test_live_from_start_records_from_the_first_segment(
    settings: Settings, client: TestClient, api_key: str, worker: Worker, server: MediaServer, dvr: LiveStream
) -> None:
    dvr.wait_for_segments(5)
    job_id = submit(
        client, api_key, url=server.url("media/dvr/index.m3u8"), max_duration=2, live_from_start=True
    )
    drain(worker)
    job = get(client, api_key, job_id)
    assert job["status"] == "Completed", job
    assert job["recording_from"] == "start"
    assert "/media/dvr/seg_000.ts" in server.requests


def test_wait_for_video_waits_for_the_stream_to_start(
    settings: Settings, client: TestClient, api_key: str, worker: Worker, server: MediaServer, live_root: Path
) -> None:
    settings.live_wait_seconds = 30
    worker = Worker(settings, db=worker.db, storage=worker.storage)
    job_id = submit(
        client, api_key, url=server.url("media/later/index.m3u8"), max_duration=2, wait_for_video=True
    )
    thread = in_background(worker)
    wait_until(lambda: get(client, api_key, job_id)["step"] == "Waiting", "the job to wait")
    with LiveStream(live_root / "later", window=4):
        thread.join(timeout=40)
    job = get(client, api_key, job_id)
    assert job["status"] == "Completed", job
    assert job["live"] is True and job["recording_stopped_by"] == "max_duration"


def test_a_stream_that_has_not_started_fails_with_a_warning_without_wait_for_video(
    client: TestClient, api_key: str, worker: Worker, server: MediaServer
) -> None:
    job_id = submit(client, api_key, url=server.url("media/never/index.m3u8"))
    drain(worker)
    job = get(client, api_key, job_id)
    assert job["status"] == "Warning" and "404" in job["error"], job


def test_live_recording_false_on_a_live_source_fails_clearly(
    client: TestClient, api_key: str, worker: Worker, server: MediaServer, dvr: LiveStream
) -> None:
    job_id = submit(client, api_key, url=server.url("media/dvr/index.m3u8"), live_recording=False)
    drain(worker)
    job = get(client, api_key, job_id)
    assert job["status"] == "Failed" and "live_recording" in job["error"], job


def test_a_segment_on_a_private_address_is_refused_at_connect_time(
    settings: Settings, client: TestClient, api_key: str, worker: Worker, live_root: Path, server: MediaServer,
    dvr: LiveStream,
) -> None:  # fmt: skip
    """The playlist comes from 127.0.0.2 (a network the operator allows); its segments point
    at 127.0.0.1 (loopback, not allowed): the recording is refused before a segment is read."""
    settings.allow_private_urls = False
    settings.allowed_private_networks = "127.0.0.2/32"
    settings.max_attempts = 1
    guarded = Worker(settings, db=worker.db, storage=worker.storage)
    with MediaServer(live_root, host="127.0.0.2") as public:
        before = len(server.requests)
        url = public.url(f"pointing/dvr/index.m3u8?to={server.url('media/dvr/')}")
        job_id = submit(client, api_key, url=url, max_duration=2)
        drain(guarded)
        assert any(path.startswith("/pointing/dvr/index.m3u8") for path in public.requests)
    job = get(client, api_key, job_id)
    assert job["status"] == "Failed", job
    assert job["error"] == refused_as_private("The URL (or a redirect or stream it leads to)")
    assert server.requests[before:] == []  # not one segment was fetched from loopback
