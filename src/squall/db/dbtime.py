"""The database's clock, in integer milliseconds since the epoch: the one clock every host of a
deployment shares. Leases, heartbeats and the reaper compare times written by different hosts,
so they read it here rather than each host's own clock (which may be minutes off)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

# clock_timestamp(): the time now, not the transaction's start (now()), as a host clock reads.
_POSTGRES_NOW_MS = text("SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)")
# SQLite runs on the one machine all its processes share; julianday('now') has millisecond precision.
_SQLITE_NOW_MS = text("SELECT CAST(ROUND((julianday('now') - 2440587.5) * 86400000) AS INTEGER)")


def database_now_ms(session: Session) -> int:
    """Now, by the database server's clock, read in the session's transaction."""
    dialect = session.get_bind().dialect.name
    statement = _SQLITE_NOW_MS if dialect == "sqlite" else _POSTGRES_NOW_MS
    return int(session.execute(statement).scalar_one())
