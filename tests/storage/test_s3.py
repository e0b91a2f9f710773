"""The S3 backend against a real S3 HTTP API: moto's server on 127.0.0.1, port 0."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from boto3.s3.transfer import TransferConfig
from fastapi.testclient import TestClient

from squall.app import create_app
from squall.db import Database
from squall.errors import StorageError
from squall.settings import Settings
from squall.storage.factory import make_storage
from squall.storage.s3 import S3Storage
from squall.units import MB
from squall.worker import Worker
from tests.support.helpers import drain
from tests.support.server import MediaServer

CREDENTIALS = {"access_key_id": "testing", "secret_access_key": "testing", "region": "us-east-1"}


@pytest.fixture
def s3_endpoint(moto_endpoint: str) -> str:
    """The session's S3 server (tests/storage/conftest.py); each test makes its own bucket."""
    return moto_endpoint


@pytest.fixture
def bucket(s3_endpoint: str, request: pytest.FixtureRequest) -> S3Storage:
    storage = S3Storage(bucket=f"b-{abs(hash(request.node.name)) % 10**8}", endpoint_url=s3_endpoint,
                        addressing_style="path", **CREDENTIALS)  # fmt: skip
    storage.client.create_bucket(Bucket=storage.bucket)
    return storage


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_put_never_overwrites_unless_asked(bucket: S3Storage, tmp_path: Path) -> None:
    first, second = write(tmp_path / "1", b"first"), write(tmp_path / "2", b"second")
    assert bucket.put(first, "shows/a.mp4", overwrite=False)
    assert not bucket.put(second, "shows/a.mp4", overwrite=False)  # the bucket refuses (If-None-Match)
    assert bucket.client.get_object(Bucket=bucket.bucket, Key="shows/a.mp4")["Body"].read() == b"first"
    assert bucket.put(second, "shows/a.mp4", overwrite=True)
    assert bucket.size("shows/a.mp4") == 6 and bucket.exists("shows/a.mp4")
    head = bucket.client.head_object(Bucket=bucket.bucket, Key="shows/a.mp4")
    assert head["ContentType"] == "video/mp4"
    bucket.delete("shows/a.mp4")
    assert bucket.size("shows/a.mp4") is None and not bucket.exists("shows/a.mp4")


def test_large_files_go_up_in_parts(s3_endpoint: str, tmp_path: Path) -> None:
    small_parts = TransferConfig(multipart_threshold=5 * MB, multipart_chunksize=5 * MB)
    storage = S3Storage(bucket="multipart", endpoint_url=s3_endpoint, addressing_style="path",
                        transfer=small_parts, **CREDENTIALS)  # fmt: skip
    storage.client.create_bucket(Bucket="multipart")
    data = os.urandom(12 * MB + 123)
    assert storage.put(write(tmp_path / "big", data), "big.mkv", overwrite=False)
    head = storage.client.head_object(Bucket="multipart", Key="big.mkv")
    assert head["ContentLength"] == len(data) and head["ETag"].strip('"').endswith("-3")  # three parts
    assert storage.client.get_object(Bucket="multipart", Key="big.mkv")["Body"].read() == data
    assert not storage.put(write(tmp_path / "other", b"x"), "big.mkv", overwrite=False)


def test_presigned_link_works_from_another_client(bucket: S3Storage, tmp_path: Path) -> None:
    bucket.put(write(tmp_path / "v", b"video bytes"), "v.mp4", overwrite=False)
    url = bucket.presigned_url("v.mp4", "My video.mp4", 24 * 3600)
    assert url is not None and "X-Amz-Expires=86400" in url
    response = httpx.get(url)
    assert response.status_code == 200 and response.content == b"video bytes"
    assert 'filename="My video.mp4"' in response.headers["content-disposition"]


def test_a_missing_bucket_is_a_storage_error(s3_endpoint: str, tmp_path: Path) -> None:
    storage = S3Storage(
        bucket="does-not-exist", endpoint_url=s3_endpoint, addressing_style="path", **CREDENTIALS
    )
    with pytest.raises(StorageError):
        storage.put(write(tmp_path / "x", b"x"), "x.mp4", overwrite=True)


def test_jobs_store_to_the_bucket_end_to_end(
    s3_endpoint: str, settings: Settings, db: Database, media: MediaServer, api_key: str
) -> None:
    settings.storage = "s3"
    settings.s3_bucket, settings.s3_endpoint_url, settings.s3_addressing_style = "squall", s3_endpoint, "path"
    settings.s3_region, settings.s3_access_key_id, settings.s3_secret_access_key = (
        "us-east-1",
        "testing",
        "testing",
    )
    storage = make_storage(settings)
    assert isinstance(storage, S3Storage)
    storage.client.create_bucket(Bucket="squall")
    worker = Worker(settings, db=db, storage=storage)
    with TestClient(create_app(settings, db=db, storage=storage)) as client:
        headers = {"x-api-key": api_key}
        job_id = client.post(
            "/jobs", headers=headers, json={"url": media.url("media/tiny.mp4"), "folder": "s3"}
        ).json()["job_id"]
        drain(worker)
        job: dict[str, Any] = client.get(f"/jobs/{job_id}", headers=headers).json()
        assert job["status"] == "Completed" and job["s3_key"] == "s3/tiny.mp4"
        stored = storage.client.get_object(Bucket="squall", Key="s3/tiny.mp4")["Body"].read()
        assert len(stored) == job["file_size"]
        assert httpx.get(job["s3_url"]).content == stored  # presigned, fetched by a separate client
        squall_link = job["download_url"].removeprefix("http://testserver")  # through Squall, metered
        assert squall_link.startswith(f"/files/{job_id}/tiny.mp4?")
        head = client.head(squall_link)  # answered from the bucket's size: nothing downloaded
        assert head.status_code == 200 and head.headers["content-length"] == str(len(stored))
        assert list(settings.delivery_cache_dir.iterdir()) == []
        first = client.get(squall_link)  # a miss: read from the bucket into the delivery cache
        storage.client.put_object(Bucket="squall", Key="s3/tiny.mp4", Body=b"changed behind Squall's back")
        second = client.get(squall_link)  # a hit: the bucket is not read again
        assert first.content == second.content == stored
        assert 'filename="tiny.mp4"' in second.headers["content-disposition"]
        today = time.strftime("%Y-%m-%d", time.gmtime())
        (day,) = client.get(f"/usage/network?startDate={today}&endDate={today}", headers=headers).json()
        assert (day["requests"], day["bytesDownloaded"], day["cacheHitRate"]) == (3, 2 * len(stored), 33.33)
        assert head.headers["content-disposition"] == second.headers["content-disposition"]
        assert client.get("/usage", headers=headers).json()["storage_usage_bytes"] == len(stored)
        assert client.delete(f"/jobs/{job_id}/file", headers=headers).status_code == 200
        assert not storage.exists("s3/tiny.mp4")
