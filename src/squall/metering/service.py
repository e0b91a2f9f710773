"""Usage views. Every read is O(1) in history (counters) or O(days) (rollups)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from squall.clock import HOUR_MS, day_start_ms, utc_day
from squall.keys.service import AuthenticatedKey
from squall.metering import ledger
from squall.metering.counters import get_counters
from squall.units import GB, MB

STRIPE_NOT_CONFIGURED = "Stripe billing is not configured on this server"


def usage(
    session: Session, key: AuthenticatedKey, *, billing: dict[str, Any] | None = None
) -> dict[str, Any]:
    """GET /usage: the fields of the Tornado table for the key's type. ``billing`` holds a
    stripe key's period fields (the billing domain's answer)."""
    c = get_counters(session, key.id)
    body: dict[str, Any] = {
        "client_name": key.client_name,
        "usage_count": c.usage_count,
        "storage_usage_gb": c.used_bytes / GB,
        "storage_reserved_gb": c.reserved_bytes / GB,
        "storage_effective_usage_gb": (c.used_bytes + c.reserved_bytes) / GB,
        "storage_usage_bytes": c.used_bytes,
        "storage_reserved_bytes": c.reserved_bytes,
    }
    if key.key_type == "stripe":
        body.update(billing if billing is not None else {"billing_error": STRIPE_NOT_CONFIGURED})
    if key.key_type == "trial" and c.storage_limit_bytes is not None:
        remaining = max(0, c.storage_limit_bytes - c.used_bytes - c.reserved_bytes)
        body["storage_limit_gb"] = c.storage_limit_bytes / GB
        body["storage_limit_bytes"] = c.storage_limit_bytes
        body["storage_remaining_gb"] = remaining / GB
    if key.max_resolution is not None:
        body["max_resolution_limit"] = str(key.max_resolution)
    if key.max_duration_seconds is not None:
        body["max_duration_limit_seconds"] = key.max_duration_seconds
    if key.max_filesize_bytes is not None:
        body["max_filesize_limit_bytes"] = key.max_filesize_bytes
        body["max_filesize_limit_mb"] = key.max_filesize_bytes / MB
    if key.max_concurrent_jobs is not None:
        body["max_concurrent_jobs_limit"] = key.max_concurrent_jobs
    return body


def dashboard_stats(session: Session, key: AuthenticatedKey, *, now: int) -> dict[str, Any]:
    c = get_counters(session, key.id)
    avg_ms = average_processing_ms(session, key.id, now=now)
    today = utc_day(now)
    throughput = ledger.rollup_totals(session, key.id, [ledger.BYTES_DOWNLOADED], today, today)
    return {
        "total_jobs": c.jobs_pending + c.jobs_processing + c.jobs_completed + c.jobs_failed,
        "pending_jobs": c.jobs_pending,
        "processing_jobs": c.jobs_processing,
        "completed_jobs": c.jobs_completed,
        "failed_jobs": c.jobs_failed,
        "storage_used_bytes": c.used_bytes,
        "storage_used_gb": c.used_bytes / GB,
        "client_name": key.client_name,
        "avg_processing_time_seconds": None if avg_ms is None else round(float(avg_ms) / 1000, 3),
        "today_throughput_bytes": sum(throughput.values()),
    }


def average_processing_ms(session: Session, key_id: str, *, now: int) -> float | None:
    """Mean processing time of jobs completed in the last 24 hours, to the hour: the 24
    whole hours before the current one, plus the current hour so far."""
    first_hour = now // HOUR_MS - 24
    totals = ledger.rollup_totals(
        session,
        key_id,
        [ledger.PROCESSING_MS, ledger.TIMED_JOBS],
        utc_day(first_hour * HOUR_MS),
        utc_day(now),
    )
    spent = count = 0
    for (day, metric, dimension), quantity in totals.items():
        if day_start_ms(day) // HOUR_MS + int(dimension) < first_hour:
            continue
        if metric == ledger.PROCESSING_MS:
            spent += quantity
        else:
            count += quantity
    return spent / count if count else None


def daily_stats(session: Session, key_id: str, *, now: int, days: int = 7) -> dict[str, Any]:
    """Completed and failed jobs per UTC day, oldest first, zero-filled."""
    last = utc_day(now)
    first = last - timedelta(days=days - 1)
    totals = ledger.rollup_totals(session, key_id, [ledger.JOBS_COMPLETED, ledger.JOBS_FAILED], first, last)
    series = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        series.append(
            {
                "date": day.isoformat(),
                "completed": totals.get((day, ledger.JOBS_COMPLETED, ""), 0),
                "failed": totals.get((day, ledger.JOBS_FAILED, ""), 0),
            }
        )
    return {"daily_stats": series}
