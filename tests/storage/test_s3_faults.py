"""Bucket faults between Squall and moto's S3 server, injected by a fault proxy the test
programs (tests/support/s3_fault_proxy.py): 5xx, throttling, resets, lost answers and stalls on
PUT, multipart, GET and DELETE. Passing faults are retried; lasting ones fail the job with a
clear error, and neither leaves an object the books do not know nor bills an upload twice."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from boto3.s3.transfer import TransferConfig
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from squall.app import create_app
from squall.audit.storage import reconcile
from squall.audit.usage import verify
from squall.db import Database
from squall.errors import StorageError
from squall.jobs.models import Job
from squall.metering import ledger
from squall.metering.models import UsageEvent
from squall.settings import Settings
from squall.storage.factory import make_storage
from squall.storage.s3 import S3Storage
from squall.units import MB
from squall.worker import Worker
from tests.support.helpers import drain
from tests.support.s3_fault_proxy import S3FaultProxy
from tests.support.server import MediaServer

CREDENTIALS = {"access_key_id": "testing", "secret_access_key": "testing", "region": "us-east-1"}


@pytest.fixture
def proxy(moto_endpoint: str) -> Iterator[S3FaultProxy]:
    with S3FaultProxy(moto_endpoint) as fault_proxy:
        yield fault_proxy


@pytest.fixture
def direct(moto_endpoint: str, request: pytest.FixtureRequest) -> S3Storage:
    """The test's own view of the bucket, straight to moto (no faults)."""
    name = f"faults-{abs(hash(request.node.name)) % 10**8}"
    storage = S3Storage(bucket=name, endpoint_url=moto_endpoint, addressing_style="path", **CREDENTIALS)
    storage.client.create_bucket(Bucket=name)
    return storage


@pytest.fixture
def faulty(settings: Settings, proxy: S3FaultProxy, direct: S3Storage) -> S3Storage:
    """Squall's storage, as the settings make it, through the proxy: 5 tries, 1 s timeouts."""
    settings.storage, settings.s3_bucket, settings.s3_endpoint_url = "s3", direct.bucket, proxy.url
    settings.s3_addressing_style, settings.s3_region = "path", "us-east-1"
    settings.s3_access_key_id = settings.s3_secret_access_key = "testing"
    settings.s3_max_attempts, settings.s3_timeout_seconds = 5, 1.0
    storage = make_storage(settings)
    assert isinstance(storage, S3Storage)
    return storage


@pytest.fixture
def api(settings: Settings, db: Database, faulty: S3Storage) -> Iterator[TestClient]:
    with TestClient(create_app(settings, db=db, storage=faulty)) as client:
        yield client


@pytest.fixture
def run(settings: Settings, db: Database, faulty: S3Storage) -> Worker:
    return Worker(settings, db=db, storage=faulty)


def submit(api: TestClient, key: str, media: MediaServer, folder: str = "f") -> str:
    created = api.post(
        "/jobs", headers={"x-api-key": key}, json={"url": media.url("media/tiny.mp4"), "folder": folder}
    )
    assert created.status_code == 200, created.text
    return str(created.json()["job_id"])


def job_of(api: TestClient, key: str, job_id: str) -> dict[str, Any]:
    return dict(api.get(f"/jobs/{job_id}", headers={"x-api-key": key}).json())


def assert_books_clean(db: Database, direct: S3Storage) -> None:
    """`storage reconcile` and `usage verify` find nothing; no multipart upload is left open."""
    with db.read() as session:
        found = reconcile(session, direct.listing())
        assert not found.drift, found.as_text()
        assert not verify(session).drift
    assert not direct.client.list_multipart_uploads(Bucket=direct.bucket).get("Uploads")


def stored_objects_billed(db: Database, job_id: str) -> int:
    with db.read() as session:
        total = session.scalar(
            select(func.coalesce(func.sum(UsageEvent.quantity), 0)).where(
                UsageEvent.job_id == job_id, UsageEvent.metric == ledger.STORED_OBJECTS
            )
        )
    return int(total or 0)


