"""Single jobs of many requests admitted together, with one statement per table for all of
them instead of a handful per request: the counters row of each key once, the jobs in one
multi-row insert, their ledger events in another and each key's rollup once.

This is what a group commit's transaction does with the plain ``POST /jobs`` requests it
holds (one job, no Idempotency-Key, no bucket of the request's own, not a feed), which are
nearly all of them. The quota guarantee is the same as one request at a time: a key's
counters take all of its requests' reservations in one conditional update or none of them,
and when none, each of that key's requests is admitted (or refused) alone afterwards."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, bindparam, insert
from sqlalchemy.orm import Session

from squall.db import wakeup
from squall.db.base import new_id, table_of
from squall.db.dbtime import due_at_once
from squall.events import record
from squall.jobs.events import JobsAdmitted
from squall.jobs.models import Job, JobStatus, JobStep
from squall.jobs.options import JobOptions
from squall.keys.service import AuthenticatedKey
from squall.metering import counters, ledger

INSERT_JOB = insert(table_of(Job))  # built once: admission is the hot path
# A job due at once is due by the database's clock too (``due_at_once``), read in the insert.
INSERT_DUE_JOB = insert(table_of(Job)).values(run_after=due_at_once(bindparam("host_now", type_=BigInteger)))


@dataclass(frozen=True)
class Admission:
    """What every new job (created or retried) is admitted with."""

    reservation_bytes: int
    max_attempts: int


@dataclass(frozen=True)
class JobRequest:
    """One request for one job, due at once, of unknown size (the default reservation)."""

    key: AuthenticatedKey
    options: JobOptions
    admission: Admission


def job_row(
    job_id: str, key_id: str, options: JobOptions, admission: Admission, reserved: int, now: int,
    **extra: Any,
) -> dict[str, Any]:  # fmt: skip
    """A new job's row for the jobs insert (``extra``: run_after or host_now, retry and batch)."""
    return dict(
        id=job_id,
        key_id=key_id,
        url=options.url,
        options=options.model_dump(mode="json", exclude_defaults=True),
        priority=options.priority,
        status=JobStatus.PENDING,
        step=JobStep.QUEUED,
        attempt=0,
        max_attempts=admission.max_attempts,
        reserved_bytes=reserved,
        created_at=now,
        **extra,
    )


SAVEPOINT = "squall_plain_admissions"


@dataclass
class Staged:
    """Plain requests whose rows are written, waiting for their keys' reservations."""

    requests: Sequence[JobRequest]
    ids: list[str]
    by_key: dict[str, list[int]]  # request indexes per key
    now: int


def stage_together(session: Session, requests: Sequence[JobRequest], *, now: int) -> Staged:
    """Write what no other transaction contends for, before the keys' counters rows are
    locked: a savepoint, the job rows and their ``jobs.created`` ledger events (new rows
    only), and the workers' NOTIFY. On PostgreSQL a key's counters row is locked until the
    commit, and the other API processes' batches for that key wait that long: what is
    written here does not lengthen their wait. ``take_reservations`` finishes the work."""
    session.connection().exec_driver_sql(f"SAVEPOINT {SAVEPOINT}")
    by_key: dict[str, list[int]] = {}
    for n, request in enumerate(requests):
        by_key.setdefault(request.key.id, []).append(n)
    ids = [new_id() for _ in requests]
    rows = [
        job_row(job_id, request.key.id, request.options, request.admission, request.admission.reservation_bytes,
                now, host_now=now, retry_of=None, batch_id=None, batch_index=None)
        for job_id, request in zip(ids, requests, strict=True)
    ]  # fmt: skip
    session.connection().execute(INSERT_DUE_JOB, rows)
    ledger.append_jobs_created(session, [(row["key_id"], row["id"]) for row in rows], at_ms=now)
    wakeup.jobs_queued(session)  # idle workers claim them the moment this commits
    wakeup.notify_before_commit(session)  # now, not with the counters rows locked
    return Staged(requests, ids, by_key, now)


def unstage(session: Session) -> None:
    """Undo ``stage_together`` (after it failed part way)."""
    session.connection().exec_driver_sql(f"ROLLBACK TO SAVEPOINT {SAVEPOINT}")


def take_reservations(session: Session, staged: Staged, locked: list[str]) -> list[str | None]:
    """Each staged request's job id once its key's counters took the reservations of all of
    that key's staged requests at once (keys in key order, as a group commit locks them).
    Should any key refuse, everything staged is rolled back and only the keys that took
    theirs are admitted again: None for each request of a refusing key, which is then
    admitted or refused alone, cut to its share if it must be, as if it came by itself.
    ``locked``: the counters rows the caller locked after staging (PostgreSQL), which the
    rollback releases and which are locked again, in key order, before anything else."""
    requests, by_key = staged.requests, staged.by_key
    refusing = set()
    for key_id in sorted(by_key):
        wanted = sum(requests[n].admission.reservation_bytes for n in by_key[key_id])
        if not counters.try_admit_jobs(session, key_id, len(by_key[key_id]), wanted):
            refusing.add(key_id)
    if not refusing:
        _admitted(session, staged, sorted(by_key))
        return list[str | None](staged.ids)
    # Rare (a key short of room): undo the staged rows, and the other keys' counters, and
    # stage again without the refusing keys.
    unstage(session)
    if locked:  # the rollback released them
        counters.lock_rows(session, locked)
    kept = [n for n, request in enumerate(requests) if request.key.id not in refusing]
    if not kept:
        return [None] * len(requests)
    again = stage_together(session, [requests[n] for n in kept], now=staged.now)
    taken = take_reservations(session, again, locked)
    ids: list[str | None] = [None] * len(requests)
    for n, job_id in zip(kept, taken, strict=True):
        ids[n] = job_id
    return ids


def _admitted(session: Session, staged: Staged, key_ids: list[str]) -> None:
    """The keys' daily rollups (their hot rows, taken after the counters rows) and events."""
    requests, by_key = staged.requests, staged.by_key
    ledger.roll_up_jobs_created(
        session, {key_id: len(by_key[key_id]) for key_id in key_ids}, at_ms=staged.now
    )
    for key_id in key_ids:
        first = requests[by_key[key_id][0]]
        record(session, JobsAdmitted(key_id, len(by_key[key_id]), at=staged.now,
                                     quota_limited=first.key.key_type == "trial",
                                     webhook_url=first.options.webhook_url))  # fmt: skip
