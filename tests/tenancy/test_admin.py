"""The operator's view: token auth kept apart from API keys, and admin figures that equal the
sums of the per-key endpoints."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from squall.admin.auth import current_operator
from squall.admin.tokens import create_token
from squall.cli import app as cli
from squall.clock import now_ms
from squall.db import Database
from squall.keys.auth import current_key
from squall.settings import Settings
from tests.support.helpers import TEST_SECRET, KeyFactory

ADMIN_ROUTES = [("GET", "/admin/keys"), ("GET", "/admin/queue"), ("PATCH", "/admin/keys/key_id")]


def _calls(dependant: Dependant) -> Iterator[object]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def _routes(routes: list[Any]) -> Iterator[Any]:
    for route in routes:
        included = getattr(route, "original_router", None)  # an included router (FastAPI ≥ 0.12x)
        yield from _routes(included.routes) if included is not None else [route]


def routes_needing(app: FastAPI, dependency: object) -> list[tuple[str, str]]:
    """Every (method, path) of ``app`` whose route depends on ``dependency``."""
    found = []
    for route in _routes(app.routes):
        if isinstance(route, APIRoute) and dependency in _calls(route.dependant):
            path = route.path.replace("{", "").replace("}", "")  # any id: auth answers first
            found += [(method, path) for method in sorted(route.methods)]
    return found


@pytest.fixture
def operator(db: Database) -> dict[str, str]:
    with db.write() as session:
        new = create_token(session, pepper=TEST_SECRET, name="ops", now=now_ms())
    return {"Authorization": f"Bearer {new.token}"}


def test_an_api_key_gets_401_on_every_admin_route(client: TestClient, api_key: str) -> None:
    admin_routes = routes_needing(client.app, current_operator)  # type: ignore[arg-type]
    assert {(m, p) for m, p in ADMIN_ROUTES} <= set(admin_routes)
    for method, path in admin_routes:
        for headers in ({"x-api-key": api_key}, {"Authorization": f"Bearer {api_key}"}, {}):
            answer = client.request(method, path, headers=headers, json={})
            assert answer.status_code == 401, (method, path, headers)
            assert "operator token" in answer.json()["error"]


def test_an_operator_token_gets_401_on_every_tenant_route(
    client: TestClient, operator: dict[str, str]
) -> None:
    token = operator["Authorization"].split()[1]
    tenant_routes = routes_needing(client.app, current_key)  # type: ignore[arg-type]
    assert len(tenant_routes) >= 20 and ("POST", "/jobs") in tenant_routes
    for method, path in tenant_routes:
        for headers in (operator, {"x-api-key": token}):
            answer = client.request(method, path, headers=headers, json={"url": "http://127.0.0.1:9/a.mp4"})
            assert answer.status_code == 401, (method, path, headers)


def test_metrics_need_the_operator_token_or_an_allowed_address(
    client: TestClient, operator: dict[str, str], api_key: str, settings: Settings
) -> None:
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"x-api-key": api_key}).status_code == 401
    client.post("/jobs", headers={"x-api-key": api_key}, json={"url": "http://127.0.0.1:9/a.mp4"})
    text = client.get("/metrics", headers=operator).text
    assert 'squall_jobs{status="pending"} 1.0' in text
    assert 'squall_queue_depth{priority="5"} 1.0' in text
    assert "squall_job_duration_seconds_bucket" in text and "squall_rate_limited_requests_total" in text
    assert "key_id" not in text  # no per-key series


@pytest.fixture
def metrics_allowed(settings: Settings) -> Settings:
    settings.metrics_allow = "10.0.0.0/8, 127.0.0.1/32"
    return settings


def test_metrics_open_to_the_allowed_addresses_only(metrics_allowed: Settings, live_server: str) -> None:
    """A real server on 127.0.0.1: the address the request comes from is what is checked."""
    assert httpx.get(f"{live_server}/metrics").status_code == 200


def test_every_admin_figure_equals_the_per_key_endpoints(
    client: TestClient, make_key: KeyFactory, operator: dict[str, str]
) -> None:
    keys = [make_key(f"client {i}")[0] for i in range(3)]
    for n, secret in enumerate(keys):
        for _ in range(n + 1):
            assert client.post("/jobs", headers={"x-api-key": secret},
                               json={"url": "http://127.0.0.1:9/a.mp4", "priority": 3 + n}).status_code == 200  # fmt: skip
    listed = client.get("/admin/keys", headers=operator, params={"sort": "jobs", "order": "desc"}).json()
    assert listed["total"] == 3 and [row["jobs"]["total"] for row in listed["keys"]] == [3, 2, 1]
    by_id = {row["client_name"]: row for row in listed["keys"]}
    queue = client.get("/admin/queue", headers=operator).json()
    for secret in keys:
        usage = client.get("/usage", headers={"x-api-key": secret}).json()
        stats = client.get("/dashboard/stats", headers={"x-api-key": secret}).json()
        row = by_id[usage["client_name"]]
        assert row["jobs"]["total"] == usage["usage_count"] == stats["total_jobs"]
        assert row["reserved_bytes"] == usage["storage_reserved_bytes"]
        assert row["stored_bytes"] == usage["storage_usage_bytes"]
        assert row["jobs"]["pending"] == stats["pending_jobs"]
    assert queue["pending"] == sum(row["jobs"]["pending"] for row in listed["keys"]) == 6
    assert sum(row["pending"] for row in queue["by_key"]) == 6
    assert {row["priority"]: row["pending"] for row in queue["by_priority"]} == {5: 3, 4: 2, 3: 1}
    page = client.get("/admin/keys", headers=operator, params={"limit": 1, "offset": 1}).json()
    assert page["total"] == 3 and len(page["keys"]) == 1
    bad = client.get("/admin/keys", headers=operator, params={"sort": "nonsense"})
    assert bad.status_code == 400 and "sort must be one of" in bad.json()["error"]


def test_patch_changes_limits_and_revokes_as_the_cli_does(
    client: TestClient, make_key: KeyFactory, operator: dict[str, str]
) -> None:
    secret, key_id = make_key()
    changed = client.patch(f"/admin/keys/{key_id}", headers=operator,
                           json={"max_concurrent_jobs": 2, "rate_limit_per_minute": 100})  # fmt: skip
    assert changed.status_code == 200
    assert changed.json()["limits"]["max_concurrent_jobs"] == 2
    assert client.get("/usage", headers={"x-api-key": secret}).json()["max_concurrent_jobs_limit"] == 2
    wrong = client.patch(f"/admin/keys/{key_id}", headers=operator, json={"max_concurrent_jobs": -1})
    assert wrong.status_code == 400 and "error" in wrong.json()
    assert (
        client.patch(f"/admin/keys/{key_id}", headers=operator, json={"revoked": True}).json()["state"]
        == "revoked"
    )
    assert client.get("/usage", headers={"x-api-key": secret}).status_code == 401
    assert client.patch("/admin/keys/nope", headers=operator, json={"revoked": True}).status_code == 404


def test_cli_token_create_and_status(settings: Settings, db: Database, make_key: KeyFactory) -> None:
    env = {"SQUALL_DATABASE_URL": settings.resolved_database_url, "SQUALL_SECRET_KEY": TEST_SECRET,
           "SQUALL_DATA_DIR": str(settings.data_dir)}  # fmt: skip
    runner = CliRunner()
    created = runner.invoke(cli, ["admin", "token", "create", "--name", "me", "--json"], env=env)
    assert created.exit_code == 0, created.output
    assert json.loads(created.output)["token"].startswith("sqop_")
    status = runner.invoke(cli, ["status", "--json"], env=env)
    assert status.exit_code == 0 and json.loads(status.output)["pending"] == 0
    table = runner.invoke(cli, ["status"], env=env)
    assert table.exit_code == 0 and "Workers" in table.output
