"""The fair queue: workers take turns between keys, priority still rules across keys, and a
key at its concurrency cap waits while the others run. Claims are counted, never timed."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import update

from squall.clock import now_ms
from squall.db import Database
from squall.errors import JobFailure
from squall.jobs import service as jobs
from squall.jobs.options import JobOptions
from squall.keys.models import ApiKey
from squall.keys.service import AuthenticatedKey
from squall.pipeline.spec import JobSpec, PipelineEvents, PipelineResult
from squall.settings import Settings
from squall.storage.base import Storage
from squall.storage.memory import MemoryStorage
from squall.worker import Worker
from tests.jobs.test_queue import claim, key_for
from tests.support.helpers import KeyFactory

MB = 1024 * 1024


def queue_jobs(db: Database, key: AuthenticatedKey, count: int, *, priority: int = 5) -> list[str]:
    with db.write() as session:
        return jobs.create_jobs(
            session, key, [JobOptions(url="http://example.com/v.mp4", priority=priority)] * count,
            now=now_ms(), admission=jobs.Admission(reservation_bytes=MB, max_attempts=1),
        )  # fmt: skip


def set_cap(db: Database, key_id: str, cap: int | None) -> None:
    with db.write() as session:
        session.execute(update(ApiKey).where(ApiKey.id == key_id).values(max_concurrent_jobs=cap))


def test_a_single_job_of_another_key_is_claimed_next_however_long_the_flood(
    db: Database, make_key: KeyFactory
) -> None:
    flooder = key_for(db, make_key("A")[0])
    other = key_for(db, make_key("B")[0])
    flood = queue_jobs(db, flooder, 200)
    taken = [claim(db), claim(db)]  # two workers busy with A's work
    assert all(job is not None and job.key_id == flooder.id for job in taken)
    (single,) = queue_jobs(db, other, 1)
    following = [job.id for _ in range(4) if (job := claim(db)) is not None]
    assert following.index(single) < 3  # before A's 4th next claim (it is in fact the next one)
    assert following[0] == single
    assert set(following) - {single} <= set(flood)


def test_turns_alternate_between_keys_and_each_keys_own_order_is_kept(
    db: Database, make_key: KeyFactory
) -> None:
    a = key_for(db, make_key("A")[0])
    b = key_for(db, make_key("B")[0])
    a_jobs = queue_jobs(db, a, 3)
    b_jobs = queue_jobs(db, b, 3)
    order = []
    while (job := claim(db)) is not None:
        order.append(job)
    keys = [job.key_id for job in order]
    assert all(keys[i] != keys[i + 1] for i in range(len(keys) - 1))  # strict turns
    assert [job.id for job in order if job.key_id == a.id] == a_jobs  # each key oldest first
    assert [job.id for job in order if job.key_id == b.id] == b_jobs


def test_a_low_priority_flood_never_delays_a_higher_priority_job(db: Database, make_key: KeyFactory) -> None:
    flooder = key_for(db, make_key("A")[0])
    other = key_for(db, make_key("B")[0])
    queue_jobs(db, flooder, 50, priority=1)
    (urgent,) = queue_jobs(db, other, 1, priority=9)
    low_b = queue_jobs(db, other, 1, priority=1)
    high_a = queue_jobs(db, flooder, 2, priority=9)
    first = [job.id for _ in range(3) if (job := claim(db)) is not None]
    assert set(first) == {urgent, *high_a}  # every priority-9 job before any priority-1 one
    then = [job.id for _ in range(2) if (job := claim(db)) is not None]
    assert low_b[0] in then  # then turns again


def test_a_key_at_its_cap_keeps_its_jobs_queued_while_others_run(db: Database, make_key: KeyFactory) -> None:
    secret, capped_id = make_key("A")
    set_cap(db, capped_id, 2)
    capped = key_for(db, secret)
    other = key_for(db, make_key("B")[0])
    queue_jobs(db, capped, 10)
    queue_jobs(db, other, 5)
    claimed = [job for _ in range(10) if (job := claim(db)) is not None]
    assert [job.key_id for job in claimed].count(capped_id) == 2  # never more than the cap
    assert [job.key_id for job in claimed].count(other.id) == 5
    assert claim(db) is None  # A's other 8 wait for a running job of A to end
    with db.write() as session:
        jobs.fail_job(session, claimed[0] if claimed[0].key_id == capped_id else claimed[1],
                      JobFailure("done"), now=now_ms(), retry_at=None)  # fmt: skip
    again = claim(db)
    assert again is not None and again.key_id == capped_id


def test_two_workers_never_run_more_than_a_keys_cap(
    settings: Settings, db: Database, make_key: KeyFactory
) -> None:
    """Two real workers in threads with a stand-in pipeline that records how many jobs of each
    key run at the same moment (the most it ever saw is the assertion, not a time)."""
    secret, capped_id = make_key("A")
    set_cap(db, capped_id, 1)
    capped = key_for(db, secret)
    other = key_for(db, make_key("B")[0])
    owner = dict.fromkeys(queue_jobs(db, capped, 6), capped_id) | dict.fromkeys(
        queue_jobs(db, other, 6), other.id
    )
    running: dict[str, int] = {}
    most: dict[str, int] = {}
    lock = threading.Lock()
    order: list[str] = []

    def stand_in_slow_pipeline(
        spec: JobSpec, workdir: Path, storage: Storage, events: PipelineEvents
    ) -> PipelineResult:
        key_id = owner[spec.job_id]
        with lock:
            running[key_id] = running.get(key_id, 0) + 1
            most[key_id] = max(most.get(key_id, 0), running[key_id])
            order.append(key_id)
        threading.Event().wait(0.05)  # a slow source: other claims happen meanwhile
        with lock:
            running[key_id] -= 1
        raise JobFailure("stand-in: no media")

    workers = [
        Worker(settings, db=db, storage=MemoryStorage(), pipeline=stand_in_slow_pipeline) for _ in range(2)
    ]
    threads = [threading.Thread(target=_drain, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(order) == 12
    assert most[capped_id] == 1 and most[other.id] >= 1


def _drain(worker: Worker) -> None:
    misses = 0
    while misses < 20:  # the other worker may hold the last jobs for a moment
        if worker.run_once():
            misses = 0
        else:
            misses += 1
            threading.Event().wait(0.02)
