"""What a job's changes set off, in the same transaction as the change: webhook outbox rows
(final events, and stage events with ``enable_progress_webhook``), batch progress, and the
Stripe meter report of a stripe key's upload."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from squall.batches import progress
from squall.billing import reports
from squall.jobs.models import COMPLETED, Job
from squall.jobs.queue import ClaimedJob
from squall.webhooks import events, outbox


def job_ended(session: Session, job_id: str, *, now: int, download_url: str | None = None) -> None:
    job = session.execute(
        select(Job).where(Job.id == job_id).execution_options(populate_existing=True)
    ).scalar_one()
    hook = job.options.get("webhook_url")
    if hook:
        if job.status == COMPLETED and job.options.get("enable_progress_webhook"):
            completed = events.job_progress(job.id, job.url, "completed", 100)
            outbox.enqueue(session, key_id=job.key_id, url=hook, payload=completed, now=now, job_id=job.id)
        payload = events.job_ended(job, download_url)
        if payload is not None:
            outbox.enqueue(session, key_id=job.key_id, url=hook, payload=payload, now=now, job_id=job.id)
    if job.batch_id:
        progress.episode_ended(session, job.batch_id, succeeded=job.status == COMPLETED, now=now)
    if job.status == COMPLETED:
        reports.enqueue_upload(session, job.key_id, job.id, now=now)


def step_reached(session: Session, job: ClaimedJob, step: str, *, now: int) -> None:
    hook = job.options.get("webhook_url")
    if not hook or not job.options.get("enable_progress_webhook"):
        return
    for stage, percent in events.STAGES.get(step, []):
        payload = events.job_progress(job.id, job.url, stage, percent)
        outbox.enqueue(session, key_id=job.key_id, url=hook, payload=payload, now=now, job_id=job.id)
