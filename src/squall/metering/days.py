"""One day of each Fastevo MP2 usage endpoint written as its JSON record, from the daily
rollups. The same encoder serves today's live days, seals finished days into the monthly
form (``months.py``) and checks that form (``squall usage verify``), so all three agree to
the byte."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from squall.metering import ledger

# (ISO day, metric, dimension) -> quantity, as the rollups hold them.
Found = Mapping[tuple[str, str, str], int]

NETWORK, STORAGE, TRANSCODING = "network", "storage", "transcoding"
KINDS = (NETWORK, STORAGE, TRANSCODING)
METRICS = {
    NETWORK: (ledger.DELIVERY_REQUESTS, ledger.DELIVERY_BYTES, ledger.DELIVERY_HITS),
    STORAGE: (ledger.STORED_OBJECTS, ledger.STORED_BYTES),
    TRANSCODING: (ledger.TRANSCODE_MS_BY_QUALITY, ledger.TRANSCODE_MS_BY_PRIORITY),
}
ALL_METRICS = tuple(m for kind in KINDS for m in METRICS[kind])
QUALITIES = tuple(f"{q}p" for q in ledger.QUALITIES)
PRIORITIES = tuple(str(p) for p in range(11))
MARK = '{"collectionDate":"'  # how every record starts; the day follows it


def _dumps(record: dict[str, Any]) -> str:
    return json.dumps(record, separators=(",", ":"))


def _zero_tail(kind: str) -> str:
    """What follows the date in a day without rollups ("T00:00:00.000Z",...})."""
    record = _network("X", {}) if kind == NETWORK else _transcoding("X", {})
    return record[len(MARK) + 1 :]


def _network(day: str, found: Found) -> str:
    requests = found.get((day, ledger.DELIVERY_REQUESTS, ""), 0)
    hits = found.get((day, ledger.DELIVERY_HITS, ""), 0)
    return _dumps(
        {
            "collectionDate": f"{day}T00:00:00.000Z",
            "requests": requests,
            "bytesDownloaded": found.get((day, ledger.DELIVERY_BYTES, ""), 0),
            "cacheHitRate": round(100 * hits / requests, 2) if requests else 0,
        }
    )


def _transcoding(day: str, found: Found) -> str:
    """Every quality and priority; a rollup row (even of 0 ms) gives its minutes."""
    return _dumps(
        {
            "collectionDate": f"{day}T00:00:00.000Z",
            "outputTranscodingMinutesByQuality": _minutes(day, ledger.TRANSCODE_MS_BY_QUALITY, QUALITIES, found),
            "outputTranscodingMinutesByPriority": _minutes(day, ledger.TRANSCODE_MS_BY_PRIORITY, PRIORITIES, found),
        }
    )  # fmt: skip


def _minutes(day: str, metric: str, names: tuple[str, ...], found: Found) -> dict[str, float]:
    out: dict[str, float] = {}
    for name in names:
        ms = found.get((day, metric, name))
        out[name] = 0 if ms is None else round(ms / 60_000, 4)
    return out


ZERO_TAIL = {NETWORK: _zero_tail(NETWORK), TRANSCODING: _zero_tail(TRANSCODING)}


def encode(
    kind: str, first: date, last: date, found: Found, stored_at_end: tuple[int, int] = (0, 0)
) -> list[str]:
    """The records of ``first``..``last``, newest first. ``found`` holds the rollups of those
    days; for storage, ``stored_at_end`` is (objects, bytes) stored at the end of ``last``,
    and each earlier day is that minus the later days' deltas."""
    busy = {day for day, _, _ in found}
    records = []
    objects, stored = stored_at_end
    for n in range((last - first).days + 1):
        day = (last - timedelta(days=n)).isoformat()
        if kind == STORAGE:
            records.append(f'{MARK}{day}T00:00:00.000Z","numberOfObjects":{objects},"bytesStored":{stored}}}')
            objects -= found.get((day, ledger.STORED_OBJECTS, ""), 0)
            stored -= found.get((day, ledger.STORED_BYTES, ""), 0)
        elif day not in busy:
            records.append(f"{MARK}{day}{ZERO_TAIL[kind]}")
        else:
            records.append(_network(day, found) if kind == NETWORK else _transcoding(day, found))
    return records


def deltas(found: Found, first: date, last: date) -> tuple[int, int]:
    """(objects, bytes) added to what is stored over ``first``..``last``."""
    a, b = first.isoformat(), last.isoformat()
    objects = stored = 0
    for (day, metric, _), quantity in found.items():
        if a <= day <= b:
            if metric == ledger.STORED_OBJECTS:
                objects += quantity
            elif metric == ledger.STORED_BYTES:
                stored += quantity
    return objects, stored
