"""Delivers the outbox: POST with the Standard Webhooks headers, a 30 s timeout, redirects
treated as failures, and the SSRF guard on every attempt (the name is resolved, every
address checked, and the connection pinned to a checked address, TLS still verified
against the name). A 2xx is delivered, a 410 stops for good, anything else is retried on a
schedule over hours, with jitter and ``Retry-After`` honoured."""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import NamedTuple
from urllib.parse import urlsplit, urlunsplit

import httpx

from squall.clock import DAY_MS, SYSTEM, Clock
from squall.db import Database
from squall.db.dbtime import SharedClock
from squall.db.outage import is_outage
from squall.errors import HostNotFound, UrlRefused
from squall.logging import get_logger
from squall.pipeline.urlguard import UrlPolicy, resolve_checked, url_policy
from squall.queue import RetryPolicy
from squall.settings import Settings
from squall.webhooks import outbox
from squall.webhooks.models import DeliveryStatus
from squall.webhooks.outbox import ClaimedDelivery
from squall.webhooks.signing import signature_header

DELIVERED, FAILED, GONE, PENDING = (DeliveryStatus.DELIVERED, DeliveryStatus.FAILED, DeliveryStatus.GONE,
                                    DeliveryStatus.PENDING)  # fmt: skip
log = get_logger("squall.webhooks")
MAX_RETRY_AFTER_MS = DAY_MS
# Claims held per sender thread: one being sent, one waiting. A waiting claim is sent within
# one attempt's timeout, well inside its lease (two timeouts plus 5 s), so never twice.
PREFETCH = 2


@dataclass(frozen=True)
class Outcome:
    status: str
    status_code: int | None = None
    error: str | None = None
    retry_at: int | None = None


class Attempted(NamedTuple):
    claimed: ClaimedDelivery
    outcome: Outcome


class Claimed(NamedTuple):
    claimed: ClaimedDelivery
    secrets: list[str]
    deadline_ms: int  # the lease's end by this host's clock (the row's is the database's)


def _drain(results: queue.SimpleQueue[Attempted], *, wait: float) -> list[Attempted]:
    """Every finished attempt; waits up to ``wait`` seconds for the first one."""
    found = []
    try:
        found.append(results.get(timeout=wait))
        while True:
            found.append(results.get_nowait())
    except queue.Empty:
        pass
    return found


