"""A work directory too small for one job: a tmpfs of 2 MB mounted as Squall's work directory
(the machine runs as root). The big job fails with a clear error within its attempts, its work
files are freed, the worker goes on, and the next small job completes."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from squall.audit.usage import verify
from squall.db import Database
from squall.pipeline.failures import DISK_FULL
from squall.settings import Settings
from squall.units import MB
from squall.worker import Worker
from tests.support.helpers import drain
from tests.support.media import lossless_video
from tests.support.server import MediaServer


@pytest.fixture
def small_work_dir(settings: Settings) -> Iterator[Path]:
    work = settings.work_dir
    work.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(work)],
                             capture_output=True, text=True, check=False)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"a tmpfs cannot be mounted here (needs root): {mounted.stderr.strip()}")
    try:
        yield work
    finally:
        subprocess.run(["umount", "-l", str(work)], check=False)


@pytest.fixture(scope="module")
def five_mb(media_dir: Path) -> str:
    """The quota tests' file (tests/metering/test_small_keys.py), made by whichever runs first."""
    path = media_dir / "five.mp4"
    if not path.exists():
        lossless_video(path, seconds=10)
    assert 3 * MB < path.stat().st_size < 8 * MB
    return "five.mp4"


def test_a_job_too_big_for_the_work_dir_fails_clearly_and_the_next_completes(
    client: TestClient, worker: Worker, api_key: str, media: MediaServer, db: Database,
    small_work_dir: Path, five_mb: str, settings: Settings,
) -> None:  # fmt: skip
    settings.max_attempts = 2
    headers = {"x-api-key": api_key}
    big = client.post("/jobs", headers=headers, json={"url": media.url(f"media/{five_mb}")}).json()["job_id"]
    assert drain(worker) == 2  # retried once (another job's files may have gone), then given up
    job = client.get(f"/jobs/{big}", headers=headers).json()
    assert (job["status"], job["error"], job["error_type"]) == ("Failed", DISK_FULL, "error")
    assert list(small_work_dir.iterdir()) == []  # its work files are freed

    small = client.post("/jobs", headers=headers, json={"url": media.url("media/tiny.mp4")}).json()["job_id"]
    assert drain(worker) == 1
    assert client.get(f"/jobs/{small}", headers=headers).json()["status"] == "Completed"
    assert list(small_work_dir.iterdir()) == []
    usage = client.get("/usage", headers=headers).json()
    assert usage["storage_reserved_gb"] == 0.0  # the failed job's reservation is released
    with db.read() as session:
        assert not verify(session).drift


def test_processing_that_fills_the_work_dir_fails_clearly(
    client: TestClient, worker: Worker, api_key: str, media: MediaServer, small_work_dir: Path,
    media_dir: Path, settings: Settings,
) -> None:  # fmt: skip
    """The source fits (1.2 MB of 2), but not with FFmpeg's output beside it."""
    source = media_dir / "one_point_two.mp4"
    if not source.exists():
        lossless_video(source, seconds=2.5)
    assert 1 * MB < source.stat().st_size < 2 * MB - 300_000, source.stat().st_size
    settings.max_attempts = 1
    headers = {"x-api-key": api_key}
    job_id = client.post("/jobs", headers=headers, json={"url": media.url(f"media/{source.name}")}).json()[
        "job_id"
    ]
    assert drain(worker) == 1
    job = client.get(f"/jobs/{job_id}", headers=headers).json()
    assert (job["status"], job["error"]) == ("Failed", DISK_FULL)
    assert list(small_work_dir.iterdir()) == []
