"""The operator's views across every key. Each figure is read from the same source the
per-key endpoints read (counters, rollups, jobs), so a sum here equals the sum of theirs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from squall.clock import DAY_MS, utc_day
from squall.errors import InvalidInput
from squall.jobs.models import ACTIVE, ENDED_WITHOUT_OUTPUT, Job, JobStatus
from squall.jobs.workers import WorkerProcess
from squall.keys.models import ApiKey
from squall.metering import ledger
from squall.metering.models import DailyRollup, KeyCounters

SORTS = ("created_at", "client_name", "jobs", "stored_bytes", "reserved_bytes", "failure_rate_24h")
ENDED = (JobStatus.COMPLETED, *ENDED_WITHOUT_OUTPUT)


def _rollup_totals(session: Session, metric: str) -> dict[str, int]:
    rows = session.execute(
        select(DailyRollup.key_id, func.sum(DailyRollup.quantity))
        .where(DailyRollup.metric == metric)
        .group_by(DailyRollup.key_id)
    )
    return {key_id: int(total or 0) for key_id, total in rows}


def failure_rates(session: Session, *, now: int) -> dict[str, tuple[int, int]]:
    """(ended, failed) jobs of the last 24 hours, per key."""
    failed = func.sum(case((Job.status.in_(ENDED_WITHOUT_OUTPUT), 1), else_=0))
    rows = session.execute(
        select(Job.key_id, func.count(), failed)
        .where(Job.finished_at >= now - DAY_MS, Job.status.in_(ENDED))
        .group_by(Job.key_id)
    )
    return {key_id: (int(ended), int(bad or 0)) for key_id, ended, bad in rows}


def keys_view(
    session: Session, *, now: int, sort: str = "created_at", descending: bool = False, limit: int = 50,
    offset: int = 0,
) -> dict[str, Any]:  # fmt: skip
    if sort not in SORTS:
        raise InvalidInput(f"sort must be one of {', '.join(SORTS)}")
    delivered = _rollup_totals(session, ledger.DELIVERY_BYTES)
    transcoded = _rollup_totals(session, ledger.TRANSCODE_MS_BY_QUALITY)
    rates = failure_rates(session, now=now)
    rows = []
    for key, c in session.execute(
        select(ApiKey, KeyCounters).join(KeyCounters, KeyCounters.key_id == ApiKey.id)
    ):
        ended, failed = rates.get(key.id, (0, 0))
        rows.append({
            "id": key.id, "client_name": key.client_name, "type": key.key_type, "prefix": key.key_prefix,
            "state": "revoked" if key.revoked_at is not None else "active", "created_at": key.created_at,
            "limits": {
                "storage_limit_bytes": c.storage_limit_bytes, "max_concurrent_jobs": key.max_concurrent_jobs,
                "rate_limit_per_minute": key.rate_limit_per_minute, "max_resolution": key.max_resolution,
                "max_duration_seconds": key.max_duration_seconds, "max_filesize_bytes": key.max_filesize_bytes,
                "retention_days": key.retention_days, "alert_webhook_url": key.alert_webhook_url,
            },
            "jobs": {
                "total": c.usage_count, "pending": c.jobs_pending, "processing": c.jobs_processing,
                "completed": c.jobs_completed, "failed": c.jobs_failed,
            },
            "stored_bytes": c.used_bytes, "reserved_bytes": c.reserved_bytes,
            "delivered_bytes": delivered.get(key.id, 0),
            "transcoded_seconds": transcoded.get(key.id, 0) / 1000,
            "jobs_ended_24h": ended, "jobs_failed_24h": failed,
            "failure_rate_24h": failed / ended if ended else 0.0,
        })  # fmt: skip
    value = {"jobs": lambda r: r["jobs"]["total"]}.get(sort, lambda r: r[sort])
    rows.sort(key=value, reverse=descending)
    return {"total": len(rows), "limit": limit, "offset": offset, "keys": rows[offset : offset + limit]}


def queue_view(session: Session, *, now: int, lease_ms: int) -> dict[str, Any]:
    """Queued and running jobs by key and by priority, the oldest wait, claims in the last
    minute, and every worker; a worker silent for three lease periods is dead, and the jobs it
    still holds are listed as its dead leases until the reaper takes them."""
    by_key = [
        {"key_id": key_id, "client_name": name, "pending": pending, "processing": processing}
        for key_id, name, pending, processing in session.execute(
            select(
                KeyCounters.key_id, ApiKey.client_name, KeyCounters.jobs_pending, KeyCounters.jobs_processing
            )
            .join(ApiKey, ApiKey.id == KeyCounters.key_id)
            .where((KeyCounters.jobs_pending > 0) | (KeyCounters.jobs_processing > 0))
            .order_by(KeyCounters.jobs_pending.desc())
        )
    ]
    by_priority: dict[int, dict[str, Any]] = {}
    for priority, status, count, oldest in session.execute(
        select(Job.priority, Job.status, func.count(), func.min(Job.created_at))
        .where(Job.status.in_(ACTIVE))
        .group_by(Job.priority, Job.status)
    ):
        entry = by_priority.setdefault(priority, {"priority": priority, "pending": 0, "processing": 0,
                                                  "oldest_wait_ms": None})  # fmt: skip
        entry[status.lower()] = count
        if status == JobStatus.PENDING:
            entry["oldest_wait_ms"] = max(0, now - oldest)
    waits = [e["oldest_wait_ms"] for e in by_priority.values() if e["oldest_wait_ms"] is not None]
    claims = session.execute(select(func.count()).where(Job.started_at >= now - 60_000)).scalar_one()
    return {
        "pending": sum(e["pending"] for e in by_priority.values()),
        "processing": sum(e["processing"] for e in by_priority.values()),
        "oldest_wait_ms": max(waits, default=None),
        "claims_last_minute": claims,
        "by_key": by_key,
        "by_priority": sorted(by_priority.values(), key=lambda e: -e["priority"]),
        "workers": workers_view(session, now=now, lease_ms=lease_ms),
    }


def workers_view(session: Session, *, now: int, lease_ms: int) -> list[dict[str, Any]]:
    held: dict[str | None, list[dict[str, Any]]] = {}
    for job_id, key_id, owner, until in session.execute(
        select(Job.id, Job.key_id, Job.lease_owner, Job.lease_expires_at).where(
            Job.status == JobStatus.PROCESSING
        )
    ):
        held.setdefault(owner, []).append({"job_id": job_id, "key_id": key_id, "lease_expires_at": until,
                                           "lease_expired": until is not None and until < now})  # fmt: skip
    workers = []
    for w in session.execute(select(WorkerProcess).order_by(WorkerProcess.started_at)).scalars():
        alive = w.last_heartbeat_at >= now - 3 * lease_ms
        workers.append({
            "id": w.id, "host": w.host, "pid": w.pid, "concurrency": w.concurrency, "alive": alive,
            "last_heartbeat_at": w.last_heartbeat_at, "last_heartbeat_ago_ms": now - w.last_heartbeat_at,
            "jobs": len(held.get(w.id, [])), "leases": held.pop(w.id, []), "dead_leases": not alive,
        })  # fmt: skip
    return workers


def top_consumers(session: Session, *, now: int, days: int = 7, limit: int = 10) -> list[dict[str, Any]]:
    """Keys by jobs created over the last ``days`` UTC days (today included), with the bytes
    they uploaded: the daily rollups the per-key usage endpoints read."""
    first = utc_day(now) - timedelta(days=days - 1)
    jobs = func.sum(case((DailyRollup.metric == ledger.JOBS_CREATED, DailyRollup.quantity), else_=0))
    uploaded = func.sum(case((DailyRollup.metric == ledger.BYTES_UPLOADED, DailyRollup.quantity), else_=0))
    rows = session.execute(
        select(DailyRollup.key_id, ApiKey.client_name, jobs.label("jobs"), uploaded.label("uploaded"))
        .join(ApiKey, ApiKey.id == DailyRollup.key_id)
        .where(DailyRollup.day >= first, DailyRollup.metric.in_([ledger.JOBS_CREATED, ledger.BYTES_UPLOADED]))
        .group_by(DailyRollup.key_id, ApiKey.client_name)
        .order_by(jobs.desc())
        .limit(limit)
    )
    return [
        {"key_id": k, "client_name": n, "jobs": int(j or 0), "uploaded_bytes": int(u or 0)}
        for k, n, j, u in rows
    ]
