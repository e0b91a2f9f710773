from __future__ import annotations

from fastapi.testclient import TestClient

from squall.admin.tokens import create_token
from squall.db import Database
from tests.support.helpers import TEST_SECRET


def test_openapi_promises_400_not_422(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    responses = [op["responses"] for path in schema["paths"].values() for op in path.values()]
    assert responses and all("422" not in r for r in responses)
    create = schema["paths"]["/jobs"]["post"]["responses"]
    assert {"200", "400", "401", "403"} <= set(create)


def test_health_and_metrics(client: TestClient, api_key: str, db: Database) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    client.post("/jobs", headers={"x-api-key": api_key}, json={"url": "http://127.0.0.1:9/a.mp4"})
    assert client.get("/metrics").status_code == 401  # the operator's (tests/tenancy/test_admin.py)
    with db.write() as session:
        token = create_token(session, pepper=TEST_SECRET, name="ops", now=0).token
    metrics = client.get("/metrics", headers={"Authorization": f"Bearer {token}"}).text
    assert 'squall_jobs{status="pending"} 1.0' in metrics
    assert "squall_storage_reserved_bytes 1.048576e+06" in metrics


def test_wrong_method_has_an_error_body(client: TestClient) -> None:
    response = client.put("/jobs")
    assert response.status_code == 405 and response.json() == {"error": "Method Not Allowed"}
