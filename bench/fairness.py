"""Fairness of the queue across keys: how long keys B-E wait for their jobs while key A has
1,000 queued, against how long they wait with no flood, measured in the same run.

    python -m bench.fairness [--db sqlite|postgresql] [--flood 1000] [--per-key 10] [--workers 2]

Setup: FFmpeg generates a tiny clip (1 s, 160x90) served by ``python -m http.server``; two
``squall worker`` processes (real pipeline: yt-dlp + FFmpeg remux) on one database. Phase
"alone": keys B-E submit ``--per-key`` jobs each; every job's wait is ``started_at -
created_at``. Phase "flooded": key A queues ``--flood`` jobs, the workers take two of them,
then B-E submit the same again. One unmeasured job per worker (key W) goes first, so
both phases run on warmed-up workers. A phase ends as soon as all of B-E's jobs have started (A's
flood is never drained, so the run stays a few minutes at most). On PostgreSQL the claim's
query plan with the flood queued is printed (EXPLAIN ANALYZE).

Last line: ``RESULT fairness wait_p99_ms_flooded=… wait_p99_ms_alone=… ratio=<flooded / alone>``
(target ≤ 2)."""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from sqlalchemy import select, text

from bench._common import DATABASES, BenchEnv, _stop, background, bench_env, free_port, percentile, run_main
from bench.pipeline import generate
from squall.clock import now_ms
from squall.db import Database
from squall.db.migrate import upgrade
from squall.jobs import service as jobs
from squall.jobs.fair import next_job_per_key
from squall.jobs.models import Job, JobStatus
from squall.jobs.options import JobOptions
from squall.keys.service import AuthenticatedKey, authenticate, create_key
from squall.pipeline.binaries import ffmpeg_path
from squall.subscriptions import wire

PHASE_TIMEOUT_S = 240


@contextmanager
def workers(env: BenchEnv, count: int) -> Iterator[None]:
    with ExitStack() as stack:
        for n in range(count):
            log = stack.enter_context((env.data_dir / f"worker-{n}.log").open("ab"))
            proc = subprocess.Popen(
                [sys.executable, "-m", "squall", "worker"], env=env.environ(SQUALL_POLL_SECONDS="0.05"),
                cwd=env.data_dir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
            stack.callback(_stop, proc)
        yield


def make_keys(db: Database, secret: str, names: str) -> dict[str, AuthenticatedKey]:
    found = {}
    for name in names:
        with db.write() as session:
            new = create_key(session, pepper=secret, name=name)
        with db.read() as session:
            key = authenticate(session, new.api_key, secret)
        assert key is not None
        found[name] = key
    return found


def submit(db: Database, key: AuthenticatedKey, url: str, count: int) -> list[str]:
    with db.write() as session:
        return jobs.create_jobs(session, key, [JobOptions(url=url)] * count, now=now_ms(),
                                admission=jobs.Admission(0, 1))  # fmt: skip


def waits_once_started(db: Database, ids: list[str]) -> list[float]:
    """Block until every job of ``ids`` has started; their waits in ms, sorted."""
    deadline = time.monotonic() + PHASE_TIMEOUT_S
    while True:
        with db.read() as session:
            rows = session.execute(select(Job.created_at, Job.started_at).where(Job.id.in_(ids))).all()
        started = [s - c for c, s in rows if s is not None]
        if len(started) == len(ids):
            return sorted(float(w) for w in started)
        if time.monotonic() > deadline:
            raise SystemExit(f"only {len(started)} of {len(ids)} jobs started in {PHASE_TIMEOUT_S} s")
        time.sleep(0.1)


def wait_until(db: Database, condition: str, what: str) -> None:
    deadline = time.monotonic() + PHASE_TIMEOUT_S
    while True:
        with db.read() as session:
            if session.execute(text(condition)).scalar():
                return
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def explain_claim(db: Database) -> None:
    if db.is_sqlite:
        return
    with db.read() as session:
        plan = session.execute(text("EXPLAIN (ANALYZE, BUFFERS) " + str(
            select(next_job_per_key(now_ms(), 'postgresql')).compile(db.read_engine, compile_kwargs={"literal_binds": True})
        ))).scalars()  # fmt: skip
        print("claim plan with the flood queued:\n  " + "\n  ".join(plan))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=DATABASES, default="sqlite")
    parser.add_argument("--flood", type=int, default=1000)
    parser.add_argument("--per-key", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="squall-bench-fairness-"))
    generate(ffmpeg_path(), scratch / "tiny.mp4", seconds=1, size="160x90", noise=False)
    port = free_port()
    media = f"http://127.0.0.1:{port}/tiny.mp4"
    serve_media = [
        sys.executable,
        "-m",
        "http.server",
        "--bind",
        "127.0.0.1",
        str(port),
        "--directory",
        str(scratch),
    ]
    with bench_env(args.db) as env, background(serve_media, media, "media server", scratch / "media.log"):
        upgrade(env.database_url)
        db = wire(Database(env.database_url))
        keys = make_keys(db, env.secret_key, "ABCDEW")
        others = [keys[name] for name in "BCDE"]
        with workers(env, args.workers):
            waits_once_started(db, submit(db, keys["W"], media, args.workers))  # warm-up, not measured
            wait_until(
                db, "SELECT count(*) = 0 FROM jobs WHERE status IN ('Pending', 'Processing')", "warm-up"
            )
            alone_ids = [i for key in others for i in submit(db, key, media, args.per_key)]
            alone = waits_once_started(db, alone_ids)
            wait_until(db, "SELECT count(*) = 0 FROM jobs WHERE status IN ('Pending', 'Processing')", "drain")
            submit(db, keys["A"], media, args.flood)
            wait_until(db, f"SELECT count(*) >= {min(2, args.flood)} FROM jobs WHERE started_at IS NOT NULL "
                           f"AND key_id = '{keys['A'].id}'", "the flood to start")  # fmt: skip
            flooded_ids = [i for key in others for i in submit(db, key, media, args.per_key)]
            explain_claim(db)
            flooded = waits_once_started(db, flooded_ids)
        with db.read() as session:
            a_started = session.execute(
                select(text("count(*)"))
                .select_from(Job)
                .where(Job.key_id == keys["A"].id, Job.started_at.is_not(None))
            ).scalar_one()
            pending = session.execute(
                select(text("count(*)")).select_from(Job).where(Job.status == JobStatus.PENDING)
            ).scalar_one()
        db.dispose()
    p_alone, p_flooded = percentile(alone, 99), percentile(flooded, 99)
    print(f"db={args.db} workers={args.workers} flood={args.flood} B-E jobs={len(flooded)} "
          f"(A's jobs started by the end: {a_started}, still queued: {pending})")  # fmt: skip
    print(f"alone:   p50 {percentile(alone, 50):.0f} ms, p99 {p_alone:.0f} ms")
    print(f"flooded: p50 {percentile(flooded, 50):.0f} ms, p99 {p_flooded:.0f} ms")
    print(f"RESULT fairness wait_p99_ms_flooded={p_flooded:.0f} wait_p99_ms_alone={p_alone:.0f} "
          f"ratio={p_flooded / p_alone:.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    run_main(main)
