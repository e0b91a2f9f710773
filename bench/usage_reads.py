"""Usage reads against history length: latency of ``GET /usage`` and ``GET /dashboard/stats``
for a key with 1,000 jobs of history and for one with 1,000,000, served by a real
``squall serve --workers 0`` process. The contract says these reads are O(1) in history
(counters) or O(days) (rollups), so the ratio should stay near 1.

    python -m bench.usage_reads [--db sqlite|postgresql] [--requests 2000]

Both keys live in one scratch database, seeded directly with bulk inserts (sqlite3
executemany, PostgreSQL COPY): completed jobs spread over the past 400 days, their ledger
events, and daily rollups and key counters consistent with them, so ``squall usage verify``
passes. Last line: ``RESULT usage_reads db=… p99_ms_small=… p99_ms_large=… ratio=<large/small>``
(p99 of the slower of the two endpoints for each key).
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

import httpx
import psycopg
from psycopg import sql
from sqlalchemy import insert, update
from sqlalchemy.engine import make_url

from bench._common import (
    DATABASES,
    BenchEnv,
    bench_env,
    percentile,
    run_main,
    squall_cli,
    squall_server,
)
from squall.clock import hour_of
from squall.db import Database
from squall.db.migrate import upgrade
from squall.keys.service import create_key
from squall.metering import ledger
from squall.metering.models import DailyRollup, KeyCounters
from squall.subscriptions import wire

DAY_MS = 86_400_000
HISTORY_DAYS = 400
EVENTS_PER_JOB = 6  # ledger rows per completed job: created, completed, bytes x2, timing x2
CHUNK = 50_000  # jobs generated and inserted at a time
ENDPOINTS = ("/usage", "/dashboard/stats")

JOB_COLUMNS = (
    *("id", "key_id", "url", "options", "priority", "status", "step", "attempt", "max_attempts"),
    *("run_after", "reserved_bytes", "created_at", "started_at", "finished_at", "output_key"),
    *("file_size", "downloaded_bytes", "duration_seconds", "width", "height", "title"),
)
EVENT_COLUMNS = (
    "id",
    "key_id",
    "job_id",
    "metric",
    "dimension",
    "quantity",
    "day",
    "occurred_at",
    "dedupe_key",
)
_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def time_ordered_ids(times_ms: list[int]) -> list[str]:
    """UUIDv7 strings (48-bit millisecond timestamp, then random bits) for ascending
    instants. The app's ids are UUIDv4, but nothing measured here looks a row up by id, and
    ids that sort in insertion order let the bulk load append to the primary-key and dedupe
    indexes instead of writing all over them (minutes faster for 5 million events)."""
    h = os.urandom(10 * len(times_ms)).hex()
    return [
        f"{t >> 16:08x}-{t & 0xFFFF:04x}-7{h[i : i + 3]}-{_VARIANT[h[i + 3]]}{h[i + 4 : i + 7]}-{h[i + 7 : i + 19]}"
        for t, i in zip(times_ms, range(0, 20 * len(times_ms), 20), strict=True)
    ]


def utc_day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).date().isoformat()


@dataclass
class History:
    """What the inserted rows add up to: the counters and rollups must say the same."""

    jobs: int = 0
    used_bytes: int = 0
    finished_last_day: int = 0  # what /dashboard/stats averages over
    rollups: dict[tuple[str, str, str], int] = field(default_factory=lambda: defaultdict(int))


Row = tuple[object, ...]
T = TypeVar("T")


def generate(
    key_id: str, count: int, now: int, rng: random.Random, history: History
) -> Iterator[tuple[list[Row], list[Row]]]:
    """Chunks of (job rows, event rows) for ``count`` completed jobs spread evenly over the
    past HISTORY_DAYS days, in the order a live server writes them, with the columns and the
    ledger events ``create_job`` and ``complete_job`` write. Adds them up in ``history``."""
    first = now - HISTORY_DAYS * DAY_MS
    span = HISTORY_DAYS * DAY_MS - 600_000  # the last one finishes before now
    days: dict[int, str] = {}
    uniform = rng.random
    for start in range(0, count, CHUNK):
        n = min(CHUNK, count - start)
        low = first + span * start // count
        created_at = sorted(low + int(uniform() * span * n / count) for _ in range(n))
        job_ids = time_ordered_ids(created_at)
        event_ids = iter(time_ordered_ids([t for t in created_at for _ in range(EVENTS_PER_JOB)]))
        jobs: list[Row] = []
        events: list[Row] = []
        for job_id, created in zip(job_ids, created_at, strict=True):
            started = created + 200 + int(uniform() * 30_000)
            finished = started + 5_000 + int(uniform() * 300_000)
            size = (1 << 20) + int(uniform() * (199 << 20))
            downloaded = size + int(uniform() * (1 << 20))
            url = f"https://media.example.com/v/{job_id[-12:]}.mp4"
            job = {
                "id": job_id,
                "key_id": key_id,
                "url": url,
                "options": f'{{"url": "{url}"}}',
                "priority": 5,
                "status": "Completed",
                "step": "Finished",
                "attempt": 1,
                "max_attempts": 3,
                "run_after": created,
                "reserved_bytes": 0,
                "created_at": created,
                "started_at": started,
                "finished_at": finished,
                "output_key": f"{job_id}/video.mp4",
                "file_size": size,
                "downloaded_bytes": downloaded,
                "duration_seconds": round(10 + uniform() * 3600, 3),
                "width": 1280,
                "height": 720,
                "title": f"Video {job_id[-12:]}",
            }
            jobs.append(tuple(job[c] for c in JOB_COLUMNS))
            history.jobs += 1
            history.used_bytes += size
            history.finished_last_day += finished >= now - DAY_MS
            made = days.get(created // DAY_MS) or days.setdefault(created // DAY_MS, utc_day(created))
            done = days.get(finished // DAY_MS) or days.setdefault(finished // DAY_MS, utc_day(finished))
            hour = hour_of(finished)
            seeded = (
                (ledger.JOBS_CREATED, "", 1, made, created),
                (ledger.JOBS_COMPLETED, "", 1, done, finished),
                (ledger.BYTES_UPLOADED, "", size, done, finished),
                (ledger.BYTES_DOWNLOADED, "", downloaded, done, finished),
                (ledger.PROCESSING_MS, hour, finished - started, done, finished),
                (ledger.TIMED_JOBS, hour, 1, done, finished),
            )
            for metric, dimension, quantity, day, at in seeded:
                dedupe = f"{job_id}:{metric}:{dimension}"  # as ledger.record writes it
                events.append((next(event_ids), key_id, job_id, metric, dimension, quantity, day, at, dedupe))
                history.rollups[(day, metric, dimension)] += quantity
        yield jobs, events


def seed(db: Database, key_id: str, count: int, now: int, rng: random.Random) -> History:
    """Bulk-insert ``count`` completed jobs with their ledger; returns their totals."""
    history = History()
    chunks = prefetched(generate(key_id, count, now, rng, history))
    if db.is_sqlite:
        path = make_url(db.url).database
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute("PRAGMA synchronous=OFF")
            conn.execute("PRAGMA cache_size=-1000000")  # 1 GB: index pages stay in memory
            for jobs, events in chunks:
                conn.execute("BEGIN")
                conn.executemany(_insert_sql("jobs", JOB_COLUMNS), jobs)
                conn.executemany(_insert_sql("usage_events", EVENT_COLUMNS), events)
                conn.execute("COMMIT")
        finally:
            conn.close()
    else:
        with psycopg.connect(_conninfo(db.url), autocommit=True) as conn:
            conn.execute("SET synchronous_commit TO off")
            conn.execute("SET maintenance_work_mem TO '512MB'")
            with indexes_rebuilt_after(conn, ("jobs", "usage_events")):
                for jobs, events in chunks:
                    with conn.transaction(), conn.cursor() as cur:
                        _copy(cur, "jobs", JOB_COLUMNS, jobs)
                        _copy(cur, "usage_events", EVENT_COLUMNS, events)
    _write_totals(db, key_id, history)
    return history


@contextmanager
def indexes_rebuilt_after(conn: psycopg.Connection[Row], tables: tuple[str, ...]) -> Iterator[None]:
    """Drop the tables' indexes, primary keys and unique constraints (except any a foreign
    key refers to), and build them again, as they were, after the block: a bulk load into
    bare tables plus one sorted build per index is several times faster than COPY into
    indexed ones."""
    rebuild: list[str] = []
    for table in tables:
        for name, definition in conn.execute(_CONSTRAINTS, {"table": table}).fetchall():
            conn.execute(
                sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                    sql.Identifier(table), sql.Identifier(name)
                )
            )
            rebuild.append(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        for name, definition in conn.execute(_INDEXES, {"table": table}).fetchall():
            conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
            rebuild.append(definition)
    yield  # on an error the scratch database is dropped anyway: nothing to rebuild
    for statement in rebuild:
        conn.execute(statement.encode())


_CONSTRAINTS = """
    SELECT c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint c
    WHERE c.conrelid = %(table)s::regclass AND c.contype IN ('p', 'u')
      AND NOT EXISTS (SELECT 1 FROM pg_constraint f WHERE f.contype = 'f' AND f.conindid = c.conindid)
