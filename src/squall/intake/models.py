from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from squall.db.base import Base


class IdempotentRequest(Base):
    """The first answer to a request sent with an ``Idempotency-Key``, replayed for retries of
    the same request; written in the same transaction as the jobs it created."""

    __tablename__ = "idempotent_requests"

    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[int] = mapped_column(BigInteger, index=True)  # pruned by age
