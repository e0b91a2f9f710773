"""Per-key counters. Every change is one UPDATE statement, never read-then-write, so
concurrent requests cannot overshoot a quota (PostgreSQL re-checks the WHERE clause of a
blocked UPDATE; SQLite serialises writers with BEGIN IMMEDIATE)."""

from __future__ import annotations

from typing import Any, NoReturn

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from squall.db.base import table_of
from squall.errors import QuotaExceeded
from squall.keys.events import KeyCreated
from squall.metering.models import KeyCounters

C = KeyCounters

# Job-status counters by status name; Warning and Skipped count as failed (no output).
# (Statuses are the jobs domain's; metering sits below it and knows them by name.)
STATUS_COLUMN = {
    "Pending": C.jobs_pending,
    "Processing": C.jobs_processing,
    "Completed": C.jobs_completed,
    "Failed": C.jobs_failed,
    "Warning": C.jobs_failed,
    "Skipped": C.jobs_failed,
}


def on_key_created(session: Session, created: KeyCreated) -> None:
    """Every key has its counters row from the transaction that creates it."""
    session.add(KeyCounters(key_id=created.key_id, storage_limit_bytes=created.storage_limit_bytes))


def storage_limits(session: Session) -> dict[str, int | None]:
    """Each key's storage limit (``squall keys list``)."""
    return dict(session.execute(select(C.key_id, C.storage_limit_bytes)).tuples().all())


# Hot-path statements are built once: building a statement costs far more Python time than
# SQLite takes to run it. ``T`` is the table, so these run as plain Core (no ORM bookkeeping).
T = table_of(KeyCounters).c


def _fits(extra: Any) -> Any:
    return T.storage_limit_bytes.is_(None) | (
        T.used_bytes + T.reserved_bytes + extra <= T.storage_limit_bytes
    )


_ADMIT = (
    update(table_of(KeyCounters))
    .where(T.key_id == bindparam("k"), _fits(bindparam("bytes")))
    .values(
        reserved_bytes=T.reserved_bytes + bindparam("bytes"),
        usage_count=T.usage_count + bindparam("jobs"),
        jobs_pending=T.jobs_pending + bindparam("jobs"),
    )
)
_GROW = (
    update(table_of(KeyCounters))
    .where(T.key_id == bindparam("k"), _fits(bindparam("bytes")))
    .values(reserved_bytes=T.reserved_bytes + bindparam("bytes"))
)


def refuse(session: Session, key_id: str, requested_bytes: int) -> NoReturn:
    """Raise the 403 with the key's figures as they are now."""
    row = session.execute(
        select(C.storage_limit_bytes, C.used_bytes, C.reserved_bytes).where(C.key_id == key_id)
    ).one()
    raise QuotaExceeded(
        row.storage_limit_bytes or 0, stored_bytes=row.used_bytes, reserved_bytes=row.reserved_bytes,
        requested_bytes=requested_bytes,
    )  # fmt: skip


def room_left(session: Session, key_id: str) -> int | None:
    """Bytes the key may still reserve (None: no limit). Only an input to an estimate: the
    conditional update that follows is what keeps the quota, whatever happened in between.
    On PostgreSQL the row is locked, so the estimate is not raced by a concurrent admission
    (SQLite's write transaction already excludes other writers)."""
    row = session.execute(
        select(C.storage_limit_bytes, C.used_bytes, C.reserved_bytes)
        .where(C.key_id == key_id)
        .with_for_update()
    ).one()
    if row.storage_limit_bytes is None:
        return None
    return max(0, int(row.storage_limit_bytes - row.used_bytes - row.reserved_bytes))


def lock_rows(session: Session, key_ids: list[str]) -> None:
    """Lock these keys' rows in key order (PostgreSQL), so that transactions admitting for
    several keys take their locks in one order and cannot deadlock."""
    session.execute(
        select(C.key_id).where(C.key_id.in_(sorted(set(key_ids)))).order_by(C.key_id).with_for_update()
    ).all()


def try_admit_jobs(session: Session, key_id: str, count: int, reserve_bytes: int) -> bool:
    """Count ``count`` new pending jobs and reserve ``reserve_bytes`` for them, all or none;
    False (and nothing changed) when the reservation does not fit."""
    result = session.connection().execute(_ADMIT, {"k": key_id, "bytes": reserve_bytes, "jobs": count})
    return result.rowcount == 1


def admit_jobs(session: Session, key_id: str, count: int, reserve_bytes: int) -> None:
    """``try_admit_jobs``, raising QuotaExceeded (403) when the reservation does not fit."""
    if not try_admit_jobs(session, key_id, count, reserve_bytes):
        refuse(session, key_id, reserve_bytes)


def grow_reservation(session: Session, key_id: str, extra_bytes: int) -> bool:
    """Reserve more for a running job; False when the quota has no room for it."""
    if extra_bytes <= 0:
        return True
    result = session.connection().execute(_GROW, {"k": key_id, "bytes": extra_bytes})
    return result.rowcount == 1


def shrink_reservation(session: Session, key_id: str, fewer_bytes: int) -> None:
    """Give back part of a running job's reservation (its size turned out smaller). Always
    safe: it only lowers ``reserved``."""
    if fewer_bytes > 0:
        session.execute(
            update(C).where(C.key_id == key_id).values(reserved_bytes=C.reserved_bytes - fewer_bytes)
        )


def move_job(
    session: Session,
    key_id: str,
    *,
    from_status: str,
    to_status: str,
    release_bytes: int = 0,
    used_bytes: int = 0,
    stored_objects: int = 0,
) -> None:
    """Move one job between status counters, releasing its reservation and adding the bytes
    and objects it stored, in one statement."""
    values: dict[Any, Any] = {}
    source, target = STATUS_COLUMN[from_status], STATUS_COLUMN[to_status]
    if source is not target:
        values[source.key] = source - 1
        values[target.key] = target + 1
    if release_bytes:
        values["reserved_bytes"] = C.reserved_bytes - release_bytes
    if used_bytes:
        values["used_bytes"] = C.used_bytes + used_bytes
        values["stored_bytes"] = C.stored_bytes + used_bytes
    if stored_objects:
        values["stored_objects"] = C.stored_objects + stored_objects
    if values:
        session.execute(update(C).where(C.key_id == key_id).values(values))


def note_claim(session: Session, key_id: str, *, now: int) -> None:
    """A job of the key was claimed: one more processing, one fewer pending, and the key's
    turn in the fair queue taken now."""
    session.execute(
        update(C)
        .where(C.key_id == key_id)
        .values(jobs_pending=C.jobs_pending - 1, jobs_processing=C.jobs_processing + 1, last_claimed_at=now)
    )


def get_counters(session: Session, key_id: str) -> KeyCounters:
    return session.execute(select(C).where(C.key_id == key_id)).scalar_one()


def unstore(session: Session, key_id: str, *, objects: int, stored_bytes: int) -> None:
    """Objects deleted: what is stored goes down; ``used_bytes`` (ever stored) does not."""
    session.execute(
        update(C)
        .where(C.key_id == key_id)
        .values(stored_objects=C.stored_objects - objects, stored_bytes=C.stored_bytes - stored_bytes)
    )
