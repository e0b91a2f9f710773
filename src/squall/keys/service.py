"""Keys: creation with their limits, lookup by hash, Stripe links, webhook-secret rotation,
revocation. (How secrets are made and hashed: ``keys/secrets.py``.)"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from squall.clock import DAY_MS, now_ms
from squall.db.base import table_of
from squall.errors import InvalidInput, NotFound
from squall.events import record
from squall.keys.events import KeyCreated
from squall.keys.fingerprint import remember_secret
from squall.keys.models import ApiKey
from squall.keys.secrets import generate_secret, hash_key, new_webhook_secret
from squall.keys.tenancy import TenancyLimits, apply_limits

KEY_TYPES = ("unlimited", "trial", "stripe")
RESOLUTIONS = (2160, 1440, 1080, 720, 480, 360)


@dataclass(frozen=True)
class KeyLimits:
    storage_limit_bytes: int | None = None
    max_resolution: int | None = None
    max_duration_seconds: int | None = None
    max_filesize_bytes: int | None = None
    retention_days: int | None = None


@dataclass(frozen=True)
class AuthenticatedKey:
    id: str
    client_name: str
    key_type: str
    max_resolution: int | None
    max_duration_seconds: int | None
    max_filesize_bytes: int | None
    stripe_subscription_id: str | None
    rate_limit_per_minute: int | None = None
    max_concurrent_jobs: int | None = None


@dataclass(frozen=True)
class NewKey:
    id: str
    api_key: str
    client_name: str
    webhook_secret: str


def create_key(
    session: Session,
    *,
    pepper: str,
    name: str,
    key_type: str | None = None,
    limits: KeyLimits = KeyLimits(),
    stripe_subscription_id: str | None = None,
    tenancy: TenancyLimits = TenancyLimits(),
) -> NewKey:
    if not name.strip():
        raise InvalidInput("Client name cannot be empty")
    if key_type is None:  # a storage limit is what makes a trial key
        key_type = "trial" if limits.storage_limit_bytes is not None else "unlimited"
    if key_type not in KEY_TYPES:
        raise InvalidInput(f"Key type must be one of {', '.join(KEY_TYPES)}")
    if key_type == "trial" and limits.storage_limit_bytes is None:
        raise InvalidInput("A trial key needs a storage limit (--storage-limit-gb)")
    if key_type != "trial" and limits.storage_limit_bytes is not None:
        raise InvalidInput("Only trial keys have a storage limit; use --type trial")
    if key_type == "stripe" and not stripe_subscription_id:
        raise InvalidInput("A stripe key needs --stripe-subscription")
    for label, value in (
        ("Storage limit", limits.storage_limit_bytes),
        ("Max duration", limits.max_duration_seconds),
        ("Max file size", limits.max_filesize_bytes),
        ("Retention", limits.retention_days),
    ):
        if value is not None and value <= 0:
            raise InvalidInput(f"{label} must be greater than zero")
    if limits.max_resolution is not None and limits.max_resolution not in RESOLUTIONS:
        allowed = ", ".join(str(r) for r in RESOLUTIONS)
        raise InvalidInput(f"Max resolution must be one of {allowed}")
    secret = generate_secret()
    key = ApiKey(
        client_name=name.strip(),
        key_hash=hash_key(secret, pepper),
        key_prefix=secret[:10],
        key_type=key_type,
        max_resolution=limits.max_resolution,
        max_duration_seconds=limits.max_duration_seconds,
        max_filesize_bytes=limits.max_filesize_bytes,
        retention_days=limits.retention_days,
        stripe_subscription_id=stripe_subscription_id,
        webhook_secret=new_webhook_secret(),
        created_at=now_ms(),
    )
    apply_limits(key, tenancy)
    session.add(key)
    session.flush()
    remember_secret(session, pepper)  # so a move to another machine can check its secret
    record(session, KeyCreated(key_id=key.id, storage_limit_bytes=limits.storage_limit_bytes))
    return NewKey(
        id=key.id, api_key=secret, client_name=key.client_name, webhook_secret=key.webhook_secret or ""
    )


_KEYS = table_of(ApiKey).c
_BY_HASH = select(  # built once: every request runs it
    _KEYS.id,
    _KEYS.client_name,
    _KEYS.key_type,
    _KEYS.key_hash,
    _KEYS.revoked_at,
    _KEYS.max_resolution,
    _KEYS.max_duration_seconds,
    _KEYS.max_filesize_bytes,
    _KEYS.stripe_subscription_id,
    _KEYS.rate_limit_per_minute,
    _KEYS.max_concurrent_jobs,
).where(_KEYS.key_hash == bindparam("digest"))


def find_key(session: Session, digest: str) -> AuthenticatedKey | None:
    """The active key whose hash is ``digest``."""
    row = session.connection().execute(_BY_HASH, {"digest": digest}).first()
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(row.key_hash, digest):  # belt and braces: constant-time
        return None
    return AuthenticatedKey(
        id=row.id,
        client_name=row.client_name,
        key_type=row.key_type,
        max_resolution=row.max_resolution,
        max_duration_seconds=row.max_duration_seconds,
        max_filesize_bytes=row.max_filesize_bytes,
        stripe_subscription_id=row.stripe_subscription_id,
        rate_limit_per_minute=row.rate_limit_per_minute,
        max_concurrent_jobs=row.max_concurrent_jobs,
    )


def authenticate(session: Session, api_key: str, pepper: str) -> AuthenticatedKey | None:
    return find_key(session, hash_key(api_key, pepper))


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.execute(select(ApiKey).order_by(ApiKey.created_at)).scalars())


def link_subscription(session: Session, key_id: str, subscription_id: str) -> None:
    """Link a key to (another) Stripe subscription; an unlimited key becomes a stripe key.
    Trial keys keep their quota and type: make a new key for them."""
    key = session.get(ApiKey, key_id)
    if key is None or key.revoked_at is not None:
        raise NotFound(f"No active key with id {key_id}")
    if not subscription_id.startswith("sub_"):
        raise InvalidInput("A Stripe subscription id starts with sub_")
    if key.key_type == "trial":
        raise InvalidInput("A trial key cannot be linked to Stripe; create a stripe key instead")
    key.key_type, key.stripe_subscription_id = "stripe", subscription_id
    session.flush()


ROTATION_GRACE_MS = DAY_MS


def rotate_webhook_secret(session: Session, key_id: str, *, now: int) -> str:
    """A new signing secret; the old one keeps signing too for 24 hours, so receivers can
    switch without missing a delivery. Returns the new secret."""
    key = session.get(ApiKey, key_id)
    if key is None or key.revoked_at is not None:
        raise NotFound(f"No active key with id {key_id}")
    key.previous_webhook_secret = key.webhook_secret
    key.previous_webhook_secret_until = now + ROTATION_GRACE_MS
    key.webhook_secret = new_webhook_secret()
    session.flush()
    return key.webhook_secret


def revoke_key(session: Session, key_id: str) -> None:
    result = session.execute(
        update(ApiKey).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None)).values(revoked_at=now_ms())
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise NotFound(f"No active key with id {key_id}")


def any_key_exists(session: Session) -> bool:
    return session.execute(select(ApiKey.id).limit(1)).first() is not None
