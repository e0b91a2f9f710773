"""stored objects and bytes (per job and per key), retention per key

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

jobs = sa.table(
    "jobs",
    *(sa.column(name) for name in ("id", "key_id", "status", "finished_at", "file_size")),
    *(sa.column(name) for name in ("output_key", "subtitle_key", "thumbnail_key")),
)
events = sa.table(
    "usage_events",
    *(sa.column(name) for name in ("id", "key_id", "job_id", "metric", "dimension", "quantity")),
    *(sa.column(name) for name in ("day", "occurred_at", "dedupe_key")),
)
rollups = sa.table(
    "daily_rollups", *(sa.column(n) for n in ("key_id", "day", "metric", "dimension", "quantity"))
)
counters = sa.table(
    "key_counters", sa.column("key_id"), sa.column("stored_objects"), sa.column("stored_bytes")
)


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stored_bytes", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("retention_days", sa.Integer(), nullable=True))
    with op.batch_alter_table("key_counters", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stored_objects", sa.BigInteger(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("stored_bytes", sa.BigInteger(), server_default="0", nullable=False))
    op.create_index(
        "ix_daily_rollups_key_metric_day",
        "daily_rollups",
        ["key_id", "metric", "day", "dimension", "quantity"],
    )
    _backfill_stored_objects()


def _backfill_stored_objects() -> None:
    """Outputs stored before this version enter the new stored-object metrics on the day they
    were stored, so the books and a listing of the storage agree from the start. Their
    subtitle and thumbnail bytes were not recorded: only the media's size is known."""
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(jobs.c.id, jobs.c.key_id, jobs.c.finished_at, jobs.c.file_size,
                  jobs.c.output_key, jobs.c.subtitle_key, jobs.c.thumbnail_key)
        .where(jobs.c.status == "Completed", jobs.c.output_key.is_not(None))
    ).all()  # fmt: skip
    per_day: dict[tuple[str, date, str], int] = defaultdict(int)
    per_key: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for job_id, key_id, finished_at, size, *keys in rows:
        day = datetime.fromtimestamp((finished_at or 0) / 1000, tz=UTC).date()
        objects, stored = sum(1 for k in keys if k), size or 0
        for metric, quantity in (("storage.objects", objects), ("storage.stored_bytes", stored)):
            connection.execute(events.insert().values(
                id=str(uuid.uuid4()), key_id=key_id, job_id=job_id, metric=metric, dimension="",
                quantity=quantity, day=day, occurred_at=finished_at or 0,
                dedupe_key=f"{job_id}:backfill:{metric}:",
            ))  # fmt: skip
            per_day[(key_id, day, metric)] += quantity
        per_key[key_id][0] += objects
        per_key[key_id][1] += stored
    for (key_id, day, metric), quantity in per_day.items():
        connection.execute(
            rollups.insert().values(key_id=key_id, day=day, metric=metric, dimension="", quantity=quantity)
        )
    for key_id, (objects, stored) in per_key.items():
        connection.execute(
            counters.update()
            .where(counters.c.key_id == key_id)
            .values(stored_objects=objects, stored_bytes=stored)
        )


def downgrade() -> None:
    op.drop_index("ix_daily_rollups_key_metric_day", table_name="daily_rollups")
    connection = op.get_bind()
    for table in (events, rollups):
        connection.execute(
            table.delete().where(table.c.metric.in_(["storage.objects", "storage.stored_bytes"]))
        )
    with op.batch_alter_table("key_counters", schema=None) as batch_op:
        batch_op.drop_column("stored_bytes")
        batch_op.drop_column("stored_objects")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("retention_days")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("stored_bytes")
