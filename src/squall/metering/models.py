from __future__ import annotations

from datetime import date

from sqlalchemy import BigInteger, Date, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from squall.db.base import Base, new_id


class UsageEvent(Base):
    """Append-only ledger. ``dedupe_key`` (e.g. ``<job>:jobs.completed``) makes a retried
    write a no-op, so nothing is counted twice."""

    __tablename__ = "usage_events"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"), index=True)
    job_id: Mapped[str | None] = mapped_column(String(36))
    metric: Mapped[str] = mapped_column(String(64))
    dimension: Mapped[str] = mapped_column(String(32), default="")
    quantity: Mapped[int] = mapped_column(BigInteger)
    day: Mapped[date] = mapped_column(Date)
    occurred_at: Mapped[int] = mapped_column(BigInteger)
    dedupe_key: Mapped[str] = mapped_column(String(128), unique=True)

    # A metric of one key between two instants: bytes uploaded in a billing period.
    __table_args__ = (Index("ix_usage_events_key_metric_time", "key_id", "metric", "occurred_at"),)


class KeyCounters(Base):
    """Per-key running totals, updated in the same transaction as the ledger. The quota
    check is one conditional UPDATE of this row."""

    __tablename__ = "key_counters"

    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"), primary_key=True)
    usage_count: Mapped[int] = mapped_column(BigInteger, default=0)
    used_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    reserved_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    storage_limit_bytes: Mapped[int | None] = mapped_column(BigInteger)
    jobs_pending: Mapped[int] = mapped_column(BigInteger, default=0)
    jobs_processing: Mapped[int] = mapped_column(BigInteger, default=0)
    jobs_completed: Mapped[int] = mapped_column(BigInteger, default=0)
    jobs_failed: Mapped[int] = mapped_column(BigInteger, default=0)
    # What is stored now (deletes lower it): the end of today in /usage/storage.
    stored_objects: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    stored_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # The fair queue's turn: keys whose last claim is oldest go first (``jobs/queue.py``).
    last_claimed_at: Mapped[int | None] = mapped_column(BigInteger)


class DailyRollup(Base):
    """Sum of ledger quantities per key, UTC day, metric and dimension."""

    __tablename__ = "daily_rollups"

    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    metric: Mapped[str] = mapped_column(String(64), primary_key=True)
    dimension: Mapped[str] = mapped_column(String(32), primary_key=True, default="")
    quantity: Mapped[int] = mapped_column(BigInteger, default=0)

    # A metric's days without the others' (the date-range endpoints read a few metrics of
    # many days); it holds every column those reads need, so they never touch the table.
    __table_args__ = (
        Index("ix_daily_rollups_key_metric_day", "key_id", "metric", "day", "dimension", "quantity"),
    )


class UsageMonth(Base):
    """Finished days of one Fastevo endpoint, as the JSON records it returns (newest first,
    comma-separated): the days from the month's first through ``through``. Finished days never
    change, so a long range is a few of these rows instead of thousands of rollup rows."""

    __tablename__ = "usage_months"

    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    through: Mapped[date] = mapped_column(Date)
    body: Mapped[str] = mapped_column(Text)
