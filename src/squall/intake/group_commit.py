"""Group commit: the admissions of concurrent requests share one write transaction.

A commit costs the same for one request as for thirty (SQLite's write lock handed between
processes, PostgreSQL's round trips and WAL flush, the hot counters row locked until the
commit), so each process lets one waiting request lead: it takes up to ``MAX_BATCH`` works
queued meanwhile, runs each in a SAVEPOINT of one write transaction with its domain events
dispatched inside that savepoint, commits once, and hands every request its own outcome. A
work that raises (a 403 quota refusal, a 409) rolls back its savepoint alone; the others
stand. Only when the transaction itself fails (the commit, a savepoint that cannot be rolled
back) does every request of the batch get that error: nobody is told of a change that did
not commit. A request alone in its batch runs without a savepoint, in a transaction of its
own, as every request did before. Followers wait in their own threads (the routes' pool), so nothing extra runs.

On PostgreSQL a batch first locks the counters rows of all its keys, in key order, before
any key's rollup or Idempotency-Key rows (as ``jobs.service.create_jobs`` and the workers
take the counters row first too): transactions that locked a key's rows in different
orders, or several keys in different orders, would deadlock."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar, cast

from sqlalchemy.orm import Session

from squall.db import Database
from squall.events import PENDING_KEY
from squall.metering import counters

T = TypeVar("T")
MAX_BATCH = 32  # bounds how long one batch holds the write lock (and what one failed commit fails)


class _Waiting(Generic[T]):
    __slots__ = ("error", "key_id", "lead", "result", "woken", "work")

    def __init__(self, key_id: str, work: Callable[[Session], T]) -> None:
        self.key_id, self.work = key_id, work
        self.woken = threading.Event()  # done, or asked to lead the next batch
        self.lead = False
        self.result: T | None = None
        self.error: BaseException | None = None


class GroupCommit:
    """One per database per process: ``group_commit(database)``."""

    def __init__(self, database: Database, max_batch: int = MAX_BATCH) -> None:
        self._database = database
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._waiting: list[_Waiting[Any]] = []
        self._leading = False
        self.batches = 0  # committed or failed transactions (tests read it)

    @property
    def waiting(self) -> int:
        """Requests queued for the next batch (tests read it)."""
        with self._lock:
            return len(self._waiting)

    def run(self, key_id: str, work: Callable[[Session], T]) -> T:
        """``work(session)`` for key ``key_id`` in a savepoint of a shared write transaction;
        returns its result once that transaction has committed, or raises its own error (or
        the batch's)."""
        me: _Waiting[T] = _Waiting(key_id, work)
        with self._lock:
            self._waiting.append(me)
            if not self._leading:
                self._leading = me.lead = True
        if not me.lead:
            me.woken.wait()
        if me.lead:  # first in line, or handed the lead by the batch before
            self._lead()
        if me.error is not None:
            raise me.error
        return cast(T, me.result)

    def _lead(self) -> None:
        with self._lock:
            batch, self._waiting = self._waiting[: self._max_batch], self._waiting[self._max_batch :]
        try:
            self._commit(batch)
        finally:
            with self._lock:
                following = self._waiting[0] if self._waiting else None
                if following is None:
                    self._leading = False
                else:
                    following.lead = True
            for item in batch:
                item.lead = False
                item.woken.set()
            if following is not None:
                following.woken.set()

    def _commit(self, batch: list[_Waiting[Any]]) -> None:
        self.batches += 1
        try:
            with self._database.write() as session:
                if not self._database.is_sqlite:  # SQLite has one writer: nothing to order
                    counters.lock_rows(session, [item.key_id for item in batch])
                if len(batch) == 1:  # alone: no savepoint, its error rolls back only itself
                    batch[0].result = batch[0].work(session)
                    return
                for item in batch:
                    self._one(session, item)
        except BaseException as failed:  # nothing of this batch committed
            for item in batch:
                if item.error is None:
                    item.error, item.result = failed, None

    def _one(self, session: Session, item: _Waiting[Any]) -> None:
        try:
            with session.begin_nested():
                item.result = item.work(session)
                self._database.events.dispatch(session)  # its side effects share its savepoint
        except Exception as refused:
            session.info.pop(PENDING_KEY, None)  # its events went with its savepoint
            item.error = refused
            if not session.is_active:  # the transaction itself is broken: the batch fails
                raise


_BY_DATABASE: weakref.WeakKeyDictionary[Database, GroupCommit] = weakref.WeakKeyDictionary()
_BY_DATABASE_LOCK = threading.Lock()


def group_commit(database: Database) -> GroupCommit:
    with _BY_DATABASE_LOCK:
        found = _BY_DATABASE.get(database)
        if found is None:
            found = _BY_DATABASE[database] = GroupCommit(database)
        return found
