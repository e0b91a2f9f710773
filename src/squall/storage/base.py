"""The storage protocol every backend implements."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

CHUNK = 256 * 1024  # what a ranged read hands over at a time: memory per stream, not per object


class ByteStream:
    """An object's bytes as they arrive, in chunks. ``close()`` releases the connection to the
    backend, also when the stream is dropped before its first chunk (a generator would not)."""

    def __init__(self, chunks: Iterator[bytes], close: Callable[[], None] = lambda: None) -> None:
        self._chunks, self._close = chunks, close

    def __iter__(self) -> ByteStream:
        return self

    def __next__(self) -> bytes:
        return next(self._chunks)

    def close(self) -> None:
        self._close()


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

    def read_range(self, key: str, start: int, end: int) -> ByteStream:
        """Bytes ``start`` to ``end - 1`` of the object (as a slice), asked of the backend as
        one ranged read: objects too large for the delivery cache are served this way. The
        request is made before this returns (a missing object fails here, not mid-stream)."""
        ...

    def listing(self) -> Iterator[tuple[str, int]]:
        """Every object as (key, size): what reconciliation compares with the books."""
        ...