def test_passing_faults_on_put_are_retried_and_each_job_stored_once(
    api: TestClient, run: Worker, api_key: str, media: MediaServer, proxy: S3FaultProxy,
    direct: S3Storage, db: Database,
) -> None:  # fmt: skip
    proxy.fail("put", "503")  # throttled
    proxy.fail("put", "reset")  # the connection dies mid-body
    proxy.fail("put", "stall")  # never answered: the 1 s read timeout ends the wait
    proxy.fail("put", "lost", times=2)  # the bucket acts, the answer is lost: a retry meets a 412
    jobs = [submit(api, api_key, media) for _ in range(2)]  # one name: the second takes an alternate
    assert drain(run) == 2
    done = [job_of(api, api_key, job_id) for job_id in jobs]
    assert [job["status"] for job in done] == ["Completed"] * 2, [job["error"] for job in done]
    keys = {job["s3_key"] for job in done}
    assert "f/tiny.mp4" in keys and len(keys) == 2
    assert {name for name, _ in direct.listing()} == keys  # no object twice, none unknown
    assert [fault for kind, fault in proxy.seen if kind == "put"][:5] == [
        "503",
        "reset",
        "stall",
        "lost",
        "lost",
    ]
    with db.read() as session:  # each within its first run
        assert set(session.scalars(select(Job.attempt).where(Job.id.in_(jobs)))) == {1}
    assert [stored_objects_billed(db, job_id) for job_id in jobs] == [1, 1]
    assert_books_clean(db, direct)


def test_a_bucket_that_keeps_failing_fails_the_job_clearly_and_bills_nothing(
    api: TestClient, run: Worker, api_key: str, media: MediaServer, proxy: S3FaultProxy,
    direct: S3Storage, db: Database, settings: Settings,
) -> None:  # fmt: skip
    settings.max_attempts = 2
    proxy.fail(
        "put", "500", times=None
    )  # 500, not 503: the backoff after throttling (1 s and up) costs CI time
    job_id = submit(api, api_key, media)
    assert drain(run) == 2  # the job's 2 attempts (no backoff in tests), each with 5 tries of the PUT
    job = job_of(api, api_key, job_id)
    assert (job["status"], job["error_type"]) == ("Failed", "error")
    assert job["error"] == (
        f"S3 bucket '{direct.bucket}': upload of f/tiny.mp4 failed: the bucket answered InternalError (HTTP 500) "
        "after 5 attempts"
    )
    assert proxy.count("put", "500") == 10
    assert list(direct.listing()) == []
    assert stored_objects_billed(db, job_id) == 0
    usage = api.get("/usage", headers={"x-api-key": api_key}).json()
    assert (usage["storage_usage_bytes"], usage["storage_reserved_gb"]) == (0, 0.0)  # released
    assert_books_clean(db, direct)

    proxy.clear()  # the bucket is back: the next job goes through
    second = submit(api, api_key, media)
    assert drain(run) == 1
    assert job_of(api, api_key, second)["status"] == "Completed"
    assert_books_clean(db, direct)


def test_reads_and_deletes_through_a_failing_bucket(
    api: TestClient, run: Worker, api_key: str, media: MediaServer, proxy: S3FaultProxy,
    direct: S3Storage, db: Database, settings: Settings,
) -> None:  # fmt: skip
    job_id = submit(api, api_key, media)
    drain(run)
    job = job_of(api, api_key, job_id)
    link = job["download_url"].removeprefix("http://testserver")

    proxy.fail("get", "500", times=None)
    failed = api.get(link)
    assert failed.status_code == 502
    assert failed.json()["error"].startswith(f"S3 bucket '{direct.bucket}': download of f/tiny.mp4 failed")
    assert [p.name for p in settings.delivery_cache_dir.iterdir()] == []  # no partial copy kept
    proxy.clear()
    proxy.fail("get", "reset")
    assert (
        api.get(link).content
        == direct.client.get_object(Bucket=direct.bucket, Key="f/tiny.mp4")["Body"].read()
    )

    proxy.fail("delete", "500", times=None)  # not 503: its backoff (1, 2, 4, 8 s) costs CI time
    refused = api.delete(f"/jobs/{job_id}/file", headers={"x-api-key": api_key})
    assert refused.status_code == 502 and "delete of f/tiny.mp4 failed" in refused.json()["error"]
    assert job_of(api, api_key, job_id)["s3_key"] == "f/tiny.mp4"  # the books still know the object
    assert_books_clean(db, direct)
    proxy.clear()
    proxy.fail("delete", "lost")  # deleted, answer lost: the retried DELETE is answered 204 anyway
    assert api.delete(f"/jobs/{job_id}/file", headers={"x-api-key": api_key}).status_code == 200
    assert list(direct.listing()) == []
    assert_books_clean(db, direct)


