"""The webhook outbox: rows are written with the state change they report (by
``webhooks/subscribers.py``) and claimed by senders with a lease (``squall.queue``), like
jobs. ``attempts`` is the fencing token of a claim; a row whose lease ran out (its sender
died mid-attempt) is due again, so delivery is at least once, with a stable id.

Events of one job are delivered in the order they happened: a row is claimed only when no
earlier row (by ``seq``) of its job is still pending, that is waiting, in flight or backing
off; a batch's own event waits for every earlier event of its batch's jobs. Delivered,
failed (given up) and gone rows let the next one go. Different jobs stay parallel."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    bindparam,
    exists,
    func,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy.orm import Session

from squall.db.base import table_of
from squall.db.dbtime import due_at_once
from squall.keys.models import ApiKey
from squall.queue import LeasedQueue
from squall.webhooks.models import DeliveryStatus, WebhookDelivery

_TABLE = table_of(WebhookDelivery)
# A literal, not a bound parameter: the planner must see it to use the pending-only indexes.
_IS_PENDING: ColumnElement[str] = literal_column(f"'{DeliveryStatus.PENDING.value}'")
# The next seq in the INSERT itself (the plain seq index makes the max one probe). Concurrent
# transactions may draw the same number, but those write events of different jobs: a job's
# next event is written after its previous one committed, so it always sorts after it.
_INSERT = insert(_TABLE).values(
    seq=select(func.coalesce(func.max(_TABLE.c.seq), 0) + 1).scalar_subquery(),
    next_attempt_at=due_at_once(bindparam("host_now", type_=BigInteger)),  # senders claim on database time
)


def _none_pending_before(column: str) -> ColumnElement[bool]:
    """No earlier row with this row's ``column`` (job_id, batch_id) is still pending: one
    probe of the pending-only (column, seq) index per candidate."""
    earlier = _TABLE.alias("earlier")
    return ~exists().where(
        earlier.c[column] == _TABLE.c[column], earlier.c.status == _IS_PENDING, earlier.c.seq < _TABLE.c.seq
    )


# A job's event waits for its job's earlier events; a batch's own event (no job) for its batch's.
IN_ORDER = _none_pending_before("job_id") & (_TABLE.c.job_id.is_not(None) | _none_pending_before("batch_id"))
DELIVERIES = LeasedQueue.outbox(_TABLE, DeliveryStatus.PENDING, owner=True, ready=IN_ORDER)


@dataclass(frozen=True)
class ClaimedDelivery:
    id: str
    key_id: str
    url: str
    payload: str
    attempts: int  # including this one
    lease_expires_at: int
    job_id: str | None = None
    seq: int = 0


def enqueue(
    session: Session,
    *,
    key_id: str,
    url: str,
    payload: dict[str, Any],
    now: int,
    job_id: str | None = None,
    batch_id: str | None = None,
) -> str:
    delivery_id = f"msg_{uuid.uuid4().hex}"
    session.connection().execute(
        _INSERT,
        {
            "id": delivery_id,
            "key_id": key_id,
            "job_id": job_id,
            "batch_id": batch_id,
            "event": payload["type"],
            "url": url,
            "payload": json.dumps(payload, separators=(",", ":")),
            "status": DeliveryStatus.PENDING,
            "attempts": 0,
            "host_now": now,
            "created_at": now,
        },
    )
    return delivery_id


def claim(session: Session, *, owner: str, now: int, lease_ms: int, limit: int = 1) -> list[ClaimedDelivery]:
    """Up to ``limit`` due deliveries, oldest first, leased to ``owner``."""
    rows = DELIVERIES.claim(
        session, now=now, lease_ms=lease_ms, limit=limit, owner=owner,
        returning=(_TABLE.c.key_id, _TABLE.c.url, _TABLE.c.payload, _TABLE.c.job_id, _TABLE.c.seq),
    )  # fmt: skip
    expires = now + lease_ms
    return [
        ClaimedDelivery(row.id, row.key_id, row.url, row.payload, row.attempts, expires, row.job_id, row.seq)
        for row in rows
    ]


def signing_secrets(session: Session, key_id: str, *, now: int) -> list[str]:
    key = session.execute(
        select(
            ApiKey.webhook_secret, ApiKey.previous_webhook_secret, ApiKey.previous_webhook_secret_until
        ).where(ApiKey.id == key_id)
    ).one()
    found = [key.webhook_secret] if key.webhook_secret else []
    if key.previous_webhook_secret and (key.previous_webhook_secret_until or 0) > now:
        found.append(key.previous_webhook_secret)
    return found


def record(
    session: Session,
    claimed: ClaimedDelivery,
    *,
    status: str,
    now: int,
    status_code: int | None,
    error: str | None,
    retry_at: int | None = None,
) -> bool:
    """Store an attempt's outcome: ``status`` delivered/failed/gone, or pending with
    ``retry_at``. Fenced by the claim; False if another sender took the row over."""
    values: dict[str, Any] = {"status": status, "last_status_code": status_code, "last_error": error}
    if status == DeliveryStatus.DELIVERED:
        values["delivered_at"] = now
    if retry_at is not None:
        values["next_attempt_at"] = retry_at
    recorded = DELIVERIES.record(session, claimed.id, claimed.attempts, values)
    if recorded and retry_at is not None and claimed.job_id is not None:
        _hold_later_events(session, claimed, retry_at)
    return recorded


def _hold_later_events(session: Session, claimed: ClaimedDelivery, retry_at: int) -> None:
    """The job's later events cannot go before this one's retry: not due before it either, so
    claims do not walk past them while a receiver is down (the order itself is the claim's)."""
    c = _TABLE.c
    session.execute(
        update(_TABLE)
        .where(c.job_id == claimed.job_id, c.status == _IS_PENDING, c.seq > claimed.seq,
               c.next_attempt_at < retry_at)
        .values(next_attempt_at=retry_at)
    )  # fmt: skip


def latest_for_job(session: Session, job_id: str) -> WebhookDelivery | None:
    """The delivery of a job's final event (progress events aside)."""
    return session.execute(
        select(WebhookDelivery)
        .where(WebhookDelivery.job_id == job_id, WebhookDelivery.event != "job_progress")
        .order_by(WebhookDelivery.created_at.desc())
        .limit(1)
    ).scalar_one_or_none()


def delivery_view(delivery: WebhookDelivery | None) -> dict[str, Any] | None:
    if delivery is None:
        return None
    return {
        "webhook_id": delivery.id,
        "event": delivery.event,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "next_attempt_at": delivery.next_attempt_at if delivery.status == DeliveryStatus.PENDING else None,
        "delivered_at": delivery.delivered_at,
    }


def job_webhook_status(session: Session, job_id: str) -> dict[str, Any] | None:
    """What GET /jobs/{id} shows as ``webhook``: the delivery of the job's final event."""
    return delivery_view(latest_for_job(session, job_id))
