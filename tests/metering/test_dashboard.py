"""Dashboard numbers computed from rollups, with a controlled clock."""

from __future__ import annotations

from squall.audit.usage import verify
from squall.clock import DAY_MS, HOUR_MS
from squall.db import Database
from squall.jobs import queue
from squall.jobs import service as jobs
from squall.jobs.options import JobOptions
from squall.keys.service import authenticate
from squall.metering.service import average_processing_ms, daily_stats, dashboard_stats
from squall.pipeline.spec import PipelineResult
from tests.support.helpers import TEST_SECRET, KeyFactory

NOW = 1_800_000_000_000 + 30 * 60_000  # half past an hour


def run_job(db: Database, secret: str, *, started: int, took_ms: int, fail: bool = False) -> None:
    with db.read() as session:
        key = authenticate(session, secret, TEST_SECRET)
    assert key is not None
    with db.write() as session:
        jobs.create_job(
            session, key, JobOptions(url="http://e.com/a.mp4"), now=started, admission=jobs.Admission(0, 1)
        )
    with db.write() as session:
        claimed = queue.claim(session, worker_id="t", now=started, lease_ms=10**9)
    assert claimed is not None
    with db.write() as session:
        if fail:
            from squall.errors import JobFailure

            jobs.fail_job(session, claimed, JobFailure("no"), now=started + took_ms, retry_at=None)
        else:
            result = PipelineResult("k", 10, 20, 1.0, None, None, None)
            jobs.complete_job(session, claimed, result, now=started + took_ms)


def test_average_processing_time_covers_the_last_24_hours_by_the_hour(
    db: Database, make_key: KeyFactory
) -> None:
    secret, key_id = make_key()
    run_job(db, secret, started=NOW - 30 * HOUR_MS, took_ms=100_000)  # too old
    run_job(db, secret, started=NOW - 20 * HOUR_MS, took_ms=4_000)
    run_job(db, secret, started=NOW - 60_000, took_ms=2_000)
    run_job(db, secret, started=NOW - 10 * HOUR_MS, took_ms=9_000, fail=True)  # failures are not timed
    with db.read() as session:
        assert average_processing_ms(session, key_id, now=NOW) == 3_000
        assert average_processing_ms(session, key_id, now=NOW + 2 * DAY_MS) is None
        assert not verify(session).drift


def test_daily_series_and_stats_move_with_the_clock(db: Database, make_key: KeyFactory) -> None:
    secret, key_id = make_key()
    run_job(db, secret, started=NOW - 2 * DAY_MS, took_ms=1_000)
    run_job(db, secret, started=NOW - 60_000, took_ms=1_000)
    run_job(db, secret, started=NOW - 50_000, took_ms=1_000, fail=True)
    with db.read() as session:
        series = daily_stats(session, key_id, now=NOW)["daily_stats"]
        assert [(d["completed"], d["failed"]) for d in series] == [(0, 0)] * 4 + [(1, 0), (0, 0), (1, 1)]
        later = daily_stats(session, key_id, now=NOW + 6 * DAY_MS)["daily_stats"]
        assert [(d["completed"], d["failed"]) for d in later] == [(1, 1)] + [(0, 0)] * 6
        from squall.keys.service import AuthenticatedKey

        key = AuthenticatedKey(key_id, "client", "unlimited", None, None, None, None)
        stats = dashboard_stats(session, key, now=NOW)
        assert (stats["total_jobs"], stats["completed_jobs"], stats["failed_jobs"]) == (3, 2, 1)
        assert stats["today_throughput_bytes"] == 20  # only today's completion
        assert stats["avg_processing_time_seconds"] == 1.0
