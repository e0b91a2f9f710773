"""The monthly form of finished days (issue 17): every range answer equals the one read day by
day from the rollups (the code before it, kept in tests/support/ranges_reference.py), across
month and year boundaries and a leap day, with unsealed days and today read live; sealing
happens with a key's usage; ``squall usage verify`` catches a tampered row."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select, text, update
from sqlalchemy.orm import Session

from squall.audit.usage import verify
from squall.db import Database
from squall.db.base import new_id
from squall.metering import ledger, months, ranges
from squall.metering.models import DailyRollup, KeyCounters, UsageEvent, UsageMonth
from tests.support import ranges_reference as reference
from tests.support.helpers import KeyFactory

FIRST_DAY, LAST_DAY = date(2023, 12, 20), date(2025, 3, 20)  # a year boundary, a leap day
SEALED = date(2025, 3, 5)  # days after it stay live, as today does
RANGES = 24  # random ranges per run (bounded), each read by the three endpoints old and new
OLD: dict[str, Callable[[Session, str, date, date], list[dict[str, Any]]]] = {
    "network": reference.network,
    "storage": reference.storage,
    "transcoding": reference.transcoding,
}


def seed_rollups(db: Database, key_id: str, seed: int) -> None:
    """Sparse days of every metric the endpoints read, counters consistent with them, and
    oddities the encoding must keep: 0 ms of transcoding, a dimension the API does not show,
    objects deleted."""
    rng = random.Random(seed)
    rows: dict[tuple[date, str, str], int] = defaultdict(int)
    day = FIRST_DAY
    while day <= LAST_DAY:
        if rng.random() < 0.6:
            requests = rng.randrange(1, 50)
            rows[(day, ledger.DELIVERY_REQUESTS, "")] += requests
            rows[(day, ledger.DELIVERY_HITS, "")] += rng.randrange(0, requests + 1)
            rows[(day, ledger.DELIVERY_BYTES, "")] += rng.randrange(1, 1 << 34)
        if rng.random() < 0.4:
            rows[(day, ledger.STORED_OBJECTS, "")] += rng.choice((1, 2, 3, -1))
            rows[(day, ledger.STORED_BYTES, "")] += rng.randrange(-(1 << 20), 1 << 30)
        for _ in range(rng.randrange(0, 4)):
            quality = rng.choice([f"{q}p" for q in ledger.QUALITIES])
            rows[(day, ledger.TRANSCODE_MS_BY_QUALITY, quality)] += rng.randrange(0, 7_200_000)
            rows[(day, ledger.TRANSCODE_MS_BY_PRIORITY, str(rng.randrange(12)))] += rng.randrange(1, 99_999)
        if rng.random() < 0.05:
            rows[(day, ledger.TRANSCODE_MS_BY_QUALITY, "1080p")] += 0
            rows[(day, ledger.BYTES_DOWNLOADED, "")] += 1  # not an endpoint's metric
        day += timedelta(days=1)
    with db.write() as session:
        session.execute(insert(DailyRollup), [
            {"key_id": key_id, "day": d, "metric": m, "dimension": dim, "quantity": q}
            for (d, m, dim), q in rows.items()
        ])  # fmt: skip
        session.execute(insert(UsageEvent), [  # one ledger event per rollup row: verify is clean
            {"id": new_id(), "key_id": key_id, "metric": m, "dimension": dim, "quantity": q, "day": d,
             "occurred_at": _at(d), "dedupe_key": f"seed:{d}:{m}:{dim}"}
            for (d, m, dim), q in rows.items()
        ])  # fmt: skip
        totals = {m: sum(q for (_, metric, _), q in rows.items() if metric == m)
                  for m in (ledger.STORED_OBJECTS, ledger.STORED_BYTES)}  # fmt: skip
        session.execute(update(KeyCounters).where(KeyCounters.key_id == key_id).values(
            stored_objects=totals[ledger.STORED_OBJECTS], stored_bytes=totals[ledger.STORED_BYTES]))  # fmt: skip


def assert_same(session: Session, key_id: str, kind: str, first: date, last: date) -> None:
    new = ranges.read(session, key_id, kind, first, last)
    old = OLD[kind](session, key_id, first, last)
    assert json.loads(new) == old, (kind, first, last)
    assert new == json.dumps(old, separators=(",", ":")), (kind, first, last)  # to the byte


def boundary_ranges() -> list[tuple[date, date]]:
    return [
        (date(2023, 12, 31), date(2024, 1, 1)),  # a year boundary
        (date(2024, 2, 28), date(2024, 3, 1)),  # the leap day
        (date(2024, 2, 1), date(2024, 2, 29)),  # one whole month
        (date(2024, 3, 1), date(2025, 2, 28)),  # whole months only
        (date(2024, 3, 21), date(2025, 3, 20)),  # 365 days, partial months at both ends
        (date(2025, 3, 5), date(2025, 3, 6)),  # the last sealed day and the first live one
        (date(2025, 2, 20), date(2025, 4, 1)),  # into the days after the history
        (date(2023, 11, 1), date(2024, 1, 10)),  # from before the history
        (date(2024, 6, 14), date(2024, 6, 14)),  # one day
    ]


def random_ranges(rng: random.Random) -> list[tuple[date, date]]:
    out = []
    for _ in range(RANGES):
        first = FIRST_DAY - timedelta(days=20) + timedelta(days=rng.randrange(500))
        out.append((first, first + timedelta(days=rng.randrange(rng.choice((7, 40, 365))))))
    return out


def test_every_range_equals_the_day_by_day_answer(db: Database, make_key: KeyFactory) -> None:
    _, key_id = make_key("history")
    seed_rollups(db, key_id, seed=17)
    with db.write() as session:
        connection = session.connection()
        months.seal(connection, key_id, None, date(2024, 6, 14))  # two steps: the second
        months.seal(connection, key_id, date(2024, 6, 14), SEALED)  # prepends to June's row
    with db.read() as session:
        stored = session.execute(select(UsageMonth.kind, UsageMonth.month, UsageMonth.through)).all()
        assert len(stored) == 3 * 16  # Dec 2023 .. Mar 2025
        assert {through for _, month, through in stored if month == date(2025, 3, 1)} == {SEALED}
        report = verify(session)
        assert report.months_checked == 48 and not report.drift
        for first, last in boundary_ranges() + random_ranges(random.Random(17)):
            for kind in OLD:
                assert_same(session, key_id, kind, first, last)


def test_days_never_sealed_are_read_live(db: Database, make_key: KeyFactory) -> None:
    """No monthly rows at all (a key whose usage predates them and was never sealed): the
    same answers, every day from the rollups."""
    _, key_id = make_key("unsealed")
    seed_rollups(db, key_id, seed=3)
    with db.read() as session:
        for first, last in boundary_ranges():
            for kind in OLD:
                assert_same(session, key_id, kind, first, last)


def _at(day: date, hour: int = 12) -> int:
    return int(datetime(day.year, day.month, day.day, hour, tzinfo=UTC).timestamp() * 1000)


def _record(db: Database, key_id: str, day: date, n: int, *events: ledger.Usage) -> None:
    """Usage at noon of ``day``, with the counters of what is stored kept as the worker keeps them."""
    with db.write() as session:
        ledger.record(session, key_id=key_id, job_id=None, at_ms=_at(day), dedupe_prefix=f"t{day}{n}",
                      events=list(events) or [ledger.Usage(ledger.DELIVERY_REQUESTS, 1)])  # fmt: skip
        added = {e.metric: e.quantity for e in events}
        objects, stored = added.get(ledger.STORED_OBJECTS, 0), added.get(ledger.STORED_BYTES, 0)
        session.execute(update(KeyCounters).where(KeyCounters.key_id == key_id).values(
            stored_objects=KeyCounters.stored_objects + objects, stored_bytes=KeyCounters.stored_bytes + stored))  # fmt: skip


def _through(db: Database, key_id: str) -> dict[tuple[str, date], date]:
    with db.read() as session:
        rows = session.execute(select(UsageMonth.kind, UsageMonth.month, UsageMonth.through)
                               .where(UsageMonth.key_id == key_id)).all()  # fmt: skip
    return {(kind, month): through for kind, month, through in rows}


def test_usage_seals_finished_days_across_a_year_and_today_stays_live(
    db: Database, make_key: KeyFactory
) -> None:
    _, key_id = make_key("sealing")
    stored = ledger.Usage(ledger.STORED_OBJECTS, 1), ledger.Usage(ledger.STORED_BYTES, 1000)
    _record(db, key_id, date(2025, 12, 30), 1, *stored)  # seals up to 28 December
    assert set(_through(db, key_id).values()) == {date(2025, 12, 28)}
    _record(db, key_id, date(2026, 1, 2), 1)  # 31 December is finished: December is whole
    assert _through(db, key_id) == {
        (k, date(2025, 12, 1)): date(2025, 12, 31) for k in ("network", "storage", "transcoding")
    }
    _record(db, key_id, date(2026, 1, 3), 1, ledger.Usage(ledger.TRANSCODE_MS_BY_PRIORITY, 90_000, "4"))
    assert _through(db, key_id)[("transcoding", date(2026, 1, 1))] == date(2026, 1, 1)
    _record(db, key_id, date(2026, 1, 3), 2, ledger.Usage(ledger.DELIVERY_REQUESTS, 2))  # today: live
    with db.read() as session:
        assert not verify(session).drift
        for kind in OLD:
            assert_same(session, key_id, kind, date(2025, 12, 1), date(2026, 1, 3))
            assert_same(session, key_id, kind, date(2025, 1, 4), date(2026, 1, 3))
        (today, yesterday, *_) = json.loads(
            ranges.read(session, key_id, "network", date(2025, 12, 25), date(2026, 1, 3))
        )
        assert (today["requests"], yesterday["requests"]) == (2, 1)
        days = json.loads(ranges.read(session, key_id, "storage", date(2025, 12, 29), date(2026, 1, 3)))
        assert [d["numberOfObjects"] for d in days] == [1, 1, 1, 1, 1, 0]


def test_verify_catches_a_tampered_monthly_row(db: Database, make_key: KeyFactory) -> None:
    _, key_id = make_key("tampered")
    seed_rollups(db, key_id, seed=5)
    with db.write() as session:
        months.seal(session.connection(), key_id, None, SEALED)
    march = date(2024, 3, 1)
    with db.write() as session:
        body = session.execute(select(UsageMonth.body).where(UsageMonth.key_id == key_id,
            UsageMonth.kind == "network", UsageMonth.month == march)).scalar_one()  # fmt: skip
        records = json.loads(f"[{body}]")
        victim = next(r for r in records if r["collectionDate"].startswith("2024-03-07"))
        tampered = body.replace(json.dumps(victim, separators=(",", ":")),
                                json.dumps({**victim, "requests": victim["requests"] + 1}, separators=(",", ":")))  # fmt: skip
        assert tampered != body
        session.execute(update(UsageMonth).where(UsageMonth.key_id == key_id, UsageMonth.kind == "network",
                                                 UsageMonth.month == march).values(body=tampered))  # fmt: skip
        session.execute(
            text(
                "UPDATE usage_months SET through = '2024-05-02' WHERE kind = 'storage' AND month = '2024-04-01'"
            )
        )
    with db.read() as session:
        report = verify(session)
    assert [d["what"] for d in report.drift] == [
        "monthly network 2024-03 2024-03-07",
        "monthly storage 2024-04",
    ]
    first = report.drift[0]
    assert json.loads(first["stored"])["requests"] == victim["requests"] + 1
    assert json.loads(first["expected"]) == victim
    assert "monthly network 2024-03 2024-03-07: stored {" in report.as_text()


def test_usage_on_a_sealed_day_unseals_it(db: Database, make_key: KeyFactory) -> None:
    """A clock gone back two days or more: the day's month and the later ones are unsealed
    (then read from the rollups), and the earlier finished days sealed again."""
    _, key_id = make_key("clock")
    _record(db, key_id, date(2026, 5, 20), 1)
    assert _through(db, key_id)[("network", date(2026, 5, 1))] == date(2026, 5, 18)
    _record(db, key_id, date(2026, 4, 10), 1, ledger.Usage(ledger.DELIVERY_REQUESTS, 5))
    assert set(_through(db, key_id).values()) == {date(2026, 4, 8)}  # May's rows are gone
    with db.read() as session:
        assert not verify(session).drift
        for kind in OLD:
            assert_same(session, key_id, kind, date(2026, 3, 1), date(2026, 5, 31))
        (april_10,) = json.loads(
            ranges.read(session, key_id, "network", date(2026, 4, 10), date(2026, 4, 10))
        )
        assert april_10["requests"] == 5


def test_a_second_sealer_of_the_same_key_skips_instead_of_waiting(db: Database, make_key: KeyFactory) -> None:
    """PostgreSQL: two transactions of one key are the first of a new day at once. The second
    finds the key's seal lock taken and goes on without sealing (and without waiting: a lock
    wait would hit ``lock_timeout`` and fail the test); the first seals."""
    if db.is_sqlite:
        pytest.skip("SQLite runs one writer at a time: there is no second sealer to race")
    _, key_id = make_key("race")
    day = date(2026, 7, 3)
    with db.write() as first:
        ledger.record(first, key_id=key_id, job_id=None, at_ms=_at(day), dedupe_prefix="a",
                      events=[ledger.Usage(ledger.DELIVERY_REQUESTS, 1)])  # fmt: skip
        with db.write() as second:
            second.execute(text("SET LOCAL lock_timeout = '10s'"))
            ledger.record(second, key_id=key_id, job_id=None, at_ms=_at(day), dedupe_prefix="b",
                          events=[ledger.Usage(ledger.TRANSCODE_MS_BY_QUALITY, 60_000, "720p")])  # fmt: skip
    assert set(_through(db, key_id).values()) == {date(2026, 7, 1)}
    with db.read() as session:
        assert not verify(session).drift
        for kind in OLD:
            assert_same(session, key_id, kind, date(2026, 6, 1), day)
