"""The worker's transactions for a job, each of which waits out a database outage: a restart
of the database must not cost a job an attempt. A job's run (``run.py``) and its outcome
(``outcome.py``) reach the database only through ``PatientDatabase``, so a write added later
cannot forget the wait; the attempt's fencing still decides whether a write counts. (The
heartbeat is the exception on purpose: it tries once per beat, the lease has slack; and so
is a live recording's progress, written once a second: ``try_write``.)"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.orm import Session

from squall.db import Database
from squall.db.outage import is_outage, until_database_back
from squall.logging import get_logger

T = TypeVar("T")
log = get_logger("squall.worker")
# How long a job's write waits through a database outage before it is given up (the job is
# then retried once its lease has run out).
OUTAGE_PATIENCE_S = 600.0


class PatientDatabase:
    def __init__(
        self, db: Database, stopping: threading.Event, *, patience_s: float = OUTAGE_PATIENCE_S
    ) -> None:
        self._db = db
        self.stopping = stopping
        self.patience_s = patience_s

    def write(self, change: Callable[[Session], T], *, what: str) -> T:
        """``change`` in a write transaction of its own, run again after an outage (it must
        not have effects outside the session, or only ones that may repeat)."""

        def attempt() -> T:
            with self._db.write() as session:
                return change(session)

        return until_database_back(
            attempt, stopping=self.stopping, give_up_after_s=self.patience_s, what=what
        )

    def try_write(self, change: Callable[[Session], T], *, what: str) -> T | None:
        """``change`` once, for a write worth nothing if late (a live recording's progress,
        written again a second later): None during an outage, instead of waiting for the
        database while the recording's pipe goes unread and cancels go unseen."""
        try:
            with self._db.write() as session:
                return change(session)
        except Exception as error:
            if not is_outage(error):
                raise
            log.warning("database unavailable; skipped", what=what)
            return None

    def read(self, look: Callable[[Session], T], *, what: str) -> T:
        def attempt() -> T:
            with self._db.read() as session:
                return look(session)

        return until_database_back(
            attempt, stopping=self.stopping, give_up_after_s=self.patience_s, what=what
        )
