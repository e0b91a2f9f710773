"""``squall secrets rotate``: sealed cookies and storage credentials move from the old
SQUALL_SECRET_KEY to the new one, the new secret becomes the database's, and a second run
changes nothing."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import Any

import boto3
from fastapi.testclient import TestClient
from sqlalchemy import select

from squall.app import create_app
from squall.db import Database
from squall.keys.cookies import cookie_box, load_cookies
from squall.keys.fingerprint import remember_secret, secret_fingerprint, stored_fingerprint
from squall.keys.storage_models import StorageBackend
from squall.keys.storage_service import open_body, storage_box
from squall.settings import Settings
from squall.storage.local import LocalStorage
from tests.keys.test_cookies import netscape
from tests.support.helpers import PYTHON, TEST_SECRET, worker_env

NEW_SECRET = "the-new-server-secret-after-rotation"


def rotate(settings: Settings, old_file: Path) -> subprocess.CompletedProcess[str]:
    env = {**worker_env(settings), "SQUALL_SECRET_KEY": NEW_SECRET}
    return subprocess.run([PYTHON, "-m", "squall", "secrets", "rotate", "--old-secret-file", str(old_file)],
                          env=env, capture_output=True, text=True, timeout=60)  # fmt: skip


def test_rotate_reseals_cookies_and_storage_credentials(
    settings: Settings, db: Database, storage: LocalStorage, make_key: Any, moto_endpoint: str, tmp_path: Path
) -> None:
    key, key_id = make_key()
    bucket = f"rot-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1", aws_access_key_id="testing",
                 aws_secret_access_key="testing").create_bucket(Bucket=bucket)  # fmt: skip
    with TestClient(create_app(settings, db=db, storage=storage)) as client:
        auth = {"x-api-key": key}
        assert client.post("/user/cookies", headers=auth, content=netscape()).status_code == 200
        body = {"endpoint": moto_endpoint, "bucket": bucket, "access_key": "AK", "secret_key": "rotate-me"}
        assert client.post("/user/s3", headers=auth, json=body).status_code == 200
    with db.write() as session:
        remember_secret(session, TEST_SECRET)
    old_file = tmp_path / "old_secret"
    old_file.write_text(TEST_SECRET + "\n")

    done = rotate(settings, old_file)
    assert done.returncode == 0, done.stderr
    assert "re-encrypted 1 cookie files and 1 storage configurations" in done.stdout
    with db.read() as session:
        row = session.scalars(select(StorageBackend).where(StorageBackend.key_id == key_id)).one()
        assert open_body(row, storage_box(NEW_SECRET)).model_dump()["secret_key"] == "rotate-me"
        assert load_cookies(session, key_id, cookie_box(NEW_SECRET)) == netscape()
        assert stored_fingerprint(session) == secret_fingerprint(NEW_SECRET)
    again = rotate(settings, old_file)
    assert again.returncode == 0 and "2 were already under the new secret" in again.stdout
