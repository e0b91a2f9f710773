"""A bounded on-disk cache of objects from a remote (S3) backend, so repeat downloads are
served without reading the bucket.

Objects never change once stored (a key is never overwritten), so an entry is valid until
it is evicted. Entries are filled into a temporary file and renamed into place, so a reader
never sees a partial one; concurrent misses of one object in one process wait for a single
fill. Eviction is least recently used (a hit touches the entry's mtime) and runs after each
fill until the cache is within its size. A file being served while it is evicted stays
readable through its open descriptor (POSIX unlink semantics).

Objects too large for the cache are not stored; their sizes are remembered (a bounded map,
in memory), so the ranges a player asks for one after another cost one ranged read each,
not a size lookup besides."""

from __future__ import annotations

import hashlib
import os
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from squall.logging import get_logger

log = get_logger("squall.delivery")
IN_USE_SECONDS = 60.0
KNOWN_SIZES = 4096  # sizes of uncached objects remembered (about 100 bytes each)


class DeliveryCache:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.root.mkdir(parents=True, exist_ok=True)
        self.sweep()
        # Striped: one lock per object would grow without bound.
        self._locks = [threading.Lock() for _ in range(64)]
        self._sizes: OrderedDict[str, int] = OrderedDict()
        self._sizes_lock = threading.Lock()

    def path_for(self, key: str) -> Path:
        return self.root / hashlib.sha256(key.encode()).hexdigest()

    def lookup(self, key: str) -> Path | None:
        """The cached copy (marked as just used), or None."""
        path = self.path_for(key)
        try:
            os.utime(path)
        except FileNotFoundError:
            return None
        return path

    def known_size(self, key: str) -> int | None:
        """The size remembered for an object too large to cache, or None."""
        with self._sizes_lock:
            size = self._sizes.get(key)
            if size is not None:
                self._sizes.move_to_end(key)
            return size

    def remember_size(self, key: str, size: int) -> None:
        with self._sizes_lock:
            self._sizes[key] = size
            self._sizes.move_to_end(key)
            while len(self._sizes) > KNOWN_SIZES:
                self._sizes.popitem(last=False)

    def fill(self, key: str, size: int, fetch: Callable[[Path], None]) -> tuple[Path, bool]:
        """(path, was_cached): the cached copy, fetched with ``fetch(target)`` on a miss. An
        object larger than the whole cache is fetched to a private file the caller deletes
        (``was_cached`` False and the path outside the cache's names)."""
        if size > self.max_bytes:
            target = self.root / f".uncached.{uuid.uuid4().hex}"
            fetch(target)
            return target, False
        with self._lock_for(key):
            found = self.lookup(key)
            if found is not None:  # another request filled it while this one waited
                return found, True
            path = self.path_for(key)
            staging = self.root / f".fill.{uuid.uuid4().hex}"
            try:
                fetch(staging)
                os.replace(staging, path)
            finally:
                staging.unlink(missing_ok=True)
        self.evict(keep=path)
        return path, False

    def evict(self, keep: Path | None = None) -> int:
        """Delete least recently used entries until the cache fits; returns bytes freed.
        Entries used in the last ``IN_USE_SECONDS`` are kept even over the limit: a request
        may be about to open one (another process may be evicting at the same time)."""
        entries = []
        for entry in os.scandir(self.root):
            try:
                if entry.is_file() and not entry.name.startswith("."):
                    stat = entry.stat()
                    entries.append((stat.st_mtime, stat.st_size, Path(entry.path)))
            except FileNotFoundError:  # evicted by someone else meanwhile
                continue
        total = sum(size for _, size, _ in entries)
        freed, recent = 0, time.time() - IN_USE_SECONDS
        for mtime, size, path in sorted(entries):
            if total - freed <= self.max_bytes or mtime > recent:
                break
            if path == keep:
                continue
            path.unlink(missing_ok=True)
            freed += size
        if freed:
            log.info("delivery cache evicted", bytes=freed)
        return freed

    def sweep(self, older_than_seconds: float = 3600) -> None:
        """Remove what interrupted fills and uncached reads left behind (dot-files)."""
        cutoff = time.time() - older_than_seconds
        for entry in os.scandir(self.root):
            try:
                if entry.name.startswith(".") and entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
            except FileNotFoundError:
                continue

    def _lock_for(self, key: str) -> threading.Lock:
        return self._locks[int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % len(self._locks)]
