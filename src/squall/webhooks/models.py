from __future__ import annotations

from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from squall.db.base import Base


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # waiting for its next attempt (or being attempted, under a lease)
    DELIVERED = "delivered"
    FAILED = "failed"  # gave up
    GONE = "gone"  # the receiver answered 410


class WebhookDelivery(Base):
    """The outbox: one row per event to deliver, written in the same transaction as the state
    change it reports, so an event is neither lost nor sent for a change that rolled back.
    ``id`` is the Standard Webhooks ``webhook-id``: the same on every attempt.

    Events of one job go out in the order they happened: ``seq`` orders the rows, and a row is
    claimed only when no earlier row of its job (of its batch, for a batch's own event) is
    still pending. Job events carry their batch's id for that."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"))
    job_id: Mapped[str | None] = mapped_column(String(36))
    batch_id: Mapped[str | None] = mapped_column(String(36))
    event: Mapped[str] = mapped_column(String(32))
    url: Mapped[str] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(Text)  # the exact JSON body sent (and signed)
    seq: Mapped[int] = mapped_column(BigInteger)  # insertion order (outbox.enqueue)
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[int] = mapped_column(BigInteger)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[int | None] = mapped_column(BigInteger)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger)
    delivered_at: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (
        Index("ix_webhook_deliveries_job", "job_id"),
        # Only undelivered rows are in the due index, so it stays small.
        Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        # The claim's "is an earlier event of this job (batch) still pending?" is one probe of
        # these; they hold pending rows only. The plain one serves the next seq (max + 1).
        Index(
            "ix_webhook_deliveries_pending_job",
            "job_id",
            "seq",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        Index(
            "ix_webhook_deliveries_pending_batch",
            "batch_id",
            "seq",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        Index("ix_webhook_deliveries_seq", "seq"),
    )
