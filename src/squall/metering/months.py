"""The monthly form of finished days (``UsageMonth``): each endpoint's records of a key's
finished days, one row per key, endpoint and month. A day is sealed into it by the first
usage the key records two days later, in that transaction, so the rows only ever hold days
whose rollups can no longer change. Reads never depend on it: a day not sealed (yet) is
read from the rollups, as today is."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Connection, Date, bindparam, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from squall.db.base import table_of
from squall.metering import days, ledger
from squall.metering.models import UsageMonth

# Yesterday can still grow (a transaction open across midnight, a clock a little behind);
# the day before it cannot, in any sane deployment.
GRACE_DAYS = 2
_SEAL_LOCK = 0x53_71  # PostgreSQL advisory lock class: one sealer per key at a time
# Key -> the last day it is known (committed) to be sealed through: at most two queries per
# key and day, not one per usage event. Only ever an optimisation: a seal skipped is a day
# read from the rollups.
_known: dict[str, date] = {}

_LATEST = text(
    "SELECT through FROM usage_months WHERE key_id = :k AND kind = 'network' ORDER BY month DESC LIMIT 1"
).columns(through=Date)
_FIRST = (
    text("SELECT MIN(day) AS day FROM daily_rollups WHERE key_id = :k AND metric IN :metrics")
    .bindparams(bindparam("metrics", expanding=True))
    .columns(day=Date)
)
_ROWS = text(
    "SELECT day, metric, dimension, quantity FROM daily_rollups "
    "WHERE key_id = :k AND metric IN :metrics AND day >= :first AND day <= :last"
).bindparams(
    bindparam("metrics", expanding=True), bindparam("first", type_=Date), bindparam("last", type_=Date)
)
_BEFORE = text(
    "SELECT metric, SUM(quantity) FROM daily_rollups WHERE key_id = :k AND metric IN (:objects, :bytes) "
    "AND day < :day GROUP BY metric"
).bindparams(bindparam("day", type_=Date))
_UNSEAL = text("DELETE FROM usage_months WHERE key_id = :k AND month >= :month").bindparams(
    bindparam("month", type_=Date)
)
_PREPEND = text(
    "UPDATE usage_months SET body = :body || ',' || body, through = :through "
    "WHERE key_id = :k AND kind = :kind AND month = :month AND through = :before"
).bindparams(
    bindparam("through", type_=Date), bindparam("month", type_=Date), bindparam("before", type_=Date)
)


def month_of(day: date) -> date:
    return day.replace(day=1)


def month_end(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def rows(
    connection: Connection, key_id: str, metrics: Any, first: date, last: date
) -> dict[tuple[str, str, str], int]:
    """The rollups of ``first``..``last``: (ISO day, metric, dimension) -> quantity."""
    params = {"k": key_id, "metrics": list(metrics), "first": first, "last": last}
    return {(str(d), m, dim): q for d, m, dim, q in connection.execute(_ROWS, params).all()}


def stored_before(connection: Connection, key_id: str, day: date) -> tuple[int, int]:
    """(objects, bytes) added to what is stored on the days before ``day``."""
    params = {"k": key_id, "objects": ledger.STORED_OBJECTS, "bytes": ledger.STORED_BYTES, "day": day}
    found = {metric: int(total or 0) for metric, total in connection.execute(_BEFORE, params)}
    return found.get(ledger.STORED_OBJECTS, 0), found.get(ledger.STORED_BYTES, 0)


def seal_due(session: Session, key_id: str, day: date) -> None:
    """After usage on ``day``: seal the key's days up to ``day - GRACE_DAYS`` if they are not
    yet. Should ``day`` itself be sealed already (a clock gone back), its month and the later
    ones are unsealed first, so no sealed day ever misses usage."""
    due = day - timedelta(days=GRACE_DAYS)
    if due <= _known.get(key_id, date.min) < day:
        return
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        lock = text("SELECT pg_try_advisory_xact_lock(:c, hashtext(:k))")
        if not connection.execute(lock, {"c": _SEAL_LOCK, "k": key_id}).scalar():
            return  # another transaction is sealing this key: never wait for it
    through = connection.execute(_LATEST, {"k": key_id}).scalar()
    if through is not None and through >= day:
        connection.execute(_UNSEAL, {"k": key_id, "month": month_of(day)})
        _known.pop(key_id, None)
        through = connection.execute(_LATEST, {"k": key_id}).scalar()
    if through is not None and through >= due:
        if len(_known) > 100_000:
            _known.clear()
        _known[key_id] = through
        return
    seal(connection, key_id, through, due)


def seal(connection: Connection, key_id: str, through: date | None, due: date) -> None:
    """Add the days after ``through`` (None: from the month of the key's first rollup) up to
    ``due`` to the monthly rows, for every endpoint."""
    if through is None:
        first = connection.execute(_FIRST, {"k": key_id, "metrics": list(days.ALL_METRICS)}).scalar()
        start = month_of(min(first or due, due))
        stored = stored_before(connection, key_id, start)
    else:
        start = through + timedelta(days=1)
        stored = _stored_at(connection, key_id, through)
    if start > due:
        return
    found = rows(connection, key_id, days.ALL_METRICS, start, due)
    insert = _insert(connection.dialect.name)
    month = month_of(start)
    while month <= due:
        first_day, last_day = max(start, month), min(due, month_end(month))
        added = days.deltas(found, start, last_day)
        at_end = (stored[0] + added[0], stored[1] + added[1])
        for kind in days.KINDS:
            body = ",".join(days.encode(kind, first_day, last_day, found, at_end))
            if first_day == month:
                connection.execute(insert, {"key_id": key_id, "kind": kind, "month": month,
                                            "through": last_day, "body": body})  # fmt: skip
            else:
                connection.execute(_PREPEND, {"k": key_id, "kind": kind, "month": month, "through": last_day,
                                              "before": first_day - timedelta(days=1), "body": body})  # fmt: skip
        month = last_day + timedelta(days=1)


def _stored_at(connection: Connection, key_id: str, day: date) -> tuple[int, int]:
    """What was stored at the end of a sealed day: the newest record of its month's row."""
    body = connection.execute(
        text(
            "SELECT body FROM usage_months WHERE key_id = :k AND kind = 'storage' AND month = :m"
        ).bindparams(bindparam("m", type_=Date)),
        {"k": key_id, "m": month_of(day)},
    ).scalar_one()
    record = json.loads(body[: body.index("}") + 1])
    return int(record["numberOfObjects"]), int(record["bytesStored"])


def _insert(dialect: str) -> Any:
    module: Any = postgresql if dialect == "postgresql" else sqlite
    return module.insert(table_of(UsageMonth)).on_conflict_do_nothing()


def backfill(connection: Connection, due: date) -> int:
    """Seal every key's finished days (the migration that adds the table); keys sealed."""
    keys = connection.execute(text("SELECT DISTINCT key_id FROM daily_rollups")).scalars().all()
    for key_id in keys:
        through = connection.execute(_LATEST, {"k": key_id}).scalar()
        if through is None or through < due:
            seal(connection, key_id, through, due)
    return len(keys)
