from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from squall.db.base import Base, new_id


class ApiKey(Base):
    """A client's key. Only a keyed hash of the secret is stored."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    client_name: Mapped[str] = mapped_column(String(200))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_prefix: Mapped[str] = mapped_column(String(16))
    key_type: Mapped[str] = mapped_column(String(16), default="unlimited")
    max_resolution: Mapped[int | None] = mapped_column(Integer)
    max_duration_seconds: Mapped[int | None] = mapped_column(Integer)
    max_filesize_bytes: Mapped[int | None] = mapped_column(BigInteger)
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(255))
    retention_days: Mapped[int | None] = mapped_column(Integer)  # outputs deleted after this
    # Standard Webhooks signing secrets (``whsec_…``); after a rotation the previous one
    # signs too, until ``previous_webhook_secret_until``, so receivers can switch over.
    webhook_secret: Mapped[str | None] = mapped_column(String(100))
    previous_webhook_secret: Mapped[str | None] = mapped_column(String(100))
    previous_webhook_secret_until: Mapped[int | None] = mapped_column(BigInteger)
    # Tenancy (issue 15): jobs running at once, requests per minute (None: the operator's
    # default), and where usage alerts go (None: the job's own webhook_url).
    max_concurrent_jobs: Mapped[int | None] = mapped_column(Integer)
    rate_limit_per_minute: Mapped[int | None] = mapped_column(Integer)
    alert_webhook_url: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)


class KeyCookies(Base):
    """A key's own cookies (Netscape text), sealed with ``squall.crypto`` (purpose "cookies",
    the key's id as context): never stored, returned or logged in the clear."""

    __tablename__ = "key_cookies"

    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"), primary_key=True)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class ServerFact(Base):
    """Facts about this installation that travel with its database, such as the fingerprint of
    the secret its keys are hashed with (``keys/fingerprint.py``)."""

    __tablename__ = "server_facts"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