"""
_INDEXES = """
    SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i
    WHERE i.indrelid = %(table)s::regclass
      AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
"""


def prefetched(chunks: Iterator[T]) -> Iterator[T]:
    """Make the next chunk in a thread while the database takes this one (both sqlite3 and
    psycopg let go of the GIL while they wait for the database)."""
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(next, chunks, None)
        while (chunk := pending.result()) is not None:
            pending = pool.submit(next, chunks, None)
            yield chunk


def _insert_sql(table: str, columns: tuple[str, ...]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


def _copy(cur: psycopg.Cursor[Row], table: str, columns: tuple[str, ...], rows: list[Row]) -> None:
    with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _conninfo(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _write_totals(db: Database, key_id: str, history: History) -> None:
    with db.write() as session:
        rows = [
            {
                "key_id": key_id,
                "day": datetime.fromisoformat(day).date(),
                "metric": metric,
                "dimension": dimension,
                "quantity": q,
            }
            for (day, metric, dimension), q in history.rollups.items()
        ]
        session.execute(insert(DailyRollup), rows)
        session.execute(
            update(KeyCounters)
            .where(KeyCounters.key_id == key_id)
            .values(usage_count=history.jobs, jobs_completed=history.jobs, used_bytes=history.used_bytes)
        )


def analyze(db: Database) -> None:
    """PostgreSQL's autovacuum would analyze these tables soon after such a load; do it now,
    so it does not run during the measurement. (SQLite is left as the app leaves it.)"""
    with psycopg.connect(_conninfo(db.url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def measure(
    base: str, keys: dict[str, str], requests: int, warmup: int
) -> dict[tuple[str, str], list[float]]:
    """Sequential GETs over one keep-alive connection, the four (key, endpoint) pairs in
    turn so that drift in the machine affects them alike. Latencies in ms, sorted."""
    results: dict[tuple[str, str], list[float]] = {(k, e): [] for k in keys for e in ENDPOINTS}
    with httpx.Client(base_url=base, timeout=30) as client:
        for i in range(warmup + requests):
            for (name, path), samples in results.items():
                started = time.perf_counter()
                response = client.get(path, headers={"x-api-key": keys[name]})
                elapsed = (time.perf_counter() - started) * 1000
                if response.status_code != 200:
                    raise RuntimeError(f"GET {path} for {name}: {response.status_code} {response.text}")
                if i >= warmup:
                    samples.append(elapsed)
    for samples in results.values():
        samples.sort()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=DATABASES, default="sqlite")
    parser.add_argument("--requests", type=int, default=2000, help="measured requests per key and endpoint")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--small", type=int, default=1_000, help="jobs of history of the small key")
    parser.add_argument("--large", type=int, default=1_000_000, help="jobs of history of the large key")
    args = parser.parse_args()

    with bench_env(args.db) as env:
        keys = prepare(env, {"small": args.small, "large": args.large})
        with squall_server(env) as base:
            for name, key in keys.items():
                usage = httpx.get(f"{base}/usage", headers={"x-api-key": key}, timeout=30).json()
                print(f"{name} key: GET /usage usage_count={usage['usage_count']}")
            results = measure(base, keys, args.requests, args.warmup)
        print(f"squall usage verify: {squall_cli(env, 'usage', 'verify').splitlines()[0]}")

    print(f"{'key':<6} {'endpoint':<17} {'p50 ms':>8} {'p99 ms':>8}")
    for (name, path), samples in results.items():
        print(f"{name:<6} {path:<17} {percentile(samples, 50):8.2f} {percentile(samples, 99):8.2f}")
    worst = {name: max(percentile(results[(name, e)], 99) for e in ENDPOINTS) for name in keys}
    print(
        f"RESULT usage_reads db={args.db} p99_ms_small={worst['small']:.2f} "
        f"p99_ms_large={worst['large']:.2f} ratio={worst['large'] / worst['small']:.3f}"
    )
    return 0


def prepare(env: BenchEnv, sizes: dict[str, int]) -> dict[str, str]:
    """Migrate the scratch database, create one key per size and seed its history."""
    upgrade(env.database_url)
    db = wire(Database(env.database_url))
    rng = random.Random(42)
    now = int(time.time() * 1000)
    keys: dict[str, str] = {}
    try:
        for name, count in sizes.items():
            with db.write() as session:
                new = create_key(session, pepper=env.secret_key, name=f"bench-{name}")
            started = time.perf_counter()
            history = seed(db, new.id, count, now, rng)
            took = time.perf_counter() - started
            print(
                f"seeded {name} key: {history.jobs:,} jobs ({history.finished_last_day:,} finished in the "
                f"last 24 h), {5 * history.jobs:,} usage events in {took:.1f} s"
            )
            keys[name] = new.api_key
        if not db.is_sqlite:
            started = time.perf_counter()
            analyze(db)
            print(f"VACUUM ANALYZE in {time.perf_counter() - started:.1f} s")
    finally:
        db.dispose()
    return keys


if __name__ == "__main__":
    run_main(main)
