"""Telling a database outage (the server restarting, unreachable, or out of connections) from
a bug, and waiting one out. The API answers an outage with 503 and ``Retry-After``
(``squall/api/errors.py``); a worker holding a finished job's result waits for the database
to come back and then writes it, fenced as usual (``squall/worker/``).

Bounds: a connection attempt gives up after ``CONNECT_TIMEOUT_S``; a connection whose server
stopped answering is dropped by TCP keepalives / ``TCP_USER_TIMEOUT_MS``; taking a pooled
connection waits at most ``POOL_TIMEOUT_S``; an API statement runs at most
``API_STATEMENT_TIMEOUT_MS``. A request therefore fails within about
``CONNECT_TIMEOUT_S + POOL_TIMEOUT_S`` when the database is down, never hangs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import exc as sa_exc

from squall.errors import DatabaseUnavailable
from squall.logging import get_logger

log = get_logger("squall.db")
T = TypeVar("T")

CONNECT_TIMEOUT_S = 5
POOL_TIMEOUT_S = 10
TCP_USER_TIMEOUT_MS = 30_000
# The API's statements are cancelled past this (PostgreSQL), answered as an outage.
API_STATEMENT_TIMEOUT_MS = 30_000
# What a client is told to wait before trying again (the Retry-After of a 503).
RETRY_AFTER_S = 5
# libpq's parameters for every PostgreSQL connection (a URL's own query parameters win).
POSTGRES_CONNECT_ARGS: dict[str, object] = {
    "connect_timeout": CONNECT_TIMEOUT_S,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": TCP_USER_TIMEOUT_MS,
}
# SQLSTATEs of a server going away or overwhelmed: class 08 (connection exception), 57P01..03
# (shutting down, starting up), 53300 (too many connections), 57014 (statement timeout).
_OUTAGE_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300", "57014")
# SQLite's errors carry a result code, not a SQLSTATE. An outage is a database file that cannot
# be opened or read right now (its volume unmounted or failing): SQLITE_IOERR (10, "disk I/O
# error") and SQLITE_CANTOPEN (14, "unable to open database file"). SQLITE_BUSY and
# SQLITE_LOCKED ("database is locked", after the 30 s busy timeout) are contention or a bug,
# and a read-only, full or broken file will not mend itself: none of them is worth waiting for.
_SQLITE_OUTAGE_CODES = (10, 14)


def is_outage(error: BaseException) -> bool:
    """True for errors that mean "the database cannot be reached right now", not a bug."""
    if isinstance(error, DatabaseUnavailable | sa_exc.TimeoutError):  # pool exhausted while down
        return True
    if isinstance(error, sa_exc.DBAPIError):
        if error.connection_invalidated:
            return True
        if isinstance(error, sa_exc.OperationalError | sa_exc.InterfaceError):
            sqlite_code = getattr(error.orig, "sqlite_errorcode", None)
            if sqlite_code is not None:  # extended codes keep the primary one in the low 8 bits
                return sqlite_code & 0xFF in _SQLITE_OUTAGE_CODES
            sqlstate = getattr(error.orig, "sqlstate", None)
            if sqlstate is None:  # no answer from a server at all (refused, reset, timed out)
                return True
            return any(sqlstate.startswith(prefix) for prefix in _OUTAGE_SQLSTATES)
    return False


def is_busy(error: BaseException) -> bool:
    """SQLite's "database is locked" (SQLITE_BUSY, SQLITE_LOCKED) after the busy timeout: another
    program holding the file's lock. Not an outage to wait out in a worker, but to a client
    it is the same: try again shortly."""
    if not isinstance(error, sa_exc.OperationalError):
        return False
    sqlite_code = getattr(error.orig, "sqlite_errorcode", None)
    return sqlite_code is not None and sqlite_code & 0xFF in (5, 6)


def unavailable() -> DatabaseUnavailable:
    return DatabaseUnavailable(
        "The database is unavailable right now (restarting or unreachable); try again shortly",
        retry_after_s=RETRY_AFTER_S,
    )


def until_database_back(
    write: Callable[[], T], *, stopping: threading.Event, give_up_after_s: float, what: str
) -> T:
    """Run ``write`` until it gets through an outage (retrying every 1 s, 2 s, … up to 10 s),
    for at most ``give_up_after_s``; other errors, and the last outage error, are raised."""
    deadline = time.monotonic() + give_up_after_s
    delay = 1.0
    while True:
        try:
            return write()
        except Exception as error:
            if not is_outage(error) or time.monotonic() + delay > deadline or stopping.is_set():
                raise
            log.warning("database unavailable; will retry", what=what, retry_in_s=delay)
        stopping.wait(delay)
        delay = min(delay * 2, 10.0)
