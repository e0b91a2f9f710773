"""``read_range`` on every backend, each against its real API on 127.0.0.1 (moto's S3 server,
the GCS emulator, Azurite): the bytes of the slice asked for, in bounded chunks, and a missing
object fails when the read is opened (before a response could start)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from squall.errors import StorageError
from squall.storage.azure_blob import AzureBlobStorage
from squall.storage.base import CHUNK
from squall.storage.customer import CustomerS3
from squall.storage.gcs import RANGE_WINDOW, GcsStorage
from squall.storage.local import LocalStorage
from squall.storage.memory import MemoryStorage
from squall.storage.s3 import S3Storage
from squall.units import MB
from tests.storage.conftest import AZURITE_ACCOUNT, AZURITE_KEY
from tests.storage.test_key_storage_providers import azure_container, gcs_bucket, service_account_json

# No database takes part: running them again on PostgreSQL would test nothing new (CI budget).
pytestmark = pytest.mark.skipif(
    os.environ.get("SQUALL_TEST_DATABASE_URL", "").startswith("postgresql"),
    reason="no database in these tests: they run in the SQLite pass only (CI budget)",
)

DATA = os.urandom(4 * MB + 5)  # one of the GCS and Azure windows (4 MB), and a few bytes more


def no_guard(url: str) -> None:
    """The endpoint is the test's own server on loopback: nothing to refuse."""


def check(
    storage: S3Storage | GcsStorage | AzureBlobStorage | MemoryStorage | LocalStorage,
    tmp_path: Path,
    largest: int,
) -> None:
    source = tmp_path / "object"
    source.write_bytes(DATA)
    assert storage.put(source, "dir/object.bin", overwrite=True)
    stream = storage.read_range("dir/object.bin", 1, len(DATA) - 1)  # more than one window
    chunks = list(stream)
    stream.close()
    assert b"".join(chunks) == DATA[1:-1]
    assert len(chunks) >= 2 and max(map(len, chunks)) <= largest
    assert b"".join(storage.read_range("dir/object.bin", len(DATA) - 1, len(DATA))) == DATA[-1:]
    with pytest.raises(StorageError):
        storage.read_range("dir/missing.bin", 0, 10)


def test_s3(moto_endpoint: str, tmp_path: Path) -> None:
    storage = S3Storage(bucket=f"rr-{uuid.uuid4().hex[:12]}", endpoint_url=moto_endpoint, region="us-east-1",
                        access_key_id="testing", secret_access_key="testing", addressing_style="path")  # fmt: skip
    storage.client.create_bucket(Bucket=storage.bucket)
    check(storage, tmp_path, CHUNK)


def test_a_keys_own_s3_bucket(moto_endpoint: str, tmp_path: Path) -> None:
    bucket = f"rr-{uuid.uuid4().hex[:12]}"
    storage = CustomerS3({"endpoint": moto_endpoint, "bucket": bucket, "access_key": "testing",
                          "secret_key": "testing", "region": "us-east-1"}, no_guard)  # fmt: skip
    storage.client.create_bucket(Bucket=bucket)
    check(storage, tmp_path, CHUNK)
    storage.client.delete_object(Bucket=bucket, Key="dir/object.bin")
    storage.client.delete_bucket(Bucket=bucket)
    with pytest.raises(StorageError, match=r"Your s3 storage \(bucket '.*'\) failed: NoSuchBucket"):
        storage.read_range("dir/object.bin", 0, 10)  # in the bucket owner's terms


def test_gcs(gcs_endpoint: str, token_uri: str, tmp_path: Path) -> None:
    bucket = gcs_bucket(gcs_endpoint).name
    storage = GcsStorage({"project_id": "test", "bucket": bucket, "endpoint": gcs_endpoint,
                          "service_account_json": service_account_json(token_uri)}, no_guard)  # fmt: skip
    check(storage, tmp_path, RANGE_WINDOW)


def test_azure_blob(azurite_url: str, tmp_path: Path) -> None:
    container = azure_container(azurite_url).container_name
    storage = AzureBlobStorage({"account_name": AZURITE_ACCOUNT, "container": container, "account_key": AZURITE_KEY,
                                "account_url": azurite_url}, no_guard)  # fmt: skip
    check(storage, tmp_path, 4 * MB)


def test_memory(tmp_path: Path) -> None:
    check(MemoryStorage(), tmp_path, CHUNK)


def test_local(tmp_path: Path) -> None:
    check(LocalStorage(tmp_path / "root"), tmp_path, CHUNK)
