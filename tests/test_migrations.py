"""The migrations build exactly the schema the models describe, on either engine."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from squall.audit.usage import verify
from squall.db import Database
from squall.db.migrate import upgrade
from squall.metering import ranges
from squall.metering.counters import get_counters
from squall.models import Base

# An expression index (priority DESC): Alembic cannot read one back to compare it.
NOT_COMPARABLE = {"ix_jobs_queue", "ix_jobs_key_queue"}


def _comparable(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    return not (type_ == "index" and name in NOT_COMPARABLE)


def test_migrated_schema_matches_the_models(shared_db: Database) -> None:
    with shared_db.read_engine.connect() as connection:
        opts = {"compare_type": True, "include_object": _comparable}
        differences = compare_metadata(MigrationContext.configure(connection, opts=opts), Base.metadata)
    assert differences == []


def test_outputs_stored_before_0004_enter_the_stored_object_books(tmp_path: Path) -> None:
    """An upgraded database agrees with itself: verify finds no drift, and /usage/storage
    counts the outputs that were stored before the metric existed."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0003")
    engine = create_engine(url)
    finished = 1_767_225_600_000  # 2026-01-01T00:00:00Z
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO api_keys (id, client_name, key_hash, key_prefix, key_type, created_at) "
                          "VALUES ('k1', 'Old', 'h', 'sk_', 'unlimited', 0)"))  # fmt: skip
        conn.execute(text("INSERT INTO key_counters (key_id, usage_count, used_bytes, reserved_bytes, jobs_pending, "
                          "jobs_processing, jobs_completed, jobs_failed) VALUES ('k1', 0, 0, 0, 0, 0, 0, 0)"))  # fmt: skip
        conn.execute(text(
            "INSERT INTO jobs (id, key_id, url, options, priority, status, step, attempt, max_attempts, run_after, "
            "reserved_bytes, created_at, finished_at, output_key, thumbnail_key, file_size) VALUES "
            "('j1', 'k1', 'http://x/v.mp4', '{}', 5, 'Completed', 'Finished', 1, 3, 0, 0, 0, :at, 'v.mp4', 'v.jpg', 1000)"
        ), {"at": finished})  # fmt: skip
    engine.dispose()
    upgrade(url)
    db = Database(url)
    try:
        with db.read() as session:
            counters = get_counters(session, "k1")
            assert (counters.stored_objects, counters.stored_bytes) == (2, 1000)
            (day,) = json.loads(ranges.read(session, "k1", "storage", date(2026, 1, 1), date(2026, 1, 1)))
            assert (day["numberOfObjects"], day["bytesStored"]) == (2, 1000)
            drift = [d for d in verify(session).drift if "stored" in d["what"] or "storage" in d["what"]]
            assert drift == []
    finally:
        db.dispose()
