"""`squall storage copy --to s3`: the local folder's objects go to the bucket the settings
name, under the same keys, so switching SQUALL_STORAGE to s3 is all that changes and
`squall storage reconcile` is clean. Against moto's S3 server on 127.0.0.1 (as
tests/storage/test_s3.py), with the Squall the copy tests move."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

from squall.audit.storage import reconcile
from squall.db import Database
from squall.storage.factory import make_storage
from squall.storage.local import LocalStorage
from squall.storage.s3 import S3Storage
from tests.dbcopy.conftest import squall
from tests.dbcopy.history import Source

CREDENTIALS = {"access_key_id": "testing", "secret_access_key": "testing", "region": "us-east-1"}


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def bucket(endpoint: str, name: str) -> S3Storage:
    storage = S3Storage(bucket=name, endpoint_url=endpoint, addressing_style="path", **CREDENTIALS)
    storage.client.create_bucket(Bucket=name)
    return storage


def s3_env(endpoint: str, name: str) -> dict[str, str]:
    return {"SQUALL_S3_BUCKET": name, "SQUALL_S3_ENDPOINT_URL": endpoint, "SQUALL_S3_REGION": "us-east-1",
            "SQUALL_S3_ACCESS_KEY_ID": "testing", "SQUALL_S3_SECRET_ACCESS_KEY": "testing",
            "SQUALL_S3_ADDRESSING_STYLE": "path"}  # fmt: skip


def test_objects_move_to_s3_and_reconcile_clean_there(source: Source, s3_endpoint: str) -> None:
    target = bucket(s3_endpoint, "moved")
    local = dict(LocalStorage(source.settings.storage_dir).listing())
    assert len(local) >= 4  # media, a thumbnail, the episodes (one deleted)

    code, output = squall(
        source.settings.data_dir, "storage", "copy", "--to", "s3", **s3_env(s3_endpoint, "moved")
    )
    assert code == 0 and f"copied {len(local)} objects" in output, output
    assert dict(target.listing()) == local

    s3_settings = source.settings.model_copy(update={"storage": "s3", "s3_bucket": "moved",
                                                     "s3_endpoint_url": s3_endpoint,
                                                     "s3_addressing_style": "path", "s3_region": "us-east-1",
                                                     "s3_access_key_id": "testing",
                                                     "s3_secret_access_key": "testing"})  # fmt: skip
    db = Database(source.settings.resolved_database_url)
    try:
        with db.snapshot() as session:
            result = reconcile(session, make_storage(s3_settings).listing())
    finally:
        db.dispose()
    assert not result.drift, result.as_text()

    again = squall(source.settings.data_dir, "storage", "copy", "--to", "s3", **s3_env(s3_endpoint, "moved"))
    assert again[0] == 0 and f"copied 0 objects (0 bytes); {len(local)} were already there" in again[1]


def test_an_object_of_another_size_already_there_is_reported_not_overwritten(
    source: Source, s3_endpoint: str, tmp_path: Path
) -> None:
    target = bucket(s3_endpoint, "clash")
    key = next(iter(dict(LocalStorage(source.settings.storage_dir).listing())))
    (tmp_path / "other").write_bytes(b"someone else's object")
    target.put(tmp_path / "other", key, overwrite=False)
    code, output = squall(
        source.settings.data_dir, "storage", "copy", "--to", "s3", **s3_env(s3_endpoint, "clash")
    )
    assert code == 1 and f"different size in the target, left alone: {key}" in output, output
    assert target.size(key) == os.path.getsize(tmp_path / "other")


def test_without_a_bucket_the_copy_says_what_to_set(source: Source) -> None:
    code, output = squall(source.settings.data_dir, "storage", "copy", "--to", "s3")
    assert code == 2 and "SQUALL_S3_BUCKET" in output, output
    code, output = squall(source.settings.data_dir, "storage", "copy", "--to", "gcs")
    assert code == 2 and "--to must be s3" in output, output
