"""Azure Blob (Azurite), Google Cloud Storage (gcp-storage-emulator, with a stand-in token
endpoint) and Alibaba OSS (its S3-compatible API, against moto: this tests Squall's code
path, not Alibaba's server) as a key's own storage, each end to end on 127.0.0.1."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from squall.app import create_app
from squall.audit.backends import reconcile_all
from squall.db import Database
from squall.keys.storage_service import StoragePicker, storage_box
from squall.pipeline.urlguard import url_policy
from squall.settings import Settings
from squall.storage.local import LocalStorage
from squall.worker import Worker
from tests.storage.conftest import AZURITE_ACCOUNT, AZURITE_KEY
from tests.support.helpers import drain
from tests.support.server import MediaServer

Reader = Callable[[str], bytes | None]  # an object's bytes, straight from the provider (None: absent)


@pytest.fixture
def app_client(settings: Settings, db: Database, storage: LocalStorage) -> Iterator[TestClient]:
    with TestClient(create_app(settings, db=db, storage=storage)) as client:
        yield client


def round_trip(client: TestClient, worker: Worker, key: str, media: MediaServer, read: Reader, settings: Settings,
               db: Database, storage: LocalStorage, expected_key: str) -> None:  # fmt: skip
    """A job stores there; s3_url and download_url both give its bytes; delete; no drift."""
    auth = {"x-api-key": key}
    job_id = client.post(
        "/jobs", headers=auth, json={"url": media.url("media/tiny.mp4"), "folder": "f"}
    ).json()["job_id"]
    drain(worker)
    job = client.get(f"/jobs/{job_id}", headers=auth).json()
    assert job["status"] == "Completed", job
    assert job["s3_key"] == expected_key
    stored = read(expected_key)
    assert stored is not None and len(stored) == job["file_size"]
    assert httpx.get(job["s3_url"]).content == stored  # the provider's own link
    assert client.get(job["download_url"].removeprefix("http://testserver")).content == stored
    picker = StoragePicker(storage, storage_box(settings.resolved_secret_key()), url_policy(settings))
    with db.read() as session:
        assert not reconcile_all(session, picker).drift
    assert client.delete(f"/jobs/{job_id}/file", headers=auth).status_code == 200
    assert read(expected_key) is None
    with db.read() as session:
        assert not reconcile_all(session, picker).drift


# -- Azure Blob -------------------------------------------------------------------------------
def azure_container(url: str) -> Any:
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient(url, credential={"account_name": AZURITE_ACCOUNT, "account_key": AZURITE_KEY})
    return service.create_container(f"c{uuid.uuid4().hex[:12]}")


def test_azure_blob_end_to_end(
    app_client: TestClient, worker: Worker, make_key: Any, media: MediaServer, azurite_url: str,
    settings: Settings, db: Database, storage: LocalStorage,
) -> None:  # fmt: skip
    from azure.core.exceptions import ResourceNotFoundError

    container = azure_container(azurite_url)
    key = make_key()[0]
    body = {"account_name": AZURITE_ACCOUNT, "container": container.container_name, "account_key": AZURITE_KEY,
            "account_url": azurite_url, "folder_prefix": "tenant-"}  # fmt: skip
    answer = app_client.post("/user/blob", headers={"x-api-key": key}, json=body)
    assert answer.json() == {"message": "Azure Blob storage configured successfully", "provider": "blob",
                             "container_or_bucket": container.container_name, "folder_prefix": "tenant-"}  # fmt: skip

    def read(name: str) -> bytes | None:
        try:
            return bytes(container.download_blob(name).readall())
        except ResourceNotFoundError:
            return None

    round_trip(app_client, worker, key, media, read, settings, db, storage, "tenant-videos/f/tiny.mp4")


def test_azure_blob_verification_failures(app_client: TestClient, make_key: Any, azurite_url: str) -> None:
    key = {"x-api-key": make_key()[0]}
    container = azure_container(azurite_url).container_name
    wrong_key = "A" * 86 + "=="
    denied = app_client.post("/user/blob", headers=key, json={
        "account_name": AZURITE_ACCOUNT, "container": container, "account_key": wrong_key, "account_url": azurite_url})  # fmt: skip
    assert (denied.status_code, denied.json()) == (400, {"error": "Verification failed: Access Denied"})
    missing = app_client.post("/user/blob", headers=key, json={
        "account_name": AZURITE_ACCOUNT, "container": "nope", "account_key": AZURITE_KEY, "account_url": azurite_url})  # fmt: skip
    assert (missing.status_code, missing.json()) == (400, {"error": "Verification failed: ContainerNotFound"})


# -- Google Cloud Storage ---------------------------------------------------------------------
def service_account_json(token_uri: str, email: str = "squall@test.iam.gserviceaccount.com") -> str:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()  # fmt: skip
    return json.dumps({"type": "service_account", "project_id": "test", "private_key_id": "1", "private_key": pem,
                       "client_email": email, "client_id": "1", "token_uri": token_uri})  # fmt: skip


def gcs_bucket(endpoint: str) -> Any:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage as gcs

    client = gcs.Client(
        project="test", credentials=AnonymousCredentials(), client_options={"api_endpoint": endpoint}
    )
    return client.create_bucket(f"b{uuid.uuid4().hex[:12]}")


def test_gcs_end_to_end(
    app_client: TestClient, worker: Worker, make_key: Any, media: MediaServer, gcs_endpoint: str, token_uri: str,
    settings: Settings, db: Database, storage: LocalStorage,
) -> None:  # fmt: skip
    bucket = gcs_bucket(gcs_endpoint)
    key = make_key()[0]
    body = {"project_id": "test", "bucket": bucket.name, "endpoint": gcs_endpoint,
            "service_account_json": service_account_json(token_uri)}  # fmt: skip
    answer = app_client.post("/user/gcs", headers={"x-api-key": key}, json=body)
    assert answer.json() == {"message": "Google Cloud Storage configured successfully", "provider": "gcs",
                             "container_or_bucket": bucket.name}  # fmt: skip

    def read(name: str) -> bytes | None:
        blob = bucket.get_blob(name)
        return None if blob is None else bytes(blob.download_as_bytes())

    round_trip(app_client, worker, key, media, read, settings, db, storage, "videos/f/tiny.mp4")


def test_gcs_verification_failures(
    app_client: TestClient, make_key: Any, gcs_endpoint: str, token_uri: str
) -> None:
    key = {"x-api-key": make_key()[0]}
    bucket = gcs_bucket(gcs_endpoint).name
    revoked = service_account_json(token_uri, email="revoked@test.iam.gserviceaccount.com")
    denied = app_client.post("/user/gcs", headers=key, json={
        "project_id": "test", "bucket": bucket, "endpoint": gcs_endpoint, "service_account_json": revoked})  # fmt: skip
    assert (denied.status_code, denied.json()) == (400, {"error": "Verification failed: Access Denied"})
    missing = app_client.post("/user/gcs", headers=key, json={
        "project_id": "test", "bucket": "nope-nope", "endpoint": gcs_endpoint,
        "service_account_json": service_account_json(token_uri)})  # fmt: skip
    assert (missing.status_code, missing.json()) == (400, {"error": "Verification failed: NoSuchBucket"})
    bad_json = app_client.post("/user/gcs", headers=key, json={
        "project_id": "test", "bucket": bucket, "service_account_json": "not json at all"})  # fmt: skip
    assert bad_json.status_code == 400 and "service_account_json" in bad_json.json()["error"]


# -- Alibaba OSS (S3-compatible API) ----------------------------------------------------------
def test_oss_end_to_end_through_its_s3_compatible_api(
    app_client: TestClient, worker: Worker, make_key: Any, media: MediaServer, moto_endpoint: str,
    settings: Settings, db: Database, storage: LocalStorage,
) -> None:  # fmt: skip
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    bucket = f"oss-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    key = make_key()[0]
    body = {
        "endpoint": moto_endpoint,
        "bucket": bucket,
        "access_key_id": "LTAI-test",
        "access_key_secret": "s",
    }
    answer = app_client.post("/user/oss", headers={"x-api-key": key}, json=body)
    assert answer.json()["message"] == "Alibaba OSS storage configured successfully"

    def read(name: str) -> bytes | None:
        try:
            return bytes(client.get_object(Bucket=bucket, Key=name)["Body"].read())
        except client.exceptions.NoSuchKey:
            return None

    round_trip(app_client, worker, key, media, read, settings, db, storage, "videos/f/tiny.mp4")
