"""Two real ``squall worker`` processes whose clocks are off, one 10 minutes ahead and one 10
minutes behind (``tests/support/skewclock.c``, an LD_PRELOAD library like Debian's
``faketime`` but faking the wall clock only: libfaketime 0.9.10 breaks Python's timed waits
or its sleeps, whichever way its monotonic clock is set), with the API in this process on the true clock: no
job is claimed twice, no live lease is reaped (a long job on each worker outlives several
lease periods while the other reaps), every job completes once, is billed once and has one
webhook event.

PostgreSQL only: database time is then the server's clock, the one clock of the deployment.
On SQLite the "database's clock" is read inside each process (SQLite is a library), so a
process with a faked clock reads its own fake time there too; and all the processes of an
SQLite deployment run on one machine with one kernel clock, so their clocks cannot drift
apart in the first place (see docs/operations.md, "Clocks")."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from squall.db import Database
from squall.jobs.models import Job
from squall.jobs.workers import WorkerProcess
from squall.settings import Settings
from squall.webhooks.models import WebhookDelivery
from tests.support.fleet import Books, Fleet, Member, squall_json, wait_until
from tests.support.helpers import KeyFactory
from tests.support.receiver import WebhookReceiver
from tests.support.server import MediaServer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler (cc) to build skewclock.c"),
    pytest.mark.skipif(
        not os.environ.get("SQUALL_TEST_DATABASE_URL"),
        reason="PostgreSQL only: SQLite's clock is each process's own (one machine's), a faked process fakes it too",
    ),
]

JOBS = 12  # 2 long ones, 10 short ones
LONG = "slow/tiny.mp4?kbps=8"  # ~7.5 s: 2.5 lease periods (lease_seconds=3), 5 rounds of the reaper


@pytest.fixture(scope="module")
def skewclock(tmp_path_factory: pytest.TempPathFactory) -> Path:
    library = tmp_path_factory.mktemp("skewclock") / "skewclock.so"
    source = Path(__file__).parents[1] / "support" / "skewclock.c"
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", str(library), str(source), "-ldl"], check=True)
    return library


def clock_off(library: Path, minutes: int) -> dict[str, str]:
    return {"LD_PRELOAD": str(library), "SKEWCLOCK_SECONDS": str(minutes * 60)}


def worker_id_pid(member: Member) -> int:
    assert member.proc is not None
    return member.proc.pid


def registered(db: Database, pid: int) -> bool:
    with db.read() as session:
        return session.execute(select(WorkerProcess.id).where(WorkerProcess.pid == pid)).first() is not None


def owner_of(db: Database, job_id: str) -> str | None:
    with db.read() as session:
        return session.execute(select(Job.lease_owner).where(Job.id == job_id)).scalar_one()


def test_workers_ten_minutes_ahead_and_behind_neither_claim_twice_nor_reap_live_leases(
    client: TestClient, make_key: KeyFactory, db: Database, settings: Settings, media: MediaServer,
    receiver: WebhookReceiver, fleet: Fleet, skewclock: Path,
) -> None:  # fmt: skip
    secret, _ = make_key("Drift")
    hook = receiver.url("/drift")

    def submit(path: str) -> str:
        body = {"url": media.url(path), "webhook_url": hook}
        response = client.post("/jobs", headers={"x-api-key": secret}, json=body)
        assert response.status_code == 200, response.text
        return str(response.json()["job_id"])

    ahead = fleet.worker("ahead", **clock_off(skewclock, +10))
    first_long = submit(LONG)
    wait_until(
        lambda: owner_of(db, first_long) is not None, 60, "the worker ahead to claim the first long job"
    )
    behind = fleet.worker("behind", **clock_off(skewclock, -10))
    wait_until(lambda: registered(db, worker_id_pid(behind)), 60, "the worker behind to start")
    second_long = submit(LONG)  # the worker ahead is busy: the one behind takes this
    wait_until(lambda: owner_of(db, second_long) is not None, 60, "the worker behind to claim the second")
    short = [submit("media/tiny.mp4") for _ in range(JOBS - 2)]
    owners: dict[str, set[str]] = {first_long: set(), second_long: set()}

    def all_done() -> bool:
        for job_id in owners:
            if (owner := owner_of(db, job_id)) is not None:
                owners[job_id].add(owner)
        return Books.read(db).active() == 0

    wait_until(all_done, 240, "every job to end")
    pids = {o.split(":")[1] for job_id in owners for o in owners[job_id]}
    # Each long job had one owner all along, the worker it was meant for: neither was reaped.
    assert [o.split(":")[1] for o in owners[first_long]] == [str(worker_id_pid(ahead))]
    assert [o.split(":")[1] for o in owners[second_long]] == [str(worker_id_pid(behind))], pids
    books = Books.read(db)
    assert set(books.statuses) == {first_long, second_long, *short}
    assert set(books.statuses.values()) == {"Completed"}
    assert set(books.attempts.values()) == {1}  # no job claimed twice, none reaped
    assert books.billed_once() == []
    with db.read() as session:
        events = session.execute(
            select(WebhookDelivery.job_id, func.count())
            .where(WebhookDelivery.event == "job_completed")
            .group_by(WebhookDelivery.job_id)
        ).all()
        assert {job_id: n for job_id, n in events} == dict.fromkeys(books.statuses, 1)
    wait_until(
        lambda: len({r.headers["webhook-id"] for r in receiver.to("/drift")}) == JOBS, 60, "every webhook"
    )
    time.sleep(0.5)  # a duplicate delivery would have arrived by now (none is expected)
    assert len(receiver.to("/drift")) == JOBS
    assert squall_json(settings, "usage", "verify")["ok"]
    assert squall_json(settings, "storage", "reconcile")["ok"]
