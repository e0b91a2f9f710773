"""Group commit (squall/intake/group_commit.py): requests queued while a batch runs share the
next write transaction, each in its own savepoint. One that is refused (quota, a failed
statement) is rolled back alone, with its events; the others commit together."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from squall.db import Database
from squall.errors import QuotaExceeded
from squall.events import DomainEvent, record
from squall.intake.group_commit import GroupCommit
from squall.metering import counters
from squall.metering.counters import get_counters
from squall.metering.models import KeyCounters
from tests.support.helpers import KeyFactory

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
