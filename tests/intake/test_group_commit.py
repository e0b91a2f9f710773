"""Group commit (squall/intake/group_commit.py): requests queued while a batch runs share the
next write transaction, each in its own savepoint. One that is refused (quota, a failed
statement) is rolled back alone, with its events; the others commit together."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date

import pytest
from sqlalchemy import event, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from squall.clock import SYSTEM
from squall.db import Database
from squall.errors import QuotaExceeded
from squall.events import DomainEvent, record
from squall.intake.group_commit import GroupCommit
from squall.jobs import service as jobs
from squall.jobs.admission import Admission, JobRequest
from squall.jobs.models import Job
from squall.jobs.options import JobOptions
from squall.keys.secrets import hash_key
from squall.keys.service import AuthenticatedKey, find_key
from squall.metering import counters, ledger
from squall.metering.counters import get_counters
from squall.metering.models import KeyCounters, UsageEvent
from tests.support.helpers import TEST_SECRET, KeyFactory

MB = 1024 * 1024


@dataclass(frozen=True)
class Admitted(DomainEvent):
    name: str


def wait_until(condition: Callable[[], bool]) -> None:
    """A sync point between threads, not a timing check: fails only if it never happens."""
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.01)


def test_one_transaction_for_the_queued_requests_each_refused_alone(
    db: Database, make_key: KeyFactory
) -> None:
    _, key_id = make_key("batched", storage_limit_bytes=10 * MB)
    committer = GroupCommit(db)
    heard: list[str] = []

    def hear(_session: Session, event: Admitted) -> None:
        heard.append(event.name)

    entered, gate = threading.Event(), threading.Event()

    def admit(
        name: str, size: int, *, hold: bool = False, duplicate: bool = False
    ) -> Callable[[Session], str]:
        def work(session: Session) -> str:
            if hold:
                entered.set()
                gate.wait(timeout=30)
            counters.admit_jobs(session, key_id, 1, size)
            record(session, Admitted(name))
            if duplicate:  # a statement that fails: on PostgreSQL it aborts all but a savepoint
                session.execute(insert(KeyCounters).values(key_id=key_id))
            return name

        return work

    db.events.subscribe(Admitted, hear)
    try:
        with ThreadPoolExecutor(6) as pool:
            first = pool.submit(committer.run, key_id, admit("first", 1 * MB, hold=True))
            assert entered.wait(timeout=30)  # the first batch (itself alone) is running
            queued: list[Future[str]] = []
            for name, size, duplicate in (("a", 4, False), ("b", 3, False), ("dup", 1, True),
                                          ("c", 4, False), ("d", 2, False)):  # fmt: skip
                queued.append(pool.submit(committer.run, key_id, admit(name, size * MB, duplicate=duplicate)))
                wait_until(lambda n=len(queued): committer.waiting == n)  # in this order
            gate.set()
            assert first.result(timeout=60) == "first"
            a, b, dup, c, d = queued
            assert (a.result(timeout=60), b.result(timeout=60), d.result(timeout=60)) == ("a", "b", "d")
            with pytest.raises(IntegrityError):
                dup.result(timeout=60)
            with pytest.raises(QuotaExceeded):  # 1 + 4 + 3 admitted: 4 more do not fit in 10
                c.result(timeout=60)
    finally:
        db.events.unsubscribe(Admitted, hear)

    assert committer.batches == 2
    assert heard == ["first", "a", "b", "d"]  # the refused ones' events went with their savepoints
    with db.read() as session:
        row = get_counters(session, key_id)
        assert (row.reserved_bytes, row.jobs_pending, row.usage_count) == (10 * MB, 4, 4)


def test_a_lone_request_is_its_own_batch(db: Database, make_key: KeyFactory) -> None:
    _, key_id = make_key("alone", storage_limit_bytes=1 * MB)
    committer = GroupCommit(db)

    def too_big(session: Session) -> None:
        counters.admit_jobs(session, key_id, 1, 2 * MB)

    with pytest.raises(QuotaExceeded):
        committer.run(key_id, too_big)
    assert committer.run(key_id, lambda session: counters.admit_jobs(session, key_id, 1, MB)) is None
    assert (committer.batches, committer.waiting) == (2, 0)
    with db.read() as session:
        assert get_counters(session, key_id).reserved_bytes == MB


def _authenticated(db: Database, secret: str) -> AuthenticatedKey:
    with db.read() as session:
        found = find_key(session, hash_key(secret, TEST_SECRET))
    assert found is not None
    return found


async def _admit_plain(committer: GroupCommit, key: AuthenticatedKey, name: str, admission: Admission) -> str:
    """One plain request, as the intake sends it: with the work that admits it alone."""
    options = JobOptions(url=f"https://media.example.com/{name}.mp4")

    def alone(session: Session) -> str:
        return jobs.create_job(session, key, options, now=SYSTEM.now_ms(), admission=admission)

    return await committer.admit_job(JobRequest(key, options, admission), SYSTEM, alone)


def admitted_in_one_batch(
    committer: GroupCommit,
    held_key_id: str,
    admission: Admission,
    requests: list[tuple[AuthenticatedKey, str]],
) -> list[str | BaseException]:
    """Plain ``requests`` (key, name), queued in this order while a first batch is held open,
    so that all of them make up the next batch: each one's job id or error."""
    entered, gate = threading.Event(), threading.Event()

    def hold(_session: Session) -> str:
        entered.set()
        gate.wait(timeout=30)
        return "held"

    async def scenario() -> list[str | BaseException]:
        held = asyncio.get_running_loop().run_in_executor(None, committer.run, held_key_id, hold)
        assert await asyncio.to_thread(entered.wait, 30)  # the first batch is running
        waiting = []
        for key, name in requests:
            waiting.append(asyncio.ensure_future(_admit_plain(committer, key, name, admission)))
            while committer.waiting < len(waiting):  # in this order, all in the next batch
                await asyncio.sleep(0.01)
        gate.set()
        assert await held == "held"
        return list(await asyncio.gather(*waiting, return_exceptions=True))

    return asyncio.run(scenario())


