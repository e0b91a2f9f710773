"""What the batches domain tells the others."""

from __future__ import annotations

from dataclasses import dataclass

from squall.events import DomainEvent


@dataclass(frozen=True)
class BatchEnded(DomainEvent):
    """Every episode of the batch has ended; ``status`` is completed or finished."""

    batch_id: str
    key_id: str
    show_url: str | None
    folder: str | None
    status: str
    completed: int
    failed: int
    total: int
    webhook_url: str | None
    at: int
