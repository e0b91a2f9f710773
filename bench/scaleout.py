"""Scale-out on the multi-host bed (issue 16): completed jobs per second with 1, 2 and 3 worker
hosts for an I/O-bound workload, admissions per second through 1 and 2 API hosts, and the
queue wait of a job submitted to an idle cluster.

    .venv/bin/python -m bench.scaleout [--rounds 3] [--concurrency 2] [--kbps 5] [--admit-seconds 5] [--samples 20]

The bed (tests/support/hostbed.py) is brought up once: PostgreSQL, moto S3 and the media host
in their own network namespaces, 2 API hosts, and the worker hosts started one by one. Every
job fetches the same 2 s clip (~42 KB) from the media host's ``/slow/`` path, paced to
``--kbps`` KiB/s per connection, so a job spends most of its time waiting on the network and
the figure measures how the cluster shares work, not the 2 shared cores.

- **Jobs/s with k worker hosts** (k = 1, 2, 3, each running ``--concurrency`` jobs at once):
  a newly started host first runs unmeasured warm-up jobs (its downloader forkserver starts on
  its first job), then ``rounds * k * concurrency`` jobs are submitted at once through both
  API hosts; jobs/s = jobs / (last ``finished_at`` - first ``created_at``). Equal rounds in
  each phase keep the tail's quantisation the same. ``ratio = jobs_per_s_3 / (3 * jobs_per_s_1)``
  (target >= 0.8).
- **Queue wait** on the idle 3-host cluster: ``--samples`` jobs one at a time (an unpaced
  source), each submitted once the previous one has finished; wait = ``started_at`` (the
  claim, on the database's clock) - ``created_at`` (target p99 <= 50 ms, with the wake-up).
- **Admissions/s**: with the worker hosts stopped, 16 client threads post jobs for
  ``--admit-seconds`` through API host 1 alone, then through both (after 1 s unmeasured);
  ``admit_ratio = both / (2 * one)`` (reported only: every host shares the same two cores).

Last line: ``RESULT scaleout jobs_per_s_1=… jobs_per_s_3=… ratio=… admit_ratio=…
queue_wait_p50_ms=… queue_wait_p99_ms=…``. Needs root (network namespaces).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Sequence

import httpx
from sqlalchemy import create_engine, select
from sqlalchemy.engine import Engine
from tests.support.hostbed import HostBed, unavailable_reason

from bench._common import percentile, run_main
from squall.jobs.models import Job

CLIENTS = 16


def submit(bed: HostBed, key: str, url: str, count: int) -> list[str]:
    """``count`` jobs through the API hosts in turn, from a few threads."""
    ids: list[str] = []

    def post(n: int) -> None:
        with httpx.Client(timeout=30) as client:
            answer = client.post(bed.api_urls[n % len(bed.api_urls)] + "/jobs", headers={"x-api-key": key},
                                 json={"url": url})  # fmt: skip
            answer.raise_for_status()
            ids.append(answer.json()["job_id"])

    threads = [threading.Thread(target=post, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if len(ids) != count:
        raise RuntimeError(f"only {len(ids)} of {count} jobs were admitted")
    return ids


def wait_finished(engine: Engine, ids: Sequence[str], timeout: float) -> tuple[int, int]:
    """Until every job ended; (first created_at, last finished_at) in ms."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            rows = conn.execute(
                select(Job.status, Job.created_at, Job.finished_at).where(Job.id.in_(ids))
            ).all()
        if all(status not in ("Pending", "Processing") for status, _, _ in rows):
            failed = [row for row in rows if row[0] != "Completed"]
            if failed:
                raise RuntimeError(f"{len(failed)} jobs did not complete: {failed[:3]}")
            return min(row[1] for row in rows), max(row[2] or 0 for row in rows)
        time.sleep(0.1)
    raise TimeoutError(f"jobs still running after {timeout} s")


def warm(bed: HostBed, engine: Engine, key: str, role: str) -> None:
    """Unmeasured jobs until ``role`` has run one (its downloader forkserver is then up)."""
    for _ in range(4):
        wait_finished(
            engine, submit(bed, key, bed.media_url + "/media/clip.mp4", 2 * bed.worker_concurrency), 300
        )
        if sum(bed.completed_by_host()[role].values()):
            return
    raise RuntimeError(f"{role} took none of the warm-up jobs")


