"""``squall billing reconcile``: for each Stripe customer (all the stripe keys billed to it),
what Stripe's meter holds for the billing period against what the ledger says was uploaded
in it, less what is still on its way. Reports only. Stripe's summaries can lag the events
sent in the last minutes; run it once a period has settled for a verdict that counts."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from dateutil.relativedelta import relativedelta
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from squall.billing.models import MeterReport, ReportStatus
from squall.billing.periods import iso, uploaded_between
from squall.billing.stripe_api import StripeApi, Subscription
from squall.clock import MINUTE_MS
from squall.errors import BillingUnavailable
from squall.keys.models import ApiKey

STEP = {"day": "days", "week": "weeks", "month": "months", "year": "years"}


@dataclass
class Balance:
    """One Stripe customer (its meter total covers every key billed to it)."""

    customer_id: str
    keys: list[str]  # client names
    period_start: str = ""
    period_end: str = ""
    ledger_bytes: int = 0
    stripe_bytes: int = 0
    unsent_bytes: int = 0  # still in the outbox: on its way, not drift
    error: str | None = None

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
        start = int((datetime.fromtimestamp(start / 1000, tz=UTC) - step).timestamp() * 1000)
    return start - start % MINUTE_MS, end - end % MINUTE_MS


def stripe_keys(session: Session) -> list[tuple[str, str, str]]:
    """(key id, client name, subscription id) of every active stripe key."""
    rows = session.execute(
        select(ApiKey.id, ApiKey.client_name, ApiKey.stripe_subscription_id).where(
            ApiKey.key_type == "stripe", ApiKey.revoked_at.is_(None)
        )
    ).all()
    return [(key_id, name, subscription or "") for key_id, name, subscription in rows]


@dataclass
class Pending:
    """A customer whose Stripe side is known; the books are read next."""

    balance: Balance
    key_ids: list[str]
    start: int
    end: int


def ask_stripe(
    api: StripeApi, keys: list[tuple[str, str, str]], which: str = "current"
) -> tuple[list[Balance], list[Pending]]:
    """What Stripe's meter holds per customer. Asked first: what the ledger says afterwards
    can only be more, not less. Returns the balances that failed and those to compare."""
    groups: dict[str, tuple[Subscription, list[tuple[str, str]]]] = {}
    failed = []
    for key_id, name, subscription_id in keys:
        try:
            subscription = api.subscription(subscription_id)
        except BillingUnavailable as exc:
            failed.append(Balance(customer_id="?", keys=[name], error=exc.message))
            continue
        groups.setdefault(subscription.customer_id, (subscription, []))[1].append((key_id, name))
    pending = []
    for customer_id, (subscription, members) in groups.items():
        balance = Balance(customer_id=customer_id, keys=[name for _, name in members])
        start, end = period_bounds(subscription, which)
        balance.period_start, balance.period_end = iso(start), iso(end)
        try:
            balance.stripe_bytes = api.metered_total(customer_id, start // 1000, end // 1000)
        except BillingUnavailable as exc:
            balance.error = exc.message
            failed.append(balance)
            continue
        pending.append(Pending(balance, [key_id for key_id, _ in members], start, end))
    return failed, pending


def add_books(session: Session, pending: list[Pending]) -> list[Balance]:
    """The ledger's side of each balance, read in one snapshot."""
    for item in pending:
        balance, ids = item.balance, item.key_ids
        balance.ledger_bytes = sum(uploaded_between(session, key_id, item.start, item.end) for key_id in ids)
        balance.unsent_bytes = int(
            session.execute(
                select(func.coalesce(func.sum(MeterReport.value), 0)).where(
                    MeterReport.key_id.in_(ids),
                    MeterReport.status == ReportStatus.PENDING,
                    MeterReport.occurred_at >= item.start,
                    MeterReport.occurred_at < item.end,
                )
            ).scalar_one()
        )
    return [item.balance for item in pending]


def as_text(balances: list[Balance]) -> str:
    lines = []
    for b in balances:
        who = f"{b.customer_id} ({', '.join(b.keys)})"
        if b.error:
            lines.append(f"{who}: could not be checked: {b.error}")
            continue
        verdict = (
            "ok"
            if b.drift == 0
            else f"DRIFT {b.drift:+d} bytes ({'the ledger' if b.drift > 0 else 'Stripe'} has more)"
        )
        lines.append(f"{who} {b.period_start} .. {b.period_end}: ledger {b.ledger_bytes} bytes, "
                     f"Stripe {b.stripe_bytes}, still to send {b.unsent_bytes}: {verdict}")  # fmt: skip
    return "\n".join(lines or ["no stripe keys"])


def as_json(balances: list[Balance]) -> list[dict[str, Any]]:
    return [{**asdict(b), "drift": b.drift} for b in balances]


def failed(balances: list[Balance]) -> bool:
    return any(b.drift or b.error for b in balances)
