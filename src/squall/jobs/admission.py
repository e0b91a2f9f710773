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


def admit_together(session: Session, requests: Sequence[JobRequest], *, now: int) -> list[str | None]:
    """Each request's new job id, or None for every request of a key whose counters could not
    take all of that key's requests at once (nothing was written for that key: admit those
    one at a time, so each is refused or cut to its share alone). Keys are taken in key
    order, as a group commit locks them."""
    by_key: dict[str, list[int]] = {}
    for n, request in enumerate(requests):
        by_key.setdefault(request.key.id, []).append(n)
    ids: list[str | None] = [None] * len(requests)
    admitted: list[list[int]] = []
    for key_id in sorted(by_key):
        members = by_key[key_id]
        wanted = sum(requests[n].admission.reservation_bytes for n in members)
        if counters.try_admit_jobs(session, key_id, len(members), wanted):
            admitted.append(members)
            for n in members:
                ids[n] = new_id()
    if not admitted:
        return ids
    rows = []
    for members in admitted:
        for n in members:
            request = requests[n]
            job_id = ids[n]
            assert job_id is not None
            rows.append(job_row(job_id, request.key.id, request.options, request.admission,
                                request.admission.reservation_bytes, now, host_now=now,
                                retry_of=None, batch_id=None, batch_index=None))  # fmt: skip
    session.connection().execute(INSERT_DUE_JOB, rows)
    ledger.record_jobs_created(session, [(row["key_id"], row["id"]) for row in rows], at_ms=now)
    for members in admitted:
        key = requests[members[0]].key
        record(session, JobsAdmitted(key.id, len(members), at=now, quota_limited=key.key_type == "trial",
                                     webhook_url=requests[members[0]].options.webhook_url))  # fmt: skip
    wakeup.jobs_queued(session)  # idle workers claim them the moment this commits
    return ids
