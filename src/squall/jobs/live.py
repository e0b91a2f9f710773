"""Live recordings in the jobs domain: the user's stop (POST /jobs/{id}/stop) and the
progress a recording shows while it grows (GET /jobs/{id}, progress webhooks)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from squall.errors import Conflict
from squall.events import record
from squall.jobs.claimed import ClaimedJob
from squall.jobs.events import RecordingProgressed
from squall.jobs.models import Job, JobStatus, JobStep
from squall.jobs.queue import fenced
from squall.jobs.service import get_job

NOT_RECORDING = "Job is not recording a live stream (only a job whose step is Recording can be stopped)"
# A recording's progress webhook: at most one every this many seconds (the first at once).
RECORDING_WEBHOOK_EVERY_SECONDS = 10.0


def request_stop(session: Session, key_id: str, job_id: str, *, now: int) -> Job:
    """Ask the worker recording this job to end the recording and keep what it has; the job
    then goes on to processing and completes. Asking twice is harmless."""
    job = get_job(session, key_id, job_id)
    result = session.execute(
        update(Job)
        .where(Job.id == job.id, Job.status == JobStatus.PROCESSING, Job.step == JobStep.RECORDING)
        .values(stop_requested_at=now)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(NOT_RECORDING)
    session.refresh(job)
    return job


def stop_requested(session: Session, claimed: ClaimedJob) -> bool:
    """Has the user asked this attempt's recording to stop? (A read, run every second.)"""
    at = session.execute(
        select(Job.stop_requested_at).where(fenced(claimed.id, claimed.attempt))
    ).scalar_one_or_none()
    return at is not None


def record_progress(
    session: Session, claimed: ClaimedJob, seconds: float, size: int, *, now: int, announce: bool
) -> bool:
    """Show the recording's length and size on the job (fenced); ``announce``: also send a
    progress webhook. False: the lease is lost."""
    details: dict[str, Any] = {"live": True, "recorded_seconds": round(seconds, 3), "recorded_bytes": size}
    done = session.execute(update(Job).where(fenced(claimed.id, claimed.attempt)).values(details=details))
    if done.rowcount != 1:  # type: ignore[attr-defined]
        return False
    if announce:
        record(session, RecordingProgressed(claimed.id, claimed.key_id, claimed.url, seconds, size, at=now,
                                            hook=claimed.hook))  # fmt: skip
    return True
