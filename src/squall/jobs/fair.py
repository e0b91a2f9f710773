"""The fair choice of the next job across keys.

Workers take turns between the keys that have work waiting: each key offers its next job
(its own priority, then age), and of those the highest priority wins, then the key whose
last claim is oldest (a key never claimed goes first), then the oldest job. So a key's
single job waits for about one free worker however many jobs another key has queued, and a
low-priority flood never delays a higher-priority job of another key.

The statement starts from ``key_counters`` (keys with pending jobs and room under their
``max_concurrent_jobs``) and looks up one job per key through ``ix_jobs_key_queue``: its
cost grows with the keys that have work waiting, not with the jobs queued. On PostgreSQL
the chosen job and its key's counters row are locked with SKIP LOCKED, so two claimers
never take the same key's turn at once (which is also what keeps the concurrency cap exact);
SQLite serialises claims in its write transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import literal_column, or_, select, true

from squall.db.base import table_of
from squall.jobs.models import Job, JobStatus
from squall.keys.models import ApiKey
from squall.metering.models import KeyCounters

_JOBS = table_of(Job)
_COUNTERS = table_of(KeyCounters)
_KEYS = table_of(ApiKey)
# Written into the SQL, not bound: both engines use a partial index (``status = 'Pending'``)
# only for a query whose WHERE names the same constant.
PENDING: Any = literal_column(f"'{JobStatus.PENDING.value}'")


def next_job_per_key(now: int, dialect: str) -> Any:
    """The CTE of the one job to claim (``LeasedQueue.claim``'s ``candidates``).

    PostgreSQL gets each key's next job from a LATERAL subquery and joins the job back by
    primary key to lock it: with ``jobs.id = (correlated subquery)`` instead, its planner may
    hash the whole jobs table. SQLite has no LATERAL and looks the correlated subquery up
    row by row, as written."""
    j, c, k = _JOBS.c, _COUNTERS.c, _KEYS.c
    room = or_(k.max_concurrent_jobs.is_(None), c.jobs_processing < k.max_concurrent_jobs)
    if dialect == "postgresql":
        q = _JOBS.alias("queued").c  # the outer query's own jobs would be correlated away
        per_key = (
            select(q.id).where(q.key_id == c.key_id, q.status == PENDING, q.run_after <= now)
            .order_by(q.priority.desc(), q.created_at).limit(1).correlate(_COUNTERS).lateral("next_of_key")
        )  # fmt: skip
        joined = _COUNTERS.join(per_key, true()).join(_JOBS, j.id == per_key.c.id)
    else:
        next_of_key = (
            select(j.id).where(j.key_id == c.key_id, j.status == PENDING, j.run_after <= now)
            .order_by(j.priority.desc(), j.created_at).limit(1).correlate(_COUNTERS).scalar_subquery()
        )  # fmt: skip
        joined = _COUNTERS.join(_JOBS, j.id == next_of_key)
    return (
        select(j.id)
        .select_from(joined.join(_KEYS, k.id == c.key_id))
        .where(c.jobs_pending > 0, room)
        .order_by(j.priority.desc(), c.last_claimed_at.asc().nulls_first(), j.created_at)
        .limit(1)
        .with_for_update(skip_locked=True, of=[_JOBS, _COUNTERS])
        .cte("due")
    )
