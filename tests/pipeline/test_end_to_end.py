"""Jobs submitted over HTTP run through the real pipeline (yt-dlp child, FFmpeg, storage)
against media served by a local HTTP server."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from squall.db import Database
from squall.jobs.models import Job
from squall.pipeline.binaries import ffmpeg_path
from squall.settings import Settings
from squall.worker import Worker
from tests.support.helpers import KeyFactory, drain
from tests.support.probe import probe
from tests.support.server import MediaServer


def submit(client: TestClient, key: str, url: str, **fields: Any) -> str:
    response = client.post("/jobs", headers={"x-api-key": key}, json={"url": url, **fields})
    assert response.status_code == 200, response.text
    return str(response.json()["job_id"])


def get(client: TestClient, key: str, path: str) -> dict[str, Any]:
    response = client.get(path, headers={"x-api-key": key})
    assert response.status_code == 200, response.text
    return dict(response.json())


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_job_completes_and_usage_moves_exactly(
    client: TestClient,
    api_key: str,
    worker: Worker,
    media: MediaServer,
    media_dir: Path,
    settings: Settings,
    tmp_path: Path,
) -> None:
    assert get(client, api_key, "/usage")["usage_count"] == 0
    job_id = submit(client, api_key, media.url("media/tiny.mp4"), filename="My: clip?", folder="shows/one")
    admitted = get(client, api_key, "/usage")
    assert admitted["usage_count"] == 1
    assert admitted["storage_reserved_bytes"] == settings.default_reservation_bytes
    assert get(client, api_key, "/dashboard/stats")["pending_jobs"] == 1

    assert drain(worker) == 1
    job = get(client, api_key, f"/jobs/{job_id}")
    assert (job["status"], job["step"], job["error"]) == ("Completed", "Finished", None)
    assert job["s3_key"] == "shows/one/My clip.mp4"
    assert (job["width"], job["height"], job["native_video_codec"], job["native_audio_codec"]) == (
        320,
        180,
        "h264",
        "aac",
    )
    assert abs(job["duration_seconds"] - 2.0) < 0.1
    for name in ("download_duration_ms", "mux_duration_ms", "upload_duration_ms", "queue_wait_ms"):
        assert isinstance(job[name], int) and job[name] >= 0
    phases = (
        job["queue_wait_ms"]
        + job["download_duration_ms"]
        + job["mux_duration_ms"]
        + job["upload_duration_ms"]
    )
    assert job["total_duration_ms"] == job["finished_at"] - job["created_at"] >= phases
    assert job["download_speed_mbps"] > 0 and job["upload_speed_mbps"] > 0
    assert (job["requested_quality"], job["actual_quality"], job["download_retries"]) == ("best", "180p", 0)
    assert job["title"] == "tiny" and job["release_date"] is None

    # The stored bytes are exactly a stream copy of the source, made here independently.
    stored = (settings.storage_dir / job["s3_key"]).read_bytes()
    expected = tmp_path / "expected.mp4"
    subprocess.run(
        [ffmpeg_path(), "-v", "error", "-y", "-i", str(media_dir / "tiny.mp4"), "-map", "0:v:0?", "-map", "0:a:0?",
         "-c", "copy", "-movflags", "+faststart", "-f", "mp4", str(expected)],
        check=True,
    )  # fmt: skip
    assert sha256(stored) == sha256(expected.read_bytes())
    assert job["file_size"] == len(stored)

    usage = get(client, api_key, "/usage")
    assert usage["usage_count"] == 1
    assert usage["storage_usage_bytes"] == len(stored)
    assert usage["storage_usage_gb"] == len(stored) / 1024**3
    assert usage["storage_reserved_gb"] == 0
    assert usage["storage_effective_usage_gb"] == usage["storage_usage_gb"]
    stats = get(client, api_key, "/dashboard/stats")
    assert (stats["total_jobs"], stats["completed_jobs"], stats["failed_jobs"], stats["pending_jobs"]) == (
        1,
        1,
        0,
        0,
    )
    assert stats["storage_used_bytes"] == len(stored)
    assert stats["today_throughput_bytes"] == (media_dir / "tiny.mp4").stat().st_size
    assert stats["avg_processing_time_seconds"] is not None and stats["avg_processing_time_seconds"] > 0
    daily = get(client, api_key, "/dashboard/daily")["daily_stats"]
    assert len(daily) == 7 and daily[-1]["completed"] == 1 and daily[-1]["failed"] == 0
    assert all(day["completed"] == 0 for day in daily[:-1])


def test_signed_download_link_serves_the_file_with_ranges(
    client: TestClient, api_key: str, worker: Worker, media: MediaServer, settings: Settings
) -> None:
    job_id = submit(client, api_key, media.url("media/tiny.mp4"), filename="movie")
    drain(worker)
    job = get(client, api_key, f"/jobs/{job_id}")
    assert job["s3_url"] == job["download_url"]
    path = job["download_url"].removeprefix("http://testserver")
    stored = (settings.storage_dir / "movie.mp4").read_bytes()
    full = client.get(path)
    assert full.status_code == 200 and full.content == stored
    assert 'filename="movie.mp4"' in full.headers["content-disposition"]
    part = client.get(path, headers={"Range": "bytes=10-109"})
    assert part.status_code == 206 and part.content == stored[10:110]
    tampered = client.get(path.replace("sig=", "sig=0"))
    assert tampered.status_code == 401
    assert tampered.json() == {"error": "This download link is invalid or has expired"}


def test_mkv_container(
    client: TestClient, api_key: str, worker: Worker, media: MediaServer, settings: Settings
) -> None:
    job_id = submit(client, api_key, media.url("media/tiny.mp4"), format="mkv")
    drain(worker)
    job = get(client, api_key, f"/jobs/{job_id}")
    assert job["status"] == "Completed" and job["s3_key"] == "tiny.mkv"
    out = probe(settings.storage_dir / "tiny.mkv")
    assert "matroska" in out.format_name and (out.video_codec, out.audio_codec) == ("h264", "aac")


def test_audio_the_container_cannot_hold_falls_back_to_aac(
    client: TestClient, api_key: str, worker: Worker, media: MediaServer, settings: Settings
) -> None:
    job_id = submit(client, api_key, media.url("media/vorbis.webm"))
    drain(worker)
    job = get(client, api_key, f"/jobs/{job_id}")
    assert job["status"] == "Completed", job
    out = probe(settings.storage_dir / job["s3_key"])
    assert (out.video_codec, out.audio_codec) == ("vp9", "aac")  # video copied, audio re-encoded


def test_a_name_taken_by_another_job_is_not_overwritten(
    client: TestClient, api_key: str, worker: Worker, media: MediaServer, settings: Settings
) -> None:
    first = submit(client, api_key, media.url("media/tiny.mp4"), filename="same")
    second = submit(client, api_key, media.url("media/silent.mp4"), filename="same")
    drain(worker)
    keys = {get(client, api_key, f"/jobs/{j}")["s3_key"] for j in (first, second)}
    assert keys == {"same.mp4", f"same-{second[:8]}.mp4"}
    assert probe(settings.storage_dir / "same.mp4").audio_codec == "aac"
    assert probe(settings.storage_dir / f"same-{second[:8]}.mp4").audio_codec is None


def test_key_resolution_cap_downscales_landscape_and_portrait(
    client: TestClient, make_key: KeyFactory, worker: Worker, media: MediaServer, settings: Settings
) -> None:
    key, _ = make_key("Capped", max_resolution=360)
    wide = submit(client, key, media.url("media/landscape720.mp4"))
    tall = submit(client, key, media.url("media/portrait.mp4"))
    drain(worker)
    for job_id, size in ((wide, (640, 360)), (tall, (360, 640))):
        job = get(client, key, f"/jobs/{job_id}")
        assert job["status"] == "Completed", job
        out = probe(settings.storage_dir / job["s3_key"])
        assert (out.width, out.height) == size
        assert job["actual_quality"] == "360p"
    assert get(client, key, "/usage")["max_resolution_limit"] == "360"


def test_key_duration_limit_fails_the_job_and_releases_its_reservation(
    client: TestClient, make_key: KeyFactory, worker: Worker, media: MediaServer
) -> None:
    key, _ = make_key("Short only", max_duration_seconds=5)
    job_id = submit(client, key, media.url("media/long.mp4"))
    drain(worker)
    job = get(client, key, f"/jobs/{job_id}")
    assert (job["status"], job["error_type"]) == ("Failed", "error")
    assert job["error"] == "Video is 12 seconds long; this API key allows at most 5 seconds"
    usage = get(client, key, "/usage")
    assert (usage["storage_usage_bytes"], usage["storage_reserved_bytes"]) == (0, 0)
    assert usage["max_duration_limit_seconds"] == 5
    daily = get(client, key, "/dashboard/daily")["daily_stats"]
    assert daily[-1] == {"date": daily[-1]["date"], "completed": 0, "failed": 1}


def test_key_filesize_limit_fails_the_job(
    client: TestClient, make_key: KeyFactory, worker: Worker, media: MediaServer
) -> None:
    key, _ = make_key("Small files", max_filesize_bytes=20_000)
    job_id = submit(client, key, media.url("media/tiny.mp4"))
    drain(worker)
    job = get(client, key, f"/jobs/{job_id}")
    assert job["status"] == "Failed"
    assert job["error"].startswith("File is 57.") and job["error"].endswith(
        "this API key allows at most 19.5 KB"
    )
    usage = get(client, key, "/usage")
    assert usage["max_filesize_limit_bytes"] == 20_000 and usage["storage_usage_bytes"] == 0


def test_hls_and_dash_sources(
    client: TestClient, api_key: str, worker: Worker, media: MediaServer, settings: Settings
) -> None:
    hls = submit(client, api_key, media.url("media/hls/index.m3u8"), filename="from-hls")
    dash = submit(client, api_key, media.url("media/dash/manifest.mpd"), filename="from-dash")
    drain(worker)
    for job_id in (hls, dash):
        job = get(client, api_key, f"/jobs/{job_id}")
        assert job["status"] == "Completed", job
        out = probe(settings.storage_dir / job["s3_key"])
        assert (out.video_codec, out.audio_codec, out.width, out.height) == ("h264", "aac", 320, 180)
        assert abs(out.duration - 4.0) < 0.3


def test_multi_rendition_hls_takes_the_best_rendition_under_the_cap(
    client: TestClient,
    make_key: KeyFactory,
    worker: Worker,
    media: MediaServer,
    settings: Settings,
    db: Database,
) -> None:
    key, _ = make_key("Renditions")
    small_key, _ = make_key("Small screens", max_resolution=360)
    best = submit(client, key, media.url("media/hlsm/master.m3u8"), filename="best")
    small = submit(client, small_key, media.url("media/hlsm/master.m3u8"), filename="small")
    drain(worker)
    for job_id, api_key, size in ((best, key, (854, 480)), (small, small_key, (640, 360))):
        job = get(client, api_key, f"/jobs/{job_id}")
        assert job["status"] == "Completed", job
        out = probe(settings.storage_dir / job["s3_key"])
        assert ((out.width, out.height), out.audio_codec) == (size, "aac")
    with db.read() as session:
        fetched = {job_id: session.get(Job, job_id).downloaded_bytes for job_id in (best, small)}
    assert fetched[small] * 2 < fetched[best]  # the small rendition was fetched, not downscaled


def test_delete_file_removes_the_output_but_not_cumulative_usage(
    client: TestClient, make_key: KeyFactory, worker: Worker, media: MediaServer, settings: Settings
) -> None:
    key, _ = make_key("Deleter")
    stranger, _ = make_key("Stranger")
    job_id = submit(client, key, media.url("media/tiny.mp4"), filename="gone")
    assert client.delete(f"/jobs/{job_id}/file", headers={"x-api-key": key}).json() == {
        "error": "Job has no file to delete"
    }  # still pending
    drain(worker)
    used = get(client, key, "/usage")["storage_usage_bytes"]
    assert client.delete(f"/jobs/{job_id}/file", headers={"x-api-key": stranger}).status_code == 404
    response = client.delete(f"/jobs/{job_id}/file", headers={"x-api-key": key})
    assert response.status_code == 200
    assert response.json() == {
        "message": "File deleted successfully",
        "job_id": job_id,
        "deleted_key": "gone.mp4",
        "deleted_keys": ["gone.mp4"],
    }
    assert not (settings.storage_dir / "gone.mp4").exists()
    job = get(client, key, f"/jobs/{job_id}")
    assert (job["s3_key"], job["s3_url"], job["status"]) == (None, None, "Completed")
    assert get(client, key, "/usage")["storage_usage_bytes"] == used  # cumulative: not reduced
    again = client.delete(f"/jobs/{job_id}/file", headers={"x-api-key": key})
    assert again.status_code == 400 and again.json() == {"error": "Job has no file to delete"}
