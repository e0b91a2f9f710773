"""Sends the meter-event outbox to Stripe from a worker process (one thread), with backoff.
Stripe takes events up to 35 days old, so a report still unsent after 34 days is marked
failed (``squall billing reconcile`` shows the difference)."""

from __future__ import annotations

import threading

from sqlalchemy import select

from squall.billing import reports
from squall.billing.models import BillingPeriod
from squall.billing.periods import Periods
from squall.billing.reports import ClaimedReport
from squall.billing.stripe_api import BillingUnavailable, StripeApi
from squall.clock import DAY_MS, now_ms
from squall.db import Database
from squall.keys.models import ApiKey
from squall.logging import get_logger
from squall.settings import Settings

log = get_logger("squall.billing")
# One report per claim: each is one small request, and a claim then lasts only as long as
# one attempt may (so a crashed worker's report is sent again within seconds).
BATCH = 1
MAX_BACKOFF_MS = 3_600_000
TOO_OLD_MS = 34 * DAY_MS
# Stripe rejects a repeated identifier for "at least 24 hours": resends stop before that.
RESEND_WINDOW_MS = 23 * 3_600_000
NOT_RESENT = (
    "Not resent: an earlier attempt may have reached Stripe over 23 hours ago (see squall billing reconcile)"
)


class MeterReporter:
    def __init__(self, db: Database, settings: Settings, api: StripeApi | None = None) -> None:
        self.db = db
        self.settings = settings
        self.api = api or StripeApi(settings)
        self.periods = Periods(db, settings, self.api)
        self.lease_ms = int((2 * settings.stripe_timeout_seconds + 5) * 1000)

    def run(self, stopping: threading.Event) -> None:
        while not stopping.is_set():
            try:
                if not self.send_due():
                    stopping.wait(self.settings.poll_seconds * 4)
            except Exception:
                log.exception("meter reporter error; backing off")
                stopping.wait(self.settings.poll_seconds * 20)

    def send_due(self) -> int:
        """Send one batch of due reports; returns how many were claimed."""
        with self.db.write() as session:
            claimed = reports.claim(session, now=now_ms(), lease_ms=self.lease_ms, limit=BATCH)
        for report in claimed:
            self.send(report)
        return len(claimed)

    def send(self, report: ClaimedReport) -> None:
        if report.attempts > 1 and now_ms() - report.first_attempt_at > RESEND_WINDOW_MS:
            # An earlier attempt may have reached Stripe, whose identifier check may have
            # forgotten it by now: a resend could count twice. Reconciliation decides.
            with self.db.write() as session:
                reports.record(session, report, now=now_ms(), sent=False, error=NOT_RESENT)
            log.warning("meter report not resent", report_id=report.id)
            return
        try:
            customer = self.customer_of(report.key_id)
            self.api.report(report.id, customer, report.value, report.occurred_at // 1000)
        except BillingUnavailable as exc:
            now = now_ms()
            too_old = now - report.occurred_at > TOO_OLD_MS
            retry_at = None if too_old else now + min(MAX_BACKOFF_MS, 10_000 * 2 ** (report.attempts - 1))
            with self.db.write() as session:
                reports.record(session, report, now=now, sent=False, error=exc.message, retry_at=retry_at)
            log.warning("meter report not sent", report_id=report.id, error=exc.message, final=too_old)
            return
        with self.db.write() as session:
            reports.record(session, report, now=now_ms(), sent=True)
        log.info("meter report sent", report_id=report.id, bytes=report.value)

    def customer_of(self, key_id: str) -> str:
        with self.db.read() as session:
            customer = session.execute(
                select(BillingPeriod.customer_id).where(BillingPeriod.key_id == key_id)
            ).scalar_one_or_none()
            subscription = session.execute(
                select(ApiKey.stripe_subscription_id).where(ApiKey.id == key_id)
            ).scalar_one()
        if customer:
            return customer
        error = self.periods.refresh(key_id, subscription or "")
        if error:
            raise BillingUnavailable(error)
        with self.db.read() as session:
            found = session.execute(
                select(BillingPeriod.customer_id).where(BillingPeriod.key_id == key_id)
            ).scalar_one()
        return str(found)
