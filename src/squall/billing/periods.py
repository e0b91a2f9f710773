"""Billing periods for /usage: the key's Stripe subscription period, cached in the database,
refreshed when it has ended or when Stripe announces a change, and the bytes uploaded inside
it, summed from the ledger (exact, whatever Stripe has received so far). When Stripe cannot
be reached, /usage still answers at once with the last known period and ``billing_error``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy import update as sa_update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from squall.billing.models import BillingPeriod
from squall.billing.stripe_api import BillingUnavailable, StripeApi, Subscription
from squall.clock import now_ms
from squall.db import Database
from squall.db.base import table_of
from squall.keys.service import AuthenticatedKey
from squall.logging import get_logger
from squall.metering import ledger
from squall.metering.models import UsageEvent
from squall.settings import Settings
from squall.units import GB

log = get_logger("squall.billing")
NOT_CONFIGURED = "Stripe billing is not configured on this server"
RETRY_AFTER_ERROR_MS = 30_000  # while Stripe is down, ask it again at most this often
REFETCH_MIN_MS = 60_000  # and never more often than this for one key


class Periods:
    def __init__(self, db: Database, settings: Settings, api: StripeApi | None = None) -> None:
        self.db = db
        self.settings = settings
        self.api = api or (StripeApi(settings) if settings.stripe_api_key else None)

    def usage_fields(self, key: AuthenticatedKey) -> dict[str, Any]:
        """The stripe-only fields of GET /usage for ``key``; never raises (/usage must answer)."""
        if self.api is None:
            return {"billing_error": NOT_CONFIGURED}
        try:
            return self._usage_fields(key)
        except Exception:
            log.exception("billing fields failed", key_id=key.id)
            return {"billing_period_start": None, "billing_period_end": None, "current_period_usage_gb": None,
                    "billing_error": "Billing figures are unavailable right now"}  # fmt: skip

    def _usage_fields(self, key: AuthenticatedKey) -> dict[str, Any]:
        subscription_id = key.stripe_subscription_id or ""
        now = now_ms()
        with self.db.read() as session:
            row = session.get(BillingPeriod, key.id)
        error = None
        if _stale(row, subscription_id, now):
            error = self.refresh(key.id, subscription_id)
        elif row is not None and row.error and (row.error_at or 0) > (row.fetched_at or 0):
            error = row.error
        body: dict[str, Any] = {
            "billing_period_start": None,
            "billing_period_end": None,
            "current_period_usage_gb": None,
        }
        with self.db.read() as session:
            row = session.get(BillingPeriod, key.id)  # as the refresh (if any) left it
            known = row is not None and row.subscription_id == subscription_id
            start, end = (row.period_start, row.period_end) if row is not None else (None, None)
            used = uploaded_between(session, key.id, start, end) if known and start and end else 0
        if known and start is not None and end is not None:
            body = {
                "billing_period_start": iso(start),
                "billing_period_end": iso(end),
                "current_period_usage_gb": used / GB,
                "current_period_usage_bytes": used,
            }
        if error:
            body["billing_error"] = error
        return body

    def refresh(self, key_id: str, subscription_id: str) -> str | None:
        """Ask Stripe for the subscription's period and store it; returns the error, if any."""
        assert self.api is not None
        try:
            subscription = self.api.subscription(subscription_id)
        except BillingUnavailable as exc:
            with self.db.write() as session:
                _upsert(session, {"key_id": key_id, "subscription_id": subscription_id, "error": exc.message,
                                  "error_at": now_ms()}, update=("error", "error_at"))  # fmt: skip
            return exc.message
        with self.db.write() as session:
            store(session, key_id, subscription, now=now_ms())
        return None


def _stale(row: BillingPeriod | None, subscription_id: str, now: int) -> bool:
    if row is None or row.subscription_id != subscription_id or row.period_end is None or row.fetched_at == 0:
        return True  # never fetched, another subscription, or Stripe announced a change
    if row.error_at and row.error_at > (row.fetched_at or 0) and now - row.error_at < RETRY_AFTER_ERROR_MS:
        return False  # Stripe failed moments ago: answer with what is known
    if row.fetched_at and now - row.fetched_at < REFETCH_MIN_MS:
        return False  # just fetched (an ended period Stripe has not renewed yet stays as it is)
    return now >= row.period_end


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


def _upsert(session: Session, values: dict[str, Any], *, update: tuple[str, ...]) -> None:
    """One statement, so two requests filling the same key's row at once cannot collide."""
    module: Any = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = module.insert(table_of(BillingPeriod)).values(values)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["key_id"], set_={name: statement.excluded[name] for name in update}
        )
    )


def mark_changed(session: Session, subscription_id: str) -> int:
    """Stripe says the subscription changed: the keys on it fetch their period again on the
    next /usage (the event's own copy may be older than one already stored). Returns how many."""
    result = session.execute(
        sa_update(BillingPeriod).where(BillingPeriod.subscription_id == subscription_id).values(fetched_at=0)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


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
