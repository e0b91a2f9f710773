"""Storage in this process's memory: the test double beside local and S3 (as httpx has its
``MockTransport``), for tests of the service and queue logic that need no files. It keeps the
protocol's promises: all-or-nothing puts that never overwrite unless asked, and sizes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

from squall.errors import StorageError
from squall.storage.base import CHUNK, ByteStream


class MemoryStorage:
    name = "memory"

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self.fail_next: str | None = None  # a message: the next call fails with it

    def _check(self) -> None:
        message, self.fail_next = self.fail_next, None
        if message is not None:
            raise StorageError(message)

    def put(self, source: Path, key: str, *, overwrite: bool) -> bool:
        data = source.read_bytes()
        with self._lock:
            self._check()
            if not overwrite and key in self.objects:
                return False
            self.objects[key] = data
            return True

    def delete(self, key: str) -> None:
        with self._lock:
            self._check()
            self.objects.pop(key, None)

    def exists(self, key: str) -> bool:
        return key in self.objects

    def size(self, key: str) -> int | None:
        data = self.objects.get(key)
        return None if data is None else len(data)

    def local_path(self, key: str) -> Path | None:
        return None

    def presigned_url(self, key: str, filename: str, expires_seconds: int) -> str | None:
        return None

    def fetch(self, key: str, target: Path) -> None:
        data = self.objects.get(key)
        if data is None:
            raise StorageError(f"No object {key}")
        target.write_bytes(data)

    def read_range(self, key: str, start: int, end: int) -> ByteStream:
        with self._lock:
            self._check()
            data = self.objects.get(key)
        if data is None:
            raise StorageError(f"No object {key}")
        view = memoryview(data)[start:end]
        return ByteStream(bytes(view[at : at + CHUNK]) for at in range(0, len(view), CHUNK))

    def listing(self) -> Iterator[tuple[str, int]]:
        for key, data in sorted(self.objects.items()):
            yield key, len(data)
