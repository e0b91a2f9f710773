"""Delivers the outbox: POST with the Standard Webhooks headers, a 30 s timeout, redirects
treated as failures, and the SSRF guard on every attempt (the name is resolved, every
address checked, and the connection pinned to a checked address, TLS still verified
against the name). A 2xx is delivered, a 410 stops for good, anything else is retried on a
schedule over hours, with jitter and ``Retry-After`` honoured."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit, urlunsplit

import httpx

from squall.clock import now_ms
from squall.db import Database
from squall.errors import BadRequest
from squall.logging import get_logger
from squall.pipeline.urlguard import UrlPolicy, resolve_checked
from squall.settings import Settings
from squall.webhooks import outbox
from squall.webhooks.models import DELIVERED, FAILED, GONE, PENDING
from squall.webhooks.outbox import ClaimedDelivery
from squall.webhooks.signing import signature_header

log = get_logger("squall.webhooks")
MAX_RETRY_AFTER_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class Outcome:
    status: str
    status_code: int | None = None
    error: str | None = None
    retry_at: int | None = None


class WebhookSender:
    def __init__(self, db: Database, settings: Settings, owner: str) -> None:
        self.db = db
        self.settings = settings
        self.owner = owner
        # A claim outlives one attempt (timeout included), so only a dead sender loses it.
        self.lease_ms = int((2 * settings.webhook_timeout_seconds + 5) * 1000)
        self.client = httpx.Client(
            timeout=settings.webhook_timeout_seconds, follow_redirects=False, trust_env=False
        )

    def run(self, stopping: threading.Event) -> None:
        """One sender thread: deliver what is due until ``stopping`` is set."""
        while not stopping.is_set():
            try:
                if not self.send_one():
                    stopping.wait(self.settings.poll_seconds)
            except Exception:
                log.exception("webhook sender error; backing off")
                stopping.wait(self.settings.poll_seconds * 4)

    def send_due(self) -> int:
        """Deliver everything due now, one by one (tests and the CLI); returns how many."""
        sent = 0
        while self.send_one():
            sent += 1
        return sent

    def send_one(self) -> bool:
        with self.db.write() as session:
            claimed = outbox.claim(session, owner=self.owner, now=now_ms(), lease_ms=self.lease_ms)
        if claimed is None:
            return False
        with self.db.read() as session:
            secrets = outbox.signing_secrets(session, claimed.key_id, now=now_ms())
        outcome = self.attempt(claimed, secrets)
        with self.db.write() as session:
            outbox.record(
                session,
                claimed,
                status=outcome.status,
                now=now_ms(),
                status_code=outcome.status_code,
                error=outcome.error,
                retry_at=outcome.retry_at,
            )
        log.info("webhook attempt", webhook_id=claimed.id, attempt=claimed.attempts, outcome=outcome.status,
                 status_code=outcome.status_code)  # fmt: skip
        return True

    def attempt(self, claimed: ClaimedDelivery, secrets: list[str]) -> Outcome:
        timestamp = now_ms() // 1000
        headers = {
            "content-type": "application/json",
            "user-agent": "Squall-Webhooks/1",
            "webhook-id": claimed.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(secrets, claimed.id, timestamp, claimed.payload),
        }
        try:
            request = pinned_request(claimed.url, self.settings.url_policy, headers, claimed.payload.encode())
        except BadRequest as refused:  # the guard's answer will not change by retrying soon
            return Outcome(FAILED, error=refused.message)
        try:
            response = self.client.send(request)
            response.close()
        except httpx.TimeoutException:
            return self.retry(claimed, None, f"No answer within {self.settings.webhook_timeout_seconds:g} s")
        except httpx.HTTPError as exc:
            return self.retry(claimed, None, f"Could not connect: {exc}")
        code = response.status_code
        if 200 <= code < 300:
            return Outcome(DELIVERED, code)
        if code == 410:
            return Outcome(GONE, code, "The receiver answered 410 Gone; no more attempts")
        if 300 <= code < 400:
            return self.retry(claimed, code, f"Redirects are not followed (HTTP {code})")
        return self.retry(
            claimed, code, f"The receiver answered HTTP {code}", response.headers.get("retry-after")
        )

    def retry(
        self, claimed: ClaimedDelivery, code: int | None, error: str, retry_after: str | None = None
    ) -> Outcome:
        schedule = self.settings.webhook_retry_schedule
        if claimed.attempts > len(schedule):
            return Outcome(FAILED, code, f"{error}; gave up after {claimed.attempts} attempts")
        delay_ms = schedule[claimed.attempts - 1] * 1000 * random.uniform(0.9, 1.1)  # jitter
        delay_ms = max(delay_ms, min(_retry_after_ms(retry_after), MAX_RETRY_AFTER_MS))
        return Outcome(PENDING, code, error, now_ms() + int(delay_ms))

    def close(self) -> None:
        self.client.close()


def _retry_after_ms(value: str | None) -> float:
    if not value:
        return 0.0
    if value.strip().isdigit():
        return int(value) * 1000.0
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() * 1000 - now_ms())
    except (TypeError, ValueError):
        return 0.0


def pinned_request(url: str, policy: UrlPolicy, headers: dict[str, str], body: bytes) -> httpx.Request:
    """A POST to ``url`` that connects to an address the guard checked just now (no second
    lookup an attacker's DNS could answer differently), with Host and TLS name unchanged."""
    address = resolve_checked(url, policy, what="webhook_url")
    if address is None:  # private addresses allowed: nothing to pin
        return httpx.Request("POST", url, headers=headers, content=body)
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    literal = f"[{address}]" if ":" in address else address
    pinned = urlunsplit((parts.scheme, f"{literal}:{port}", parts.path or "/", parts.query, ""))
    extensions = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
    headers = {**headers, "host": parts.netloc.rpartition("@")[2]}
    return httpx.Request("POST", pinned, headers=headers, content=body, extensions=extensions)
