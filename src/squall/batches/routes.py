"""HTTP routes for batches: status, the paused workflow (rename, start) and the dashboard list."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from squall.api.deps import ClockDep, Offset, ReadTx, WriteTx
from squall.api.routing import TransactionalRoute
from squall.batches import service
from squall.batches.service import batch_view
from squall.keys.auth import CurrentKey

router = APIRouter(tags=["batches"], route_class=TransactionalRoute)


@router.get("/batch/{batch_id}", response_model=None, summary="A batch's progress and its episode jobs")
def get_batch(batch_id: str, key: CurrentKey, tx: ReadTx) -> dict[str, Any]:
    batch = service.get_batch(tx.session, key.id, batch_id)
    return batch_view(batch, service.episode_job_ids(tx.session, batch.id))


class Rename(BaseModel):
    model_config = ConfigDict(extra="forbid")
    job_id: str = Field(max_length=64)
    filename: str = Field(max_length=1024)


class RenameRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    renames: list[Rename] = Field(max_length=1000)


@router.patch("/batch/{batch_id}/jobs", response_model=None, summary="Rename the episodes of a paused batch")
def rename_jobs(batch_id: str, body: RenameRequest, key: CurrentKey, tx: WriteTx) -> dict[str, Any]:
    pairs = [(item.job_id, item.filename) for item in body.renames]
    return service.rename_jobs(tx.session, key.id, batch_id, pairs)


@router.post("/batch/{batch_id}/start", response_model=None, summary="Queue the episodes of a paused batch")
def start_batch(batch_id: str, key: CurrentKey, tx: WriteTx, clock: ClockDep) -> dict[str, Any]:
    return service.start_batch(tx.session, key.id, batch_id, now=clock.now_ms())


# Tornado describes GET /dashboard/batches as "all batches": without ``limit`` it returns them
# all, up to this many (newest first); ``total`` tells a client when there are more.
ALL_BATCHES_CAP = 1000
BatchLimit = Annotated[
    int | None, Query(ge=1, le=ALL_BATCHES_CAP, description=f"Default: all, up to {ALL_BATCHES_CAP}.")
]


@router.get("/dashboard/batches", response_model=None, summary="The key's batches, newest first")
def dashboard_batches(
    key: CurrentKey, tx: ReadTx, limit: BatchLimit = None, offset: Offset = 0
) -> dict[str, Any]:
    limit = ALL_BATCHES_CAP if limit is None else limit
    batches, total = service.list_batches(tx.session, key.id, limit=limit, offset=offset)
    return {"batches": [batch_view(b) for b in batches], "total": total, "limit": limit, "offset": offset}