@pytest.fixture
def six_mb(tmp_path: Path) -> Path:
    if os.environ.get("SQUALL_TEST_DATABASE_URL", "").startswith("postgresql"):
        pytest.skip("the storage-only fault tests (multipart, a silent bucket) run in the SQLite pass only: "
                    "they use no database (CI budget)")  # fmt: skip
    path = tmp_path / "big.mkv"
    path.write_bytes(os.urandom(6 * MB))
    return path


def in_parts(proxy: S3FaultProxy, bucket: str) -> S3Storage:
    """Multipart from 5 MB (S3's smallest part), through the proxy."""
    parts = TransferConfig(multipart_threshold=5 * MB, multipart_chunksize=5 * MB)
    return S3Storage(bucket=bucket, endpoint_url=proxy.url, addressing_style="path", transfer=parts,
                     timeouts=(1.0, 1.0), max_attempts=3, **CREDENTIALS)  # fmt: skip


@pytest.mark.parametrize("kind", ["part", "complete_multipart"])
def test_a_failed_multipart_upload_is_aborted(
    proxy: S3FaultProxy, direct: S3Storage, six_mb: Path, kind: str
) -> None:
    storage = in_parts(proxy, direct.bucket)
    proxy.fail(kind, "503" if kind == "part" else "reset", times=None)
    with pytest.raises(StorageError, match=f"S3 bucket '{direct.bucket}': upload of big.mkv failed"):
        storage.put(six_mb, "big.mkv", overwrite=False)
    assert proxy.count("create_multipart") == 1 and proxy.count("abort_multipart") == 1
    assert not direct.client.list_multipart_uploads(Bucket=direct.bucket).get("Uploads")
    assert list(direct.listing()) == []


def test_passing_multipart_faults_end_in_one_whole_object(
    proxy: S3FaultProxy, direct: S3Storage, six_mb: Path
) -> None:
    storage = in_parts(proxy, direct.bucket)
    proxy.fail("create_multipart", "500")
    proxy.fail("part", "reset")
    proxy.fail("complete_multipart", "stall")
    assert storage.put(six_mb, "big.mkv", overwrite=False)
    assert direct.client.get_object(Bucket=direct.bucket, Key="big.mkv")["Body"].read() == six_mb.read_bytes()
    assert not direct.client.list_multipart_uploads(Bucket=direct.bucket).get("Uploads")
    assert [name for name, _ in direct.listing()] == ["big.mkv"]


def test_a_bucket_that_never_answers_is_given_up_on_within_the_limits(
    proxy: S3FaultProxy, direct: S3Storage, six_mb: Path
) -> None:
    storage = S3Storage(bucket=direct.bucket, endpoint_url=proxy.url, addressing_style="path",
                        timeouts=(0.5, 0.5), max_attempts=2, **CREDENTIALS)  # fmt: skip
    small = six_mb.with_name("small")
    small.write_bytes(b"x" * 1000)
    proxy.fail("put", "stall", times=None)
    with pytest.raises(StorageError, match="the bucket did not answer in time"):
        storage.put(small, "small.mp4", overwrite=False)
    assert proxy.count("put", "stall") == 2  # max_attempts tries, then the error
    assert list(direct.listing()) == []
