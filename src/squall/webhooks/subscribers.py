"""The outbox rows domain events set off, written in the transaction of the change (so an
event exists exactly when its change committed). Registered by ``squall/subscriptions.py``.

A job's end events carry its batch's id, so that the batch's own event is delivered after
them (and so, through them, after the job's progress events)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from squall.batches.events import BatchEnded
from squall.jobs.events import JobEnded, RecordingProgressed, StepReached
from squall.jobs.models import JobStatus
from squall.webhooks import outbox, payloads


def on_job_ended(session: Session, ended: JobEnded) -> None:
    hook = ended.hook
    if hook is None:
        return
    if ended.status == JobStatus.COMPLETED and hook.progress:
        completed = payloads.job_progress(ended.job_id, ended.url, "completed", 100)
        outbox.enqueue(session, key_id=ended.key_id, url=hook.url, payload=completed, now=ended.at,
                       job_id=ended.job_id, batch_id=ended.batch_id)  # fmt: skip
    payload = payloads.job_ended(ended)
    if payload is not None:
        outbox.enqueue(session, key_id=ended.key_id, url=hook.url, payload=payload, now=ended.at,
                       job_id=ended.job_id, batch_id=ended.batch_id)  # fmt: skip


def on_step_reached(session: Session, reached: StepReached) -> None:
    hook = reached.hook
    if hook is None or not hook.progress:
        return
    for stage, percent in payloads.STAGES.get(reached.step, []):
        payload = payloads.job_progress(reached.job_id, reached.url, stage, percent)
        outbox.enqueue(session, key_id=reached.key_id, url=hook.url, payload=payload, now=reached.at,
                       job_id=reached.job_id)  # fmt: skip


def on_recording_progressed(session: Session, progressed: RecordingProgressed) -> None:
    hook = progressed.hook
    if hook is None or not hook.progress:
        return
    payload = payloads.recording_progress(
        progressed.job_id, progressed.url, progressed.seconds, progressed.size
    )
    outbox.enqueue(session, key_id=progressed.key_id, url=hook.url, payload=payload, now=progressed.at,
                   job_id=progressed.job_id)  # fmt: skip


def on_batch_ended(session: Session, ended: BatchEnded) -> None:
    if ended.webhook_url:
        outbox.enqueue(session, key_id=ended.key_id, url=ended.webhook_url, payload=payloads.batch_completed(ended),
                       now=ended.at, batch_id=ended.batch_id)  # fmt: skip
