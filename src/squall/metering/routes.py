"""HTTP routes for usage (/usage, the Fastevo date ranges) and the dashboard's counters."""

from __future__ import annotations

from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from squall.api.deps import ClockDep, ReadTx, SnapshotTx
from squall.api.routing import TransactionalRoute
from squall.keys.auth import CurrentKey
from squall.keys.service import AuthenticatedKey
from squall.metering import ranges, service

router = APIRouter(tags=["usage"], route_class=TransactionalRoute)


class BillingFields(Protocol):
    """What /usage needs of billing (``app.state.billing``), without importing that domain."""

    def usage_fields(self, session: Session, key: AuthenticatedKey, *, now: int) -> dict[str, Any]: ...


@router.get("/usage", response_model=None, summary="Usage, quota and limits of the calling key")
def get_usage(key: CurrentKey, tx: ReadTx, clock: ClockDep, request: Request) -> dict[str, Any]:
    billing = None
    if key.key_type == "stripe":
        source: BillingFields = request.app.state.billing
        billing = source.usage_fields(tx.session, key, now=clock.now_ms())
    return service.usage(tx.session, key, billing=billing)


@router.get("/dashboard/stats", response_model=None, summary="Counters for the dashboard cards")
def dashboard_stats(key: CurrentKey, tx: ReadTx, clock: ClockDep) -> dict[str, Any]:
    return service.dashboard_stats(tx.session, key, now=clock.now_ms())


@router.get("/dashboard/daily", response_model=None, summary="Completed and failed jobs over the last 7 days")
def dashboard_daily(key: CurrentKey, tx: ReadTx, clock: ClockDep) -> dict[str, Any]:
    return service.daily_stats(tx.session, key.id, now=clock.now_ms())


# Both are needed (a 400 names the missing one); a day from 1970 to 2999, or a full timestamp.
_DAY = {"minLength": 10, "pattern": r"^\s*(19[7-9][0-9]|2[0-9]{3})-[0-9]{2}-[0-9]{2}", "format": "date"}
StartDate = Annotated[str | None, Query(alias="startDate", description="First day, ISO 8601 (inclusive).",
                                        json_schema_extra=_DAY)]  # fmt: skip
EndDate = Annotated[str | None, Query(alias="endDate", description="Last day, ISO 8601 (inclusive).",
                                      json_schema_extra=_DAY)]  # fmt: skip


def _json(body: str) -> Response:
    """Already JSON (``ranges.read``): FastAPI's encoder would walk every value of a year."""
    return Response(body, media_type="application/json")


@router.get("/usage/network", response_class=Response, summary="Delivery traffic per day (Fastevo MP2)")
def usage_network(key: CurrentKey, tx: ReadTx, start: StartDate = None, end: EndDate = None) -> Response:
    first, last = ranges.parse_period(start, end)
    return _json(ranges.read(tx.session, key.id, "network", first, last))


@router.get(
    "/usage/storage", response_class=Response, summary="Objects and bytes stored at the end of each day"
)
def usage_storage(key: CurrentKey, tx: SnapshotTx, start: StartDate = None, end: EndDate = None) -> Response:
    first, last = ranges.parse_period(start, end)
    return _json(
        ranges.read(tx.session, key.id, "storage", first, last)
    )  # counters and rollups at one instant


@router.get(
    "/usage/transcoding", response_class=Response, summary="Output minutes per day by quality and priority"
)
def usage_transcoding(key: CurrentKey, tx: ReadTx, start: StartDate = None, end: EndDate = None) -> Response:
    first, last = ranges.parse_period(start, end)
    return _json(ranges.read(tx.session, key.id, "transcoding", first, last))
