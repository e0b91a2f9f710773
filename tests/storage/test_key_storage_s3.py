"""A key's own S3-compatible bucket, end to end against moto's S3 server on 127.0.0.1:
configure (verified), store, download (presigned and through Squall), delete, reconcile;
the documented 400s; per-request storage; isolation between keys; a bucket that breaks."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import MetaData, select

from squall.app import create_app
from squall.audit.backends import reconcile_all
from squall.db import Database
from squall.keys.storage_models import JobStorage, StorageBackend
from squall.keys.storage_service import StoragePicker, storage_box
from squall.pipeline.urlguard import url_policy
from squall.settings import Settings
from squall.storage import customer
from squall.storage.local import LocalStorage
from squall.worker import Worker
from tests.support.helpers import drain
from tests.support.server import MediaServer

SECRET = "squall-test-secret-key-that-must-never-leak"


def new_bucket(endpoint: str) -> str:
    name = f"byo-{uuid.uuid4().hex[:12]}"
    s3(endpoint).create_bucket(Bucket=name)
    return name


def s3(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip


def s3_body(endpoint: str, bucket: str, **extra: str) -> dict[str, str]:
    return {"endpoint": endpoint, "bucket": bucket, "region": "us-east-1", "access_key": "AKIDTEST",
            "secret_key": SECRET, **extra}  # fmt: skip


@pytest.fixture
def app_client(settings: Settings, db: Database, storage: LocalStorage) -> Iterator[TestClient]:
    with TestClient(create_app(settings, db=db, storage=storage)) as client:
        yield client


def headers(key: str) -> dict[str, str]:
    return {"x-api-key": key}


def every_stored_value(db: Database) -> str:
    """Every row of every table, as text: where a leaked secret would show."""
    meta = MetaData()
    with db.read() as session:
        meta.reflect(bind=session.get_bind())
        return "\n".join(repr(row) for table in meta.sorted_tables for row in session.execute(select(table)))


def test_a_keys_bucket_holds_its_jobs_end_to_end(
    app_client: TestClient, worker: Worker, make_key: Any, media: MediaServer, moto_endpoint: str,
    settings: Settings, db: Database, storage: LocalStorage,
) -> None:  # fmt: skip
    key = make_key("byo")[0]
    bucket = new_bucket(moto_endpoint)
    answer = app_client.post("/user/s3", headers=headers(key),
                             json=s3_body(moto_endpoint, bucket, folder_prefix="acme/"))  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"message": "S3 storage configured successfully", "provider": "s3",
                             "container_or_bucket": bucket, "folder_prefix": "acme/"}  # fmt: skip
    assert "Contents" not in s3(moto_endpoint).list_objects_v2(Bucket=bucket)  # the check file is gone
    shown = app_client.get("/user/storage", headers=headers(key)).json()
    assert shown["provider"] == "s3" and shown["container_or_bucket"] == bucket and SECRET not in str(shown)

    job_id = app_client.post("/jobs", headers=headers(key),
                             json={"url": media.url("media/tiny.mp4"), "folder": "shows"}).json()["job_id"]  # fmt: skip
    drain(worker)
    job = app_client.get(f"/jobs/{job_id}", headers=headers(key)).json()
    assert job["status"] == "Completed", job
    assert job["s3_key"] == "acme/videos/shows/tiny.mp4"
    stored = s3(moto_endpoint).get_object(Bucket=bucket, Key=job["s3_key"])["Body"].read()
    assert len(stored) == job["file_size"] and not storage.exists(job["s3_key"])
    assert bucket in job["s3_url"] and httpx.get(job["s3_url"]).content == stored  # the bucket's own link
    assert (
        app_client.get(job["download_url"].removeprefix("http://testserver")).content == stored
    )  # via Squall
    assert app_client.get("/usage", headers=headers(key)).json()["storage_usage_bytes"] == len(stored)

    picker = StoragePicker(storage, storage_box(settings.resolved_secret_key()), url_policy(settings))
    with db.read() as session:
        report = reconcile_all(session, picker)
    assert not report.drift, report.as_text()
    assert [r.result.listed_objects for r in report.backends if r.key_id and r.result] == [1]
    s3(moto_endpoint).put_object(Bucket=bucket, Key="acme/videos/stray.bin", Body=b"?")
    s3(moto_endpoint).put_object(Bucket=bucket, Key="customers-own/file.txt", Body=b"?")  # outside our root
    with db.read() as session:
        drifted = reconcile_all(session, picker)
    assert drifted.drift and "acme/videos/stray.bin" in drifted.as_text()
    assert "customers-own" not in drifted.as_text()
    s3(moto_endpoint).delete_object(Bucket=bucket, Key="acme/videos/stray.bin")

    assert app_client.delete(f"/jobs/{job_id}/file", headers=headers(key)).status_code == 200
    assert s3(moto_endpoint).list_objects_v2(Bucket=bucket, Prefix="acme/")["KeyCount"] == 0
    with db.read() as session:
        assert not reconcile_all(session, picker).drift
    assert SECRET not in every_stored_value(db)  # sealed, never in the clear


def test_removing_the_configuration_sends_later_jobs_to_the_operator(
    app_client: TestClient, worker: Worker, make_key: Any, media: MediaServer, moto_endpoint: str,
    storage: LocalStorage,
) -> None:  # fmt: skip
    key, other = make_key("a")[0], make_key("b")[0]
    bucket = new_bucket(moto_endpoint)
    assert (
        app_client.post("/user/s3", headers=headers(key), json=s3_body(moto_endpoint, bucket)).status_code
        == 200
    )
    assert app_client.get("/user/storage", headers=headers(other)).json() == {
        "provider": "managed",
        "configured": False,
    }
    first = app_client.post("/jobs", headers=headers(key), json={"url": media.url("media/tiny.mp4")}).json()[
        "job_id"
    ]
    drain(worker)
    assert app_client.delete("/user/s3", headers=headers(key)).status_code == 200
    assert app_client.delete("/user/s3", headers=headers(key)).status_code == 404
    second = app_client.post("/jobs", headers=headers(key), json={"url": media.url("media/tiny.mp4")}).json()[
        "job_id"
    ]
    drain(worker)
    earlier = app_client.get(f"/jobs/{first}", headers=headers(key)).json()
    later = app_client.get(f"/jobs/{second}", headers=headers(key)).json()
    assert earlier["s3_key"] == "videos/tiny.mp4" and storage.exists(later["s3_key"])
    assert (
        app_client.delete(f"/jobs/{first}/file", headers=headers(key)).status_code == 200
    )  # still deletable
    assert s3(moto_endpoint).list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_verification_failures_are_400s_and_save_nothing(
    app_client: TestClient, make_key: Any, moto_endpoint: str, silent_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    key = make_key()[0]
    missing = app_client.post(
        "/user/s3", headers=headers(key), json=s3_body(moto_endpoint, "no-such-bucket-here")
    )
    assert (missing.status_code, missing.json()) == (400, {"error": "Verification failed: NoSuchBucket"})

    httpx.post(f"{moto_endpoint}/moto-api/reset-auth", content=b"0")  # moto checks credentials from now
    try:
        bucket_body = s3_body(moto_endpoint, "any-bucket")
        denied = app_client.post("/user/s3", headers=headers(key), json=bucket_body)
        assert (denied.status_code, denied.json()) == (400, {"error": "Verification failed: Access Denied"})
        oss = app_client.post("/user/oss", headers=headers(key), json={
            "endpoint": moto_endpoint, "bucket": "any-bucket", "access_key_id": "x", "access_key_secret": "y"})  # fmt: skip
        assert oss.json() == {"error": "Credential validation failed: AccessDenied"}
    finally:
        httpx.post(f"{moto_endpoint}/moto-api/reset-auth", content=b"inf")

    monkeypatch.setattr(customer, "VERIFY_SECONDS", 1.0)  # the bound is 10 s; the mechanism is the same
    started = time.monotonic()
    stalled = app_client.post("/user/s3", headers=headers(key), json=s3_body(silent_endpoint, "b"))
    assert (stalled.status_code, stalled.json()) == (400, {"error": "Verification failed: timeout"})
    assert time.monotonic() - started < 5  # bounded by the deadline, not by socket timeouts
    assert app_client.get("/user/storage", headers=headers(key)).json()["configured"] is False

    blob = app_client.post("/user/blob", headers=headers(key), json={"account_name": "a", "container": "c"})
    assert (
        blob.status_code == 400 and "Either account_key or sas_token must be provided" in blob.json()["error"]
    )


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "127.0.0.2", "[::ffff:127.0.0.1]"])
def test_an_endpoint_on_a_loopback_address_is_refused(
    settings: Settings, db: Database, storage: LocalStorage, make_key: Any, host: str
) -> None:
    settings.allow_private_urls = False
    key = make_key()[0]
    with TestClient(create_app(settings, db=db, storage=storage)) as client:
        answer = client.post("/user/s3", headers=headers(key), json=s3_body(f"http://{host}:9", "b"))
        assert answer.status_code == 400 and "endpoint" in answer.json()["error"]
        assert "private or local address" in answer.json()["error"]
        assert client.get("/user/storage", headers=headers(key)).json()["configured"] is False


def test_a_request_storage_endpoint_obeys_the_same_rules(
    settings: Settings, db: Database, storage: LocalStorage, make_key: Any, media: MediaServer
) -> None:
    settings.allow_private_urls, settings.allowed_private_networks = (
        False,
        "127.0.0.1/32",
    )  # the media server only
    key = make_key()[0]
    with TestClient(create_app(settings, db=db, storage=storage)) as client:
        job = client.post("/jobs", headers=headers(key), json={
            "url": media.url("media/tiny.mp4"), "storage": {"provider": "s3", **s3_body("http://127.0.0.2:9", "b")}})  # fmt: skip
        assert (
            job.status_code == 400 and "endpoint points at a private or local address" in job.json()["error"]
        )
        assert client.get("/usage", headers=headers(key)).json()["usage_count"] == 0


def test_a_request_storage_overrides_the_key_and_leaves_no_secret(
    app_client: TestClient, worker: Worker, make_key: Any, media: MediaServer, moto_endpoint: str, db: Database,
) -> None:  # fmt: skip
    key = make_key()[0]
    configured, requested = new_bucket(moto_endpoint), new_bucket(moto_endpoint)
    assert (
        app_client.post("/user/s3", headers=headers(key), json=s3_body(moto_endpoint, configured)).status_code
        == 200
    )
    per_request = {"provider": "s3", **s3_body(moto_endpoint, requested, base_folder="inbox")}
    per_request["secret_key"] = "per-request-secret-that-must-go"
    job_id = app_client.post("/jobs", headers=headers(key),
                             json={"url": media.url("media/tiny.mp4"), "storage": per_request}).json()["job_id"]  # fmt: skip
    with db.read() as session:
        (row,) = session.scalars(select(StorageBackend).where(StorageBackend.per_request.is_(True))).all()
        assert row.sealed is not None  # kept sealed while the job waits
    drain(worker)
    job = app_client.get(f"/jobs/{job_id}", headers=headers(key)).json()
    assert job["status"] == "Completed" and job["s3_key"] == "inbox/tiny.mp4"
    assert (
        s3(moto_endpoint).head_object(Bucket=requested, Key="inbox/tiny.mp4")["ContentLength"]
        == job["file_size"]
    )
    assert s3(moto_endpoint).list_objects_v2(Bucket=configured)["KeyCount"] == 0
    with db.read() as session:
        assert (
            session.scalar(select(StorageBackend.sealed).where(StorageBackend.per_request.is_(True))) is None
        )
    everything = every_stored_value(db)
    assert "per-request-secret-that-must-go" not in everything and "AKIDTEST" not in everything
    assert job["s3_url"] is None and job["download_url"] is None  # Squall can no longer reach that bucket
    assert (
        app_client.delete(f"/jobs/{job_id}/file", headers=headers(key)).status_code == 200
    )  # the books forget it
    assert s3(moto_endpoint).head_object(
        Bucket=requested, Key="inbox/tiny.mp4"
    )  # the bucket's owner keeps it
    bulk = app_client.post("/jobs/bulk", headers=headers(key), json={
        "jobs": [{"url": media.url("media/tiny.mp4")}, {"url": media.url("media/tiny.mp4"), "filename": "two"}],
        "storage": per_request})  # fmt: skip
    assert bulk.status_code == 200, bulk.text
    with db.read() as session:
        bound = session.scalars(select(JobStorage.job_id).join(
            StorageBackend, StorageBackend.id == JobStorage.backend_id).where(StorageBackend.bucket == requested))  # fmt: skip
        assert set(bulk.json()["job_ids"]) <= set(bound)
    incomplete = app_client.post("/jobs", headers=headers(key),
                                 json={"url": media.url("media/tiny.mp4"), "storage": {"provider": "s3"}})  # fmt: skip
    assert incomplete.status_code == 400 and incomplete.json()["error"].startswith("storage:")


def test_a_broken_bucket_fails_only_its_keys_jobs(
    app_client: TestClient, worker: Worker, make_key: Any, media: MediaServer, moto_endpoint: str,
) -> None:  # fmt: skip
    broken, healthy = make_key("broken")[0], make_key("healthy")[0]
    bucket = new_bucket(moto_endpoint)
    assert (
        app_client.post("/user/s3", headers=headers(broken), json=s3_body(moto_endpoint, bucket)).status_code
        == 200
    )
    s3(moto_endpoint).delete_bucket(Bucket=bucket)  # deleted after it was saved
    failing = app_client.post(
        "/jobs", headers=headers(broken), json={"url": media.url("media/tiny.mp4")}
    ).json()
    fine = app_client.post(
        "/jobs", headers=headers(healthy), json={"url": media.url("media/tiny.mp4")}
    ).json()
    drain(worker)
    failed = app_client.get(f"/jobs/{failing['job_id']}", headers=headers(broken)).json()
    done = app_client.get(f"/jobs/{fine['job_id']}", headers=headers(healthy)).json()
    assert (
        failed["status"] == "Failed"
        and f"storage (bucket '{bucket}') failed: NoSuchBucket" in failed["error"]
    )
    assert done["status"] == "Completed"
