"""The operator's HTTP routes (``Authorization: Bearer <operator token>``): every key, the
queue and its workers, and changing a key's limits or revoking it as the CLI does."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from squall.admin import views
from squall.admin.auth import CurrentOperator
from squall.api.deps import ClockDep, Offset, ReadTx, SettingsDep, WriteTx
from squall.api.routing import TransactionalRoute
from squall.db.dbtime import SharedClock
from squall.keys.service import revoke_key
from squall.keys.tenancy import TenancyLimits, update_limits

router = APIRouter(prefix="/admin", tags=["admin"], route_class=TransactionalRoute)


@router.get("/keys", response_model=None, summary="Every key with its limits, usage and state")
def admin_keys(
    _operator: CurrentOperator,
    tx: ReadTx,
    clock: ClockDep,
    sort: Annotated[str, Query(description=f"One of {', '.join(views.SORTS)}.")] = "created_at",
    order: Literal["asc", "desc"] = "asc",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    return views.keys_view(
        tx.session, now=clock.now_ms(), sort=sort, descending=order == "desc", limit=limit, offset=offset
    )


@router.get("/queue", response_model=None, summary="Queue depth by key and priority, claims, workers")
def admin_queue(
    _operator: CurrentOperator, tx: ReadTx, clock: ClockDep, settings: SettingsDep
) -> dict[str, Any]:
    now = SharedClock(clock).now_ms(tx.session)  # leases and heartbeats are on the database's clock
    return views.queue_view(tx.session, now=now, lease_ms=int(settings.lease_seconds * 1000))


@router.get("/top", response_model=None, summary="Top consumers of the last 7 days (jobs, bytes uploaded)")
def admin_top(_operator: CurrentOperator, tx: ReadTx, clock: ClockDep) -> dict[str, Any]:
    return {"days": 7, "keys": views.top_consumers(tx.session, now=clock.now_ms())}


class KeyChange(BaseModel):
    """What ``squall keys update`` / ``keys revoke`` change; 0 or "" removes a limit."""

    model_config = ConfigDict(extra="forbid")

    max_concurrent_jobs: int | None = Field(default=None, ge=0)
    rate_limit_per_minute: int | None = Field(default=None, ge=0)
    alert_webhook_url: str | None = None
    revoked: Literal[True] | None = None


@router.patch("/keys/{key_id}", response_model=None, summary="Change a key's limits, or revoke it")
def admin_change_key(
    key_id: str, change: KeyChange, _operator: CurrentOperator, tx: WriteTx, clock: ClockDep
) -> dict[str, Any]:
    tenancy = TenancyLimits(
        change.max_concurrent_jobs, change.rate_limit_per_minute, change.alert_webhook_url
    )
    if tenancy != TenancyLimits():
        update_limits(tx.session, key_id, tenancy)
    if change.revoked:
        revoke_key(tx.session, key_id)
    page = views.keys_view(tx.session, now=clock.now_ms(), limit=100_000)
    return next(row for row in page["keys"] if row["id"] == key_id)
