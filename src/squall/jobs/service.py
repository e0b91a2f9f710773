"""Job lifecycle. Every function takes a session and never commits: the request, worker
step or CLI command that opened the session commits, so a job's state, its reservation, its
counters, its usage events and the domain events it records always change together."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, literal, select, update
from sqlalchemy.orm import Session

from squall.clock import hour_of
from squall.db import wakeup
from squall.db.base import new_id
from squall.db.dbtime import due_at_once
from squall.errors import InvalidInput, JobFailure, NotFound
from squall.events import record
from squall.jobs import queue
from squall.jobs.admission import INSERT_DUE_JOB, INSERT_JOB, job_row
from squall.jobs.admission import Admission as Admission  # where callers have always found it
from squall.jobs.claimed import ClaimedJob
from squall.jobs.events import (
    Hook,
    JobEnded,
    JobsAdmitted,
    ObjectsDeleted,
    ObjectsStored,
    Output,
    StepReached,
)
from squall.jobs.models import Job, JobStatus, JobStep
from squall.jobs.options import JobOptions
from squall.jobs.queue import fenced
from squall.keys.service import AuthenticatedKey
from squall.metering import counters, ledger
from squall.metering.ledger import Usage
from squall.pipeline.spec import PipelineResult
from squall.validation import validated

CANCELLED_MESSAGE = "Job cancelled by user"
NOT_CANCELLABLE = "Job cannot be cancelled (not in queue or already processing)"

HELD = 2**62  # run_after of the jobs of a paused batch: never due until the batch starts


def create_job(
    session: Session,
    key: AuthenticatedKey,
    options: JobOptions,
    *,
    now: int,
    admission: Admission,
    retry_of: str | None = None,
) -> str:
    """Admit one job: queue it, count it and reserve storage (403 if it does not fit).
    Returns the job id."""
    return create_jobs(session, key, [options], now=now, admission=admission, retry_of=retry_of)[0]


def create_jobs(
    session: Session,
    key: AuthenticatedKey,
    items: list[JobOptions],
    *,
    now: int,
    admission: Admission,
    retry_of: str | None = None,
    batch_id: str | None = None,
    held: bool = False,
    sizes: Sequence[int | None] | None = None,
) -> list[str]:
    """Admit jobs all together or not at all, refused whole with the 403 quota error. Each
    job reserves its known size (``sizes``: an enclosure's length, say) or else the default
    reservation, which a limited key without room for it gets cut down to its share of what
    is left. ``held`` jobs (a paused batch) wait until released. The per-key counters row is
    taken first, as every other transaction of the key takes it (workers, cancels, a group
    commit's key-order lock), so that no two lock the key's rows in opposite orders."""
    ids = [new_id() for _ in items]
    known: list[int | None] = list(sizes) if sizes is not None else [None] * len(items)
    reservations = [admission.reservation_bytes if size is None else size for size in known]
    if not counters.try_admit_jobs(session, key.id, len(ids), sum(reservations)):
        reservations = _admit_with_what_is_left(session, key.id, known, admission.reservation_bytes)
    rows = [
        job_row(job_id, key.id, options, admission, reserved, now, retry_of=retry_of, batch_id=batch_id,
                batch_index=index if batch_id else None, **({"run_after": HELD} if held else {"host_now": now}))
        for index, (job_id, options, reserved) in enumerate(zip(ids, items, reservations, strict=True))
    ]  # fmt: skip
    session.connection().execute(INSERT_JOB if held else INSERT_DUE_JOB, rows)
    ledger.record_jobs_created(session, [(key.id, job_id) for job_id in ids], at_ms=now)
    record(session, JobsAdmitted(key.id, len(ids), at=now, quota_limited=key.key_type == "trial",
                                 webhook_url=items[0].webhook_url if items else None))  # fmt: skip
    if not held:
        wakeup.jobs_queued(session)  # idle workers claim it the moment this commits
    return ids


def _admit_with_what_is_left(
    session: Session, key_id: str, known: list[int | None], default: int
) -> list[int]:
    """The slow path of a limited key short of room: jobs of unknown size share what is left
    after the known sizes, each at most the default. Returns each job's reservation, admitted.
    Refused (403) when the known sizes do not fit, or nothing is left for the unknown ones."""
    wanted = sum(default if size is None else size for size in known)
    unknown = sum(1 for size in known if size is None)
    room = counters.room_left(session, key_id)
    if room is None or not unknown:
        counters.refuse(session, key_id, wanted)
    share = min(default, (room - sum(size or 0 for size in known)) // unknown)
    if share <= 0:
        counters.refuse(session, key_id, wanted)
    counters.admit_jobs(session, key_id, len(known), wanted - (default - share) * unknown)
    return [share if size is None else size for size in known]


def release_held(session: Session, batch_id: str, *, now: int) -> int:
    """Make a paused batch's waiting jobs due now; returns how many."""
    result = session.execute(
        update(Job)
        .where(Job.batch_id == batch_id, Job.status == JobStatus.PENDING, Job.run_after == HELD)
        .values(run_after=due_at_once(literal(now, BigInteger)))
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def get_job(session: Session, key_id: str, job_id: str) -> Job:
    job = session.get(Job, job_id) if _looks_like_id(job_id) else None
    if job is None or job.key_id != key_id:  # another key's job does not exist for you
        raise NotFound("Job not found")
    return job


def _looks_like_id(value: str) -> bool:
    return len(value) == 36 and value.count("-") == 4


@dataclass(frozen=True)
class _Ending:
    """What a job that ends without output is known by (from its row or its claim)."""

    id: str
    key_id: str
    attempt: int
    reserved: int
    url: str
    batch_id: str | None
    folder: str | None
    hook: Hook | None


def _ending_of(job: Job, reserved: int, attempt: int) -> _Ending:
    """From the job's row (its stored options hold the hook and the folder)."""
    options: dict[str, Any] = job.options
    url = options.get("webhook_url")
    hook = Hook(url, bool(options.get("enable_progress_webhook"))) if url else None
    return _Ending(job.id, job.key_id, attempt, reserved, job.url, job.batch_id, options.get("folder"), hook)


def cancel_job(session: Session, key_id: str, job_id: str, *, now: int) -> Job:
    """Cancel a waiting or running job. A running job's worker sees within about a second
    that its attempt no longer owns the job, stops its downloader and FFmpeg, and any late
    write it tries is fenced off; the reservation is released here, at once."""
    job = get_job(session, key_id, job_id)
    if job.status == JobStatus.PROCESSING:
        owned = session.execute(
            select(Job.reserved_bytes, Job.attempt)
            .where(Job.id == job.id, Job.status == JobStatus.PROCESSING)
            .with_for_update()
        ).first()
        if owned is None:  # it finished meanwhile
            raise InvalidInput(NOT_CANCELLABLE)
        ending = _ending_of(job, owned.reserved_bytes, owned.attempt)
        end_without_output(session, ending, JobFailure(CANCELLED_MESSAGE), now=now)
        session.refresh(job)
        return job
    # Lock the row while it is still Pending and read what it holds under that lock: a worker
    # may claim, grow and requeue it between an unlocked read and the update.
    reserved = session.execute(
        select(Job.reserved_bytes).where(Job.id == job.id, Job.status == JobStatus.PENDING).with_for_update()
    ).scalar_one_or_none()
    if reserved is None:
        raise InvalidInput(NOT_CANCELLABLE)
    result = session.execute(
        update(Job)
        .where(Job.id == job.id, Job.status == JobStatus.PENDING)
        .values(
            status=JobStatus.FAILED,
            step=JobStep.FINISHED,
            error=CANCELLED_MESSAGE,
            error_type="error",
            finished_at=now,
            reserved_bytes=0,
        )
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise InvalidInput(NOT_CANCELLABLE)
    counters.move_job(
        session, key_id, from_status=JobStatus.PENDING, to_status=JobStatus.FAILED, release_bytes=reserved
    )
    _ended_without_output(session, _ending_of(job, reserved, job.attempt), JobStatus.FAILED,
                          CANCELLED_MESSAGE, now=now)  # fmt: skip
    session.refresh(job)
    return job


def has_ended(session: Session, job_id: str) -> bool:
    status = session.execute(select(Job.status).where(Job.id == job_id)).scalar_one_or_none()
    return status is not None and status not in (JobStatus.PENDING, JobStatus.PROCESSING)


def clear_output(session: Session, key_id: str, job_id: str, *, now: int) -> list[str]:
    """Forget a completed job's stored objects; returns their keys for deletion. What is
    stored (objects, bytes) goes down; cumulative storage (``used_bytes``) does not: it
    counts bytes ever stored."""
    job = get_job(session, key_id, job_id)
    if job.status != JobStatus.COMPLETED or not job.output_key:
        raise InvalidInput("Job has no file to delete")
    deleted = job.stored_keys
    stored_bytes = job.stored_bytes if job.stored_bytes is not None else job.file_size or 0
    # Conditional: of two concurrent deletes (a retry, retention) only one gets the row.
    cleared = session.execute(
        update(Job)
        .where(Job.id == job.id, Job.output_key.is_not(None))
        .values(output_key=None, subtitle_key=None, thumbnail_key=None)
    )
    if cleared.rowcount != 1:  # type: ignore[attr-defined]
        raise InvalidInput("Job has no file to delete")
    counters.unstore(session, key_id, objects=len(deleted), stored_bytes=stored_bytes)
    ledger.record(
        session, key_id=key_id, job_id=job.id, at_ms=now, dedupe_prefix=f"{job.id}:deleted",
        events=[Usage(ledger.STORED_OBJECTS, -len(deleted)), Usage(ledger.STORED_BYTES, -stored_bytes)],
    )  # fmt: skip
    record(session, ObjectsDeleted(job.id, key_id, tuple(deleted), stored_bytes, at=now))
    return deleted


def _transcoding(done: PipelineResult, priority: int) -> list[Usage]:
    """Output minutes (kept in ms) by quality bucket and by priority; audio has no quality."""
    ms = round((done.duration_seconds or 0) * 1000)
    if ms <= 0:
        return []
    bucket = ledger.quality_bucket(done.width, done.height)
    by_quality = [Usage(ledger.TRANSCODE_MS_BY_QUALITY, ms, bucket)] if bucket else []
    return [*by_quality, Usage(ledger.TRANSCODE_MS_BY_PRIORITY, ms, str(priority))]


def reach_step(session: Session, claimed: ClaimedJob, step: str, *, now: int) -> bool:
    """Move a running job to ``step`` (fenced); False when the lease is lost."""
    if not queue.set_step(session, claimed, step):
        return False
    record(session, StepReached(claimed.id, claimed.key_id, claimed.url, step, at=now, hook=claimed.hook))
    return True


def complete_job(
    session: Session, claimed: ClaimedJob, done: PipelineResult, *, now: int, download_url: str | None = None
) -> bool:
    """Commit a finished run, fenced by the attempt. False: the lease was lost, nothing changed.
    ``download_url`` goes into the ``job_completed`` webhook."""
    owned = queue.JOBS.locked(session, claimed.id, claimed.attempt, Job.reserved_bytes, Job.started_at)
    if owned is None:
        return False
    reserved, started = owned.reserved_bytes, owned.started_at
    session.execute(
        update(Job)
        .where(fenced(claimed.id, claimed.attempt))
        .values(
            status=JobStatus.COMPLETED, step=JobStep.FINISHED, finished_at=now, reserved_bytes=0,
            lease_owner=None, lease_expires_at=None, output_key=done.output_key, subtitle_key=done.subtitle_key,
            thumbnail_key=done.thumbnail_key, file_size=done.file_size, stored_bytes=done.stored_bytes,
            downloaded_bytes=done.downloaded_bytes, duration_seconds=done.duration_seconds, width=done.width,
            height=done.height, title=done.title, details=done.details,
        )
    )  # fmt: skip
    counters.move_job(
        session,
        claimed.key_id,
        from_status=JobStatus.PROCESSING,
        to_status=JobStatus.COMPLETED,
        release_bytes=reserved,
        used_bytes=done.stored_bytes,
        stored_objects=len(done.stored_keys),
    )
    written = ledger.record(
        session,
        key_id=claimed.key_id,
        job_id=claimed.id,
        at_ms=now,
        events=[
            Usage(ledger.JOBS_COMPLETED, 1),
            Usage(ledger.BYTES_UPLOADED, done.stored_bytes),
            Usage(ledger.BYTES_DOWNLOADED, done.downloaded_bytes),
            Usage(ledger.PROCESSING_MS, max(0, now - (started or now)), hour_of(now)),
            Usage(ledger.TIMED_JOBS, 1, hour_of(now)),
            Usage(ledger.STORED_OBJECTS, len(done.stored_keys)),
            Usage(ledger.STORED_BYTES, done.stored_bytes),
            *_transcoding(done, claimed.priority),
        ],
        dedupe_prefix=claimed.id,
    )
    uploaded = written.get((ledger.BYTES_UPLOADED, ""))
    record(session, ObjectsStored(claimed.id, claimed.key_id, tuple(done.stored_keys), done.stored_bytes,
                                  uploaded_event_id=uploaded, at=now))  # fmt: skip
    output = Output(
        key=done.output_key, subtitle_key=done.subtitle_key, thumbnail_key=done.thumbnail_key,
        file_size=done.file_size, title=done.title, description=done.details.get("description"),
        release_date=done.details.get("release_date"), download_url=download_url,
    )  # fmt: skip
    record(session, JobEnded(claimed.id, claimed.key_id, claimed.url, JobStatus.COMPLETED, at=now,
                             batch_id=claimed.batch_id, folder=claimed.options.folder, hook=claimed.hook,
                             output=output))  # fmt: skip
    return True


def fail_job(
    session: Session, claimed: ClaimedJob, failure: JobFailure, *, now: int, retry_at: int | None
) -> bool:
    """End a run that produced no output: back to the queue when the failure is retryable and
    attempts remain (``retry_at``), else a final Failed/Warning/Skipped. Fenced by attempt."""
    owned = queue.JOBS.locked(session, claimed.id, claimed.attempt, Job.reserved_bytes)
    if owned is None:
        return False
    if retry_at is not None:
        return queue.requeue(
            session, claimed.id, claimed.key_id, claimed.attempt, run_after=retry_at, error=failure.message
        )
    ending = _Ending(claimed.id, claimed.key_id, claimed.attempt, owned.reserved_bytes, claimed.url,
                     claimed.batch_id, claimed.options.folder, claimed.hook)  # fmt: skip
    end_without_output(session, ending, failure, now=now)
    return True


def end_without_output(session: Session, job: _Ending, failure: JobFailure, *, now: int) -> None:
    """Final state for a running job with no output: release its reservation, bill nothing."""
    queue.JOBS.record(
        session, job.id, job.attempt,
        {"status": failure.outcome, "step": JobStep.FINISHED, "error": failure.message,
         "error_type": failure.error_type, "finished_at": now, "reserved_bytes": 0},
    )  # fmt: skip
    counters.move_job(
        session,
        job.key_id,
        from_status=JobStatus.PROCESSING,
        to_status=failure.outcome,
        release_bytes=job.reserved,
    )
    _ended_without_output(session, job, failure.outcome, failure.message, now=now)


def _ended_without_output(session: Session, job: _Ending, status: str, error: str, *, now: int) -> None:
    """The ledger event and the domain event of a job that ended without output."""
    ledger.record(session, key_id=job.key_id, job_id=job.id, at_ms=now,
                  events=[Usage(ledger.JOBS_FAILED, 1)], dedupe_prefix=job.id)  # fmt: skip
    record(session, JobEnded(job.id, job.key_id, job.url, status, at=now, batch_id=job.batch_id,
                             folder=job.folder, hook=job.hook, error=error))  # fmt: skip


def grow_job_reservation(session: Session, claimed: ClaimedJob, needed_bytes: int) -> bool | None:
    """Make the job's reservation at least ``needed_bytes``. None: lease lost; False: over quota."""
    return resize_job_reservation(session, claimed, needed_bytes, shrink=False)


def resize_job_reservation(
    session: Session, claimed: ClaimedJob, expected_bytes: int, *, shrink: bool = True
) -> bool | None:
    """Make the job's reservation ``expected_bytes``, now that its size is known better:
    grown with the quota's conditional update, or (``shrink``) lowered to give room back.
    None: lease lost; False: over quota (the reservation is left as it was)."""
    owned = queue.JOBS.locked(session, claimed.id, claimed.attempt, Job.reserved_bytes)
    if owned is None:
        return None
    reserved = owned.reserved_bytes
    if expected_bytes > reserved:
        if not counters.grow_reservation(session, claimed.key_id, expected_bytes - reserved):
            return False
    elif shrink and expected_bytes < reserved:
        counters.shrink_reservation(session, claimed.key_id, reserved - expected_bytes)
    else:
        return True
    session.execute(
        update(Job).where(fenced(claimed.id, claimed.attempt)).values(reserved_bytes=expected_bytes)
    )
    return True


def retry_job(session: Session, key: AuthenticatedKey, job_id: str, *, now: int, admission: Admission) -> str:
    original = get_job(session, key.id, job_id)
    if original.status not in (JobStatus.FAILED, JobStatus.WARNING):
        raise InvalidInput("Only failed jobs can be retried")
    options = validated(
        JobOptions, {"url": original.url, **original.options}, where="The original job's options"
    )
    return create_job(session, key, options, now=now, admission=admission, retry_of=original.id)


def reap_expired(session: Session, *, now: int, given_up: list[str] | None = None) -> int:
    """Requeue jobs whose lease ran out (a worker died or stalled), or end them once their
    attempts are used up, releasing the reservation (their ids added to ``given_up``).
    Returns how many were handled."""
    handled = 0
    for job in queue.expired_leases(session, now=now):
        if job.attempt >= job.max_attempts:
            failure = JobFailure(f"The job was interrupted {job.attempt} times and was given up")
            end_without_output(session, _ending_of(job, job.reserved_bytes, job.attempt), failure, now=now)
            if given_up is not None:
                given_up.append(job.id)
        else:
            queue.requeue(session, job.id, job.key_id, job.attempt, run_after=now)
        handled += 1
    return handled
