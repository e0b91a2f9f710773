"""The one error hierarchy. Every expected error is a ``SquallError`` that says, in words a
person understands, what went wrong; none of them knows about HTTP. The API maps each kind
to a status once (``squall/api/errors.py``); the worker and the CLI read the message."""

from __future__ import annotations

from typing import Any

from squall.units import GB


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


class QuotaExceeded(SquallError):
    """The Tornado body: numbers are strings with two decimals."""

    def __init__(self, limit_bytes: int, used_bytes: int) -> None:
        limit_gb = f"{limit_bytes / GB:.2f}"
        used_gb = f"{used_bytes / GB:.2f}"
        super().__init__(
            "Storage quota exceeded",
            limit_gb=limit_gb,
            used_gb=used_gb,
            message=f"This API key has a {limit_bytes / GB:g} GB limit and has used {used_gb} GB",
        )


class Unavailable(SquallError):
    """A service Squall depends on (a bucket, Stripe) failed or could not be reached."""


class StorageError(Unavailable):
    """The storage backend failed."""


class BillingUnavailable(Unavailable):
    """Stripe failed or could not be reached."""


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
