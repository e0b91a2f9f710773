"""The few Stripe calls Squall makes, through the official SDK, with a short timeout and no
SDK retries (Squall retries on its own schedule). Errors come out as ``BillingUnavailable``
with a message for people."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import stripe

from squall.errors import BillingUnavailable
from squall.settings import Settings

__all__ = ["BillingUnavailable", "StripeApi", "Subscription"]


class _AlreadyReported(Exception):
    """Stripe already holds a meter event with this identifier."""


@contextmanager
def stripe_errors(*, reporting: bool = False) -> Iterator[None]:
    """The one place Stripe's exceptions become Squall's: ``BillingUnavailable`` with a
    message for people (and, when ``reporting`` a meter event, a repeated identifier, which is
    not a failure)."""
    try:
        yield
    except stripe.InvalidRequestError as exc:
        already = "identifier" in str(exc.user_message or exc).lower() and "already" in str(exc).lower()
        if reporting and already:
            raise _AlreadyReported() from None
        raise BillingUnavailable(_describe(exc)) from None
    except stripe.StripeError as exc:
        raise BillingUnavailable(_describe(exc)) from None


@dataclass(frozen=True)
class Subscription:
    id: str
    customer_id: str
    period_start: int  # ms
    period_end: int
    interval: str
    interval_count: int


class StripeApi:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client = stripe.StripeClient(
            settings.stripe_api_key,
            base_addresses={"api": settings.stripe_api_base},
            http_client=stripe.HTTPXClient(timeout=settings.stripe_timeout_seconds, allow_sync_methods=True),
            max_network_retries=0,
        )
        self._meter_id: str | None = None

    def subscription(self, subscription_id: str) -> Subscription:
        with stripe_errors():
            found = self.client.v1.subscriptions.retrieve(subscription_id).to_dict()
        return subscription_from(found)

    def report(self, identifier: str, customer_id: str, value: int, timestamp_s: int) -> None:
        """One meter event. A resend Stripe already has (same identifier) counts as sent."""
        params: Any = {
            "event_name": self.settings.stripe_meter_event_name,
            "identifier": identifier,
            "payload": {"stripe_customer_id": customer_id, "value": str(value)},
            "timestamp": timestamp_s,
        }
        try:
            with stripe_errors(reporting=True):
                self.client.v1.billing.meter_events.create(params=params)
        except _AlreadyReported:
            return

    def metered_total(self, customer_id: str, start_s: int, end_s: int) -> int:
        """What Stripe's meter holds for the customer in [start, end), minute-aligned bounds."""
        meter = self.meter_id()
        with stripe_errors():
            summaries = self.client.v1.billing.meters.event_summaries.list(
                meter, params={"customer": customer_id, "start_time": start_s, "end_time": end_s}
            )
            return int(sum(float(s.aggregated_value) for s in summaries.auto_paging_iter()))

    def meter_id(self) -> str:
        if self._meter_id is None:
            name = self.settings.stripe_meter_event_name
            with stripe_errors():
                meters = self.client.v1.billing.meters.list(params={"status": "active"})
                found = [m.id for m in meters.auto_paging_iter() if m.event_name == name]
            if not found:
                raise BillingUnavailable(f"Stripe has no active meter for the event name '{name}'")
            self._meter_id = found[0]
        return self._meter_id


def subscription_from(found: dict[str, Any]) -> Subscription:
    """Reads both shapes: the period on the subscription item (API 2025-03-31 and later) or
    on the subscription itself (earlier versions)."""
    item = ((found.get("items") or {}).get("data") or [{}])[0]
    start = item.get("current_period_start") or found.get("current_period_start")
    end = item.get("current_period_end") or found.get("current_period_end")
    recurring = (item.get("price") or item.get("plan") or {}).get("recurring") or item.get("plan") or {}
    customer = found.get("customer")
    if isinstance(customer, dict):
        customer = customer.get("id")
    if not (start and end and customer):
        raise BillingUnavailable(f"Stripe's subscription {found.get('id')} has no current period")
    return Subscription(
        id=str(found["id"]),
        customer_id=str(customer),
        period_start=int(start) * 1000,
        period_end=int(end) * 1000,
        interval=str(recurring.get("interval") or "month"),
        interval_count=int(recurring.get("interval_count") or 1),
    )


def _describe(exc: stripe.StripeError) -> str:
    if isinstance(exc, stripe.APIConnectionError):
        return "Stripe could not be reached; billing figures may be out of date"
    if isinstance(exc, stripe.AuthenticationError):
        return "Stripe refused Squall's API key (check SQUALL_STRIPE_API_KEY)"
    if isinstance(exc, stripe.InvalidRequestError) and exc.http_status == 404:
        return "Stripe does not know this key's subscription"
    return f"Stripe answered an error: {exc.user_message or type(exc).__name__}"
