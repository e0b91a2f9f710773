"""The outbox of meter events: written with the upload it reports, claimed with a lease by a
worker's reporter, marked sent once Stripe has it. A report whose claim ran out (the worker
died mid-send) is sent again with the same identifier, which Stripe does not count twice."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from squall.billing.models import PENDING, SENT, MeterReport
from squall.db.base import table_of
from squall.keys.models import ApiKey
from squall.metering import ledger
from squall.metering.models import UsageEvent

FAILED = "failed"


@dataclass(frozen=True)
class ClaimedReport:
    id: str
    key_id: str
    value: int
    occurred_at: int
    attempts: int
    first_attempt_at: int


def enqueue_upload(session: Session, key_id: str, job_id: str, *, now: int) -> bool:
    """Queue the job's upload for Stripe when its key is a stripe key; True if queued."""
    subscription = session.execute(
        select(ApiKey.stripe_subscription_id).where(ApiKey.id == key_id, ApiKey.key_type == "stripe")
    ).scalar_one_or_none()
    if not subscription:
        return False
    event = session.execute(
        select(UsageEvent.id, UsageEvent.quantity, UsageEvent.occurred_at).where(
            UsageEvent.dedupe_key == f"{job_id}:{ledger.BYTES_UPLOADED}:"
        )
    ).one_or_none()
    if event is None or event.quantity <= 0:
        return False
    session.execute(
        insert(table_of(MeterReport)).values(
            id=event.id, key_id=key_id, value=event.quantity, occurred_at=event.occurred_at,
            status=PENDING, attempts=0, next_attempt_at=now,
        )
    )  # fmt: skip
    return True


def claim(session: Session, *, now: int, lease_ms: int, limit: int) -> list[ClaimedReport]:
    due = (
        select(MeterReport.id)
        .where(
            MeterReport.status == PENDING,
            MeterReport.next_attempt_at <= now,
            MeterReport.lease_expires_at.is_(None) | (MeterReport.lease_expires_at < now),
        )
        .order_by(MeterReport.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = session.execute(
        update(MeterReport)
        .where(MeterReport.id.in_(due), MeterReport.status == PENDING)
        .values(
            attempts=MeterReport.attempts + 1,
            lease_expires_at=now + lease_ms,
            first_attempt_at=func.coalesce(MeterReport.first_attempt_at, now),
        )
        .returning(
            MeterReport.id,
            MeterReport.key_id,
            MeterReport.value,
            MeterReport.occurred_at,
            MeterReport.attempts,
            MeterReport.first_attempt_at,
        )
    ).all()
    return [
        ClaimedReport(r.id, r.key_id, r.value, r.occurred_at, r.attempts, r.first_attempt_at or now)
        for r in rows
    ]


def record(
    session: Session,
    report: ClaimedReport,
    *,
    now: int,
    sent: bool,
    error: str | None = None,
    retry_at: int | None = None,
) -> None:
    """Fenced by the claim's attempt: a report another reporter took over is left alone."""
    values: dict[str, object] = {"lease_expires_at": None, "last_error": error}
    if sent:
        values.update(status=SENT, sent_at=now)
    elif retry_at is None:
        values.update(status=FAILED)
    else:
        values.update(next_attempt_at=retry_at)
    session.execute(
        update(MeterReport)
        .where(
            MeterReport.id == report.id,
            MeterReport.attempts == report.attempts,
            MeterReport.status == PENDING,
        )
        .values(values)
    )
