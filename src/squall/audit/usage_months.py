"""``squall usage verify`` for the monthly form of finished days: each row must be, to the
byte, what the daily rollups of its days encode (what is stored summed from the key's first
day). A difference is reported with the first day where the two disagree."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from squall.metering import days, months
from squall.metering.models import UsageMonth

Rollups = dict[tuple[str, date, str, str], int]


def check(session: Session, rollups: Rollups) -> tuple[int, list[dict[str, Any]]]:
    """(monthly rows checked, differences) against the rollups (key, day, metric, dimension)."""
    per_key: dict[str, dict[tuple[str, str, str], int]] = defaultdict(dict)
    for (key_id, day, metric, dimension), quantity in rollups.items():
        if metric in days.ALL_METRICS:
            per_key[key_id][(str(day), metric, dimension)] = quantity
    checked, drift = 0, list[dict[str, Any]]()
    for row in session.execute(
        select(UsageMonth).order_by(UsageMonth.key_id, UsageMonth.kind, UsageMonth.month)
    ).scalars():
        checked += 1
        what = f"monthly {row.kind} {row.month:%Y-%m}"
        if row.kind not in days.KINDS or months.month_of(row.through) != row.month:
            drift.append({"key_id": row.key_id, "what": what, "stored": f"{row.kind} through {row.through}",
                          "expected": f"an endpoint's days of {row.month:%Y-%m}"})  # fmt: skip
            continue
        found = per_key.get(row.key_id, {})
        at_end = days.deltas(found, date.min, row.through)
        expected = ",".join(days.encode(row.kind, row.month, row.through, found, at_end))
        if row.body != expected:
            first, stored, wanted = _first_difference(row.body, expected)
            drift.append(
                {"key_id": row.key_id, "what": f"{what} {first}", "stored": stored, "expected": wanted}
            )
    return checked, drift


def _first_difference(body: str, expected: str) -> tuple[str, str, str]:
    """(day, stored record, expected record) where a row first differs from its rollups."""
    wanted = json.loads(f"[{expected}]")
    try:
        stored = json.loads(f"[{body}]")
    except ValueError:
        return "(unreadable)", body[:80], json.dumps(wanted[0], separators=(",", ":"))
    for index, record in enumerate(wanted):
        found = stored[index] if index < len(stored) else None
        if found != record:
            return (
                record["collectionDate"][:10],
                json.dumps(found, separators=(",", ":")),
                json.dumps(record, separators=(",", ":")),
            )
    extra = stored[len(wanted)]
    return str(extra.get("collectionDate", "?"))[:10], json.dumps(extra, separators=(",", ":")), "no such day"
