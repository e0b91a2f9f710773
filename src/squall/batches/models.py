from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from squall.db.base import Base, new_id


class BatchStatus(StrEnum):
    PAUSED = "paused"
    PROCESSING = "processing"
    COMPLETED = "completed"  # every episode completed
    FINISHED = "finished"  # every episode ended, some without output


class Batch(Base):
    """Jobs created together: the episodes of a feed or playlist, or one bulk request.
    ``completed``: every episode completed; ``finished``: all ended, some without output."""

    __tablename__ = "batches"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"))
    kind: Mapped[str] = mapped_column(String(8))  # "feed" or "bulk"
    show_url: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str | None] = mapped_column(Text)
    folder: Mapped[str | None] = mapped_column(Text)
    webhook_url: Mapped[str | None] = mapped_column(Text)
    options: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    total_episodes: Mapped[int] = mapped_column(Integer)
    completed_episodes: Mapped[int] = mapped_column(Integer, default=0)
    failed_episodes: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[int] = mapped_column(BigInteger)
    finished_at: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_batches_key_created", "key_id", "created_at"),)
