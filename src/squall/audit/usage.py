"""``squall usage verify``: recompute counters and rollups from the ledger (and the job
table for what is in flight) and report every difference. It never fixes anything."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from squall.audit import usage_months
from squall.jobs.models import ACTIVE, Job, JobStatus
from squall.metering import ledger
from squall.metering.models import DailyRollup, KeyCounters, UsageEvent

# Counter column -> ledger metric whose total it must equal.
LEDGER_COUNTERS = {
    "usage_count": ledger.JOBS_CREATED,
    "used_bytes": ledger.BYTES_UPLOADED,
    "jobs_completed": ledger.JOBS_COMPLETED,
    "jobs_failed": ledger.JOBS_FAILED,
    "stored_objects": ledger.STORED_OBJECTS,
    "stored_bytes": ledger.STORED_BYTES,
}


@dataclass
class Report:
    keys_checked: int = 0
    rollups_checked: int = 0
    months_checked: int = 0
    drift: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": not self.drift,
            "keys_checked": self.keys_checked,
            "rollups_checked": self.rollups_checked,
            "months_checked": self.months_checked,
            "drift": self.drift,
        }

    def as_text(self) -> str:
        head = (
            f"checked {self.keys_checked} keys, {self.rollups_checked} rollup rows"
            f" and {self.months_checked} monthly rows"
        )
        if not self.drift:
            return f"{head}: no drift"
        lines = [f"{head}: {len(self.drift)} differences"]
        lines += [
            f"  {d['key_id']} {d['what']}: stored {d['stored']}, expected {d['expected']}" for d in self.drift
        ]
        return "\n".join(lines)


def verify(session: Session) -> Report:
    report = Report()
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for key_id, metric, quantity in session.execute(
        select(UsageEvent.key_id, UsageEvent.metric, func.sum(UsageEvent.quantity)).group_by(
            UsageEvent.key_id, UsageEvent.metric
        )
    ):
        totals[(key_id, metric)] = int(quantity)
    active: dict[tuple[str, str], tuple[int, int]] = {}
    for key_id, status, count, reserved in session.execute(
        select(Job.key_id, Job.status, func.count(), func.coalesce(func.sum(Job.reserved_bytes), 0))
        .where(Job.status.in_(ACTIVE))
        .group_by(Job.key_id, Job.status)
    ):
        active[(key_id, status)] = (int(count), int(reserved))

    for c in session.execute(select(KeyCounters)).scalars():
        report.keys_checked += 1
        expected = {column: totals[(c.key_id, metric)] for column, metric in LEDGER_COUNTERS.items()}
        pending, pending_reserved = active.get((c.key_id, JobStatus.PENDING), (0, 0))
        processing, processing_reserved = active.get((c.key_id, JobStatus.PROCESSING), (0, 0))
        expected["jobs_pending"] = pending
        expected["jobs_processing"] = processing
        expected["reserved_bytes"] = pending_reserved + processing_reserved
        for column, value in expected.items():
            stored = getattr(c, column)
            if stored != value:
                report.drift.append(
                    {
                        "key_id": c.key_id,
                        "what": f"counter {column}",
                        "stored": stored,
                        "expected": value,
                    }
                )

    ledger_days = {
        (r.key_id, r.day, r.metric, r.dimension): int(r.total)
        for r in session.execute(
            select(
                UsageEvent.key_id,
                UsageEvent.day,
                UsageEvent.metric,
                UsageEvent.dimension,
                func.sum(UsageEvent.quantity).label("total"),
            ).group_by(UsageEvent.key_id, UsageEvent.day, UsageEvent.metric, UsageEvent.dimension)
        )
    }
    stored_days = {
        (r.key_id, r.day, r.metric, r.dimension): r.quantity
        for r in session.execute(select(DailyRollup)).scalars()
    }
    report.rollups_checked = len(stored_days)
    for where in sorted(set(ledger_days) | set(stored_days), key=str):
        stored, expected_total = stored_days.get(where, 0), ledger_days.get(where, 0)
        if stored != expected_total:
            key_id, day, metric, dimension = where
            what = f"rollup {day} {metric}" + (f"[{dimension}]" if dimension else "")
            report.drift.append(
                {"key_id": key_id, "what": what, "stored": stored, "expected": expected_total}
            )
    report.months_checked, drift = usage_months.check(session, stored_days)
    report.drift += drift
    return report
