"""HTTP routes for usage and the dashboard's JSON."""

from __future__ import annotations

import json
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from squall.clock import DAY_MS, now_ms
from squall.http import DatabaseDep
from squall.jobs import queries as job_queries
from squall.jobs.views import job_page
from squall.keys.auth import CurrentKey
from squall.keys.service import AuthenticatedKey
from squall.metering import ranges, service

router = APIRouter(tags=["usage"])


class BillingFields(Protocol):
    """What /usage needs of billing (``app.state.billing``), without importing that domain."""

    def usage_fields(self, key: AuthenticatedKey) -> dict[str, Any]: ...


@router.get("/usage", response_model=None, summary="Usage, quota and limits of the calling key")
def get_usage(key: CurrentKey, db: DatabaseDep, request: Request) -> dict[str, Any]:
    billing = None
    if key.key_type == "stripe":
        source: BillingFields = request.app.state.billing
        billing = source.usage_fields(key)
    with db.read() as session:
        return service.usage(session, key, billing=billing)


@router.get("/dashboard/stats", response_model=None, summary="Counters for the dashboard cards")
def dashboard_stats(key: CurrentKey, db: DatabaseDep) -> dict[str, Any]:
    with db.read() as session:
        return service.dashboard_stats(session, key, now=now_ms())


@router.get("/dashboard/daily", response_model=None, summary="Completed and failed jobs over the last 7 days")
def dashboard_daily(key: CurrentKey, db: DatabaseDep) -> dict[str, Any]:
    with db.read() as session:
        return service.daily_stats(session, key.id, now=now_ms())


@router.get("/dashboard/jobs", response_model=None, summary="Jobs for the dashboard table")
def dashboard_jobs(
    key: CurrentKey,
    db: DatabaseDep,
    limit: int = Query(50, ge=1, le=100),
    offset: int = Query(0, ge=0),
    status: str | None = None,
    q: Annotated[str | None, Query(max_length=200, description="Part of the URL or stored name.")] = None,
) -> dict[str, Any]:
    with db.read() as session:
        rows, _, matching = job_queries.list_jobs(
            session, key.id, status=status, limit=limit, offset=offset, search=q
        )
        return job_page(rows, total=matching, limit=limit, offset=offset)  # total matches the filter


@router.get(
    "/dashboard/failures", response_model=None, summary="The commonest failure reasons of the last 7 days"
)
def dashboard_failures(key: CurrentKey, db: DatabaseDep) -> dict[str, Any]:
    with db.read() as session:
        return {"reasons": job_queries.failure_reasons(session, key.id, since=now_ms() - 7 * DAY_MS)}


StartDate = Annotated[str | None, Query(alias="startDate", description="First day, ISO 8601 (inclusive).")]
EndDate = Annotated[str | None, Query(alias="endDate", description="Last day, ISO 8601 (inclusive).")]


def _json(records: list[dict[str, Any]]) -> Response:
    """Serialised directly: FastAPI's encoder walks every value of a 365-day answer first."""
    return Response(json.dumps(records, separators=(",", ":")), media_type="application/json")


@router.get("/usage/network", response_class=Response, summary="Delivery traffic per day (Fastevo MP2)")
def usage_network(key: CurrentKey, db: DatabaseDep, start: StartDate = None, end: EndDate = None) -> Response:
    first, last = ranges.parse_period(start, end)
    with db.read() as session:
        return _json(ranges.network(session, key.id, first, last))


@router.get(
    "/usage/storage", response_class=Response, summary="Objects and bytes stored at the end of each day"
)
def usage_storage(key: CurrentKey, db: DatabaseDep, start: StartDate = None, end: EndDate = None) -> Response:
    first, last = ranges.parse_period(start, end)
    with db.snapshot() as session:  # counters and rollups seen at one instant
        return _json(ranges.storage(session, key.id, first, last))


@router.get(
    "/usage/transcoding", response_class=Response, summary="Output minutes per day by quality and priority"
)
def usage_transcoding(
    key: CurrentKey, db: DatabaseDep, start: StartDate = None, end: EndDate = None
) -> Response:
    first, last = ranges.parse_period(start, end)
    with db.read() as session:
        return _json(ranges.transcoding(session, key.id, first, last))
