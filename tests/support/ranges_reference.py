"""The date-range endpoints as they were before the monthly form (every day read from the
daily rollups), kept verbatim as the reference the new reads must equal."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Date, bindparam, text
from sqlalchemy.orm import Session

from squall.metering import ledger
from squall.metering.counters import get_counters

PRIORITIES = tuple(str(p) for p in range(11))


def _iso_days_newest_first(first: date, last: date) -> list[str]:
    return [(last - timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


# Plain SQL without result processing: a 365-day transcoding range is thousands of rows,
# and turning each day back into a ``date`` costs more than the query itself.
_ROLLUPS = text(
    "SELECT day, metric, dimension, quantity FROM daily_rollups "
    "WHERE key_id = :key_id AND metric IN :metrics AND day >= :first AND day <= :last"
).bindparams(
    bindparam("metrics", expanding=True), bindparam("first", type_=Date), bindparam("last", type_=Date)
)


def _rollups(
    session: Session, key_id: str, metrics: list[str], first: date, last: date
) -> dict[tuple[str, str, str], int]:
    """(ISO day, metric, dimension) -> quantity."""
    return {
        (str(day), metric, dimension): quantity
        for day, metric, dimension, quantity in _rows(session, key_id, metrics, first, last)
    }


def _rows(session: Session, key_id: str, metrics: list[str], first: date, last: date) -> Sequence[Any]:
    params = {"key_id": key_id, "metrics": metrics, "first": first, "last": last}
    return session.execute(_ROLLUPS, params).all()  # one fetchall, not a fetch per row


def network(session: Session, key_id: str, first: date, last: date) -> list[dict[str, Any]]:
    metrics = [ledger.DELIVERY_REQUESTS, ledger.DELIVERY_BYTES, ledger.DELIVERY_HITS]
    found = _rollups(session, key_id, metrics, first, last)
    records = []
    for day in _iso_days_newest_first(first, last):
        requests = found.get((day, ledger.DELIVERY_REQUESTS, ""), 0)
        hits = found.get((day, ledger.DELIVERY_HITS, ""), 0)
        records.append(
            {
                "collectionDate": f"{day}T00:00:00.000Z",
                "requests": requests,
                "bytesDownloaded": found.get((day, ledger.DELIVERY_BYTES, ""), 0),
                "cacheHitRate": round(100 * hits / requests, 2) if requests else 0,
            }
        )
    return records


def storage(session: Session, key_id: str, first: date, last: date) -> list[dict[str, Any]]:
    """What is stored at the end of each day: the key's totals now, minus the deltas of
    every later day. For a range that ends today that reads only the range's own rows."""
    c = get_counters(session, key_id)
    metrics = [ledger.STORED_OBJECTS, ledger.STORED_BYTES]
    found = _rollups(session, key_id, metrics, first + timedelta(days=1), date.max)
    later_objects = later_bytes = 0
    for (day, metric, _), quantity in found.items():
        if day > last.isoformat():
            if metric == ledger.STORED_OBJECTS:
                later_objects += quantity
            else:
                later_bytes += quantity
    objects, stored = c.stored_objects - later_objects, c.stored_bytes - later_bytes
    records = []
    for day in _iso_days_newest_first(first, last):  # end of ``day``, then undo its deltas
        records.append(
            {"collectionDate": f"{day}T00:00:00.000Z", "numberOfObjects": objects, "bytesStored": stored}
        )
        objects -= found.get((day, ledger.STORED_OBJECTS, ""), 0)
        stored -= found.get((day, ledger.STORED_BYTES, ""), 0)
    return records


def transcoding(session: Session, key_id: str, first: date, last: date) -> list[dict[str, Any]]:
    """Every quality and priority key on every day; rows only fill in what is not zero."""
    metrics = [ledger.TRANSCODE_MS_BY_QUALITY, ledger.TRANSCODE_MS_BY_PRIORITY]
    zero_quality: dict[str, float] = dict.fromkeys((f"{q}p" for q in ledger.QUALITIES), 0)
    zero_priority: dict[str, float] = dict.fromkeys(PRIORITIES, 0)
    records: dict[str, dict[str, Any]] = {
        day: {
            "collectionDate": f"{day}T00:00:00.000Z",
            "outputTranscodingMinutesByQuality": zero_quality.copy(),
            "outputTranscodingMinutesByPriority": zero_priority.copy(),
        }
        for day in _iso_days_newest_first(first, last)
    }
    field = {
        ledger.TRANSCODE_MS_BY_QUALITY: "outputTranscodingMinutesByQuality",
        ledger.TRANSCODE_MS_BY_PRIORITY: "outputTranscodingMinutesByPriority",
    }
    for day, metric, dimension, quantity in _rows(session, key_id, metrics, first, last):
        bucket: dict[str, float] = records[str(day)][field[metric]]
        if dimension in bucket:  # a dimension this API does not show is left out
            bucket[dimension] = _minutes(quantity)
    return list(records.values())


def _minutes(ms: int) -> float:
    return round(ms / 60_000, 4)
