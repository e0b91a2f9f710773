"""Who hears which domain event: the one place the domains' reactions to each other are
wired. ``app.py``, ``worker/`` and ``cli.py`` call ``wire`` on the database they open;
subscribers run inside the transaction that recorded the event (``squall/events.py``).

    KeyCreated     -> metering: the key's counters row
    StepReached    -> webhooks: progress events (enable_progress_webhook)
    RecordingProgressed -> webhooks: a live recording's progress events
    JobEnded       -> webhooks: job_completed / job_failed / job_skipped
                   -> batches: episode counts; the last episode closes the batch
                   -> keys: a request's storage credentials are erased
    BatchEnded     -> webhooks: batch_completed
    ObjectsStored  -> billing: a Stripe meter report for a stripe key's upload
    JobsAdmitted   -> alerts: quota thresholds
    JobEnded       -> alerts: quota thresholds, failure rate
    ObjectsDeleted -> (nothing yet)
"""

from __future__ import annotations

from squall.alerts import service as alerts
from squall.batches import progress
from squall.batches.events import BatchEnded
from squall.billing import reports
from squall.db import Database
from squall.events import EventBus
from squall.jobs.events import JobEnded, JobsAdmitted, ObjectsStored, RecordingProgressed, StepReached
from squall.keys.events import KeyCreated
from squall.keys.storage_service import on_job_ended as erase_request_storage
from squall.metering import counters
from squall.webhooks import subscribers as webhooks


def subscribe_all(bus: EventBus) -> EventBus:
    bus.subscribe(KeyCreated, counters.on_key_created)
    bus.subscribe(StepReached, webhooks.on_step_reached)
    bus.subscribe(RecordingProgressed, webhooks.on_recording_progressed)
    bus.subscribe(JobEnded, webhooks.on_job_ended)
    bus.subscribe(JobEnded, progress.on_job_ended)
    bus.subscribe(JobEnded, erase_request_storage)
    bus.subscribe(BatchEnded, webhooks.on_batch_ended)
    bus.subscribe(ObjectsStored, reports.on_objects_stored)
    bus.subscribe(JobsAdmitted, alerts.on_jobs_admitted)
    bus.subscribe(JobEnded, alerts.on_job_ended)
    return bus


def wire(db: Database) -> Database:
    """The database, with every subscriber registered on its bus (idempotent)."""
    subscribe_all(db.events)
    return db