class WebhookSender:
    """One dispatcher thread claims due deliveries for a pool of sender threads and records
    their outcomes: recording what finished and claiming more share one transaction, so the
    database sees one write per round, not two per delivery. A hanging receiver holds one
    sender thread, never the others."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        owner: str,
        clock: Clock = SYSTEM,
        *,
        on_database_time: bool | None = None,
    ) -> None:
        """``on_database_time``: claims and due times on the database's clock (the default
        unless a test drives a clock of its own), as the worker's leases."""
        self.db = db
        self.settings = settings
        self.owner = owner
        self.clock = clock
        self.shared = SharedClock(clock, on_database=on_database_time)
        self.policy = url_policy(settings)
        # The Standard Webhooks schedule, ±10% so that a receiver's outage is not followed by
        # every retry at once.
        schedule = tuple(seconds * 1000 for seconds in settings.webhook_retry_schedule)
        self.retry_policy = RetryPolicy.scheduled(schedule, jitter=0.1)
        # A claim outlives one attempt (timeout included), so only a dead sender loses it.
        self.lease_ms = int((2 * settings.webhook_timeout_seconds + 5) * 1000)
        self.client = httpx.Client(
            timeout=settings.webhook_timeout_seconds, follow_redirects=False, trust_env=False
        )
        self.unpooled = httpx.Client(
            timeout=settings.webhook_timeout_seconds, follow_redirects=False, trust_env=False,
            limits=httpx.Limits(max_keepalive_connections=0),
        )  # fmt: skip

    def run(self, stopping: threading.Event, senders: int) -> None:
        """Deliver what is due with ``senders`` threads until ``stopping`` is set."""
        work: queue.SimpleQueue[Claimed | None] = queue.SimpleQueue()
        results: queue.SimpleQueue[Attempted] = queue.SimpleQueue()

        def send() -> None:
            while (item := work.get()) is not None:
                results.put(Attempted(item.claimed, self.attempt_safely(item)))

        for i in range(senders):
            threading.Thread(target=send, name=f"webhook-sender-{i}", daemon=True).start()
        in_flight, finished = 0, list[Attempted]()
        while not stopping.is_set():
            try:
                claimed = self.round(finished, limit=PREFETCH * senders - in_flight + len(finished))
                in_flight += len(claimed) - len(finished)
                finished = []
                for item in claimed:
                    work.put(item)
                # Until an attempt finishes; when idle, this is also the poll for new rows.
                finished = _drain(results, wait=self.settings.poll_seconds)
            except Exception as error:  # the database, most likely: keep the outcomes for the next round
                if is_outage(error):  # expected while it restarts: one line, not a traceback
                    log.warning("database unavailable; webhook dispatcher backing off")
                else:
                    log.exception("webhook dispatcher error; backing off")
                stopping.wait(self.settings.poll_seconds * 4)
        for _ in range(senders):
            work.put(None)
        if finished:
            self.round(finished, limit=0)

    def send_due(self) -> int:
        """Deliver everything due now, one at a time in this thread (tests); returns how many."""
        sent, finished = 0, list[Attempted]()
        while claimed := self.round(finished, limit=1):
            finished = [Attempted(item.claimed, self.attempt_safely(item)) for item in claimed]
            sent += len(finished)
        if finished:
            self.round(finished, limit=0)
        return sent

    def round(self, finished: list[Attempted], *, limit: int) -> list[Claimed]:
        """Record ``finished`` attempts and claim up to ``limit`` due deliveries, in one
        transaction; each claim comes with the key's signing secrets."""
        with self.db.write() as session:
            # Due times and leases are on the database's clock; retry times were this host's.
            host_now = self.clock.now_ms()
            now = self.shared.now_ms(session)
            for claimed, outcome in finished:
                retry_at = None if outcome.retry_at is None else outcome.retry_at + now - host_now
                outbox.record(session, claimed, status=outcome.status, now=now, status_code=outcome.status_code,
                              error=outcome.error, retry_at=retry_at)  # fmt: skip
            claims = (
                outbox.claim(session, owner=self.owner, now=now, lease_ms=self.lease_ms, limit=limit)
                if limit > 0
                else []
            )
            secrets = {c.key_id: outbox.signing_secrets(session, c.key_id, now=now) for c in claims}
        for claimed, outcome in finished:
            log.info("webhook attempt", webhook_id=claimed.id, attempt=claimed.attempts, outcome=outcome.status,
                     status_code=outcome.status_code)  # fmt: skip
        return [Claimed(c, secrets[c.key_id], host_now + self.lease_ms) for c in claims]

    def attempt_safely(self, item: Claimed) -> Outcome:
        """``attempt``, but never raising (a sender thread must not die of one bad URL), and
        never sending a claim that waited so long its lease may be running out."""
        claimed = item.claimed
        if self.clock.now_ms() + self.settings.webhook_timeout_seconds * 1000 > item.deadline_ms:
            return Outcome(
                PENDING, error="Not sent: waited too long behind slow receivers", retry_at=self.clock.now_ms()
            )
        try:
            return self.attempt(claimed, item.secrets)
        except Exception as exc:
            log.exception("webhook attempt error", webhook_id=claimed.id)
            return self.retry(claimed, None, f"Could not send: {type(exc).__name__}")

    def attempt(self, claimed: ClaimedDelivery, secrets: list[str]) -> Outcome:
        timestamp = self.clock.now_ms() // 1000
        headers = {
            "content-type": "application/json",
            "user-agent": "Squall-Webhooks/1",
            "webhook-id": claimed.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(secrets, claimed.id, timestamp, claimed.payload),
        }
        try:
            request = pinned_request(claimed.url, self.policy, headers, claimed.payload.encode())
        except HostNotFound as unresolved:  # DNS may answer later
            return self.retry(claimed, None, unresolved.message)
        except UrlRefused as refused:  # the guard's answer will not change by retrying soon
            return Outcome(FAILED, error=refused.message)
        # A pinned HTTPS request must not reuse a pooled connection to the same address that
        # was made for another host name (its certificate was checked for that name).
        client = self.unpooled if "sni_hostname" in request.extensions else self.client
        try:  # streamed and closed unread: a receiver's body is never loaded
            response = client.send(request, stream=True)
            response.close()
            code, retry_after = response.status_code, response.headers.get("retry-after")
        except httpx.TimeoutException:
            return self.retry(claimed, None, f"No answer within {self.settings.webhook_timeout_seconds:g} s")
        except httpx.HTTPError as exc:
            return self.retry(claimed, None, f"Could not connect: {exc}")
        if 200 <= code < 300:
            return Outcome(DELIVERED, code)
        if code == 410:
            return Outcome(GONE, code, "The receiver answered 410 Gone; no more attempts")
        if 300 <= code < 400:
            return self.retry(claimed, code, f"Redirects are not followed (HTTP {code})")
        return self.retry(claimed, code, f"The receiver answered HTTP {code}", retry_after)

    def retry(
        self, claimed: ClaimedDelivery, code: int | None, error: str, retry_after: str | None = None
    ) -> Outcome:
        delay_ms = self.retry_policy.delay_ms(claimed.attempts)
        if delay_ms is None:
            return Outcome(FAILED, code, f"{error}; gave up after {claimed.attempts} attempts")
        now = self.clock.now_ms()
        delay_ms = max(delay_ms, int(min(_retry_after_ms(retry_after, now), MAX_RETRY_AFTER_MS)))
        return Outcome(PENDING, code, error, now + delay_ms)

    def close(self) -> None:
        self.client.close()
        self.unpooled.close()


def _retry_after_ms(value: str | None, now: int) -> float:
    if not value:
        return 0.0
    if value.strip().isascii() and value.strip().isdigit():
        return int(value) * 1000.0
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() * 1000 - now)
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
    host = parts.netloc.rpartition("@")[2]
    if not host.isascii():  # an internationalised name goes on the wire as IDNA
        host = (parts.hostname or "").encode("idna").decode() + (f":{parts.port}" if parts.port else "")
    headers = {**headers, "host": host}
    return httpx.Request("POST", pinned, headers=headers, content=body, extensions=extensions)
