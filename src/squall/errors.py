"""The one error hierarchy: every error a client can see is a ``SquallError``."""

from __future__ import annotations

from typing import Any


class SquallError(Exception):
    """Base of every expected error; ``status_code`` and ``body()`` are what a client sees."""

    status_code = 500

    def __init__(self, message: str, /, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": self.message, **self.extra}


class BadRequest(SquallError):
    status_code = 400


class Unauthorized(SquallError):
    status_code = 401


class NotFound(SquallError):
    status_code = 404


class Conflict(SquallError):
    status_code = 409


class QuotaExceeded(SquallError):
    """403 with the Tornado body: numbers are strings with two decimals."""

    status_code = 403

    def __init__(self, limit_bytes: int, used_bytes: int) -> None:
        from squall.units import GB as gb

        limit_gb = f"{limit_bytes / gb:.2f}"
        used_gb = f"{used_bytes / gb:.2f}"
        limit_text = f"{limit_bytes / gb:g}"
        super().__init__(
            "Storage quota exceeded",
            limit_gb=limit_gb,
            used_gb=used_gb,
            message=f"This API key has a {limit_text} GB limit and has used {used_gb} GB",
        )


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


class StorageError(SquallError):
    status_code = 502
