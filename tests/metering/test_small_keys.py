"""Quota that small keys can use: each job reserves its best known estimate (a feed's
enclosure length, else the default cut down to the room left), the worker grows or shrinks
it as it learns the real size, and `used + reserved <= limit` holds throughout."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from squall.db import Database
from squall.jobs.models import Job
from squall.metering.counters import get_counters
from squall.metering.models import KeyCounters
from squall.settings import Settings
from squall.worker import Worker
from tests.support.helpers import KeyFactory, drain
from tests.support.media import lossless_video
from tests.support.server import MediaServer

MB = 1024**2
GB = 1024**3


@pytest.fixture
def real_default(client: TestClient, worker: Worker) -> Iterator[int]:
    """The production default reservation (256 MB) instead of the suite's 1 MB."""
    for settings in (worker.settings, client.app.state.settings):  # type: ignore[attr-defined]
        settings.default_reservation_mb = 256
    yield 256 * MB


@pytest.fixture(scope="module")
def five_mb(media_dir: Path) -> str:
    path = media_dir / "five.mp4"
    if not path.exists():
        lossless_video(path, seconds=10)
    assert 3 * MB < path.stat().st_size < 8 * MB
    return "five.mp4"


def reserved_by_job(db: Database, key_id: str) -> list[int]:
    with db.read() as session:
        rows = session.execute(
            select(Job.reserved_bytes).where(Job.key_id == key_id).order_by(Job.batch_index)
        )
        return [int(r) for r in rows.scalars()]


def books(db: Database, key_id: str) -> tuple[int, int, int]:
    with db.read() as session:
        c = get_counters(session, key_id)
        return c.used_bytes, c.reserved_bytes, c.storage_limit_bytes or 0


def test_a_100_mb_trial_key_runs_a_5_mb_job(
    client: TestClient, make_key: KeyFactory, worker: Worker, media: MediaServer, db: Database,
    real_default: int, five_mb: str, media_dir: Path,
) -> None:  # fmt: skip
    secret, key_id = make_key("Trial", key_type="trial", storage_limit_bytes=100 * MB)
    created = client.post("/jobs", headers={"x-api-key": secret}, json={"url": media.url(f"media/{five_mb}")})
    assert created.status_code == 200, created.text
    assert reserved_by_job(db, key_id) == [100 * MB]  # the default, cut down to the room left
    assert drain(worker) == 1
    job = client.get(f"/jobs/{created.json()['job_id']}", headers={"x-api-key": secret}).json()
    assert job["status"] == "Completed", job
    used, reserved, _ = books(db, key_id)
    assert (used, reserved) == (job["file_size"], 0)
    assert client.get(job["download_url"]).content[:12] == (media_dir / five_mb).read_bytes()[:12]


def test_a_1_gb_key_takes_a_feed_whose_enclosures_fit(
    client: TestClient, make_key: KeyFactory, worker: Worker, media: MediaServer, db: Database,
    real_default: int,
) -> None:  # fmt: skip
    secret, key_id = make_key("Podcaster", key_type="trial", storage_limit_bytes=GB)
    lengths = [150 * MB, 150 * MB, 150 * MB, 150 * MB, 150 * MB]  # 5 x the default would not fit
    feed = media.url(
        f"feed/show.rss?episodes={','.join(['tiny.mp4'] * 5)}&lengths={','.join(map(str, lengths))}"
    )
    created = client.post("/jobs", headers={"x-api-key": secret}, json={"url": feed})
    assert created.status_code == 200, created.text
    assert reserved_by_job(db, key_id) == lengths  # each episode reserves what its feed announces
    assert books(db, key_id)[1] == sum(lengths)
    assert drain(worker) == 5
    statuses = [
        client.get(f"/jobs/{job_id}", headers={"x-api-key": secret}).json()["status"]
        for job_id in created.json()["episode_jobs"]
    ]
    assert statuses == ["Completed"] * 5
    used, reserved, _ = books(db, key_id)
    assert reserved == 0 and 0 < used < MB  # billed what was stored, the estimates released


def test_a_feed_whose_announced_sizes_do_not_fit_is_refused_whole(
    client: TestClient, make_key: KeyFactory, media: MediaServer, db: Database
) -> None:
    secret, key_id = make_key("Small", key_type="trial", storage_limit_bytes=100 * MB)
    feed = media.url("feed/show.rss?episodes=tiny.mp4,tiny.mp4&lengths=60000000,60000000")
    refused = client.post("/jobs", headers={"x-api-key": secret}, json={"url": feed})
    assert refused.status_code == 403
    body = refused.json()
    assert (body["error"], body["limit_gb"], body["used_gb"]) == ("Storage quota exceeded", "0.10", "0.00")
    assert (body["stored_gb"], body["reserved_gb"]) == ("0.00", "0.00")
    assert body["message"] == (
        "This API key has a 100.0 MB limit and has used 0.00 GB; this request needs about 114.4 MB"
        " and 100.0 MB is left"
    )
    assert books(db, key_id)[:2] == (0, 0)
    # Without announced sizes the same two episodes share the room left: admitted whole.
    unsized = media.url("feed/show.rss?episodes=tiny.mp4,tiny.mp4&lengths=none")
    assert client.post("/jobs", headers={"x-api-key": secret}, json={"url": unsized}).status_code == 200
    assert reserved_by_job(db, key_id) == [MB, MB]  # the suite's 1 MB default fits twice


