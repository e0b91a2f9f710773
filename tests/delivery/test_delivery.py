"""Metered delivery at /files/...: known traffic gives exact requests, bytes and hit rate;
conditional and ranged requests; early disconnects; the delivery cache; retention;
reconciliation of the books with the storage."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

from squall.app import create_app
from squall.clock import ManualClock, now_ms
from squall.db import Database
from squall.db.base import new_id
from squall.delivery.cache import DeliveryCache
from squall.jobs.models import Job
from squall.metering import ledger
from squall.metering.ledger import Usage
from squall.settings import Settings
from squall.storage.local import LocalStorage
from squall.storage.memory import MemoryStorage
from squall.storage.signing import signed_url
from squall.worker import Worker
from tests.support.helpers import TEST_SECRET, KeyFactory, drain
from tests.support.server import MediaServer


def today() -> str:
    return time.strftime("%Y-%m-%d", time.gmtime())


def network_today(client: TestClient | httpx.Client, key: str) -> dict[str, Any]:
    days = client.get("/usage/network", headers={"x-api-key": key},
                      params={"startDate": today(), "endDate": today()}).json()  # fmt: skip
    return dict(days[0])


def completed_link(client: TestClient, key: str, worker: Worker, media: MediaServer) -> tuple[str, int]:
    job_id = client.post(
        "/jobs", headers={"x-api-key": key}, json={"url": media.url("media/tiny.mp4")}
    ).json()["job_id"]
    drain(worker)
    job = client.get(f"/jobs/{job_id}", headers={"x-api-key": key}).json()
    return job["download_url"].removeprefix("http://testserver"), int(job["file_size"])


def test_known_traffic_gives_exact_requests_bytes_and_hit_rate(
    client: TestClient, api_key: str, worker: Worker, media: MediaServer
) -> None:
    path, size = completed_link(client, api_key, worker, media)
    full = [client.get(path) for _ in range(2)]  # N = 2 full downloads
    assert [r.status_code for r in full] == [200, 200] and len(full[0].content) == size
    ranges = [client.get(path, headers={"Range": r}) for r in ("bytes=0-99", "bytes=100-1099")]  # M = 2
    assert [(r.status_code, len(r.content)) for r in ranges] == [(206, 100), (206, 1000)]
    assert ranges[1].headers["content-range"] == f"bytes 100-1099/{size}"
    head = client.head(path)
    assert head.status_code == 200 and head.headers["content-length"] == str(size) and head.content == b""
    etag = full[0].headers["etag"]
    assert client.get(path, headers={"If-None-Match": etag}).status_code == 304  # a hit: nothing read
    assert client.get(path, headers={"If-None-Match": '"other"'}).status_code == 200
    unsatisfiable = client.get(path, headers={"Range": f"bytes={size + 10}-"})
    assert unsatisfiable.status_code == 416 and unsatisfiable.headers["content-range"] == f"bytes */{size}"
    assert 'filename="tiny.mp4"' in full[0].headers["content-disposition"]

    day = network_today(client, api_key)
    assert day["requests"] == 8  # 2 full + 2 ranges + HEAD + 304 + 200 + 416
    assert day["bytesDownloaded"] == 3 * size + 100 + 1000  # bodies actually sent
    assert day["cacheHitRate"] == round(100 * 1 / 8, 2)  # local storage: only the 304 skipped the backend


def test_bad_links_are_refused_and_not_metered(
    client: TestClient, api_key: str, worker: Worker, media: MediaServer
) -> None:
    path, _ = completed_link(client, api_key, worker, media)
    assert client.get(path.replace("sig=", "sig=0")).status_code == 401
    assert client.get(path.replace("tiny.mp4", "other.mp4")).status_code == 401  # the name is signed too
    assert network_today(client, api_key)["requests"] == 0


def stored_object(db: Database, storage: LocalStorage, key_id: str, name: str, data: bytes) -> str:
    """A completed job whose output is ``data`` (for traffic that no generated video needs)."""
    source = storage.root.parent / f"{name}.src"
    source.write_bytes(data)
    storage.put(source, name, overwrite=True)
    source.unlink()
    job_id, now = new_id(), now_ms()
    with db.write() as session:
        session.add(Job(id=job_id, key_id=key_id, url="http://example.com/x", options={}, priority=5,
                        status="Completed", step="Finished", attempt=1, max_attempts=1, run_after=now,
                        reserved_bytes=0, created_at=now, finished_at=now, output_key=name,
                        file_size=len(data), stored_bytes=len(data)))  # fmt: skip
        ledger.record(session, key_id=key_id, job_id=job_id, at_ms=now, dedupe_prefix=job_id,
                      events=[Usage(ledger.STORED_OBJECTS, 1), Usage(ledger.STORED_BYTES, len(data))])  # fmt: skip
    return job_id


def test_a_client_that_disconnects_early_is_metered_for_what_it_was_sent(
    live_server: str, db: Database, storage: LocalStorage, make_key: KeyFactory
) -> None:
    key, key_id = make_key("Partial")
    size = 64 * 1024 * 1024
    job_id = stored_object(db, storage, key_id, "big.bin", os.urandom(1024) * (size // 1024))
    url = live_server + signed_url("", job_id, "big.bin", secret=TEST_SECRET, now_s=int(time.time()))
    with httpx.Client() as http, http.stream("GET", url) as response:
        assert response.status_code == 200
        received = 0
        for chunk in response.iter_raw(64 * 1024):
            received += len(chunk)
            if received >= 1024 * 1024:
                break  # leaving the block closes the connection
    with httpx.Client(base_url=live_server) as api:
        deadline = time.monotonic() + 20
        while (day := network_today(api, key))["requests"] == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
    assert day["requests"] == 1
    assert received <= day["bytesDownloaded"] < size // 2  # socket buffers hold a little more


def test_the_delivery_cache_fills_once_and_evicts_the_least_recently_used(tmp_path: Path) -> None:
    cache = DeliveryCache(tmp_path / "cache", max_bytes=3000)
    fetched: list[str] = []
    gate = threading.Barrier(8)

    def fetch_as(key: str) -> Any:
        def fetch(target: Path) -> None:
            fetched.append(key)
            time.sleep(0.05)  # a slow bucket: concurrent misses pile up behind one fill
            target.write_bytes(b"x" * 1000)

        return fetch

    def miss() -> None:
        gate.wait()
        cache.fill("a", 1000, fetch_as("a"))

    threads = [threading.Thread(target=miss) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert fetched == ["a"]  # eight concurrent misses, one read of the bucket
    for key in ("b", "c"):
        cache.fill(key, 1000, fetch_as(key))
    os.utime(cache.path_for("b"), (1, 1))  # b is now the least recently used
    os.utime(cache.path_for("a"), (2, 2))
    assert cache.lookup("c") is not None  # a hit marks it used
    cache.fill("d", 1000, fetch_as("d"))
    assert cache.lookup("b") is None and all(cache.lookup(k) for k in ("a", "c", "d"))
    big, cached = cache.fill("huge", 5000, lambda target: target.write_bytes(b"y" * 5000))
    assert not cached and big != cache.path_for("huge") and cache.lookup("huge") is None


def test_retention_deletes_old_outputs_and_meters_the_delete(
    client: TestClient, make_key: KeyFactory, worker: Worker, media: MediaServer, db: Database, settings: Settings,
) -> None:  # fmt: skip
    key, _ = make_key("Short-lived", retention_days=1)
    job_id = client.post(
        "/jobs", headers={"x-api-key": key}, json={"url": media.url("media/tiny.mp4")}
    ).json()["job_id"]
    drain(worker)
    assert worker.apply_retention() == 0  # not a day old yet
    worker.clock = ManualClock(now_ms() + 2 * 86_400_000)  # the worker's clock only
    assert worker.apply_retention() == 1
    job = client.get(f"/jobs/{job_id}", headers={"x-api-key": key}).json()
    assert job["s3_key"] is None and not (settings.storage_dir / "tiny.mp4").exists()
    in_two_days = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 2 * 86400))
    days = client.get("/usage/storage", headers={"x-api-key": key},
                      params={"startDate": today(), "endDate": in_two_days}).json()  # fmt: skip
    assert [d["numberOfObjects"] for d in days] == [0, 1, 1]  # newest first: deleted the day retention ran
    assert client.get("/usage", headers={"x-api-key": key}).json()["storage_usage_bytes"] == job["file_size"]


def run_reconcile(settings: Settings) -> tuple[int, str]:
    import subprocess

    from tests.support.helpers import PYTHON, worker_env

    done = subprocess.run([PYTHON, "-m", "squall", "storage", "reconcile"], env=worker_env(settings),
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    return done.returncode, done.stdout


def test_reconcile_reports_drift_between_books_and_storage(
    client: TestClient, api_key: str, worker: Worker, media: MediaServer, settings: Settings
) -> None:
    client.post("/jobs", headers={"x-api-key": api_key}, json={"url": media.url("media/tiny.mp4")})
    drain(worker)
    code, out = run_reconcile(settings)
    assert code == 0 and out.strip().endswith("no drift"), out
    (settings.storage_dir / "tiny.mp4").unlink()  # lost behind Squall's back
    (settings.storage_dir / "stray.bin").write_bytes(b"?")
    code, out = run_reconcile(settings)
    assert code == 1
    assert (
        "missing from storage: 1\n  tiny.mp4" in out and "in storage, not in the books: 1\n  stray.bin" in out
    )
    assert (settings.storage_dir / "stray.bin").exists()  # reported, never fixed


def test_a_head_with_a_range_answers_as_the_get_does_on_a_cache_miss_and_hit(
    settings: Settings, db: Database, api_key: str, media: MediaServer
) -> None:
    """A remote bucket (the in-memory one): the first HEAD is a miss, answered from the
    object's size without reading it; after a GET fills the delivery cache, a hit. Either way
    a HEAD with a Range has the GET's status, Content-Range and Content-Length."""
    storage = MemoryStorage()
    worker = Worker(settings, db=db, storage=storage)
    with TestClient(create_app(settings, db=db, storage=storage)) as client:
        path, size = completed_link(client, api_key, worker, media)
        asked = [{"Range": "bytes=0-99"}, {"Range": "bytes=-50"}, {"Range": "bytes=0-9,20-29"},
                 {"Range": f"bytes={size + 10}-"}, {}]  # fmt: skip

        def answers(method: str) -> list[tuple[int, str | None, str | None, str | None]]:
            replies = [client.request(method, path, headers=headers) for headers in asked]
            assert method == "GET" or all(
                reply.content == b"" for reply in replies if reply.status_code < 400
            )
            return [(reply.status_code, reply.headers.get("content-range"), reply.headers.get("content-length"),
                     reply.headers.get("content-type", "").partition(";")[0]) for reply in replies]  # fmt: skip

        cache_dir = settings.delivery_cache_dir
        missed = answers("HEAD")
        assert not any(cache_dir.iterdir())  # nothing fetched: every HEAD was a miss
        got = answers("GET")  # fills the cache
        assert any(cache_dir.iterdir())
        hit = answers("HEAD")
    assert missed == got == hit
    assert [status for status, *_ in got] == [206, 206, 206, 416, 200]
    assert got[0][1:3] == (f"bytes 0-99/{size}", "100")
