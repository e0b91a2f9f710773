"""Squall as several hosts (issue 16), on the bed of tests/support/hostbed.py: 2 API hosts and
3 worker hosts in their own network namespaces share one PostgreSQL and one S3 bucket.

- Jobs submitted through both API hosts all complete exactly once, spread over the 3 worker
  hosts, and the books agree (``usage verify``, ``storage reconcile``, the ledger).
- PostgreSQL restarted twice during a run: clients see only 2xx or 503 with ``Retry-After``, no
  job is lost or doubled, no Squall process restarts, and the books agree afterwards.

The bed brings its own PostgreSQL cluster, so these run in the PostgreSQL pass only (one pass
proves the same thing); each run is bounded (submissions and waits capped in time)."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from squall.jobs.models import Job
from squall.metering.models import UsageEvent
from tests.support.hostbed import HostBed, unavailable_reason

POSTGRES_PASS = bool(os.environ.get("SQUALL_TEST_DATABASE_URL"))
UNAVAILABLE = unavailable_reason() if POSTGRES_PASS else None  # probed once (it makes a namespace)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not POSTGRES_PASS,
        reason="the host bed brings its own PostgreSQL cluster; it runs in the PostgreSQL pass only",
    ),
    pytest.mark.skipif(UNAVAILABLE is not None, reason=str(UNAVAILABLE)),
]
SOURCE = "/slow/clip.mp4?kbps=200"  # paced per connection: the jobs overlap across the hosts


@pytest.fixture(scope="module")
def bed() -> Iterator[HostBed]:
    made = HostBed(api_hosts=2, worker_hosts=3, worker_concurrency=2).up()
    try:
        yield made
    finally:
        made.down()


@pytest.fixture(scope="module")
def engine(bed: HostBed) -> Iterator[Engine]:
    made = create_engine(bed.database_url, pool_pre_ping=True)
    yield made
    made.dispose()


def new_key(bed: HostBed, name: str) -> tuple[str, str]:
    created = json.loads(bed.cli("keys", "create", "--name", name, "--json").stdout)
    return created["api_key"], created["id"]


class Submitter:
    """Creates jobs through the API hosts in turn; a 503 is retried with the same
    Idempotency-Key, so one submission is one job whatever the database did."""

    def __init__(self, bed: HostBed, key: str) -> None:
        self.bed, self.headers = bed, {"x-api-key": key}
        self.statuses: Counter[int] = Counter()
        self.bad: list[str] = []  # answers that are neither 2xx nor a proper 503
        self.job_ids: list[str] = []

    def answer(self, response: httpx.Response) -> bool:
        self.statuses[response.status_code] += 1
        if response.status_code == 503:
            if "retry-after" not in response.headers or "error" not in response.json():
                self.bad.append(f"503 without Retry-After or error: {response.headers} {response.text}")
            return False
        if not 200 <= response.status_code < 300:
            self.bad.append(f"{response.status_code} {response.text[:300]}")
        return True

    def submit(self, n: int, deadline: float) -> None:
        with httpx.Client(timeout=30) as client:
            api = self.bed.api_urls[n % len(self.bed.api_urls)]
            body = {"url": self.bed.media_url + SOURCE, "filename": f"job{n}"}
            headers = {**self.headers, "Idempotency-Key": str(uuid.uuid4())}
            try:
                while time.monotonic() < deadline:
                    response = client.post(f"{api}/jobs", headers=headers, json=body)
                    if self.answer(response):
                        break
                    time.sleep(0.3)
                else:
                    self.bad.append(f"submission {n} not accepted before the deadline")
                    return
                self.job_ids.append(response.json()["job_id"])
                self.answer(
                    client.get(f"{api}/jobs", headers=self.headers, params={"limit": 5})
                )  # a read too
            except httpx.HTTPError as exc:  # a hang or a dropped connection is a failure too
                self.bad.append(f"submission {n}: {exc!r}")

    def run(self, count: int, every: float, deadline: float) -> list[threading.Thread]:
        """``count`` submissions, one started every ``every`` seconds (each in its own thread)."""
        threads = []
        for n in range(count):
            threads.append(threading.Thread(target=self.submit, args=(n, deadline)))
            threads[-1].start()
            time.sleep(every)
        return threads


def wait_done(engine: Engine, job_ids: list[str], timeout: float) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    statuses: dict[str, str] = {}
    while time.monotonic() < deadline:
        try:
            with engine.connect() as conn:
                statuses = dict(conn.execute(select(Job.id, Job.status).where(Job.id.in_(job_ids))).all())  # type: ignore[arg-type]
        except OperationalError:  # the database is restarting
            statuses = {}
        if len(statuses) == len(job_ids) and all(
            s not in ("Pending", "Processing") for s in statuses.values()
        ):
            break
        time.sleep(0.5)
    return statuses


def assert_books_clean(bed: HostBed, engine: Engine, key_id: str, job_ids: list[str]) -> None:
    verify = bed.cli("usage", "verify", "--json", check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    reconcile = bed.cli("storage", "reconcile", check=False)
    assert reconcile.returncode == 0, reconcile.stdout + reconcile.stderr
    with engine.connect() as conn:
        ledger = dict(
            conn.execute(
                select(UsageEvent.metric, func.count())
                .where(UsageEvent.key_id == key_id, UsageEvent.metric.in_(["jobs.created", "jobs.completed"]))
                .group_by(UsageEvent.metric)
            ).all()  # type: ignore[arg-type]
        )
        jobs = conn.execute(select(func.count()).select_from(Job).where(Job.key_id == key_id)).scalar_one()
        uploaded = conn.execute(
            select(func.coalesce(func.sum(UsageEvent.quantity), 0)).where(
                UsageEvent.key_id == key_id, UsageEvent.metric == "storage.uploaded_bytes"
            )
        ).scalar_one()
        stored = conn.execute(
            select(func.coalesce(func.sum(Job.stored_bytes), 0)).where(Job.key_id == key_id)
        ).scalar_one()
    assert jobs == len(job_ids) == len(set(job_ids))  # nothing admitted twice, nothing lost
    assert ledger == {"jobs.created": len(job_ids), "jobs.completed": len(job_ids)}
    assert uploaded == stored > 0


def completions(bed: HostBed, job_ids: list[str], settle_seconds: float = 10.0) -> Counter[str]:
    """How many times the worker hosts' logs say each of these jobs completed. A worker logs
    the completion just after committing it (and deleting any leftovers), so a job the
    database already shows as completed may reach its log a moment later: wait for that."""
    deadline = time.monotonic() + settle_seconds
    while True:
        total: Counter[str] = Counter()
        for counts in bed.completed_by_host().values():
            total.update({job: n for job, n in counts.items() if job in job_ids})
        if set(total) >= set(job_ids) or time.monotonic() > deadline:
            return total
        time.sleep(0.2)


def test_jobs_through_both_api_hosts_complete_once_across_the_worker_hosts(
    bed: HostBed, engine: Engine
) -> None:
    key, key_id = new_key(bed, "spread")
    submitter = Submitter(bed, key)
    for thread in submitter.run(30, 0.05, time.monotonic() + 30):
        thread.join()
    assert not submitter.bad, submitter.bad
    assert len(submitter.job_ids) == 30

    statuses = wait_done(engine, submitter.job_ids, timeout=90)
    assert Counter(statuses.values()) == {"Completed": 30}
    done = completions(bed, submitter.job_ids)
    assert set(done) == set(submitter.job_ids) and set(done.values()) == {1}  # each exactly once
    per_host = {
        role: sum(n for job, n in c.items() if job in done) for role, c in bed.completed_by_host().items()
    }
    assert all(per_host.values()), per_host  # every worker host took a share
    assert_books_clean(bed, engine, key_id, submitter.job_ids)


def test_postgres_restarted_twice_mid_run_loses_nothing(bed: HostBed, engine: Engine) -> None:
    key, key_id = new_key(bed, "restarts")
    before = bed.pids()
    submitter = Submitter(bed, key)
    started: list[threading.Thread] = []
    driver = threading.Thread(target=lambda: started.extend(submitter.run(24, 0.5, time.monotonic() + 60)))
    driver.start()  # submissions (and reads) go on throughout the two restarts
    for pause in (1.5, 2.0):
        time.sleep(pause)
        bed.stop_postgres("fast")
        time.sleep(3)
        bed.start_postgres()
    driver.join()
    for thread in started:
        thread.join()
    assert not submitter.bad, submitter.bad
    assert submitter.statuses[503] > 0  # the outages were seen, as 503s
    assert len(submitter.job_ids) == 24

    statuses = wait_done(engine, submitter.job_ids, timeout=120)
    assert Counter(statuses.values()) == {"Completed": 24}, statuses
    done = completions(bed, submitter.job_ids)
    assert set(done) == set(submitter.job_ids) and set(done.values()) == {1}
    assert bed.pids() == before and all(bed.alive().values()), bed.alive()  # no Squall restarted
    for role in [f"api{n}" for n in range(1, bed.api_hosts + 1)] + bed.worker_roles:
        # An outage is expected, not a crash: a job claimed just before it waits for the
        # database instead of spending an attempt, and nothing logs a traceback for it.
        assert "job crashed" not in bed.log(role) and "Traceback" not in bed.log(role), bed.log(role)[-3000:]
    assert_books_clean(bed, engine, key_id, submitter.job_ids)
