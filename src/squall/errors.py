"""The one error hierarchy. Every expected error is a ``SquallError`` that says, in words a
person understands, what went wrong; none of them knows about HTTP. The API maps each kind
to a status once (``squall/api/errors.py``); the worker and the CLI read the message."""

from __future__ import annotations

from typing import Any

from squall.units import GB, human_bytes


class SquallError(Exception):
    """Base of every expected error; ``body()`` is what a client sees."""

    def __init__(self, message: str, /, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": self.message, **self.extra}


class InvalidInput(SquallError):
    """The request (or a command's arguments) cannot be carried out as given."""


class NotAuthenticated(SquallError):
    """No credential, or one that is unknown, revoked or expired."""


class NotFound(SquallError):
    """The thing does not exist, or belongs to another key (which is the same to a client)."""


class Conflict(SquallError):
    """The request collides with an earlier one (an Idempotency-Key reused, say)."""


class UrlRefused(InvalidInput):
    """A source or webhook URL the SSRF guard does not let through."""


class HostNotFound(UrlRefused):
    """The URL's host did not resolve (possibly only for now): not a verdict of the policy."""


QUOTA_EXCEEDED = "Storage quota exceeded"  # the error of a 403 and of a job that outgrew its room


class QuotaExceeded(SquallError):
    """The Tornado body (numbers are strings with two decimals), with what is stored and what
    is only reserved by jobs in progress told apart, and what the request needed."""

    def __init__(
        self, limit_bytes: int, *, stored_bytes: int, reserved_bytes: int, requested_bytes: int = 0
    ) -> None:
        used = stored_bytes + reserved_bytes
        limit = f"{limit_bytes // GB} GB" if limit_bytes % GB == 0 else human_bytes(limit_bytes)
        message = f"This API key has a {limit} limit and has used {used / GB:.2f} GB"
        if reserved_bytes:
            message += (
                f" ({stored_bytes / GB:.2f} GB stored, {reserved_bytes / GB:.2f} GB reserved for jobs"
                " still in progress, released as they finish)"
            )
        if requested_bytes and used < limit_bytes:  # not full: it is this request that does not fit
            left = human_bytes(limit_bytes - used)
            message += f"; this request needs about {human_bytes(requested_bytes)} and {left} is left"
        super().__init__(
            QUOTA_EXCEEDED,
            limit_gb=f"{limit_bytes / GB:.2f}",
            used_gb=f"{used / GB:.2f}",
            message=message,
            stored_gb=f"{stored_bytes / GB:.2f}",
            reserved_gb=f"{reserved_bytes / GB:.2f}",
        )


class RateLimited(SquallError):
    """The key sent more requests this minute than its limit allows. ``headers``: Retry-After
    and the IETF draft's RateLimit-Policy / RateLimit fields."""

    def __init__(self, message: str, /, headers: dict[str, str]) -> None:
        super().__init__(message)
        self.headers = headers


class Unavailable(SquallError):
    """A service Squall depends on (a bucket, Stripe) failed or could not be reached."""


class StorageError(Unavailable):
    """The storage backend failed."""


class StorageRefused(StorageError):
    """A key's own bucket refused the request (credentials, a missing bucket): trying again
    will not help until its owner fixes it."""


class BillingUnavailable(Unavailable):
    """Stripe failed or could not be reached."""


class DatabaseUnavailable(SquallError):
    """The database cannot be reached right now (restarting, unreachable): try again later.
    ``retry_after_s`` is how long a client should wait (the 503's Retry-After)."""

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class TimedOut(SquallError):
    """Work done for a request (reading a URL's metadata, say) took longer than allowed."""


class JobFailure(SquallError):
    """A job ended without output. ``outcome`` picks its final status; ``retryable`` asks the
    queue to try again with backoff before giving up."""

    def __init__(self, message: str, *, outcome: str = "Failed", retryable: bool = False) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.retryable = retryable

    @property
    def error_type(self) -> str:
        return "error" if self.outcome == "Failed" else "warning"
