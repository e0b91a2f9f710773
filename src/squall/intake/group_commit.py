"""Group commit: the admissions of concurrent requests share one write transaction.

A commit costs the same for one request as for thirty (SQLite's write lock handed between
processes, PostgreSQL's round trips and WAL flush, the hot counters row locked until the
commit), so each process has one admission writer: a thread that takes up to ``MAX_BATCH``
works queued meanwhile, runs each in a SAVEPOINT of one write transaction with its domain
events dispatched inside that savepoint, commits once, and hands every request its own
outcome. A work that raises (a 403 quota refusal, a 409) rolls back its savepoint alone; the
others stand. Only when the transaction itself fails (the commit, a savepoint that cannot be
rolled back) does every request of the batch get that error: nobody is told of a change that
did not commit. A request alone in its batch runs without a savepoint, in a transaction of
its own.

Plain single-job requests (``admit_job``: one job, no Idempotency-Key, no bucket of the
request's own, not a feed) are admitted together before the others, with one statement per
table for all of them (``jobs.admission``: ``stage_together``, then ``take_reservations``)
instead of a savepoint and a handful of statements each. A key whose counters cannot take all of its plain requests at
once has them admitted one at a time afterwards, each refused alone as any request is.

Requests hand their work over from the event loop (``admit``) or from any thread (``run``)
and wait on a future: a request costs no thread of the routes' pool and no hand-over between
threads beyond the writer's, which is what most of an admission's CPU went to when every
request ran in a pool thread and waited there for a leader among them. The writer stops
after ``IDLE_SECONDS`` without work and is started again by the next request.

On PostgreSQL a batch first locks the counters rows of all its keys, in key order, before
any key's rollup or Idempotency-Key rows (as ``jobs.service.create_jobs`` and the workers
take the counters row first too): transactions that locked a key's rows in different
orders, or several keys in different orders, would deadlock."""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

from sqlalchemy.orm import Session

from squall.clock import Clock
from squall.db import Database
from squall.events import PENDING_KEY
from squall.jobs.admission import JobRequest, Staged, stage_together, take_reservations, unstage
from squall.keys.storage_service import active_backend_id, bind_jobs
from squall.metering import counters

T = TypeVar("T")
MAX_BATCH = 32  # bounds how long one batch holds the write lock (and what one failed commit fails)
IDLE_SECONDS = 5.0


class _Waiting(Generic[T]):
    __slots__ = ("future", "job", "key_id", "work")

    def __init__(self, key_id: str, work: Callable[[Session], T], job: _PlainJob | None = None) -> None:
        self.key_id, self.work, self.job = key_id, work, job
        self.future: Future[T] = Future()


class _PlainJob:
    __slots__ = ("clock", "request")

    def __init__(self, request: JobRequest, clock: Clock) -> None:
        self.request, self.clock = request, clock


