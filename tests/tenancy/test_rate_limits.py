"""Per-key rate limits: 429 with Retry-After and the IETF draft's headers, shared across API
processes through the database (two apps with their own limiters stand for two processes
here), other keys unaffected."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from squall.app import create_app
from squall.db import Database
from squall.keys.models import ApiKey
from squall.keys.ratelimit import RateLimiter, batch_size
from squall.settings import Settings
from squall.storage.local import LocalStorage
from tests.support.helpers import KeyFactory


def limit_key(db: Database, key_id: str, per_minute: int) -> None:
    with db.write() as session:
        session.execute(update(ApiKey).where(ApiKey.id == key_id).values(rate_limit_per_minute=per_minute))


MID_MINUTE = 1_900_000_020.0  # seconds: 20 s into a window, so no test straddles two


def pin_clock(app_client: TestClient, db: Database) -> TestClient:
    """The app's limiter on a clock that stands still (a fixed window must not roll over
    mid-test)."""
    app_client.app.state.rate_limiter = RateLimiter(db, clock=lambda: MID_MINUTE)  # type: ignore[attr-defined]
    return app_client


@pytest.fixture
def limited_client(client: TestClient, db: Database) -> TestClient:
    return pin_clock(client, db)


@pytest.fixture
def second_client(settings: Settings, db: Database, storage: LocalStorage) -> Iterator[TestClient]:
    """Another API process: its own app, its own limiter, the same database."""
    with TestClient(create_app(settings, db=db, storage=storage)) as test_client:
        yield pin_clock(test_client, db)


def test_past_its_limit_a_key_gets_429_with_the_headers_and_others_do_not(
    limited_client: TestClient, make_key: KeyFactory, db: Database
) -> None:
    limited, limited_id = make_key("limited")
    other, _ = make_key("other")
    limit_key(db, limited_id, 5)
    client = limited_client
    answers = [client.get("/usage", headers={"x-api-key": limited}) for _ in range(7)]
    assert [a.status_code for a in answers] == [200] * 5 + [429] * 2
    refused = answers[-1]
    assert "Rate limit exceeded" in refused.json()["error"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["RateLimit-Policy"] == '"per-key";q=5;w=60'
    assert refused.headers["RateLimit"].startswith('"per-key";r=0;t=')
    assert (
        client.post(
            "/jobs", headers={"x-api-key": limited}, json={"url": "http://127.0.0.1:9/a.mp4"}
        ).status_code
        == 429
    )
    assert all(client.get("/usage", headers={"x-api-key": other}).status_code == 200 for _ in range(10))


def test_the_operators_default_applies_to_keys_without_their_own(
    settings: Settings, db: Database, storage: LocalStorage, make_key: KeyFactory
) -> None:
    secret, _ = make_key()
    settings.rate_limit_per_minute = 3
    with TestClient(create_app(settings, db=db, storage=storage)) as limited_app:
        pin_clock(limited_app, db)
        codes = [limited_app.get("/usage", headers={"x-api-key": secret}).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]


@pytest.mark.parametrize("limit", [20, 400])
def test_two_processes_together_admit_no_more_than_the_limit_plus_the_tolerance(
    limited_client: TestClient, second_client: TestClient, make_key: KeyFactory, db: Database, limit: int
) -> None:
    client = limited_client
    secret, key_id = make_key()
    limit_key(db, key_id, limit)
    admitted = 0
    for i in range(limit * 2):
        answer = (client if i % 2 else second_client).get("/usage", headers={"x-api-key": secret})
        admitted += answer.status_code == 200
    tolerance = 2 * (batch_size(limit) - 1)  # two processes (keys/ratelimit.py)
    assert limit - tolerance <= admitted <= limit + tolerance


def test_a_limit_under_one_hundred_a_minute_is_exact_across_limiters(
    db: Database, make_key: KeyFactory
) -> None:
    _, key_id = make_key()
    limiters = [RateLimiter(db, sync_seconds=3600, clock=lambda: MID_MINUTE) for _ in range(3)]
    allowed = sum(limiters[i % 3].check(key_id, 10).allowed for i in range(30))
    assert allowed == 10
