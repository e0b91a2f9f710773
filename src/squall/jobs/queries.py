"""Read-side queries over jobs: the paged lists (GET /jobs, the dashboard), the dashboard's
failure reasons, and the housekeeping that finds outputs past their key's retention."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, cast, func, literal, select
from sqlalchemy.orm import Session

from squall.clock import DAY_MS
from squall.errors import InvalidInput
from squall.jobs.models import ENDED_WITHOUT_OUTPUT, Job, JobStatus
from squall.keys.models import ApiKey
from squall.metering import counters
from squall.pipeline.failures import scrub_tool_names

STATUS_FILTERS = {"pending", "processing", "completed", "failed", "warning", "skipped"}


def list_jobs(
    session: Session, key_id: str, *, status: str | None, limit: int, offset: int, search: str | None = None
) -> tuple[list[Job], int, int]:
    """A page of jobs, newest first, with the total of all the key's jobs and the total
    matching the filter. ``search`` matches part of the source URL or of the stored name (a
    scan of the key's jobs: for people looking, not for the hot path)."""
    query = select(Job).where(Job.key_id == key_id)
    if search:
        found = Job.url.contains(search, autoescape=True) | Job.output_key.contains(search, autoescape=True)
        query = query.where(found)
    c = counters.get_counters(session, key_id)  # O(1) total, however long the history
    total = c.jobs_pending + c.jobs_processing + c.jobs_completed + c.jobs_failed
    matching = total
    if status is not None:
        status = status.lower()  # "Completed" as the API writes it, or "completed"
        if status not in STATUS_FILTERS:
            raise InvalidInput(
                f"Invalid status filter '{status}'. Allowed: {', '.join(sorted(STATUS_FILTERS))}"
            )
        query = query.where(Job.status == status.capitalize())
    if status is not None or search:
        matching = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = session.execute(query.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit).offset(offset))
    return list(rows.scalars()), total, matching


def failure_reasons(session: Session, key_id: str, *, since: int, limit: int = 5) -> list[dict[str, Any]]:
    """The commonest errors of the key's jobs that ended without output since ``since``."""
    rows = session.execute(
        select(Job.error, func.count().label("n"))
        .where(Job.key_id == key_id, Job.finished_at >= since, Job.status.in_(ENDED_WITHOUT_OUTPUT))
        .group_by(Job.error)
        .order_by(func.count().desc())
        .limit(limit)
    )
    return [{"error": scrub_tool_names(error) if error else "Unknown error", "count": n} for error, n in rows]


def past_retention(session: Session, *, now: int, limit: int = 100) -> list[tuple[str, str]]:
    """(key id, job id) of completed jobs whose outputs their key's retention has run out on."""
    rows = session.execute(
        select(Job.key_id, Job.id)
        .join(ApiKey, ApiKey.id == Job.key_id)
        .where(
            ApiKey.retention_days.is_not(None),
            Job.status == JobStatus.COMPLETED,
            Job.output_key.is_not(None),
            # BIGINT throughout: days in ms overflow PostgreSQL's INTEGER.
            Job.finished_at < literal(now, BigInteger) - cast(ApiKey.retention_days, BigInteger) * DAY_MS,
        )
        .limit(limit)
    )
    return [(key_id, job_id) for key_id, job_id in rows]
