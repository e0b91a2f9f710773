"""The outbox of meter events: written with the upload it reports (a subscriber of
``ObjectsStored``), claimed with a lease (``squall.queue``) by a worker's reporter, marked
sent once Stripe has it. A report whose claim ran out (the worker died mid-send) is sent
again with the same identifier, which Stripe does not count twice."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import BigInteger, func, insert, literal, select
from sqlalchemy.orm import Session

from squall.billing.models import MeterReport, ReportStatus
from squall.db.base import table_of
from squall.db.dbtime import due_at_once
from squall.jobs.events import ObjectsStored
from squall.keys.models import ApiKey
from squall.queue import LeasedQueue

_TABLE = table_of(MeterReport)
REPORTS = LeasedQueue.outbox(_TABLE, ReportStatus.PENDING)


@dataclass(frozen=True)
class ClaimedReport:
    id: str
    key_id: str
    value: int
    occurred_at: int
    attempts: int
    first_attempt_at: int


def on_objects_stored(session: Session, stored: ObjectsStored) -> None:
    """Queue a stripe key's upload for Stripe's meter; the ledger row's id is the report's."""
    if stored.uploaded_event_id is None or stored.stored_bytes <= 0:
        return  # a retried completion (already reported), or nothing uploaded
    subscription = session.execute(
        select(ApiKey.stripe_subscription_id).where(ApiKey.id == stored.key_id, ApiKey.key_type == "stripe")
    ).scalar_one_or_none()
    if not subscription:
        return
    session.execute(
        insert(_TABLE).values(
            id=stored.uploaded_event_id, key_id=stored.key_id, value=stored.stored_bytes,
            occurred_at=stored.at, status=ReportStatus.PENDING, attempts=0,
            next_attempt_at=due_at_once(literal(stored.at, BigInteger)),
        )
    )  # fmt: skip


def claim(session: Session, *, now: int, lease_ms: int, limit: int) -> list[ClaimedReport]:
    rows = REPORTS.claim(
        session, now=now, lease_ms=lease_ms, limit=limit,
        values={"first_attempt_at": func.coalesce(_TABLE.c.first_attempt_at, now)},
        returning=(_TABLE.c.key_id, _TABLE.c.value, _TABLE.c.occurred_at, _TABLE.c.first_attempt_at),
    )  # fmt: skip
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
    values: dict[str, object] = {"last_error": error}
    if sent:
        values.update(status=ReportStatus.SENT, sent_at=now)
    elif retry_at is None:
        values.update(status=ReportStatus.FAILED)
    else:
        values.update(next_attempt_at=retry_at)
    REPORTS.record(session, report.id, report.attempts, values)
