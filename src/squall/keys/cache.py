"""A short-lived, per-process cache of authenticated keys.

Every request authenticates; without a cache each one costs a database round trip. With it,
a revoked key keeps working for at most ``ttl`` seconds in a process that used it recently
(``SQUALL_AUTH_CACHE_SECONDS``, default 5; 0 turns the cache off)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from squall.keys.service import AuthenticatedKey


class KeyCache:
    def __init__(
        self, ttl: float, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[str, tuple[float, AuthenticatedKey]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, digest: str) -> AuthenticatedKey | None:
        if self.ttl <= 0:
            return None
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None:
                return None
            if self.clock() >= entry[0]:
                del self._entries[digest]
                return None
            return entry[1]

    def put(self, digest: str, key: AuthenticatedKey) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            self._entries[digest] = (self.clock() + self.ttl, key)
            self._entries.move_to_end(digest)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
