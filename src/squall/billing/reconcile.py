"""``squall billing reconcile``: for each stripe key, what Stripe's meter holds for the
billing period against what the ledger says was uploaded in it. Reports only."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from dateutil.relativedelta import relativedelta
from sqlalchemy import func, select

from squall.billing.models import PENDING, MeterReport
from squall.billing.periods import iso, uploaded_between
from squall.billing.stripe_api import StripeApi, Subscription
from squall.db import Database
from squall.keys.models import ApiKey

MINUTE_MS = 60_000
STEP = {"day": "days", "week": "weeks", "month": "months", "year": "years"}


@dataclass
class KeyBalance:
    key_id: str
    client_name: str
    period_start: str
    period_end: str
    ledger_bytes: int
    stripe_bytes: int
    unsent_bytes: int  # still in the outbox: on its way, not drift

    @property
    def drift(self) -> int:
        return self.ledger_bytes - self.unsent_bytes - self.stripe_bytes


def period_bounds(subscription: Subscription, which: str) -> tuple[int, int]:
    """[start, end) in ms of the current or previous period, floored to the minute (Stripe
    aggregates meter events on minute boundaries)."""
    start, end = subscription.period_start, subscription.period_end
    if which == "previous":
        step = relativedelta(**{STEP.get(subscription.interval, "months"): subscription.interval_count})
        end = start
        start = int((_datetime(start) - step).timestamp() * 1000)
    return start - start % MINUTE_MS, end - end % MINUTE_MS


def reconcile(db: Database, api: StripeApi, which: str = "current") -> list[KeyBalance]:
    with db.read() as session:
        keys = session.execute(
            select(ApiKey.id, ApiKey.client_name, ApiKey.stripe_subscription_id).where(
                ApiKey.key_type == "stripe", ApiKey.revoked_at.is_(None)
            )
        ).all()
    balances = []
    for key_id, name, subscription_id in keys:
        subscription = api.subscription(subscription_id or "")
        start, end = period_bounds(subscription, which)
        with db.read() as session:
            ledger_bytes = uploaded_between(session, key_id, start, end)
            unsent = session.execute(
                select(func.coalesce(func.sum(MeterReport.value), 0)).where(
                    MeterReport.key_id == key_id,
                    MeterReport.status == PENDING,
                    MeterReport.occurred_at >= start,
                    MeterReport.occurred_at < end,
                )
            ).scalar_one()
        stripe_bytes = api.metered_total(subscription.customer_id, start // 1000, end // 1000)
        balances.append(
            KeyBalance(key_id, name, iso(start), iso(end), ledger_bytes, stripe_bytes, int(unsent))
        )
    return balances


def as_text(balances: list[KeyBalance]) -> str:
    lines = [
        f"{b.client_name} ({b.key_id}) {b.period_start} .. {b.period_end}: ledger {b.ledger_bytes} bytes, "
        f"Stripe {b.stripe_bytes}, still to send {b.unsent_bytes}: "
        + (
            "ok"
            if b.drift == 0
            else f"DRIFT {b.drift:+d} bytes (the ledger has more)"
            if b.drift > 0
            else f"DRIFT {b.drift:+d} bytes (Stripe has more)"
        )
        for b in balances
    ]
    return "\n".join(lines or ["no stripe keys"])


def as_json(balances: list[KeyBalance]) -> list[dict[str, Any]]:
    return [{**asdict(b), "drift": b.drift} for b in balances]


def _datetime(ms: int) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, tz=UTC)
