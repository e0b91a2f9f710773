from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from squall.db import Database
from squall.keys.models import ApiKey
from squall.keys.service import revoke_key
from tests.support.helpers import KeyFactory


def test_missing_key_is_401_with_tornado_body(client: TestClient) -> None:
    response = client.get("/usage")
    assert response.status_code == 401
    assert response.json() == {"error": "Missing x-api-key header"}


def test_unknown_key_is_401(client: TestClient) -> None:
    response = client.get("/usage", headers={"x-api-key": "sk_not_a_real_key"})
    assert response.status_code == 401
    assert response.json() == {"error": "Invalid API Key"}


def test_revoked_key_stops_working(client: TestClient, make_key: KeyFactory, db: Database) -> None:
    secret, key_id = make_key("Soon gone")
    assert client.get("/usage", headers={"x-api-key": secret}).status_code == 200
    with db.write() as session:
        revoke_key(session, key_id)
    response = client.get("/usage", headers={"x-api-key": secret})
    assert response.status_code == 401
    assert response.json() == {"error": "Invalid API Key"}


def test_only_a_keyed_hash_is_stored(make_key: KeyFactory, db: Database) -> None:
    secret, key_id = make_key("Hashed")
    assert secret.startswith("sk_") and len(secret) >= 40
    with db.read() as session:
        row = session.execute(select(ApiKey).where(ApiKey.id == key_id)).scalar_one()
    assert secret not in (row.key_hash, row.key_prefix)
    assert len(row.key_hash) == 64 and row.key_prefix == secret[:10]


def test_every_job_endpoint_needs_a_key(client: TestClient) -> None:
    job = "00000000-0000-4000-8000-000000000000"
    calls = [
        ("POST", "/jobs"),
        ("GET", "/jobs"),
        ("GET", f"/jobs/{job}"),
        ("DELETE", f"/jobs/{job}"),
        ("POST", f"/jobs/{job}/retry"),
        ("DELETE", f"/jobs/{job}/file"),
        ("GET", "/usage"),
        ("GET", "/dashboard/stats"),
        ("GET", "/dashboard/daily"),
        ("GET", "/dashboard/jobs"),
    ]
    for method, path in calls:
        response = client.request(method, path)
        assert response.status_code == 401, (method, path)
        assert response.json() == {"error": "Missing x-api-key header"}
