from __future__ import annotations

from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from squall.db.base import Base


class ReportStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # given up (too old, or not resent after 23 h): reconciliation decides


class BillingPeriod(Base):
    """The last known current period of a key's Stripe subscription (refreshed when it has
    ended, or when Stripe says the subscription changed), and the last error reaching it."""

    __tablename__ = "billing_periods"

    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"), primary_key=True)
    subscription_id: Mapped[str] = mapped_column(String(255))
    customer_id: Mapped[str | None] = mapped_column(String(255))
    period_start: Mapped[int | None] = mapped_column(BigInteger)  # ms
    period_end: Mapped[int | None] = mapped_column(BigInteger)
    interval: Mapped[str | None] = mapped_column(String(16))  # month, year, week, day
    interval_count: Mapped[int | None] = mapped_column(Integer)
    fetched_at: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)
    error_at: Mapped[int | None] = mapped_column(BigInteger)


class MeterReport(Base):
    """The outbox of usage for Stripe: one row per committed upload of a stripe key, written
    in the job's completing transaction. ``id`` is the ledger event's id and goes to Stripe as
    the meter event's ``identifier``, so a resend after a crash is not counted twice."""

    __tablename__ = "meter_reports"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"))
    value: Mapped[int] = mapped_column(BigInteger)  # bytes uploaded
    occurred_at: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default=ReportStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    first_attempt_at: Mapped[int | None] = mapped_column(BigInteger)
    next_attempt_at: Mapped[int] = mapped_column(BigInteger)
    lease_expires_at: Mapped[int | None] = mapped_column(BigInteger)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (
        Index(
            "ix_meter_reports_due",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
    )
