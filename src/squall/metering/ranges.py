"""The Fastevo MP2 usage endpoints (/usage/network, /usage/storage, /usage/transcoding): one
record per UTC day of an inclusive range of at most 365 days, newest first, zero-filled,
read from the daily rollups (O(days in range), whatever the history)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from squall.errors import BadRequest
from squall.metering import ledger
from squall.metering.models import DailyRollup

MAX_DAYS = 365
EXAMPLE = "2023-09-01T00:00:00.000Z"
PRIORITIES = tuple(str(p) for p in range(11))


def parse_period(start: str | None, end: str | None) -> tuple[date, date]:
    """The inclusive UTC days of ``startDate``..``endDate``; a 400 that names the broken rule."""
    if not start or not end:
        missing = " and ".join(name for name, value in (("startDate", start), ("endDate", end)) if not value)
        raise BadRequest(
            f"{missing} {'is' if ' and ' not in missing else 'are'} required (ISO 8601, e.g. {EXAMPLE})"
        )
    first, last = _day(start, "startDate"), _day(end, "endDate")
    if last < first:
        raise BadRequest(f"endDate ({last.isoformat()}) is before startDate ({first.isoformat()})")
    days = (last - first).days + 1
    if days > MAX_DAYS:
        raise BadRequest(
            f"Invalid period: {days} days from startDate to endDate; at most {MAX_DAYS} are allowed"
        )
    return first, last


def _day(value: str, name: str) -> date:
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise BadRequest(f"{name} '{value}' is not an ISO 8601 date or date-time (e.g. {EXAMPLE})") from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC)
    return parsed.date()


def _days_newest_first(first: date, last: date) -> list[date]:
    return [last - timedelta(days=n) for n in range((last - first).days + 1)]


def _stamp(day: date) -> str:
    return f"{day.isoformat()}T00:00:00.000Z"


def _rollups(
    session: Session, key_id: str, metrics: list[str], first: date, last: date
) -> dict[tuple[date, str, str], int]:
    return ledger.rollup_totals(session, key_id, metrics, first, last)


def network(session: Session, key_id: str, first: date, last: date) -> list[dict[str, Any]]:
    metrics = [ledger.DELIVERY_REQUESTS, ledger.DELIVERY_BYTES, ledger.DELIVERY_HITS]
    found = _rollups(session, key_id, metrics, first, last)
    records = []
    for day in _days_newest_first(first, last):
        requests = found.get((day, ledger.DELIVERY_REQUESTS, ""), 0)
        hits = found.get((day, ledger.DELIVERY_HITS, ""), 0)
        records.append(
            {
                "collectionDate": _stamp(day),
                "requests": requests,
                "bytesDownloaded": found.get((day, ledger.DELIVERY_BYTES, ""), 0),
                "cacheHitRate": round(100 * hits / requests, 2) if requests else 0,
            }
        )
    return records


def storage(session: Session, key_id: str, first: date, last: date) -> list[dict[str, Any]]:
    """What is stored at the end of each day: the deltas before the range (one aggregate),
    then the range's own deltas, day by day."""
    metrics = [ledger.STORED_OBJECTS, ledger.STORED_BYTES]
    before = dict(
        session.execute(
            select(DailyRollup.metric, func.sum(DailyRollup.quantity))
            .where(DailyRollup.key_id == key_id, DailyRollup.metric.in_(metrics), DailyRollup.day < first)
            .group_by(DailyRollup.metric)
        ).all()
    )
    found = _rollups(session, key_id, metrics, first, last)
    objects, stored = int(before.get(ledger.STORED_OBJECTS) or 0), int(before.get(ledger.STORED_BYTES) or 0)
    ascending = []
    for day in reversed(_days_newest_first(first, last)):
        objects += found.get((day, ledger.STORED_OBJECTS, ""), 0)
        stored += found.get((day, ledger.STORED_BYTES, ""), 0)
        ascending.append({"collectionDate": _stamp(day), "numberOfObjects": objects, "bytesStored": stored})
    return ascending[::-1]


def transcoding(session: Session, key_id: str, first: date, last: date) -> list[dict[str, Any]]:
    metrics = [ledger.TRANSCODE_MS_BY_QUALITY, ledger.TRANSCODE_MS_BY_PRIORITY]
    found = _rollups(session, key_id, metrics, first, last)
    qualities = [f"{q}p" for q in ledger.QUALITIES]
    return [
        {
            "collectionDate": _stamp(day),
            "outputTranscodingMinutesByQuality": {
                q: _minutes(found.get((day, ledger.TRANSCODE_MS_BY_QUALITY, q), 0)) for q in qualities
            },
            "outputTranscodingMinutesByPriority": {
                p: _minutes(found.get((day, ledger.TRANSCODE_MS_BY_PRIORITY, p), 0)) for p in PRIORITIES
            },
        }
        for day in _days_newest_first(first, last)
    ]


def _minutes(ms: int) -> float:
    return round(ms / 60_000, 4)
