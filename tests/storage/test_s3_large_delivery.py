"""Objects larger than the delivery cache, in an S3 bucket (moto's server on 127.0.0.1): a
client's Range reaches the bucket as one ranged GetObject for just those bytes, a whole-object
GET streams in chunks and lands nowhere on disk, and metering counts exactly the bytes sent.

What reached the bucket is recorded at the boundary: botocore's ``before-send`` event sees
every HTTP request the client sends (method and ``Range`` header), after retries and all."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from squall.clock import now_ms
from squall.db import Database
from squall.db.base import new_id
from squall.jobs.models import Job
from squall.settings import Settings
from squall.storage.base import CHUNK, ByteStream
from squall.storage.s3 import S3Storage
from squall.storage.signing import signed_url
from squall.units import MB
from tests.delivery.test_delivery import network_today
from tests.support.helpers import TEST_SECRET, KeyFactory


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.delivery_cache_mb = 1  # every object below is larger than the whole cache
    return settings


@pytest.fixture
def storage(moto_endpoint: str) -> S3Storage:  # the operator's storage is a bucket here (overrides local)
    bucket = S3Storage(bucket=f"large-{uuid.uuid4().hex[:12]}", endpoint_url=moto_endpoint, region="us-east-1",
                       access_key_id="testing", secret_access_key="testing", addressing_style="path")  # fmt: skip
    bucket.client.create_bucket(Bucket=bucket.bucket)
    return bucket


class BucketLog:
    """The requests sent to the bucket, and the chunks and closes of every ranged read."""

    def __init__(self, storage: S3Storage) -> None:
        self.sent: list[tuple[str, str | None]] = []
        self.chunks: list[int] = []
        self.closed = 0
        storage.client.meta.events.register("before-send.s3", self._record)
        read_range = storage.read_range

        def counted(key: str, start: int, end: int) -> ByteStream:
            stream = read_range(key, start, end)

            def chunks() -> Iterator[bytes]:
                for chunk in stream:
                    self.chunks.append(len(chunk))
                    yield chunk

            return ByteStream(chunks(), lambda: (stream.close(), self._closed()))  # type: ignore[func-returns-value]

        storage.read_range = counted  # type: ignore[method-assign]

    def _record(self, request: Any, **_: Any) -> None:
        value = request.headers.get("Range")
        self.sent.append((request.method, value.decode() if isinstance(value, bytes) else value))

    def _closed(self) -> None:
        self.closed += 1

    def since_last(self) -> list[tuple[str, str | None]]:
        """(method, Range header) of each request sent to the bucket since the last call."""
        found, self.sent = self.sent, []
        return found


def stored(db: Database, storage: S3Storage, tmp_path: Path, key_id: str, data: bytes) -> str:
    """A completed job whose output ``big.bin`` (``data``) is in the bucket: its id."""
    source = tmp_path / "big.src"
    source.write_bytes(data)
    assert storage.put(source, "big.bin", overwrite=True)
    job_id, now = new_id(), now_ms()
    with db.write() as session:
        session.add(Job(id=job_id, key_id=key_id, url="http://example.com/x", options={}, priority=5,
                        status="Completed", step="Finished", attempt=1, max_attempts=1, run_after=now,
                        reserved_bytes=0, created_at=now, finished_at=now, output_key="big.bin",
                        file_size=len(data), stored_bytes=len(data)))  # fmt: skip
    return job_id


def test_ranges_of_an_object_beyond_the_cache_are_ranged_reads_of_the_bucket(
    client: TestClient,
    storage: S3Storage,
    db: Database,
    make_key: KeyFactory,
    settings: Settings,
    tmp_path: Path,
) -> None:
    key, key_id = make_key("Big")
    data = os.urandom(3 * MB + 123)
    size = len(data)
    job_id = stored(db, storage, tmp_path, key_id, data)
    bucket = BucketLog(storage)
    link = signed_url("", job_id, "big.bin", secret=TEST_SECRET, now_s=int(time.time()))

    one_mb = client.get(link, headers={"Range": f"bytes={MB}-{2 * MB - 1}"})
    assert (one_mb.status_code, one_mb.content) == (206, data[MB : 2 * MB])
    assert one_mb.headers["content-range"] == f"bytes {MB}-{2 * MB - 1}/{size}"
    assert bucket.since_last() == [
        ("HEAD", None),
        ("GET", f"bytes={MB}-{2 * MB - 1}"),
    ]  # that MB, nothing else
    assert max(bucket.chunks) <= CHUNK and sum(bucket.chunks) == MB

    suffix = client.get(link, headers={"Range": "bytes=-1000"})
    assert (suffix.status_code, suffix.content) == (206, data[-1000:])
    assert bucket.since_last() == [("GET", f"bytes={size - 1000}-{size - 1}")]  # the size is remembered
    tail = client.get(link, headers={"Range": f"bytes={size - 5000}-"})
    assert (tail.status_code, tail.content) == (206, data[-5000:])
    assert bucket.since_last() == [("GET", f"bytes={size - 5000}-{size - 1}")]

    beyond = client.get(link, headers={"Range": f"bytes={size}-"})
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{size}"
    malformed = client.get(link, headers={"Range": "bytes=9-5"})
    assert malformed.status_code == 400
    assert bucket.since_last() == []  # refused before the bucket is asked for anything

    bucket.chunks.clear()
    whole = client.get(link)
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["content-length"] == str(size) and whole.headers["accept-ranges"] == "bytes"
    assert bucket.since_last() == [("GET", f"bytes=0-{size - 1}")]
    # Chunked: no piece of the object larger than a chunk is held, and no copy lands on disk.
    assert len(bucket.chunks) >= size // CHUNK and max(bucket.chunks) <= CHUNK
    assert [p.name for p in settings.delivery_cache_dir.iterdir()] == []
    assert bucket.closed == 4  # every ranged read released its connection

    assert client.get(link, headers={"If-None-Match": whole.headers["etag"]}).status_code == 304
    head = client.head(link)
    assert head.status_code == 200 and head.headers["content-length"] == str(size)
    assert bucket.since_last() == []

    day = network_today(client, key)
    assert day["requests"] == 8  # 3 ranges + 416 + 400 + whole + 304 + HEAD
    assert day["bytesDownloaded"] == MB + 1000 + 5000 + size + len(beyond.content) + len(malformed.content)
    assert day["cacheHitRate"] == round(100 * 1 / 8, 2)  # only the 304 did not read the bucket


def test_a_client_that_leaves_a_streamed_object_is_metered_for_what_it_was_sent(
    live_server: str, storage: S3Storage, db: Database, make_key: KeyFactory, tmp_path: Path
) -> None:
    key, key_id = make_key("Leaves")
    size = 16 * MB
    job_id = stored(db, storage, tmp_path, key_id, os.urandom(MB) * 16)
    bucket = BucketLog(storage)
    url = live_server + signed_url("", job_id, "big.bin", secret=TEST_SECRET, now_s=int(time.time()))
    with httpx.Client() as http, http.stream("GET", url) as response:
        assert response.status_code == 200 and response.headers["content-length"] == str(size)
        received = 0
        for chunk in response.iter_raw(64 * 1024):
            received += len(chunk)
            if received >= MB:
                break  # leaving the block closes the connection
    with httpx.Client(base_url=live_server) as api:
        deadline = time.monotonic() + 20
        while (day := network_today(api, key))["requests"] == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        while bucket.closed == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert day["requests"] == 1
    assert received <= day["bytesDownloaded"] < size // 2  # socket buffers hold a little more
    assert bucket.closed == 1 and sum(bucket.chunks) < size // 2  # the bucket's stream stopped too
