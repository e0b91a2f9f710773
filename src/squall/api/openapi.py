"""The error shapes the OpenAPI schema documents, and the schema without FastAPI's 422."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel


class ErrorBody(BaseModel):
    error: str


class QuotaBody(BaseModel):
    error: str
    limit_gb: str
    used_gb: str
    message: str
    stored_gb: str
    reserved_gb: str


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Invalid input"},
    401: {"model": ErrorBody, "description": "Missing or invalid x-api-key"},
    404: {"model": ErrorBody, "description": "Not found (or another key's)"},
}


def openapi_without_422(app: FastAPI) -> dict[str, Any]:
    """Validation errors are answered with 400, so the schema should not promise a 422."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                operation.get("responses", {}).pop("422", None)
        app.openapi_schema = schema
    return app.openapi_schema
