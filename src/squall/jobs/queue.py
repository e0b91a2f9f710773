"""The job queue on the database: claim with a lease, heartbeat, reap.

PostgreSQL claims with ``FOR UPDATE SKIP LOCKED`` so workers never wait on each other;
SQLite runs the same statement inside ``BEGIN IMMEDIATE``, which serialises writers anyway
(SQLAlchemy renders no FOR UPDATE there). ``attempt`` is the fencing token: every later write
by a worker names it, so a worker whose lease ran out changes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from squall.jobs.models import PENDING, PROCESSING, Job
from squall.keys.models import ApiKey
from squall.metering import counters


@dataclass(frozen=True)
class ClaimedJob:
    id: str
    key_id: str
    attempt: int
    max_attempts: int
    url: str
    options: dict[str, Any]
    priority: int
    reserved_bytes: int
    created_at: int
    max_resolution: int | None
    max_duration_seconds: int | None
    max_filesize_bytes: int | None


def fenced(job_id: str, attempt: int) -> Any:
    """The WHERE clause of every write a worker makes after claiming a job."""
    return (Job.id == job_id) & (Job.attempt == attempt) & (Job.status == PROCESSING)


def claim(session: Session, *, worker_id: str, now: int, lease_ms: int) -> ClaimedJob | None:
    candidate = (
        select(Job.id)
        .where(Job.status == PENDING, Job.run_after <= now)
        .order_by(Job.priority.desc(), Job.created_at)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    row = session.execute(
        update(Job)
        .where(Job.id == candidate, Job.status == PENDING)
        .values(
            status=PROCESSING,
            step="Downloading",
            attempt=Job.attempt + 1,
            lease_owner=worker_id,
            lease_expires_at=now + lease_ms,
            started_at=now,
        )
        .returning(Job.id, Job.key_id, Job.attempt)
    ).first()
    if row is None:
        return None
    counters.move_job(session, row.key_id, from_status=PENDING, to_status=PROCESSING)
    job, key = session.execute(
        select(Job, ApiKey).join(ApiKey, ApiKey.id == Job.key_id).where(Job.id == row.id)
    ).one()
    return ClaimedJob(
        id=job.id,
        key_id=job.key_id,
        attempt=row.attempt,
        max_attempts=job.max_attempts,
        url=job.url,
        options=dict(job.options),
        priority=job.priority,
        reserved_bytes=job.reserved_bytes,
        created_at=job.created_at,
        max_resolution=key.max_resolution,
        max_duration_seconds=key.max_duration_seconds,
        max_filesize_bytes=key.max_filesize_bytes,
    )


def heartbeat(session: Session, job: ClaimedJob, *, now: int, lease_ms: int) -> bool:
    """Renew the lease; False means the job is no longer ours (reaped or cancelled)."""
    result = session.execute(
        update(Job).where(fenced(job.id, job.attempt)).values(lease_expires_at=now + lease_ms)
    )
    return result.rowcount == 1  # type: ignore[attr-defined, no-any-return]


def still_owned(session: Session, job: ClaimedJob) -> bool:
    """A read-only check, cheap enough to run every second: has the job been cancelled or
    reaped out from under this attempt?"""
    return session.execute(select(Job.id).where(fenced(job.id, job.attempt))).first() is not None


def set_step(session: Session, job: ClaimedJob, step: str) -> bool:
    result = session.execute(update(Job).where(fenced(job.id, job.attempt)).values(step=step))
    return result.rowcount == 1  # type: ignore[attr-defined, no-any-return]


def expired_leases(session: Session, *, now: int, limit: int = 100) -> list[Job]:
    """Processing jobs whose lease ran out, locked for the reaper (skipping any a worker or
    another reaper holds right now)."""
    return list(
        session.execute(
            select(Job)
            .where(Job.status == PROCESSING, Job.lease_expires_at < now)
            .order_by(Job.lease_expires_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).scalars()
    )


def requeue(
    session: Session, job_id: str, key_id: str, attempt: int, *, run_after: int, error: str | None = None
) -> bool:
    """Put a processing job back in the queue, keeping its reservation for the next attempt.
    ``error`` records why the last attempt did not finish."""
    values = {"status": PENDING, "step": "Queued", "run_after": run_after, "lease_owner": None}
    result = session.execute(
        update(Job).where(fenced(job_id, attempt)).values(**values, lease_expires_at=None, error=error)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    counters.move_job(session, key_id, from_status=PROCESSING, to_status=PENDING)
    return True
