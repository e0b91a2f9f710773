"""Keeps each stripe key's billing period fresh, from a worker process: Stripe is asked off
the request path, so GET /usage never waits for it."""

from __future__ import annotations

from squall.billing import periods
from squall.billing.stripe_api import StripeApi
from squall.clock import SYSTEM, Clock
from squall.db import Database
from squall.errors import BillingUnavailable
from squall.logging import get_logger

log = get_logger("squall.billing")


class PeriodRefresher:
    def __init__(self, db: Database, api: StripeApi, clock: Clock = SYSTEM) -> None:
        self.db = db
        self.api = api
        self.clock = clock

    def refresh_due(self) -> int:
        """Fetch every period that has ended, changed or never been fetched; returns how many
        were asked for."""
        with self.db.read() as session:
            due = periods.due_for_refresh(session, now=self.clock.now_ms())
        for key_id, subscription_id in due:
            try:
                self.refresh(key_id, subscription_id)
            except Exception:  # one key's surprise must not stop the others' refresh
                log.exception("billing period refresh failed", key_id=key_id)
        return len(due)

    def refresh(self, key_id: str, subscription_id: str) -> str | None:
        """Ask Stripe for the subscription's period and store it; returns the error, if any."""
        try:
            subscription = self.api.subscription(subscription_id)
        except BillingUnavailable as exc:
            with self.db.write() as session:
                periods.store_error(session, key_id, subscription_id, exc.message, now=self.clock.now_ms())
            log.warning("billing period not refreshed", key_id=key_id, error=exc.message)
            return exc.message
        with self.db.write() as session:
            periods.store(session, key_id, subscription, now=self.clock.now_ms())
        return None
