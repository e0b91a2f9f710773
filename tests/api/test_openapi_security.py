"""The OpenAPI document declares the x-api-key header, so generated clients and /docs send it."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_openapi_declares_the_api_key_header_and_uses_it(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["ApiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "x-api-key",
        "description": "An API key (sk_…).",
    }
    assert schema["paths"]["/jobs"]["post"]["security"] == [{"ApiKey": []}]
    assert schema["paths"]["/usage"]["get"]["security"] == [{"ApiKey": []}]
    assert "security" not in schema["paths"]["/healthz"]["get"]  # open to all


def test_docs_pages_load_their_assets_from_squall(client: TestClient) -> None:
    for page, asset in (("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
        html = client.get(page).text
        assert f'src="/docs-assets/{asset}"' in html and "cdn" not in html.lower()
        assert client.get(f"/docs-assets/{asset}").status_code == 200
