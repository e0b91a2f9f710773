"""What the sync and async clients share: a request described once (``Call``), when a failed
attempt may be tried again and after how long (``RetryPolicy``), and how an answer becomes a
model or an exception. The clients only send."""

from __future__ import annotations

import email.utils
import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx

from squall_client.errors import SquallError, error_for

T = TypeVar("T")

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
USER_AGENT = "squall-client-python/0.1.0"

# Failures where the request surely never reached the server: any call may be sent again.
NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Answers that mean "not done, try later" whatever the call: the server did no work.
REFUSED_FOR_NOW = frozenset({429, 503})
# Answers after which the work may or may not have happened: repeated only when that is safe.
MAYBE_DONE = frozenset({502, 504})


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API call. ``idempotency_key`` is fixed when the call is built, so every attempt
    of it sends the same key and the server makes at most one job."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: Mapping[str, Any] | None = None
    json: Any = None
    idempotency_key: str | None = None
    repeatable: bool = False  # no side effect (a GET, POST /metadata): safe to send twice
    timeout: float | None = None  # seconds, for calls the server may take long over; else the client's

    @property
    def safe_to_repeat(self) -> bool:
        return self.repeatable or self.method == "GET" or self.idempotency_key is not None

    def headers(self) -> dict[str, str]:
        return {"Idempotency-Key": self.idempotency_key} if self.idempotency_key else {}

    def query(self) -> dict[str, Any] | None:
        if not self.params:
            return None
        return {name: value for name, value in self.params.items() if value is not None}

    def finish(self, response: httpx.Response) -> T:
        """The parsed answer, or the exception for an error answer."""
        if response.status_code >= 400:
            raise error_for(response.status_code, _body(response))
        try:
            return self.parse(response)
        except (ValueError, KeyError, TypeError) as error:  # pydantic's errors are ValueErrors
            raise SquallError(
                f"Unexpected answer to {self.method} {self.path} (HTTP {response.status_code}): {error}",
                status_code=response.status_code,
                body=_body(response),
            ) from error


def timeout_for(call: Call[Any], default: httpx.Timeout) -> httpx.Timeout:
    """The client's timeout, with a longer read for a call the server may take long over."""
    if call.timeout is None or default.read is None or default.read >= call.timeout:
        return default
    return httpx.Timeout(default.connect, read=call.timeout, write=default.write, pool=default.pool)


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


@dataclass(frozen=True)
class RetryPolicy:
    """Transient failures (connection errors, 429, 502/503/504) are retried up to
    ``max_retries`` times, waiting an exponentially growing, jittered delay, or the
    server's ``Retry-After`` when it asks for longer (capped at ``max_retry_after``)."""

    max_retries: int = 3
    backoff: float = 0.5
    max_backoff: float = 8.0
    max_retry_after: float = 60.0
    jitter: Callable[[float, float], float] = field(default=random.uniform, repr=False)

    def wait_before_retry(
        self,
        call: Call[Any],
        attempt: int,
        *,
        response: httpx.Response | None = None,
        error: Exception | None = None,
    ) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None to give up."""
        if attempt >= self.max_retries or not _retryable(call, response, error):
            return None
        ceiling = min(self.max_backoff, self.backoff * 2**attempt)
        delay = self.jitter(ceiling / 2, ceiling)
        asked = retry_after(response) if response is not None else None
        if asked is not None:
            delay = max(delay, min(asked, self.max_retry_after))
        return delay


def _retryable(call: Call[Any], response: httpx.Response | None, error: Exception | None) -> bool:
    if error is not None:
        if isinstance(error, NEVER_SENT):
            return True
        return call.safe_to_repeat and isinstance(error, httpx.TransportError)
    if response is None:
        return False
    if response.status_code in REFUSED_FOR_NOW:
        return True
    return response.status_code in MAYBE_DONE and call.safe_to_repeat


def retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date), None if absent or unreadable."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class Poller:
    """The pauses between polls of something that will end: ``first`` seconds, growing by
    ``factor`` up to ``largest``, never past ``timeout`` from the poller's creation."""

    def __init__(self, timeout: float, first: float, largest: float, factor: float = 1.5) -> None:
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self._next, self._largest, self._factor = first, largest, factor

    def pause(self) -> float | None:
        """Seconds to sleep before the next poll; None once the time is up."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            return None
        pause, self._next = self._next, min(self._largest, self._next * self._factor)
        return min(pause, remaining)


def resolve_settings(api_key: str | None, base_url: str | None) -> tuple[str, str]:
    """The key and base URL, from the arguments or ``SQUALL_API_KEY``/``SQUALL_BASE_URL``."""
    key = api_key or os.environ.get("SQUALL_API_KEY")
    if not key:
        raise ValueError("An API key is needed: pass api_key=… or set SQUALL_API_KEY")
    base = (base_url or os.environ.get("SQUALL_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise ValueError(f"base_url must start with http:// or https:// (got {base!r})")
    return key, base


def default_headers(api_key: str) -> dict[str, str]:
    return {"x-api-key": api_key, "User-Agent": USER_AGENT, "Accept": "application/json"}