def test_plain_requests_are_admitted_together_and_a_key_short_of_room_one_at_a_time(
    db: Database, make_key: KeyFactory
) -> None:
    """Plain single-job requests of a batch share one statement per table; a key whose
    counters cannot take all of its requests at once has each admitted or refused alone
    (its share of what is left, then 403), as if it had come by itself."""
    roomy_secret, roomy_id = make_key("roomy")
    tight_secret, tight_id = make_key("tight", storage_limit_bytes=10 * MB)
    roomy, tight = _authenticated(db, roomy_secret), _authenticated(db, tight_secret)
    committer = GroupCommit(db)
    admission = Admission(reservation_bytes=4 * MB, max_attempts=1)
    in_order = [(roomy, "r1"), (tight, "t1"), (roomy, "r2"), (tight, "t2"), (tight, "t3"), (roomy, "r3")]

    job_inserts: list[bool] = []

    def count(
        _conn: object, _cursor: object, statement: str, _params: object, _context: object, many: bool
    ) -> None:
        if statement.startswith("INSERT INTO jobs"):
            job_inserts.append(many)

    event.listen(db.write_engine, "before_cursor_execute", count)
    try:
        r1, t1, r2, t2, t3, r3 = admitted_in_one_batch(committer, roomy_id, admission, in_order)
    finally:
        event.remove(db.write_engine, "before_cursor_execute", count)
    assert committer.batches == 2
    # All six staged in one insert; tight could not take its three, so that was rolled back,
    # roomy's three were staged again in one insert, and tight's three went one at a time.
    assert job_inserts == [True, True, False, False, False]
    # 3 x 4 MB do not fit in 10 MB at once: t1 and t2 get 4 MB each, t3 the 2 MB left, in order.
    assert all(isinstance(job_id, str) for job_id in (r1, r2, r3, t1, t2, t3))
    with db.read() as session:
        reserved = {row.id: row.reserved_bytes for row in session.execute(select(Job.id, Job.reserved_bytes))}
        assert [reserved[str(j)] for j in (t1, t2, t3)] == [4 * MB, 4 * MB, 2 * MB]
        assert [reserved[str(j)] for j in (r1, r2, r3)] == [4 * MB] * 3
        assert get_counters(session, tight_id).reserved_bytes == 10 * MB
        assert get_counters(session, roomy_id).usage_count == 3
        created = ledger.rollup_totals(session, tight_id, [ledger.JOBS_CREATED], date.min, date.max)
        assert sum(created.values()) == 3
        events = session.execute(select(UsageEvent.job_id).where(UsageEvent.metric == ledger.JOBS_CREATED))
        assert sorted(events.scalars()) == sorted(str(j) for j in (r1, r2, r3, t1, t2, t3))

    with pytest.raises(QuotaExceeded):  # the key is full: refused alone, nothing written
        asyncio.run(_admit_plain(committer, tight, "t4", admission))
    with db.read() as session:
        assert get_counters(session, tight_id).usage_count == 3


def test_a_plain_request_that_fails_its_insert_fails_alone(db: Database, make_key: KeyFactory) -> None:
    """The batch's plain requests are written in one multi-row insert; one whose row cannot
    be written (here a key that no longer exists: its job row breaks the foreign key) fails
    that insert, and then every plain request is admitted alone: only that one fails."""
    secret, key_id = make_key("alive")
    alive = _authenticated(db, secret)
    ghost = replace(alive, id="00000000-0000-0000-0000-000000000000")
    committer = GroupCommit(db)
    admission = Admission(reservation_bytes=MB, max_attempts=1)
    requests = [(alive, "a1"), (ghost, "g1"), (alive, "a2")]
    a1, g1, a2 = admitted_in_one_batch(committer, key_id, admission, requests)
    assert committer.batches == 2
    assert isinstance(a1, str) and isinstance(a2, str)
    assert isinstance(g1, Exception)
    with db.read() as session:
        assert sorted(session.execute(select(Job.id)).scalars()) == sorted([a1, a2])
        assert get_counters(session, key_id).usage_count == 2
        created = ledger.rollup_totals(session, key_id, [ledger.JOBS_CREATED], date.min, date.max)
        assert sum(created.values()) == 2
