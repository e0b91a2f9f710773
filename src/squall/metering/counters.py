"""Per-key counters. Every change is one UPDATE statement, never read-then-write, so
concurrent requests cannot overshoot a quota (PostgreSQL re-checks the WHERE clause of a
blocked UPDATE; SQLite serialises writers with BEGIN IMMEDIATE)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from squall.errors import QuotaExceeded
from squall.metering.models import KeyCounters

C = KeyCounters

# Job-status counters by status name; Warning and Skipped count as failed (no output).
STATUS_COLUMN = {
    "Pending": C.jobs_pending,
    "Processing": C.jobs_processing,
    "Completed": C.jobs_completed,
    "Failed": C.jobs_failed,
    "Warning": C.jobs_failed,
    "Skipped": C.jobs_failed,
}


def create_counters(session: Session, key_id: str, storage_limit_bytes: int | None) -> None:
    session.add(KeyCounters(key_id=key_id, storage_limit_bytes=storage_limit_bytes))


def _fits(extra_bytes: int) -> Any:
    return (C.storage_limit_bytes.is_(None)) | (
        C.used_bytes + C.reserved_bytes + extra_bytes <= C.storage_limit_bytes
    )


def _raise_quota(session: Session, key_id: str) -> None:
    row = session.execute(
        select(C.storage_limit_bytes, C.used_bytes, C.reserved_bytes).where(C.key_id == key_id)
    ).one()
    raise QuotaExceeded(row.storage_limit_bytes or 0, row.used_bytes + row.reserved_bytes)


def admit_jobs(session: Session, key_id: str, count: int, reserve_bytes: int) -> None:
    """Count ``count`` new pending jobs and reserve ``reserve_bytes`` for them, all or none.
    Raises QuotaExceeded (403) when the reservation does not fit."""
    result = session.execute(
        update(C)
        .where(C.key_id == key_id)
        .where(_fits(reserve_bytes))
        .values(
            reserved_bytes=C.reserved_bytes + reserve_bytes,
            usage_count=C.usage_count + count,
            jobs_pending=C.jobs_pending + count,
        )
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        _raise_quota(session, key_id)


def grow_reservation(session: Session, key_id: str, extra_bytes: int) -> bool:
    """Reserve more for a running job; False when the quota has no room for it."""
    if extra_bytes <= 0:
        return True
    result = session.execute(
        update(C)
        .where(C.key_id == key_id)
        .where(_fits(extra_bytes))
        .values(reserved_bytes=C.reserved_bytes + extra_bytes)
    )
    return result.rowcount == 1  # type: ignore[attr-defined, no-any-return]


def move_job(
    session: Session,
    key_id: str,
    *,
    from_status: str,
    to_status: str,
    release_bytes: int = 0,
    used_bytes: int = 0,
) -> None:
    """Move one job between status counters, releasing its reservation and adding the bytes
    it stored, in one statement."""
    values: dict[Any, Any] = {}
    source, target = STATUS_COLUMN[from_status], STATUS_COLUMN[to_status]
    if source is not target:
        values[source.key] = source - 1
        values[target.key] = target + 1
    if release_bytes:
        values["reserved_bytes"] = C.reserved_bytes - release_bytes
    if used_bytes:
        values["used_bytes"] = C.used_bytes + used_bytes
    if values:
        session.execute(update(C).where(C.key_id == key_id).values(values))


def get_counters(session: Session, key_id: str) -> KeyCounters:
    return session.execute(select(C).where(C.key_id == key_id)).scalar_one()
