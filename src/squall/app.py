"""The HTTP application: wires settings, database, storage and every domain's routes."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from squall import __version__
from squall.batches.routes import router as batches_router
from squall.billing.periods import Periods
from squall.billing.routes import router as billing_router
from squall.db import Database
from squall.delivery.cache import DeliveryCache
from squall.delivery.routes import router as delivery_router
from squall.errors import SquallError
from squall.jobs.routes import router as jobs_router
from squall.keys.cache import KeyCache
from squall.logging import get_logger
from squall.metering.metrics import UsageCollector
from squall.metering.routes import router as metering_router
from squall.settings import Settings, get_settings
from squall.storage.base import Storage
from squall.storage.factory import make_storage
from squall.units import MB
from squall.validation import describe_validation_error
from squall.web.routes import router as web_router
from squall.web.routes import static_files

log = get_logger("squall.app")


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Sync endpoints run in this pool. More threads than the database can use only add GIL
    # contention (SQLite has one writer), so the pool is kept small.
    to_thread.current_default_thread_limiter().total_tokens = app.state.settings.api_threads
    # Everything imported and built so far lives as long as the process: out of the
    # collector's way, a full collection no longer walks it (tens of ms on a large answer).
    gc.collect()
    gc.freeze()
    yield


def create_app(
    settings: Settings | None = None, db: Database | None = None, storage: Storage | None = None
) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        lifespan=_lifespan,
        title="Squall",
        version=__version__,
        description="Self-hosted, multi-tenant media ingest API with exact usage metering "
        "(Tornado-compatible). Authenticate with the `x-api-key` header.",
    )
    app.state.settings = settings
    app.state.db = db or Database(settings.resolved_database_url)
    app.state.storage = storage or make_storage(settings)
    app.state.key_cache = KeyCache(settings.auth_cache_seconds)
    app.state.billing = Periods(app.state.db, settings)
    app.state.delivery_cache = DeliveryCache(settings.delivery_cache_dir, settings.delivery_cache_mb * MB)
    settings.resolved_secret_key()  # create it now, not inside the first request

    registry = CollectorRegistry()
    registry.register(UsageCollector(app.state.db))

    @app.exception_handler(SquallError)
    async def _squall_error(_request: Request, exc: SquallError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": describe_validation_error(exc.errors())}, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", path=request.url.path)
        return JSONResponse({"error": "Internal server error"}, status_code=500)

    @app.get("/healthz", tags=["ops"], summary="Liveness")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "version": __version__}

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics", response_class=Response)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app.include_router(jobs_router, responses=ERROR_RESPONSES)
    app.include_router(batches_router, responses=ERROR_RESPONSES)
    app.include_router(billing_router, responses=ERROR_RESPONSES)
    app.include_router(metering_router, responses=ERROR_RESPONSES)
    app.include_router(delivery_router, responses=ERROR_RESPONSES)
    app.include_router(web_router)
    app.mount("/static", static_files(), name="static")
    app.openapi = lambda: _openapi_without_422(app)  # type: ignore[method-assign]
    return app


class ErrorBody(BaseModel):
    error: str


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Invalid input"},
    401: {"model": ErrorBody, "description": "Missing or invalid x-api-key"},
    404: {"model": ErrorBody, "description": "Not found (or another key's)"},
}


def _openapi_without_422(app: FastAPI) -> dict[str, Any]:
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
