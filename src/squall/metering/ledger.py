"""The append-only usage ledger and the daily rollups it feeds, written together."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from squall.clock import utc_day
from squall.metering.models import DailyRollup, UsageEvent

# Metric names. Dimensions: quality buckets or priorities where a metric is split.
JOBS_CREATED = "jobs.created"
JOBS_COMPLETED = "jobs.completed"
JOBS_FAILED = "jobs.failed"
BYTES_UPLOADED = "storage.uploaded_bytes"
BYTES_DOWNLOADED = "source.downloaded_bytes"
PROCESSING_MS = "jobs.processing_ms"


@dataclass(frozen=True)
class Usage:
    metric: str
    quantity: int
    dimension: str = ""


def record(
    session: Session,
    *,
    key_id: str,
    job_id: str | None,
    at_ms: int,
    events: list[Usage],
    dedupe_prefix: str,
) -> int:
    """Append events and add them to today's rollups. An event whose dedupe key is already in
    the ledger is skipped (and not rolled up again). Returns how many were new."""
    day = utc_day(at_ms)
    dialect = session.get_bind().dialect.name
    insert_mod = postgresql if dialect == "postgresql" else sqlite
    written = 0
    for event in events:
        dedupe = f"{dedupe_prefix}:{event.metric}:{event.dimension}"
        stmt = (
            insert_mod.insert(UsageEvent)
            .values(
                key_id=key_id,
                job_id=job_id,
                metric=event.metric,
                dimension=event.dimension,
                quantity=event.quantity,
                day=day,
                occurred_at=at_ms,
                dedupe_key=dedupe,
            )
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
            .returning(UsageEvent.id)
        )
        if session.execute(stmt).first() is None:
            continue
        written += 1
        rollup = insert_mod.insert(DailyRollup).values(
            key_id=key_id,
            day=day,
            metric=event.metric,
            dimension=event.dimension,
            quantity=event.quantity,
        )
        session.execute(
            rollup.on_conflict_do_update(
                index_elements=["key_id", "day", "metric", "dimension"],
                set_={"quantity": DailyRollup.quantity + rollup.excluded.quantity},
            )
        )
    return written


def rollup_totals(
    session: Session, key_id: str, metrics: list[str], first_day: object, last_day: object
) -> dict[tuple[object, str, str], int]:
    """(day, metric, dimension) -> quantity for one key over an inclusive day range."""
    rows = session.execute(
        select(DailyRollup.day, DailyRollup.metric, DailyRollup.dimension, DailyRollup.quantity)
        .where(DailyRollup.key_id == key_id)
        .where(DailyRollup.metric.in_(metrics))
        .where(DailyRollup.day >= first_day, DailyRollup.day <= last_day)
    )
    return {(r.day, r.metric, r.dimension): r.quantity for r in rows}
