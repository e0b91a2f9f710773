"""One consistent view of each database for the whole copy or comparison.

SQLite: a read transaction sees the database as it was at its first read, and in WAL mode
writers carry on beside it without changing what it sees. So the source connection says
BEGIN (the engine does, see ``squall/db/engine.py``), reads once at once to pin the
snapshot, and holds that one transaction until every table has been read.
PostgreSQL: REPEATABLE READ, READ ONLY: every statement sees the transaction's first
snapshot."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, text


@contextmanager
def pinned(engine: Engine) -> Iterator[Connection]:
    """A connection inside one read transaction whose snapshot is already taken."""
    with engine.connect() as conn:
        if engine.dialect.name != "sqlite":
            conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with conn.begin():
            conn.execute(text("SELECT count(*) FROM sqlite_master" if engine.dialect.name == "sqlite"
                              else "SELECT 1"))  # fmt: skip
            yield conn
