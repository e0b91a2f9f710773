"""The Fastevo MP2 usage endpoints (/usage/network, /usage/storage, /usage/transcoding): one
record per UTC day of an inclusive range of at most 365 days, newest first, zero-filled.
Finished days come from the monthly form (a row per month, already in JSON: ``months.py``),
the others (today, days not sealed yet) from the daily rollups, so a year costs about as much
as a week."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Connection, Date, bindparam, text
from sqlalchemy.orm import Session

from squall.errors import InvalidInput
from squall.metering import days, months

MAX_DAYS = 365
MIN_YEAR, MAX_YEAR = 1970, 2999
EXAMPLE = "2023-09-01T00:00:00.000Z"


def parse_period(start: str | None, end: str | None) -> tuple[date, date]:
    """The inclusive UTC days of ``startDate``..``endDate``; a 400 that names the broken rule."""
    if not start or not end:
        missing = " and ".join(name for name, value in (("startDate", start), ("endDate", end)) if not value)
        raise InvalidInput(
            f"{missing} {'is' if ' and ' not in missing else 'are'} required (ISO 8601, e.g. {EXAMPLE})"
        )
    first, last = _day(start, "startDate"), _day(end, "endDate")
    for name, day in (("startDate", first), ("endDate", last)):
        if not MIN_YEAR <= day.year <= MAX_YEAR:
            raise InvalidInput(f"{name} must be between the years {MIN_YEAR} and {MAX_YEAR}")
    if last < first:
        raise InvalidInput(f"endDate ({last.isoformat()}) is before startDate ({first.isoformat()})")
    days = (last - first).days + 1
    if days > MAX_DAYS:
        raise InvalidInput(
            f"Invalid period: {days} days from startDate to endDate; at most {MAX_DAYS} are allowed"
        )
    return first, last


def _day(value: str, name: str) -> date:
    try:
        parsed = datetime.fromisoformat(value.strip())
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidInput(
            f"{name} '{value}' is not an ISO 8601 date or date-time (e.g. {EXAMPLE})"
        ) from None
    return parsed.date()


_MONTHS = (
    text(
        "SELECT month, through, body FROM usage_months "
        "WHERE key_id = :k AND kind = :kind AND month >= :first AND month <= :last"
    )
    .bindparams(bindparam("first", type_=Date), bindparam("last", type_=Date))
    .columns(month=Date, through=Date)
)
_STORED_NOW = text("SELECT stored_objects, stored_bytes FROM key_counters WHERE key_id = :k")


def read(session: Session, key_id: str, kind: str, first: date, last: date) -> str:
    """The JSON answer of one endpoint (``days.KINDS``) over ``first``..``last``: per month,
    the sealed days sliced out of its row, and the days after them read live."""
    connection = session.connection()
    params = {"k": key_id, "kind": kind, "first": months.month_of(first), "last": months.month_of(last)}
    sealed = {month: (through, body) for month, through, body in connection.execute(_MONTHS, params)}
    parts: list[str] = []
    live_top: date | None = None  # the newest day of a stretch of live days not yet read
    day = last
    while day >= first:
        month = months.month_of(day)
        low = max(first, month)
        through, body = sealed.get(month, (month - timedelta(days=1), ""))  # none: sealed before it
        piece = _slice(body, month, through, low, day) if through >= low else None
        if piece is None:
            live_top = live_top or day
        else:
            top = min(day, through)
            if top < day:
                live_top = live_top or day
            if live_top is not None:
                parts.append(_live(connection, key_id, kind, top + timedelta(days=1), live_top))
                live_top = None
            parts.append(piece)
        day = low - timedelta(days=1)
    if live_top is not None:
        parts.append(_live(connection, key_id, kind, first, live_top))
    return f"[{','.join(parts)}]"


def _slice(body: str, month: date, through: date, low: date, high: date) -> str | None:
    """The records of ``low``..``min(high, through)`` in a month's row (newest first); None
    if the row does not hold them as it should (then they are read live)."""
    top = min(high, through)
    start = 0 if top == through else body.find(days.MARK + top.isoformat())
    end = len(body) if low == month else body.find(days.MARK + (low - timedelta(days=1)).isoformat()) - 1
    return body[start:end] if start >= 0 and end > start else None


def _live(connection: Connection, key_id: str, kind: str, first: date, last: date) -> str:
    if kind != days.STORAGE:
        found = months.rows(connection, key_id, days.METRICS[kind], first, last)
        return ",".join(days.encode(kind, first, last, found))
    # What is stored now, minus what the days after ``last`` added: live days are the newest,
    # so the rows after them are few (none when the range ends today).
    found = months.rows(connection, key_id, days.METRICS[kind], first, date.max)
    objects, stored = connection.execute(_STORED_NOW, {"k": key_id}).one()
    later = days.deltas(found, last + timedelta(days=1), date.max)
    return ",".join(days.encode(kind, first, last, found, (objects - later[0], stored - later[1])))
