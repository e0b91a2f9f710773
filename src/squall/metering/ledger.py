"""The append-only usage ledger and the daily rollups it feeds, written together."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

from sqlalchemy import Insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from squall.clock import utc_day
from squall.db.base import new_id, table_of
from squall.metering.models import DailyRollup, UsageEvent

# Metric names. Dimensions: quality buckets or priorities where a metric is split.
JOBS_CREATED = "jobs.created"
JOBS_COMPLETED = "jobs.completed"
JOBS_FAILED = "jobs.failed"
BYTES_UPLOADED = "storage.uploaded_bytes"
BYTES_DOWNLOADED = "source.downloaded_bytes"
# Per UTC hour (dimension "00".."23"), so "the last 24 hours" is read from at most 25 rollup
# rows however many jobs ran: processing time of completed jobs, and how many there were.
PROCESSING_MS = "jobs.processing_ms"
TIMED_JOBS = "jobs.timed"
# What is stored now, as deltas: + on upload, - on delete (media, subtitles, thumbnails).
STORED_OBJECTS = "storage.objects"
STORED_BYTES = "storage.stored_bytes"
# Output media duration of completed jobs, split by output quality and by job priority.
TRANSCODE_MS_BY_QUALITY = "transcoding.ms_by_quality"
TRANSCODE_MS_BY_PRIORITY = "transcoding.ms_by_priority"
# Squall's own delivery endpoint (/files/...): requests, bytes sent, requests answered
# without reading the storage backend.
DELIVERY_REQUESTS = "delivery.requests"
DELIVERY_BYTES = "delivery.bytes_sent"
DELIVERY_HITS = "delivery.cache_hits"

QUALITIES = (144, 240, 360, 480, 720, 1080, 1440, 2160)


def quality_bucket(width: int | None, height: int | None) -> str | None:
    """The nearest standard quality to the output's shorter side ("720p"); None for audio."""
    if not width or not height:
        return None
    short = min(width, height)
    return f"{min(QUALITIES, key=lambda q: (abs(q - short), -q))}p"


@dataclass(frozen=True)
class Usage:
    metric: str
    quantity: int
    dimension: str = ""


def dedupe_key(prefix: str, metric: str, dimension: str) -> str:
    """What makes an event the same event twice (a retried write appends nothing)."""
    return f"{prefix}:{metric}:{dimension}"


@lru_cache
def _statements(dialect: str) -> tuple[Insert, Insert, Insert]:
    """For a dialect, built once (hot path): the ledger insert, returning a new row's id; the
    same without RETURNING, for one multi-row insert of events that cannot be there yet (the
    conflict clause stays, so a mistake skips a row rather than failing); the rollup upsert."""
    module: Any = postgresql if dialect == "postgresql" else sqlite
    events = table_of(UsageEvent)
    append_new = module.insert(events).on_conflict_do_nothing(index_elements=["dedupe_key"])
    append = append_new.returning(events.c.id)
    rollups = table_of(DailyRollup)
    upsert = module.insert(rollups)
    upsert = upsert.on_conflict_do_update(
        index_elements=["key_id", "day", "metric", "dimension"],
        set_={"quantity": rollups.c.quantity + upsert.excluded.quantity},
    )
    return append, append_new, upsert


def record(
    session: Session,
    *,
    key_id: str,
    job_id: str | None,
    at_ms: int,
    events: list[Usage],
    dedupe_prefix: str,
) -> dict[tuple[str, str], str]:
    """Append events and add them to today's rollups. An event whose dedupe key is already in
    the ledger is skipped (and not rolled up again). Returns the ids of the new ones by
    (metric, dimension)."""
    day = utc_day(at_ms)
    connection = session.connection()
    append, _, upsert = _statements(connection.dialect.name)
    written: dict[tuple[str, str], str] = {}
    for event in events:
        row = {
            "key_id": key_id,
            "day": day,
            "metric": event.metric,
            "dimension": event.dimension,
            "quantity": event.quantity,
        }
        event_id = new_id()
        appended = connection.execute(
            append,
            {**row, "id": event_id, "job_id": job_id, "occurred_at": at_ms,
             "dedupe_key": dedupe_key(dedupe_prefix, event.metric, event.dimension)},
        ).first()  # fmt: skip
        if appended is None:
            continue
        written[(event.metric, event.dimension)] = event_id
        connection.execute(upsert, row)
    if written:  # the key's first usage of a day seals the days that can no longer change
        from squall.metering import months  # here: months reads the metric names above

        months.seal_due(session, key_id, day)
    return written


def record_jobs_created(session: Session, jobs: list[tuple[str, str]], *, at_ms: int) -> None:
    """``jobs.created`` for (key id, job id) pairs of jobs inserted in this transaction, as
    ``record`` would write them one by one: one insert for the ledger, one rollup row per key."""
    append_jobs_created(session, jobs, at_ms=at_ms)
    per_key: dict[str, int] = {}
    for key_id, _ in jobs:
        per_key[key_id] = per_key.get(key_id, 0) + 1
    roll_up_jobs_created(session, per_key, at_ms=at_ms)


def append_jobs_created(session: Session, jobs: list[tuple[str, str]], *, at_ms: int) -> None:
    """The ledger half of ``record_jobs_created``. Only for new jobs: their events' dedupe keys
    cannot be in the ledger yet."""
    if not jobs:
        return
    day = utc_day(at_ms)
    connection = session.connection()
    events = [
        {"id": new_id(), "key_id": key_id, "job_id": job_id, "metric": JOBS_CREATED, "dimension": "",
         "quantity": 1, "day": day, "occurred_at": at_ms, "dedupe_key": dedupe_key(job_id, JOBS_CREATED, "")}
        for key_id, job_id in jobs
    ]  # fmt: skip
    connection.execute(_statements(connection.dialect.name)[1], events)


def roll_up_jobs_created(session: Session, per_key: dict[str, int], *, at_ms: int) -> None:
    """The rollup half of ``record_jobs_created``: jobs created per key id, added to today's rows."""
    if not per_key:
        return
    day = utc_day(at_ms)
    connection = session.connection()
    *_, upsert = _statements(connection.dialect.name)
    connection.execute(upsert, [
        {"key_id": key_id, "day": day, "metric": JOBS_CREATED, "dimension": "", "quantity": count}
        for key_id, count in sorted(per_key.items())
    ])  # fmt: skip
    from squall.metering import months  # here: months reads the metric names above

    for key_id in sorted(per_key):
        months.seal_due(session, key_id, day)


def rollup_totals(
    session: Session, key_id: str, metrics: list[str], first_day: date, last_day: date
) -> dict[tuple[date, str, str], int]:
    """(day, metric, dimension) -> quantity for one key over an inclusive day range."""
    rows = session.execute(
        select(DailyRollup.day, DailyRollup.metric, DailyRollup.dimension, DailyRollup.quantity)
        .where(DailyRollup.key_id == key_id)
        .where(DailyRollup.metric.in_(metrics))
        .where(DailyRollup.day >= first_day, DailyRollup.day <= last_day)
    )
    return {(r.day, r.metric, r.dimension): r.quantity for r in rows}
