"""Engines and session scopes for SQLite (embedded default) and PostgreSQL (scale-out).

SQLite allows one writer at a time. A transaction that reads and later writes must take the
write lock up front (``BEGIN IMMEDIATE``), or it fails with SQLITE_BUSY whatever the busy
timeout. So writes go through ``Database.write()``, which begins IMMEDIATE on SQLite, and
reads through ``Database.read()``, which begins DEFERRED and never blocks a writer (WAL).
On PostgreSQL both are ordinary READ COMMITTED transactions on one engine.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from squall.db.outage import POOL_TIMEOUT_S, POSTGRES_CONNECT_ARGS
from squall.db.wakeup import WAKE_AFTER_COMMIT, notify_before_commit, ping_sqlite_workers
from squall.events import EventBus


def _sqlite_engine(url: str, begin: str) -> Engine:
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": 30},
        pool_size=20,
        max_overflow=20,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module so we can say BEGIN ourselves.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql(begin)

    return engine


def ensure_sqlite_dir(url: str) -> None:
    """SQLite creates the file but not its folder."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


class SqliteWriteLock:
    """One SQLite writer at a time, queued instead of polled.

    SQLite admits one writer; a blocked writer sleeps in SQLite's busy handler and retries
    (1 ms, 2 ms, … 100 ms), so under load some wait for seconds. Here writers queue on a
    thread lock (this process) and an ``flock`` on a file beside the database (other
    processes: API, workers), and are woken the moment the writer before them is done."""

    def __init__(self, database_path: str) -> None:
        self._thread_lock = threading.Lock()
        self._path = f"{database_path}.write-lock"
        self._fd: int | None = None

    def __enter__(self) -> None:
        self._thread_lock.acquire()
        try:
            if self._fd is None:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._thread_lock.release()
            raise

    def __exit__(self, *exc: object) -> None:
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()


class Database:
    """One database: the source of truth and the queue."""

    def __init__(
        self, url: str, events: EventBus | None = None, *, statement_timeout_ms: int | None = None
    ) -> None:
        """``statement_timeout_ms``: PostgreSQL cancels any statement running longer (the API's
        requests); None leaves the server's setting (long copies, migrations)."""
        self.url = url
        # The subscribers that hear this database's write transactions' domain events.
        self.events = events or EventBus()
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            ensure_sqlite_dir(url)
            self.write_engine = _sqlite_engine(url, "BEGIN IMMEDIATE")
            self.read_engine = _sqlite_engine(url, "BEGIN")
        else:
            # Bounded waits when the server is down or silent (squall/db/outage.py); a URL's own
            # query parameters (?connect_timeout=…) win over these.
            connect_args = {k: v for k, v in POSTGRES_CONNECT_ARGS.items() if k not in parsed.query}
            if statement_timeout_ms and "options" not in parsed.query:
                connect_args["options"] = f"-c statement_timeout={statement_timeout_ms}"
            self.write_engine = create_engine(
                url, pool_size=20, max_overflow=20, pool_pre_ping=True, pool_timeout=POOL_TIMEOUT_S,
                connect_args=connect_args,
            )  # fmt: skip
            self.read_engine = self.write_engine
        self._write_lock: AbstractContextManager[object] = nullcontext()
        if self.dialect == "sqlite" and parsed.database and parsed.database != ":memory:":
            self._write_lock = SqliteWriteLock(parsed.database)
        self._writer = sessionmaker(self.write_engine, expire_on_commit=False)
        self._reader = sessionmaker(self.read_engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction, committed when the block ends without an error, after the
        subscribers of the domain events recorded in it have run (in it)."""
        with self._write_lock, self._writer() as session:
            with session.begin():
                yield session
                self.events.dispatch(session)
                notify_before_commit(session)
            wake = session.info.pop(WAKE_AFTER_COMMIT, False)
        if wake:  # committed: SQLite's idle workers may claim now (PostgreSQL used NOTIFY)
            ping_sqlite_workers(self.url)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only transaction; nothing is committed."""
        with self._reader() as session:  # closing the session rolls the transaction back
            yield session

    @contextmanager
    def snapshot(self) -> Iterator[Session]:
        """A read-only transaction whose queries all see one snapshot (REPEATABLE READ on
        PostgreSQL; a SQLite read transaction already is one)."""
        with self._reader() as session:
            if not self.is_sqlite:
                session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            yield session

    def dispose(self) -> None:
        self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            self.read_engine.dispose()