def jobs_per_s(bed: HostBed, engine: Engine, key: str, hosts: int, rounds: int, kbps: float) -> float:
    count = rounds * hosts * bed.worker_concurrency
    ids = submit(bed, key, f"{bed.media_url}/slow/clip.mp4?kbps={kbps:g}", count)
    first, last = wait_finished(engine, ids, 60 + 30 * rounds)
    rate = count / ((last - first) / 1000)
    print(
        f"{hosts} worker host(s): {count} jobs in {(last - first) / 1000:.1f} s = {rate:.2f} jobs/s",
        flush=True,
    )
    return rate


def queue_waits(bed: HostBed, engine: Engine, key: str, samples: int) -> list[float]:
    waits = []
    for n in range(samples):
        (job_id,) = submit(bed, key, bed.media_url + "/media/clip.mp4", 1)
        wait_finished(engine, [job_id], 120)
        with engine.connect() as conn:
            created, started = conn.execute(
                select(Job.created_at, Job.started_at).where(Job.id == job_id)
            ).one()
        waits.append(float(started - created))
        time.sleep(0.2 + 0.05 * (n % 3))  # every worker idle again, waiting on its wake-up
    return sorted(waits)


def admissions_per_s(
    bed: HostBed, key: str, apis: list[str], seconds: float, *, report: bool = True
) -> float:
    counts = [0] * CLIENTS
    errors: list[str] = []
    deadline = time.monotonic() + seconds

    def client(n: int) -> None:
        base = apis[n % len(apis)]
        with httpx.Client(timeout=30) as http:
            while time.monotonic() < deadline:
                answer = http.post(
                    base + "/jobs", headers={"x-api-key": key}, json={"url": bed.media_url + "/m.mp4"}
                )
                if answer.status_code != 200:
                    errors.append(f"{answer.status_code} {answer.text[:200]}")
                    return
                counts[n] += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"admission failed: {errors[:3]}")
    rate = sum(counts) / (time.monotonic() - started)
    if report:
        print(f"admissions through {len(apis)} API host(s): {rate:.0f}/s", flush=True)
    return rate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="jobs per worker slot in each phase")
    parser.add_argument("--concurrency", type=int, default=2, help="jobs at once per worker host")
    parser.add_argument("--kbps", type=float, default=5, help="source pace per connection, KiB/s")
    parser.add_argument("--admit-seconds", type=float, default=5)
    parser.add_argument("--samples", type=int, default=20, help="queue-wait samples")
    args = parser.parse_args()
    if (reason := unavailable_reason()) is not None:
        print(f"cannot build the host bed: {reason}", file=sys.stderr)
        return 2
    bed = HostBed(api_hosts=2, worker_hosts=3, worker_concurrency=args.concurrency, start_workers=False)
    started = time.monotonic()
    with bed:
        print(f"bed {bed.run_id} up on {bed.subnet} in {time.monotonic() - started:.0f} s", flush=True)
        engine = create_engine(bed.database_url)
        key = json.loads(bed.cli("keys", "create", "--name", "scaleout", "--json").stdout)["api_key"]
        rates = {}
        for hosts, role in enumerate(bed.worker_roles, start=1):
            bed.start_worker(role)
            bed.wait_worker(role)
            warm(bed, engine, key, role)
            rates[hosts] = jobs_per_s(bed, engine, key, hosts, args.rounds, args.kbps)
        waits = queue_waits(bed, engine, key, args.samples)
        print(f"queue wait (ms), {len(waits)} samples: {' '.join(f'{w:.0f}' for w in waits)}")
        for role in bed.worker_roles:  # what the admission phase adds stays queued
            bed.stop(role)
        admissions_per_s(bed, key, bed.api_urls, 1, report=False)  # unmeasured: every API process warmed up
        admit_1 = admissions_per_s(bed, key, bed.api_urls[:1], args.admit_seconds)
        admit_2 = admissions_per_s(bed, key, bed.api_urls, args.admit_seconds)
        engine.dispose()
    ratio = rates[3] / (3 * rates[1])
    print(f"jobs_per_s_2={rates[2]:.2f} admit_per_s_1={admit_1:.0f} admit_per_s_2={admit_2:.0f}")
    print(f"RESULT scaleout jobs_per_s_1={rates[1]:.2f} jobs_per_s_3={rates[3]:.2f} ratio={ratio:.2f} "
          f"admit_ratio={admit_2 / (2 * admit_1):.2f} queue_wait_p50_ms={percentile(waits, 50):.0f} "
          f"queue_wait_p99_ms={percentile(waits, 99):.0f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    run_main(main)
