"""The jobs table as a leased queue (``squall.queue.LeasedQueue``): claim with a lease,
heartbeat, requeue, and find the leases that ran out. ``attempt`` is the fencing token."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from squall.db.base import table_of
from squall.jobs.claimed import ClaimedJob
from squall.jobs.fair import next_job_per_key
from squall.jobs.models import Job, JobStatus, JobStep
from squall.jobs.options import JobOptions
from squall.keys.models import ApiKey
from squall.keys.service import KeyLimits
from squall.metering import counters
from squall.queue import LeasedQueue
from squall.validation import describe_validation_error

__all__ = ["JOBS", "ClaimedJob", "claim", "expired_leases", "fenced", "heartbeat", "requeue", "set_step"]

_JOBS = table_of(Job)
JOBS = LeasedQueue(
    table=_JOBS,
    waiting=_JOBS.c.status == JobStatus.PENDING,
    held=_JOBS.c.status == JobStatus.PROCESSING,
    due_at=_JOBS.c.run_after,
    token=_JOBS.c.attempt,
    lease_until=_JOBS.c.lease_expires_at,
    owner=_JOBS.c.lease_owner,
    order_by=(_JOBS.c.priority.desc(), _JOBS.c.created_at),
    on_claim={"status": JobStatus.PROCESSING, "step": JobStep.DOWNLOADING},
)


def fenced(job_id: str, attempt: int) -> Any:
    """The WHERE clause of every write a worker makes after claiming a job."""
    return JOBS.fenced(job_id, attempt)


def claim(session: Session, *, worker_id: str, now: int, lease_ms: int) -> ClaimedJob | None:
    """Lease the next due job, taking turns between keys (``jobs/fair.py``), counted as
    processing, with its options parsed once and its key's limits."""
    claimed = JOBS.claim(
        session, now=now, lease_ms=lease_ms, owner=worker_id, values={"started_at": now},
        returning=(_JOBS.c.key_id,), candidates=next_job_per_key(now, session.get_bind().dialect.name),
    )  # fmt: skip
    if not claimed:
        return None
    row = claimed[0]  # (id, attempt, key_id)
    counters.note_claim(session, row.key_id, now=now)
    job, key = session.execute(
        select(Job, ApiKey).join(ApiKey, ApiKey.id == Job.key_id).where(Job.id == row.id)
    ).one()
    try:
        options, problem = JobOptions.model_validate({**job.options, "url": job.url}), None
    except ValidationError as exc:  # stored under an older model: the run fails with this
        options = JobOptions.model_construct(**{**job.options, "url": job.url})  # hook and folder kept
        problem = f"The job's stored options are no longer valid: {describe_validation_error(exc.errors())}"
    return ClaimedJob(
        id=job.id,
        key_id=job.key_id,
        attempt=row.attempt,
        max_attempts=job.max_attempts,
        options=options,
        priority=job.priority,
        reserved_bytes=job.reserved_bytes,
        created_at=job.created_at,
        batch_id=job.batch_id,
        limits=KeyLimits(
            max_resolution=key.max_resolution,
            max_duration_seconds=key.max_duration_seconds,
            max_filesize_bytes=key.max_filesize_bytes,
        ),
        options_problem=problem,
    )


def heartbeat(session: Session, job: ClaimedJob, *, now: int, lease_ms: int) -> bool:
    """Renew the lease; False means the job is no longer ours (reaped or cancelled)."""
    return JOBS.renew(session, job.id, job.attempt, now=now, lease_ms=lease_ms)


def still_owned(session: Session, job: ClaimedJob) -> bool:
    """Has the job been cancelled or reaped out from under this attempt? (A read.)"""
    return JOBS.still_held(session, job.id, job.attempt)


def set_step(session: Session, job: ClaimedJob, step: str) -> bool:
    result = session.execute(update(Job).where(fenced(job.id, job.attempt)).values(step=step))
    return result.rowcount == 1  # type: ignore[attr-defined, no-any-return]


def expired_leases(session: Session, *, now: int, limit: int = 100) -> list[Any]:
    """Processing jobs whose lease ran out, locked for the reaper."""
    return list(JOBS.expired(session, now=now, limit=limit))


def requeue(
    session: Session, job_id: str, key_id: str, attempt: int, *, run_after: int, error: str | None = None
) -> bool:
    """Put a processing job back in the queue, keeping its reservation for the next attempt.
    ``error`` records why the last attempt did not finish."""
    values = {"status": JobStatus.PENDING, "step": JobStep.QUEUED, "run_after": run_after, "error": error}
    if not JOBS.record(session, job_id, attempt, values):
        return False
    counters.move_job(session, key_id, from_status=JobStatus.PROCESSING, to_status=JobStatus.PENDING)
    return True