def test_the_403_tells_stored_from_reserved(client: TestClient, make_key: KeyFactory, db: Database) -> None:
    secret, key_id = make_key("Busy", key_type="trial", storage_limit_bytes=GB)
    with db.write() as session:
        session.execute(
            update(KeyCounters)
            .where(KeyCounters.key_id == key_id)
            .values(used_bytes=3 * GB // 10, reserved_bytes=GB - 3 * GB // 10)  # full
        )
    refused = client.post("/jobs", headers={"x-api-key": secret}, json={"url": "http://127.0.0.1:9/a.mp4"})
    assert refused.status_code == 403
    assert refused.json() == {
        "error": "Storage quota exceeded",
        "limit_gb": "1.00",
        "used_gb": "1.00",
        "stored_gb": "0.30",
        "reserved_gb": "0.70",
        "message": "This API key has a 1 GB limit and has used 1.00 GB (0.30 GB stored, 0.70 GB reserved"
        " for jobs still in progress, released as they finish)",
    }


def test_a_job_larger_than_the_room_left_fails_and_bills_nothing(
    client: TestClient, make_key: KeyFactory, worker: Worker, media: MediaServer, db: Database,
    real_default: int, five_mb: str,
) -> None:  # fmt: skip
    secret, key_id = make_key("Tight", key_type="trial", storage_limit_bytes=2 * MB)  # the file is ~5 MB
    created = client.post("/jobs", headers={"x-api-key": secret}, json={"url": media.url(f"media/{five_mb}")})
    assert created.status_code == 200
    assert drain(worker) == 1
    job = client.get(f"/jobs/{created.json()['job_id']}", headers={"x-api-key": secret}).json()
    assert (job["status"], job["error"]) == ("Failed", "Storage quota exceeded")
    assert books(db, key_id)[:2] == (0, 0)  # no overshoot, no leaked reservation
    usage = client.get("/usage", headers={"x-api-key": secret}).json()
    assert (usage["storage_usage_gb"], usage["storage_reserved_gb"]) == (0.0, 0.0)


def test_the_reservation_follows_the_size_the_source_announces(
    client: TestClient, make_key: KeyFactory, worker: Worker, media: MediaServer, db: Database,
    real_default: int, media_dir: Path,
) -> None:  # fmt: skip
    """The worker shrinks a default reservation to the source's size once it knows it: the
    room given back is seen by the next admission while the job still runs."""
    secret, key_id = make_key("Trial", key_type="trial", storage_limit_bytes=100 * MB)
    url = media.url("slow/tiny.mp4?kbps=40")  # ~1.5 s to download: time to look
    created = client.post("/jobs", headers={"x-api-key": secret}, json={"url": url})
    assert created.status_code == 200
    assert books(db, key_id)[1] == 100 * MB  # everything left, for now
    seen: list[int] = []
    runner = threading.Thread(target=drain, args=(worker,))
    runner.start()
    try:
        while runner.is_alive():
            seen.append(books(db, key_id)[1])
            runner.join(0.05)
    finally:
        runner.join()
    size = (media_dir / "tiny.mp4").stat().st_size
    assert any(0 < r < MB for r in seen), seen  # shrunk to about the source's size mid-run
    assert max(seen) <= 100 * MB and books(db, key_id)[1] == 0
    assert abs(books(db, key_id)[0] - size) < size  # billed the output, about the source's size


def test_64_submissions_never_pass_a_nearly_full_limit(
    live_server: str, make_key: KeyFactory, db: Database, settings: Settings
) -> None:
    default = settings.default_reservation_bytes
    limit = 10 * default + default // 2  # ten defaults, then a half share, then nothing
    secret, key_id = make_key("Nearly full", key_type="trial", storage_limit_bytes=limit)
    stop = threading.Event()
    worst: list[int] = []

    def watch() -> None:
        while not stop.is_set():
            used, reserved, cap = books(db, key_id)
            worst.append(used + reserved - cap)

    watcher = threading.Thread(target=watch)
    watcher.start()
    barrier = threading.Barrier(64)

    def post(i: int) -> int:
        with httpx.Client(base_url=live_server, timeout=30) as http:
            barrier.wait()
            return http.post(
                "/jobs", headers={"x-api-key": secret}, json={"url": f"http://127.0.0.1:9/{i}.mp4"}
            ).status_code

    try:
        with ThreadPoolExecutor(64) as pool:
            codes = list(pool.map(post, range(64)))
    finally:
        stop.set()
        watcher.join()
    assert codes.count(200) == 11 and codes.count(403) == 53
    assert worst and max(worst) <= 0
    assert sorted(reserved_by_job(db, key_id)) == [default // 2] + [default] * 10
    assert books(db, key_id)[1] == limit
