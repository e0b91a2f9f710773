"""What the keys domain tells the others."""

from __future__ import annotations

from dataclasses import dataclass

from squall.events import DomainEvent


@dataclass(frozen=True)
class KeyCreated(DomainEvent):
    key_id: str
    storage_limit_bytes: int | None
