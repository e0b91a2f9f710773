"""The objects a job's attempts put in storage before their outcome was written. Each is
noted on the job as it is stored, so that if the attempt dies before its outcome, whoever
ends the job deletes what the books do not name (``squall storage reconcile`` stays clean).
Like the rest of the job's lifecycle, these take a session and never commit."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from squall.jobs import queue
from squall.jobs.claimed import ClaimedJob
from squall.jobs.models import Job, JobStatus
from squall.jobs.queue import fenced

STORED_KEYS = "stored_keys"  # in details: objects attempts put before their outcome was written


def note_stored(session: Session, claimed: ClaimedJob, key: str) -> bool:
    """Remember an object this attempt put, so that if the attempt dies before its outcome is
    written, whoever ends the job deletes it (``take_leftovers``). Fenced by the attempt."""
    owned = queue.JOBS.locked(session, claimed.id, claimed.attempt, Job.details)
    if owned is None:
        return False
    details = {**(owned.details or {}), STORED_KEYS: [*(owned.details or {}).get(STORED_KEYS, []), key]}
    session.execute(update(Job).where(fenced(claimed.id, claimed.attempt)).values(details=details))
    return True


def stored_keys(session: Session, job_id: str) -> list[str]:
    details = session.execute(select(Job.details).where(Job.id == job_id)).scalar_one_or_none()
    return list((details or {}).get(STORED_KEYS, []))


def take_leftovers(session: Session, job_id: str) -> list[str]:
    """The objects an ended job's attempts put that its books do not name (an attempt killed
    between its upload and its outcome), forgotten here: the caller deletes them."""
    job = session.execute(select(Job).where(Job.id == job_id).with_for_update()).scalar_one_or_none()
    if job is None or job.status in (JobStatus.PENDING, JobStatus.PROCESSING) or not job.details:
        return []
    details = dict(job.details)
    stored = details.pop(STORED_KEYS, [])
    if stored:
        job.details = details
    return [key for key in stored if key not in (job.output_key, job.subtitle_key, job.thumbnail_key)]
