"""Cookies: the operator's file and a key's own (``/user/cookies``), against a local source
that answers 403 without its cookie (tests/support/gated.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from squall.app import create_app
from squall.crypto import SealedSecretError, SecretBox
from squall.db import Database
from squall.keys.models import KeyCookies
from squall.pipeline.cookies import cookie_lines
from squall.settings import Settings
from squall.storage.local import LocalStorage
from squall.worker import Worker
from tests.support.gated import GatedSource
from tests.support.helpers import KeyFactory, drain

SECRET_VALUE = "s3cr3t-session-value"
COOKIE = f"session={SECRET_VALUE}"


def netscape(value: str = SECRET_VALUE) -> str:
    return f"# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\t{value}\n"


def submit(client: TestClient, key: str, url: str) -> str:
    response = client.post("/jobs", headers={"x-api-key": key}, json={"url": url})
    assert response.status_code == 200, response.text
    return str(response.json()["job_id"])


def job(client: TestClient, key: str, job_id: str) -> dict[str, Any]:
    return dict(client.get(f"/jobs/{job_id}", headers={"x-api-key": key}).json())


def test_the_operator_cookie_file_opens_the_source_for_every_key(
    settings: Settings, db: Database, storage: LocalStorage, api_key: str, media_dir: Path, tmp_path: Path
) -> None:
    cookie_file = tmp_path / "cookies.txt"
    cookie_file.write_text(netscape())
    with_cookies = settings.model_copy(update={"cookies_file": cookie_file})
    with (
        TestClient(create_app(with_cookies, db=db, storage=storage)) as client,
        GatedSource(media_dir, COOKIE) as source,
    ):
        job_id = submit(client, api_key, source.url("media/tiny.mp4"))
        drain(Worker(with_cookies, db=db, storage=storage))
        assert job(client, api_key, job_id)["status"] == "Completed"
        found = client.post(
            "/metadata", headers={"x-api-key": api_key}, json={"url": source.url("media/tiny.mp4")}
        )
        assert found.status_code == 200, found.text
    assert COOKIE in source.seen[-1].cookie
    assert cookie_file.read_text() == netscape()  # the child got a copy: the operator's file is untouched


def test_a_keys_cookies_are_used_for_its_jobs_only(
    client: TestClient, worker: Worker, make_key: KeyFactory, db: Database, media_dir: Path
) -> None:
    owner, owner_id = make_key("owner")
    other, _ = make_key("other")
    saved = client.post("/user/cookies", headers={"x-api-key": owner}, content=netscape())
    assert saved.status_code == 200 and saved.json()["cookies"] == 1
    assert SECRET_VALUE not in saved.text  # never returned
    with db.read() as session:
        sealed = session.scalar(select(KeyCookies.sealed).where(KeyCookies.key_id == owner_id))
    assert sealed is not None and SECRET_VALUE.encode() not in sealed  # encrypted at rest

    with GatedSource(media_dir, COOKIE) as source:
        url = source.url("media/tiny.mp4")
        owners, others = submit(client, owner, url), submit(client, other, url)
        drain(worker)
        assert job(client, owner, owners)["status"] == "Completed"
        refused = job(client, other, others)
        assert (refused["status"], refused["error"]) == (
            "Warning",
            "Video unavailable (the source answered HTTP 403)",
        )
        assert client.post("/metadata", headers={"x-api-key": owner}, json={"url": url}).status_code == 200
        metadata = client.post("/metadata", headers={"x-api-key": other}, json={"url": url})
        assert metadata.status_code == 400 and "HTTP 403" in metadata.json()["error"]

    assert client.delete("/user/cookies", headers={"x-api-key": owner}).status_code == 200
    with GatedSource(media_dir, COOKIE) as source:
        again = submit(client, owner, source.url("media/tiny.mp4"))
        drain(worker)
    assert job(client, owner, again)["status"] == "Warning"  # removed means no longer sent


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("", "No cookies found"),
        ("hello world", "7 tab-separated fields"),
        ('[{"name": "session", "value": "x"}]', "not JSON"),
        ("example.com\tMAYBE\t/\tFALSE\t0\tsession\tx", "flags TRUE or FALSE"),
        ("example.com\tFALSE\t/\tFALSE\tsoon\tsession\tx", "expiry"),
    ],
)
def test_garbage_cookies_get_a_clear_400(client: TestClient, api_key: str, body: str, says: str) -> None:
    response = client.post("/user/cookies", headers={"x-api-key": api_key}, content=body)
    assert response.status_code == 400 and says in response.json()["error"]


def test_cookie_endpoints_need_a_key_and_delete_says_when_there_is_nothing(
    client: TestClient, api_key: str
) -> None:
    assert client.post("/user/cookies", content=netscape()).status_code == 401
    assert client.delete("/user/cookies", headers={"x-api-key": api_key}).status_code == 404
    binary = client.post("/user/cookies", headers={"x-api-key": api_key}, content=b"\xff\xfe\x00")
    assert binary.status_code == 400 and "UTF-8" in binary.json()["error"]


def test_sealed_secrets_open_only_with_their_key_purpose_and_owner() -> None:
    box = SecretBox("server-secret", "cookies")
    sealed = box.seal(b"payload", "key-a")
    assert box.open(sealed, "key-a") == b"payload"
    for wrong_box, owner in [
        (box, "key-b"),
        (SecretBox("server-secret", "storage"), "key-a"),
        (SecretBox("another-secret", "cookies"), "key-a"),
    ]:
        with pytest.raises(SealedSecretError):
            wrong_box.open(sealed, owner)


def test_httponly_lines_and_comments_are_cookies_and_notes() -> None:
    text = "# a note\n#HttpOnly_.example.com\tTRUE\t/\tTRUE\t1999999999\tsid\tv\n\n"
    assert cookie_lines(text) == ["#HttpOnly_.example.com\tTRUE\t/\tTRUE\t1999999999\tsid\tv"]