class GroupCommit:
    """One per database per process: ``group_commit(database)``."""

    def __init__(self, database: Database, max_batch: int = MAX_BATCH) -> None:
        self._database = database
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._work_queued = threading.Condition(self._lock)
        self._waiting: list[_Waiting[Any]] = []
        self._writer: threading.Thread | None = None
        self.batches = 0  # committed or failed transactions (tests read it)

    @property
    def waiting(self) -> int:
        """Requests queued for the next batch (tests read it)."""
        with self._lock:
            return len(self._waiting)

    def run(self, key_id: str, work: Callable[[Session], T]) -> T:
        """``work(session)`` for key ``key_id`` in a savepoint of a shared write transaction;
        returns its result once that transaction has committed, or raises its own error (or
        the batch's). Blocks the calling thread."""
        return self._queue(key_id, work).result()

    async def admit(self, key_id: str, work: Callable[[Session], T]) -> T:
        """``run`` for the event loop: the loop serves other requests meanwhile. A request
        cancelled while waiting (its client hung up) leaves its work to commit or fail as it
        would have; only the answer is dropped."""
        return await asyncio.shield(asyncio.wrap_future(self._queue(key_id, work)))

    async def admit_job(self, request: JobRequest, clock: Clock, alone: Callable[[Session], str]) -> str:
        """``admit`` for a plain single-job request: its new job id. ``alone(session)`` admits
        it by itself, should its key's counters refuse the batch's plain requests together."""
        future = self._queue(request.key.id, alone, _PlainJob(request, clock))
        return await asyncio.shield(asyncio.wrap_future(future))

    def _queue(self, key_id: str, work: Callable[[Session], T], job: _PlainJob | None = None) -> Future[T]:
        item: _Waiting[T] = _Waiting(key_id, work, job)
        with self._lock:
            self._waiting.append(item)
            if self._writer is None:
                self._writer = threading.Thread(
                    target=self._write_batches, name="squall-admissions", daemon=True
                )
                self._writer.start()
            else:
                self._work_queued.notify()
        return item.future

    def _write_batches(self) -> None:
        while True:
            with self._lock:
                if not self._waiting:
                    self._work_queued.wait(IDLE_SECONDS)
                if not self._waiting:  # idle: the next request starts a writer again
                    self._writer = None
                    return
                batch, self._waiting = self._waiting[: self._max_batch], self._waiting[self._max_batch :]
            self._commit(batch)

    def _commit(self, batch: list[_Waiting[Any]]) -> None:
        self.batches += 1
        outcomes: dict[int, tuple[Any, BaseException | None]] = {}
        try:
            with self._database.write() as session:
                plain = [(n, item.job) for n, item in enumerate(batch) if item.job is not None]
                staged = self._stage(session, plain)
                locked = [] if self._database.is_sqlite else [item.key_id for item in batch]
                if locked:  # SQLite has one writer: nothing to order
                    counters.lock_rows(session, locked)
                if staged is not None:
                    outcomes.update(self._together(session, plain, staged, locked))
                rest = [n for n in range(len(batch)) if n not in outcomes]
                if len(batch) == 1 and rest:  # alone: no savepoint, its error rolls back only itself
                    outcomes[0] = (batch[0].work(session), None)
                else:
                    outcomes.update((n, self._one(session, batch[n])) for n in rest)
        except BaseException as failed:  # nothing of this batch committed; the writer goes on
            outcomes = {n: (None, outcomes.get(n, (None, None))[1] or failed) for n in range(len(batch))}
        self._settle(batch, [outcomes[n] for n in range(len(batch))])

    @staticmethod
    def _stage(session: Session, plain: list[tuple[int, _PlainJob]]) -> Staged | None:
        """The plain requests' rows, written before any key is locked (``stage_together``),
        with their keys' buckets looked up meanwhile; None if that failed, and then each
        request is admitted alone in its savepoint, so one bad request fails only itself."""
        if not plain:
            return None
        try:
            staged = stage_together(
                session, [job.request for _, job in plain], now=plain[0][1].clock.now_ms()
            )
            for key_id in staged.by_key:
                active_backend_id(session, key_id)  # read now; binding the jobs later reads nothing
        except Exception:  # one request's row can fail the multi-row insert: each goes alone
            unstage(session)  # raises in turn if the transaction itself is gone
            return None
        return staged

    def _together(
        self, session: Session, plain: list[tuple[int, _PlainJob]], staged: Staged, locked: list[str]
    ) -> dict[int, tuple[Any, None]]:
        """The plain single-job requests, admitted together: their outcomes by batch index
        (those of a key that could not take them all at once are left out)."""
        ids = take_reservations(session, staged, locked)
        admitted: dict[int, tuple[Any, None]] = {}
        by_key: dict[str, list[str]] = {}
        for (n, job), job_id in zip(plain, ids, strict=True):
            if job_id is not None:
                admitted[n] = (job_id, None)
                by_key.setdefault(job.request.key.id, []).append(job_id)
        for key_id, job_ids in by_key.items():
            bind_jobs(session, key_id, job_ids)  # each into the key's own bucket, if it has one
        self._database.events.dispatch(session)  # before any savepoint: a refused one drops its own only
        return admitted

    @staticmethod
    def _settle(batch: list[_Waiting[Any]], outcomes: list[tuple[Any, BaseException | None]]) -> None:
        for item, (result, error) in zip(batch, outcomes, strict=True):
            if error is None:
                item.future.set_result(result)
            else:
                item.future.set_exception(error)

    def _one(self, session: Session, item: _Waiting[Any]) -> tuple[Any, BaseException | None]:
        """One work in a savepoint: its outcome, or its error with its savepoint rolled back."""
        try:
            with session.begin_nested():
                result = item.work(session)
                self._database.events.dispatch(session)  # its side effects share its savepoint
        except Exception as refused:
            session.info.pop(PENDING_KEY, None)  # its events went with its savepoint
            if not session.is_active:  # the transaction itself is broken: the batch fails
                raise
            return None, refused
        return result, None


_BY_DATABASE: weakref.WeakKeyDictionary[Database, GroupCommit] = weakref.WeakKeyDictionary()
_BY_DATABASE_LOCK = threading.Lock()


def group_commit(database: Database) -> GroupCommit:
    with _BY_DATABASE_LOCK:
        found = _BY_DATABASE.get(database)
        if found is None:
            found = _BY_DATABASE[database] = GroupCommit(database)
        return found
