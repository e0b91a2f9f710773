"""The HTTP application: wires settings, database, storage, the clock, the domain events'
subscribers and every domain's routes."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from squall import __version__
from squall.admin.auth import MetricsReader
from squall.admin.metrics import QueueCollector
from squall.admin.routes import router as admin_router
from squall.alerts.routes import router as alerts_router
from squall.api.docs import install_docs
from squall.api.errors import install_error_handlers
from squall.api.openapi import ERROR_RESPONSES, ErrorBody, openapi_without_422
from squall.batches.routes import router as batches_router
from squall.billing.periods import BillingFields
from squall.billing.routes import router as billing_router
from squall.clock import SYSTEM, Clock
from squall.db import Database
from squall.db.outage import API_STATEMENT_TIMEOUT_MS
from squall.delivery.cache import DeliveryCache
from squall.delivery.routes import router as delivery_router
from squall.doctor import verbose_health
from squall.intake.routes import router as intake_router
from squall.jobs.routes import router as jobs_router
from squall.keys.cache import KeyCache
from squall.keys.cookie_routes import router as cookies_router
from squall.keys.ratelimit import RateLimiter
from squall.keys.storage_routes import router as key_storage_router
from squall.metering.metrics import UsageCollector
from squall.metering.routes import router as metering_router
from squall.settings import Settings, get_settings
from squall.storage.base import Storage
from squall.storage.factory import make_storage
from squall.subscriptions import wire
from squall.units import MB
from squall.web.routes import router as web_router
from squall.web.routes import static_files
from squall.webhooks.outbox import job_webhook_status


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
    settings: Settings | None = None,
    db: Database | None = None,
    storage: Storage | None = None,
    clock: Clock = SYSTEM,
) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        lifespan=_lifespan,
        title="Squall",
        version=__version__,
        description="Self-hosted, multi-tenant media ingest API with exact usage metering "
        "(Tornado-compatible). Authenticate with the `x-api-key` header.",
        docs_url=None,  # served by install_docs, without a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.db = wire(
        db or Database(settings.resolved_database_url, statement_timeout_ms=API_STATEMENT_TIMEOUT_MS)
    )
    app.state.storage = storage or make_storage(settings)
    app.state.clock = clock
    app.state.key_cache = KeyCache(settings.auth_cache_seconds)
    app.state.rate_limiter = RateLimiter(app.state.db)
    app.state.billing = BillingFields(configured=bool(settings.stripe_api_key))
    app.state.webhook_status = job_webhook_status
    app.state.delivery_cache = DeliveryCache(settings.delivery_cache_dir, settings.delivery_cache_mb * MB)
    settings.resolved_secret_key()  # create it now, not inside the first request

    registry = CollectorRegistry()
    registry.register(UsageCollector(app.state.db))
    registry.register(QueueCollector(app.state.db, app.state.rate_limiter))
    install_error_handlers(app)

    @app.get("/healthz", tags=["ops"], summary="Liveness; ?verbose=1 with the operator token: squall doctor",
             responses={400: ERROR_RESPONSES[400], 401: ERROR_RESPONSES[401]})  # fmt: skip
    async def healthz(request: Request, verbose: bool = False) -> dict[str, Any]:
        if verbose:  # the operator's view of versions and health (squall/doctor.py)
            return await verbose_health(request)
        return {"status": "ok", "version": __version__}

    @app.get(
        "/metrics", tags=["ops"], summary="Prometheus metrics (operator token or SQUALL_METRICS_ALLOW)",
        response_class=Response, dependencies=[MetricsReader],
        responses={401: {"model": ErrorBody, "description": "Neither the operator token nor an allowed address"}},
    )  # fmt: skip
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    for router in (
        alerts_router,
        intake_router,
        jobs_router,
        batches_router,
        billing_router,
        metering_router,
        delivery_router,
        cookies_router,
        key_storage_router,
    ):
        app.include_router(router, responses=ERROR_RESPONSES)
    app.include_router(admin_router, responses=ERROR_RESPONSES)
    app.include_router(web_router)
    app.mount("/static", static_files(), name="static")
    install_docs(app)
    app.openapi = lambda: openapi_without_422(app)  # type: ignore[method-assign]
    return app
