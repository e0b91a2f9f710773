"""Date-range usage reads against range length: latency of ``GET /usage/network``,
``/usage/storage`` and ``/usage/transcoding`` over 365 days and over 7 days, for a key with
1,000,000 usage events, served by a real ``squall serve --workers 0`` process.

    python -m bench.usage_ranges [--db sqlite|postgresql] [--events 1000000] [--requests 1000]

The key's ledger is seeded directly (sqlite3 executemany, PostgreSQL COPY): delivery
requests with their bytes and cache hits, uploads and deletes of stored objects, and
transcoded minutes by quality and priority, spread over the past 730 days, with daily
rollups consistent with it (``squall usage verify`` passes), and its finished days sealed into
the monthly form as its usage would have sealed them. Both ranges end today, which (with
yesterday) is read live from the rollups. Requests are sequential on
one keep-alive connection, the six (range, endpoint) pairs in turn. Last line:
``RESULT usage_ranges p99_ms_365=… p99_ms_7=… ratio=<365-day / 7-day>`` (p99 of the slowest
endpoint for each range).
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import httpx
import psycopg
from sqlalchemy import insert, update
from sqlalchemy.engine import make_url

from bench._common import DATABASES, bench_env, percentile, run_main, squall_cli, squall_server
from bench.usage_reads import EVENT_COLUMNS, _conninfo, _copy, _insert_sql, prefetched, time_ordered_ids
from squall.db import Database
from squall.metering import ledger, months
from squall.metering.models import DailyRollup, KeyCounters
from squall.subscriptions import wire

DAY_MS = 86_400_000
HISTORY_DAYS = 730
CHUNK = 50_000
KINDS = ("network", "storage", "transcoding")
QUALITIES = [f"{q}p" for q in ledger.QUALITIES]

Row = tuple[object, ...]
Rollups = dict[tuple[str, str, str], int]


def events_for(
    key_id: str, count: int, now: int, rng: random.Random, rollups: Rollups
) -> Iterator[list[Row]]:
    """Chunks of ledger rows, in time order, as ``ledger.record`` writes them."""
    first = now - HISTORY_DAYS * DAY_MS
    for start in range(0, count, CHUNK):
        n = min(CHUNK, count - start)
        times = sorted(first + int(rng.random() * (HISTORY_DAYS * DAY_MS - 60_000)) for _ in range(n))
        ids = time_ordered_ids(times)
        rows: list[Row] = []
        for event_id, at in zip(ids, times, strict=True):
            day = datetime.fromtimestamp(at / 1000, tz=UTC).date().isoformat()
            pick = rng.random()
            if pick < 0.6:
                metric, dimension, quantity = ledger.DELIVERY_REQUESTS, "", 1
            elif pick < 0.8:
                metric, dimension, quantity = ledger.DELIVERY_BYTES, "", rng.randrange(1, 50 << 20)
            elif pick < 0.85:
                metric, dimension, quantity = ledger.DELIVERY_HITS, "", 1
            elif pick < 0.9:
                metric, dimension, quantity = ledger.STORED_OBJECTS, "", rng.choice((1, 1, 1, -1))
            elif pick < 0.95:
                metric, dimension, quantity = ledger.STORED_BYTES, "", rng.randrange(1, 200 << 20)
            elif pick < 0.975:
                metric, dimension = ledger.TRANSCODE_MS_BY_QUALITY, rng.choice(QUALITIES)
                quantity = rng.randrange(1_000, 3_600_000)
            else:
                metric, dimension = ledger.TRANSCODE_MS_BY_PRIORITY, str(rng.randrange(11))
                quantity = rng.randrange(1_000, 3_600_000)
            rows.append((event_id, key_id, None, metric, dimension, quantity, day, at,
                         f"bench:{event_id}:{metric}:{dimension}"))  # fmt: skip
            rollups[(day, metric, dimension)] += quantity
        yield rows


def seed(db: Database, key_id: str, count: int, now: int) -> None:
    rollups: Rollups = defaultdict(int)
    chunks = prefetched(events_for(key_id, count, now, random.Random(7), rollups))
    if db.is_sqlite:
        conn = sqlite3.connect(make_url(db.url).database or "", isolation_level=None)
        try:
            conn.execute("PRAGMA synchronous=OFF")
            for rows in chunks:
                conn.execute("BEGIN")
                conn.executemany(_insert_sql("usage_events", EVENT_COLUMNS), rows)
                conn.execute("COMMIT")
        finally:
            conn.close()
    else:
        with psycopg.connect(_conninfo(db.url), autocommit=True) as pg:
            for rows in chunks:
                with pg.transaction(), pg.cursor() as cur:
                    _copy(cur, "usage_events", EVENT_COLUMNS, rows)
            pg.execute("VACUUM ANALYZE")
    with db.write() as session:
        session.execute(insert(DailyRollup), [
            {"key_id": key_id, "day": date.fromisoformat(day), "metric": metric, "dimension": dimension, "quantity": q}
            for (day, metric, dimension), q in rollups.items()
        ])  # fmt: skip
        totals = {metric: sum(q for (_, m, _), q in rollups.items() if m == metric)
                  for metric in (ledger.STORED_OBJECTS, ledger.STORED_BYTES)}  # fmt: skip
        session.execute(update(KeyCounters).where(KeyCounters.key_id == key_id).values(
            stored_objects=totals[ledger.STORED_OBJECTS], stored_bytes=totals[ledger.STORED_BYTES]))  # fmt: skip
    with db.write() as session:  # what the key's usage of each new day does as it goes
        due = datetime.fromtimestamp(now / 1000, tz=UTC).date() - timedelta(days=months.GRACE_DAYS)
        months.seal(session.connection(), key_id, None, due)
    print(f"seeded {count:,} usage events over {HISTORY_DAYS} days ({len(rollups):,} rollup rows, "
          f"finished days sealed through {due})")  # fmt: skip


def measure(base: str, key: str, requests: int, warmup: int) -> dict[tuple[int, str], list[float]]:
    today = datetime.now(UTC).date()
    spans = {days: ((today - timedelta(days=days - 1)).isoformat(), today.isoformat()) for days in (365, 7)}
    results: dict[tuple[int, str], list[float]] = {(d, k): [] for d in spans for k in KINDS}
    with httpx.Client(base_url=base, headers={"x-api-key": key}, timeout=30) as client:
        for i in range(warmup + requests):
            for (days, kind), samples in results.items():
                start, end = spans[days]
                started = time.perf_counter()
                response = client.get(f"/usage/{kind}", params={"startDate": start, "endDate": end})
                elapsed = (time.perf_counter() - started) * 1000
                if response.status_code != 200 or len(response.json()) != days:
                    raise RuntimeError(
                        f"/usage/{kind} over {days} days: {response.status_code} {response.text[:200]}"
                    )
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
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=1000, help="measured requests per range and endpoint")
    parser.add_argument("--warmup", type=int, default=100)
    args = parser.parse_args()
    with bench_env(args.db) as env:
        squall_cli(env, "db", "upgrade")
        created = json.loads(squall_cli(env, "keys", "create", "--name", "bench", "--json"))
        db = wire(Database(env.database_url))
        seed(db, created["id"], args.events, int(time.time() * 1000))
        db.dispose()
        verdict = squall_cli(env, "usage", "verify").strip().splitlines()[0]
        print(f"squall usage verify: {verdict}")
        with squall_server(env) as base:
            results = measure(base, created["api_key"], args.requests, args.warmup)
    print(f"{'range':>8} {'endpoint':>12} {'p50 ms':>8} {'p99 ms':>8}")
    for (days, kind), samples in results.items():
        print(f"{days:>6} d {kind:>12} {percentile(samples, 50):8.2f} {percentile(samples, 99):8.2f}")
    p99 = {days: max(percentile(results[(days, kind)], 99) for kind in KINDS) for days in (365, 7)}
    print(
        f"RESULT usage_ranges p99_ms_365={p99[365]:.2f} p99_ms_7={p99[7]:.2f} ratio={p99[365] / p99[7]:.3f}"
    )
    return 0


if __name__ == "__main__":
    run_main(main)
