"""A worker's billing thread: sends the meter-event outbox to Stripe, with backoff, and keeps
billing periods fresh. Stripe takes events up to 35 days old, so a report still unsent after
34 days is marked failed (``squall billing reconcile`` shows the difference)."""

from __future__ import annotations

import threading
import time

from sqlalchemy import select

from squall.billing import periods, reports
from squall.billing.refresher import PeriodRefresher
from squall.billing.reports import ClaimedReport
from squall.billing.stripe_api import StripeApi
from squall.clock import DAY_MS, HOUR_MS, SYSTEM, Clock
from squall.db import Database
from squall.db.dbtime import SharedClock
from squall.errors import BillingUnavailable
from squall.keys.models import ApiKey
from squall.logging import get_logger
from squall.queue import RetryPolicy
from squall.settings import Settings

log = get_logger("squall.billing")
# One report per claim: each is one small request, and a claim then lasts only as long as
# one attempt may (so a crashed worker's report is sent again within seconds).
BATCH = 1
BACKOFF = RetryPolicy.exponential(10_000, max_ms=HOUR_MS)
TOO_OLD_MS = 34 * DAY_MS
# Stripe rejects a repeated identifier for "at least 24 hours": resends stop before that.
RESEND_WINDOW_MS = 23 * HOUR_MS
NOT_RESENT = (
    "Not resent: an earlier attempt may have reached Stripe over 23 hours ago (see squall billing reconcile)"
)
REFRESH_EVERY_SECONDS = 5.0


class MeterReporter:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        api: StripeApi | None = None,
        clock: Clock = SYSTEM,
        *,
        on_database_time: bool | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.api = api or StripeApi(settings)
        self.clock = clock
        # claims and retry times: the database's clock (unless a test drives a clock of its own)
        self.shared = SharedClock(clock, on_database=on_database_time)
        self.periods = PeriodRefresher(db, self.api, clock)
        self.lease_ms = int((2 * settings.stripe_timeout_seconds + 5) * 1000)

    def run(self, stopping: threading.Event) -> None:
        last_refresh = 0.0
        while not stopping.is_set():
            try:
                if time.monotonic() - last_refresh >= REFRESH_EVERY_SECONDS:
                    last_refresh = time.monotonic()
                    self.periods.refresh_due()
                if not self.send_due():
                    stopping.wait(self.settings.poll_seconds * 4)
            except Exception:
                log.exception("meter reporter error; backing off")
                stopping.wait(self.settings.poll_seconds * 20)

    def send_due(self) -> int:
        """Send one batch of due reports; returns how many were claimed."""
        with self.db.write() as session:
            claimed = reports.claim(
                session, now=self.shared.now_ms(session), lease_ms=self.lease_ms, limit=BATCH
            )
        for report in claimed:
            self.send(report)
        return len(claimed)

    def send(self, report: ClaimedReport) -> None:
        if report.attempts > 1 and self.clock.now_ms() - report.first_attempt_at > RESEND_WINDOW_MS:
            # An earlier attempt may have reached Stripe, whose identifier check may have
            # forgotten it by now: a resend could count twice. Reconciliation decides.
            with self.db.write() as session:
                reports.record(session, report, now=self.clock.now_ms(), sent=False, error=NOT_RESENT)
            log.warning("meter report not resent", report_id=report.id)
            return
        try:
            customer = self.customer_of(report.key_id)
            self.api.report(report.id, customer, report.value, report.occurred_at // 1000)
        except BillingUnavailable as exc:
            now = self.clock.now_ms()
            too_old = now - report.occurred_at > TOO_OLD_MS
            delay = BACKOFF.delay_ms(report.attempts)
            with self.db.write() as session:
                retry_at = None if too_old or delay is None else self.shared.now_ms(session) + delay
                reports.record(session, report, now=now, sent=False, error=exc.message, retry_at=retry_at)
            log.warning("meter report not sent", report_id=report.id, error=exc.message, final=too_old)
            return
        with self.db.write() as session:
            reports.record(session, report, now=self.clock.now_ms(), sent=True)
        log.info("meter report sent", report_id=report.id, bytes=report.value)

    def customer_of(self, key_id: str) -> str:
        with self.db.read() as session:
            customer = periods.customer_of(session, key_id)
            subscription = session.execute(
                select(ApiKey.stripe_subscription_id).where(ApiKey.id == key_id)
            ).scalar_one()
        if customer:
            return customer
        error = self.periods.refresh(key_id, subscription or "")
        if error:
            raise BillingUnavailable(error)
        with self.db.read() as session:
            found = periods.customer_of(session, key_id)
        return str(found)
