"""The database's clock, in integer milliseconds since the epoch: the one clock every host of a
deployment shares. Leases, heartbeats, the reaper and every due time a queue compares
(a job's ``run_after``, an outbox row's ``next_attempt_at``) are times written by one host and
read by another, so they are on this clock rather than each host's own (which may be minutes
off)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, ColumnElement, case, text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import FunctionElement

from squall.clock import SYSTEM, Clock

# clock_timestamp(): the time now, not the transaction's start (now()), as a host clock reads.
_POSTGRES_NOW_MS = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)"
# SQLite runs on the one machine all its processes share; julianday('now') has millisecond precision.
_SQLITE_NOW_MS = "CAST(ROUND((julianday('now') - 2440587.5) * 86400000) AS INTEGER)"


def database_now_ms(session: Session) -> int:
    """Now, by the database server's clock, read in the session's transaction."""
    dialect = session.get_bind().dialect.name
    statement = _SQLITE_NOW_MS if dialect == "sqlite" else _POSTGRES_NOW_MS
    return int(session.execute(text(f"SELECT {statement}")).scalar_one())


class DatabaseNow(FunctionElement[int]):
    """``database_now_ms`` as an SQL expression, read where the statement runs (no round trip)."""

    type = BigInteger()
    inherit_cache = True


@compiles(DatabaseNow)
def _database_now(element: DatabaseNow, compiler: Any, **kw: Any) -> str:
    return _POSTGRES_NOW_MS


@compiles(DatabaseNow, "sqlite")
def _database_now_sqlite(element: DatabaseNow, compiler: Any, **kw: Any) -> str:
    return _SQLITE_NOW_MS


def due_at_once(host_now: Any) -> ColumnElement[int]:
    """The due time of a row that is due at once: the writing host's now or the database's,
    whichever is earlier. A host whose clock runs ahead does not delay it, one behind makes
    it due a little early (it is due already); a test's manual clock in the past is kept."""
    return case((host_now < DatabaseNow(), host_now), else_=DatabaseNow())


class SharedClock:
    """Now, for times other hosts compare: the database's clock, read in the session's
    transaction; or a test's own clock when it drives one (``ManualClock``)."""

    def __init__(self, clock: Clock = SYSTEM, *, on_database: bool | None = None) -> None:
        self.clock = clock
        self.on_database = clock is SYSTEM if on_database is None else on_database

    def now_ms(self, session: Session) -> int:
        return database_now_ms(session) if self.on_database else self.clock.now_ms()

    def offset_ms(self, session: Session) -> int:
        """Shared time minus this host's: add it to a time this host's clock computed."""
        return self.now_ms(session) - self.clock.now_ms()
