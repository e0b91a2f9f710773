"""Exceptions: one base, ``SquallError``, and one kind per answer a program handles
differently. Each HTTP error carries its status and the server's ``{"error": …}`` body."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from squall_client.models import Batch, Job


class SquallError(Exception):
    """Anything this client raises. ``status_code`` is None when no answer came back."""

    def __init__(self, message: str, *, status_code: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.body: Any = body

    def __str__(self) -> str:
        return f"{self.status_code}: {self.message}" if self.status_code else self.message


class APIConnectionError(SquallError):
    """The server could not be reached (or the connection broke), even after retries."""


class ValidationError(SquallError):
    """400: the request was refused as invalid; ``message`` says what to change."""


class AuthenticationError(SquallError):
    """401: the API key is missing, unknown or revoked."""


class PermissionDenied(SquallError):
    """403 for a reason other than the storage quota."""


class QuotaExceeded(PermissionDenied):
    """403 "Storage quota exceeded". The figures are the server's strings, GB with two
    decimals (``"1024.00"``); ``stored_gb``/``reserved_gb`` only from servers that send them."""

    def __init__(self, message: str, *, status_code: int | None = 403, body: Any = None) -> None:
        super().__init__(message, status_code=status_code, body=body)
        fields = body if isinstance(body, dict) else {}
        self.limit_gb: str | None = _text(fields.get("limit_gb"))
        self.used_gb: str | None = _text(fields.get("used_gb"))
        self.stored_gb: str | None = _text(fields.get("stored_gb"))
        self.reserved_gb: str | None = _text(fields.get("reserved_gb"))
        self.detail: str | None = _text(fields.get("message"))  # the sentence for a person

    def __str__(self) -> str:
        return f"403: {self.message}" + (f" ({self.detail})" if self.detail else "")


class NotFound(SquallError):
    """404: no such job or batch for this key (another key's look the same)."""


class Conflict(SquallError):
    """409: e.g. an Idempotency-Key reused with a different request."""


class RateLimited(SquallError):
    """429, still refused after the client's retries."""


class ServerError(SquallError):
    """5xx, after the client's retries where retrying was safe."""


class JobTimeout(SquallError, TimeoutError):
    """``download``/``wait`` gave up before the job ended; ``job`` is its last known state."""

    def __init__(self, message: str, *, job: Job) -> None:
        super().__init__(message)
        self.job = job


class BatchTimeout(SquallError, TimeoutError):
    """``batches.wait`` gave up before every episode ended; ``batch`` is its last known state."""

    def __init__(self, message: str, *, batch: Batch) -> None:
        super().__init__(message)
        self.batch = batch


class JobFailed(SquallError):
    """Raised by ``Job.raise_for_status()`` for a job that ended without output."""

    def __init__(self, message: str, *, job: Job) -> None:
        super().__init__(message)
        self.job = job


class WebhookVerificationError(SquallError):
    """A webhook whose signature, id or timestamp does not check out: do not trust its body."""


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


BY_STATUS: dict[int, type[SquallError]] = {
    400: ValidationError,
    401: AuthenticationError,
    404: NotFound,
    409: Conflict,
    422: ValidationError,
    429: RateLimited,
}


def error_for(status_code: int, body: Any) -> SquallError:
    """The exception for an HTTP error answer (``body`` is the parsed JSON, or the text)."""
    message = body.get("error") if isinstance(body, dict) else None
    if not isinstance(message, str):
        message = str(body)[:500] if body not in (None, "") else f"HTTP {status_code}"
    if status_code == 403:
        quota = isinstance(body, dict) and ("limit_gb" in body or "quota" in message.lower())
        return (QuotaExceeded if quota else PermissionDenied)(message, status_code=403, body=body)
    kind = BY_STATUS.get(status_code, ServerError if status_code >= 500 else SquallError)
    return kind(message, status_code=status_code, body=body)
