"""What the first Schemathesis run found (issue 16), pinned down: integers past 64 bits and
non-ASCII links are a 400/401 with {"error": ...}, not a 500; the OpenAPI document states the
constraints the code enforces; a 405 names every method of its path in ``Allow``."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient


def _parameter(schema: dict[str, Any], path: str, method: str, name: str) -> dict[str, Any]:
    operation = schema["paths"][path][method]
    return next(p for p in operation["parameters"] if p["name"] == name)["schema"]  # type: ignore[no-any-return]


def test_an_offset_past_64_bits_is_a_400(client: TestClient, api_key: str) -> None:
    answer = client.get("/jobs", params={"offset": "1061236473547759812608"}, headers={"x-api-key": api_key})
    assert answer.status_code == 400 and "offset" in answer.json()["error"]


def test_a_link_expiring_past_64_bits_is_refused_not_a_crash(client: TestClient) -> None:
    answer = client.head("/files/job/name.mp4", params={"expires": "14722587936223447040", "sig": "x"})
    assert answer.status_code == 400


def test_a_non_ascii_link_is_an_invalid_link(client: TestClient) -> None:
    answer = client.get("/files/ü/ñame.mp4", params={"expires": str(2**40), "sig": "sïg"})
    assert answer.status_code == 401
    assert answer.json() == {"error": "This download link is invalid or has expired"}


def test_the_document_states_what_the_code_enforces(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert _parameter(schema, "/jobs", "get", "offset")["maximum"] == 2**63 - 1
    assert "completed" in _parameter(schema, "/jobs", "get", "status")["enum"]
    assert "" not in _parameter(schema, "/dashboard/jobs", "get", "status")["enum"]
    assert _parameter(schema, "/usage/network", "get", "startDate")["format"] == "date"
    components = schema["components"]["schemas"]
    assert components["BulkRequest"]["properties"]["jobs"]["minItems"] == 1
    assert components["BulkItem"]["properties"]["url"]["minLength"] == 1


def test_a_wrong_method_names_every_method_of_the_path(client: TestClient, api_key: str) -> None:
    answer = client.options("/jobs", headers={"x-api-key": api_key})
    assert answer.status_code == 405
    assert answer.headers.get_list("allow") == ["GET, POST"]
    assert answer.json() == {"error": "Method Not Allowed"}
