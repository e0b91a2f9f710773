"""A SIGKILL storm: 3 real ``squall worker`` processes and 2 API processes (``squall serve
--workers 0``) on this machine while a client submits jobs continuously (half with an
Idempotency-Key, retrying refused and broken connections like a real client); every few
seconds the test SIGKILLs one process at random and starts it again. After a drain with every
process up: no job lost, none admitted twice, none billed twice, no reservation leaked,
``squall usage verify`` and ``squall storage reconcile`` clean.

Bounded: the storm lasts ``SQUALL_STORM_SECONDS`` (45 by default), submissions are capped,
the drain is capped. PostgreSQL pass only unless ``SQUALL_STORM_ON_SQLITE=1`` (it passes on
SQLite as well; the CI's time is the reason)."""

from __future__ import annotations

import os
import random
import threading
import time

import pytest

from squall.db import Database
from squall.metering.counters import get_counters
from squall.settings import Settings
from tests.support.fleet import Books, Fleet, RetryingClient, squall_json, wait_until
from tests.support.helpers import KeyFactory
from tests.support.server import MediaServer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.environ.get("SQUALL_TEST_DATABASE_URL") and not os.environ.get("SQUALL_STORM_ON_SQLITE"),
        reason="runs in the PostgreSQL pass only (about 2 minutes of real processes, the CI budget); "
        "it passes on SQLite too: SQUALL_STORM_ON_SQLITE=1",
    ),
]

STORM_SECONDS = float(os.environ.get("SQUALL_STORM_SECONDS", "45"))
KILL_EVERY_SECONDS = 3.0
MAX_JOBS = 80
SUBMIT_EVERY_SECONDS = 0.5


def test_a_sigkill_storm_loses_doubles_and_leaks_nothing(
    make_key: KeyFactory, db: Database, settings: Settings, media: MediaServer, fleet: Fleet
) -> None:
    secret, key_id = make_key("Storm")
    for i in range(3):
        fleet.worker(f"worker{i}")
    apis = [fleet.api(f"api{i}") for i in range(2)]
    for api in apis:
        fleet.wait_ready(api)
    client = RetryingClient(secret, urls=lambda: [api.url for api in apis])
    stop, failures = threading.Event(), list[BaseException]()

    def submit_continuously() -> None:
        try:
            for n in range(MAX_JOBS):
                if stop.is_set():
                    return
                client.submit({"url": media.url("media/tiny.mp4")}, idempotent=n % 2 == 0)
                stop.wait(SUBMIT_EVERY_SECONDS)
        except BaseException as exc:
            failures.append(exc)

    submitter = threading.Thread(target=submit_continuously, daemon=True)
    submitter.start()
    chance = random.Random(int(os.environ.get("SQUALL_STORM_SEED", "16")))
    deadline = time.monotonic() + STORM_SECONDS
    while time.monotonic() < deadline and submitter.is_alive():
        time.sleep(KILL_EVERY_SECONDS)
        victim = chance.choice(fleet.members)
        victim.kill()
        victim.start()
    stop.set()
    submitter.join(timeout=60)
    assert not failures, failures
    assert fleet.all_running()
    wait_until(lambda: Books.read(db).active() == 0, 180, "every job to end (the drain)")

    books = Books.read(db)
    kills = {m.name: m.kills for m in fleet.members}
    accepted = {item.job_id for item in client.submitted if item.job_id}
    assert len(accepted) == len(client.submitted) >= 10, kills  # every submission was answered
    # No job lost: every accepted one ended (no 500 on the way: only 200s and 503s).
    assert set(client.statuses) <= {200, 503}, client.statuses
    assert accepted <= set(books.statuses), "accepted jobs missing from the database"
    assert set(books.statuses.values()) <= {"Completed", "Failed"}, books.statuses
    # None admitted twice: one job per Idempotency-Key, the one its answers named; jobs
    # nobody was told about exist only where a keyless request's answer was lost.
    keyed = [item for item in client.submitted if item.idempotency_key]
    assert {item.idempotency_key: item.job_id for item in keyed} == {
        item.idempotency_key: books.answers.get(item.idempotency_key or "") for item in keyed
    }
    unanswered = set(books.statuses) - accepted
    lost_keyless = sum(item.lost_attempts for item in client.submitted if not item.idempotency_key)
    assert len(unanswered) <= lost_keyless, (unanswered, lost_keyless)
    # None billed twice, no reservation leaked, the books agree with themselves and storage.
    assert books.billed_once() == []
    with db.read() as session:
        c = get_counters(session, key_id)
        assert (c.jobs_pending, c.jobs_processing, c.reserved_bytes) == (0, 0, 0)
    assert squall_json(settings, "usage", "verify")["ok"]
    reconcile = squall_json(settings, "storage", "reconcile")
    # No object of the books is missing, and the books' totals match what they name. The one
    # drift allowed is the documented window (docs/operations.md): a worker SIGKILLed between
    # storing an object and noting it on its job leaves that object unknown, at most one per
    # worker kill; anything beyond that is a leak.
    worker_kills = sum(m.kills for m in fleet.members if m.name.startswith("worker"))
    assert reconcile["missing"] == [], reconcile
    assert len(reconcile["unknown"]) <= worker_kills, (reconcile, worker_kills)
    assert reconcile["books_objects"] + len(reconcile["unknown"]) == reconcile["listed_objects"], reconcile
    completed = sum(1 for s in books.statuses.values() if s == "Completed")
    print(
        f"storm: {len(books.statuses)} jobs, {completed} completed, kills {kills}, statuses {client.statuses}"
    )
