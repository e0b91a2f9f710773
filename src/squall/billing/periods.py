"""Billing periods for /usage: the key's Stripe subscription period, kept in the database and
refreshed by the worker (``PeriodRefresher``) when it has ended or when Stripe announces a
change, and the bytes uploaded inside it, summed from the ledger (exact, whatever Stripe has
received so far). /usage only reads: it answers at once, with the last known period and
``billing_error`` when the last refresh failed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy import update as sa_update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from squall.billing.models import BillingPeriod
from squall.billing.stripe_api import Subscription
from squall.db.base import table_of
from squall.keys.models import ApiKey
from squall.keys.service import AuthenticatedKey
from squall.logging import get_logger
from squall.metering import ledger
from squall.metering.models import UsageEvent
from squall.units import GB

log = get_logger("squall.billing")
NOT_CONFIGURED = "Stripe billing is not configured on this server"
NOT_FETCHED = "The billing period has not been fetched from Stripe yet"
RETRY_AFTER_ERROR_MS = 30_000  # while Stripe is down, ask it again at most this often
REFETCH_MIN_MS = 60_000  # and never more often than this for one key


class BillingFields:
    """The stripe-only fields of GET /usage (``app.state.billing``), read from what is stored."""

    def __init__(self, configured: bool) -> None:
        self.configured = configured

    def usage_fields(self, session: Session, key: AuthenticatedKey, *, now: int) -> dict[str, Any]:
        """Never raises: /usage must answer."""
        if not self.configured:
            return {"billing_error": NOT_CONFIGURED}
        try:
            with session.begin_nested():  # on PostgreSQL a failed query would end the transaction
                return self._fields(session, key)
        except Exception:
            log.exception("billing fields failed", key_id=key.id)
            return {"billing_period_start": None, "billing_period_end": None, "current_period_usage_gb": None,
                    "billing_error": "Billing figures are unavailable right now"}  # fmt: skip

    def _fields(self, session: Session, key: AuthenticatedKey) -> dict[str, Any]:
        subscription_id = key.stripe_subscription_id or ""
        row = session.get(BillingPeriod, key.id)
        body: dict[str, Any] = {"billing_period_start": None, "billing_period_end": None,
                                "current_period_usage_gb": None}  # fmt: skip
        known = row is not None and row.subscription_id == subscription_id
        if known and row is not None and row.period_start is not None and row.period_end is not None:
            used = uploaded_between(session, key.id, row.period_start, row.period_end)
            body = {
                "billing_period_start": iso(row.period_start),
                "billing_period_end": iso(row.period_end),
                "current_period_usage_gb": used / GB,
                "current_period_usage_bytes": used,
            }
        if row is not None and row.error and (row.error_at or 0) > (row.fetched_at or 0):
            body["billing_error"] = row.error
        elif body["billing_period_start"] is None:
            body["billing_error"] = NOT_FETCHED
        return body


def stale(row: BillingPeriod | None, subscription_id: str, now: int) -> bool:
    """Whether the stored period should be fetched from Stripe again now."""
    if row is None or row.subscription_id != subscription_id or row.period_end is None or row.fetched_at == 0:
        # Never fetched, another subscription, or Stripe announced a change: fetch it, unless
        # Stripe failed moments ago.
        return row is None or not row.error_at or now - row.error_at >= RETRY_AFTER_ERROR_MS
    if row.error_at and row.error_at > (row.fetched_at or 0) and now - row.error_at < RETRY_AFTER_ERROR_MS:
        return False  # Stripe failed moments ago: keep what is known
    if row.fetched_at and now - row.fetched_at < REFETCH_MIN_MS:
        return False  # just fetched (an ended period Stripe has not renewed yet stays as it is)
    return now >= row.period_end


def due_for_refresh(session: Session, *, now: int) -> list[tuple[str, str]]:
    """(key id, subscription id) of the active stripe keys whose period should be fetched."""
    rows = session.execute(
        select(ApiKey.id, ApiKey.stripe_subscription_id, BillingPeriod)
        .outerjoin(BillingPeriod, BillingPeriod.key_id == ApiKey.id)
        .where(ApiKey.key_type == "stripe", ApiKey.revoked_at.is_(None))
    ).all()
    return [(key_id, sub or "") for key_id, sub, row in rows if stale(row, sub or "", now)]


def store(session: Session, key_id: str, subscription: Subscription, *, now: int) -> None:
    values = {
        "key_id": key_id,
        "subscription_id": subscription.id,
        "customer_id": subscription.customer_id,
        "period_start": subscription.period_start,
        "period_end": subscription.period_end,
        "interval": subscription.interval,
        "interval_count": subscription.interval_count,
        "fetched_at": now,
        "error": None,
        "error_at": None,
    }
    _upsert(session, values, update=tuple(k for k in values if k != "key_id"))


def store_error(session: Session, key_id: str, subscription_id: str, error: str, *, now: int) -> None:
    _upsert(session, {"key_id": key_id, "subscription_id": subscription_id, "error": error, "error_at": now},
            update=("error", "error_at"))  # fmt: skip


def _upsert(session: Session, values: dict[str, Any], *, update: tuple[str, ...]) -> None:
    """One statement, so two refreshers filling the same key's row at once cannot collide."""
    module: Any = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = module.insert(table_of(BillingPeriod)).values(values)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["key_id"], set_={name: statement.excluded[name] for name in update}
        )
    )


def mark_changed(session: Session, subscription_id: str) -> int:
    """Stripe says the subscription changed: the keys on it fetch their period again at the
    next refresh (the event's own copy may be older than one already stored). Returns how many."""
    result = session.execute(
        sa_update(BillingPeriod).where(BillingPeriod.subscription_id == subscription_id).values(fetched_at=0)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def forget(session: Session, key_id: str) -> None:
    """The key's subscription changed (``squall keys update``): fetch its period anew."""
    session.execute(delete(BillingPeriod).where(BillingPeriod.key_id == key_id))


def customer_of(session: Session, key_id: str) -> str | None:
    return session.execute(
        select(BillingPeriod.customer_id).where(BillingPeriod.key_id == key_id)
    ).scalar_one_or_none()


def uploaded_between(session: Session, key_id: str, start_ms: int, end_ms: int) -> int:
    """Bytes uploaded by the key in [start, end), from the ledger."""
    total = session.execute(
        select(func.coalesce(func.sum(UsageEvent.quantity), 0)).where(
            UsageEvent.key_id == key_id,
            UsageEvent.metric == ledger.BYTES_UPLOADED,
            UsageEvent.occurred_at >= start_ms,
            UsageEvent.occurred_at < end_ms,
        )
    ).scalar_one()
    return int(total)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")
