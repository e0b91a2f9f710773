"""The storage protocol every backend implements."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol


class Storage(Protocol):
    name: str

    def put(self, source: Path, key: str, *, overwrite: bool) -> bool:
        """Store ``source`` under ``key`` in one step (readers never see a partial object).
        Returns False, writing nothing, when the key exists and ``overwrite`` is False."""
        ...

    def delete(self, key: str) -> None: ...

    def exists(self, key: str) -> bool: ...

    def size(self, key: str) -> int | None: ...

    def local_path(self, key: str) -> Path | None:
        """A path on this machine for backends that have one (used to serve downloads)."""
        ...

    def presigned_url(self, key: str, filename: str, expires_seconds: int) -> str | None:
        """A direct download link from the backend itself, or None (then Squall serves it)."""
        ...

    def fetch(self, key: str, target: Path) -> None:
        """Copy the object to ``target`` on this machine (the delivery cache fills this way)."""
        ...

    def listing(self) -> Iterator[tuple[str, int]]:
        """Every object as (key, size): what reconciliation compares with the books."""
        ...
