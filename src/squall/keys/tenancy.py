"""A key's tenancy limits: jobs running at once, requests a minute, and where its usage
alerts go. Changed by ``squall keys create/update`` and ``PATCH /admin/keys/{id}``."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from squall.errors import InvalidInput, NotFound
from squall.keys.models import ApiKey


@dataclass(frozen=True)
class TenancyLimits:
    """``None``: leave as it is. ``0`` (numbers) or ``""`` (URL): remove the limit / URL."""

    max_concurrent_jobs: int | None = None
    rate_limit_per_minute: int | None = None
    alert_webhook_url: str | None = None


def _check(limits: TenancyLimits) -> None:
    for label, value in (
        ("Max concurrent jobs", limits.max_concurrent_jobs),
        ("Rate limit per minute", limits.rate_limit_per_minute),
    ):
        if value is not None and value < 0:
            raise InvalidInput(f"{label} must be 0 (no limit) or a positive whole number")
    url = limits.alert_webhook_url
    if url and not url.startswith(("http://", "https://")):
        raise InvalidInput("Alert webhook URL must start with http:// or https://")


def apply_limits(key: ApiKey, limits: TenancyLimits) -> None:
    """Set the given limits on ``key`` (a new or a loaded row)."""
    _check(limits)
    if limits.max_concurrent_jobs is not None:
        key.max_concurrent_jobs = limits.max_concurrent_jobs or None
    if limits.rate_limit_per_minute is not None:
        key.rate_limit_per_minute = limits.rate_limit_per_minute or None
    if limits.alert_webhook_url is not None:
        key.alert_webhook_url = limits.alert_webhook_url or None


def update_limits(session: Session, key_id: str, limits: TenancyLimits) -> ApiKey:
    key = session.get(ApiKey, key_id)
    if key is None or key.revoked_at is not None:
        raise NotFound(f"No active key with id {key_id}")
    apply_limits(key, limits)
    session.flush()
    return key
