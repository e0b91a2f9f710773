"""Per-key request rate limits that hold across every API process of a deployment.

The shared state is the deployment's own database (Redis is not part of Squall; the
``limits`` library has no SQL storage): a fixed one-minute window per key in
``rate_limit_windows``, added to with one UPSERT ... RETURNING that answers the window's
total. Writing once per request would put a write transaction in front of every request
(SQLite has one writer), so each process counts locally and adds its count to the database
in batches: when ``batch`` requests have gathered, or ``sync_seconds`` have passed, and
the request that sends the batch is decided on the total the database answers.

Tolerance: a process decides at most ``batch - 1`` requests on its own between syncs, so
P processes together admit at most ``limit + P * (batch - 1)`` in a window, where ``batch``
is ``limit // 50`` (at least 1: a limit under 100 a minute is exact). Like every fixed
window, a burst at a window's end and the next window's start can reach twice the limit
within a minute."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite

from squall.db import Database
from squall.db.base import table_of
from squall.keys.rate_models import RateWindow

WINDOW_MS = 60_000
POLICY_NAME = "per-key"
_TABLE = table_of(RateWindow)


def batch_size(limit: int) -> int:
    return max(1, limit // 50)


@dataclass
class _KeyWindow:
    start: int = 0
    known_total: int = 0  # the database's total at the last sync
    unsynced: int = 0  # admitted here since then
    synced_at: float = 0.0
    syncing: bool = False


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int

    def headers(self) -> dict[str, str]:
        """draft-ietf-httpapi-ratelimit-headers (structured fields: q quota, w window, r
        remaining, t seconds to reset)."""
        return {
            "RateLimit-Policy": f'"{POLICY_NAME}";q={self.limit};w={WINDOW_MS // 1000}',
            "RateLimit": f'"{POLICY_NAME}";r={self.remaining};t={self.reset_seconds}',
        }


class RateLimiter:
    def __init__(
        self,
        db: Database,
        *,
        sync_seconds: float = 0.25,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.sync_seconds = sync_seconds
        self.clock = clock
        self.monotonic = monotonic
        self._windows: dict[str, _KeyWindow] = {}
        self._lock = threading.Lock()
        self.refused = 0  # requests answered 429 by this process (/metrics)

    def check(self, key_id: str, limit: int) -> Decision:
        """Count one request of ``key_id`` and say whether it is within ``limit`` a minute.
        It may write to the database: async callers use ``check_local`` and ``sync``."""
        decision, delta, window = self.check_local(key_id, limit)
        if decision is not None:
            return decision
        return self.sync(key_id, limit, window, delta)

    def check_local(self, key_id: str, limit: int) -> tuple[Decision | None, int, int]:
        """The decision made without the database, or (None, delta, window): send ``delta``
        with ``sync`` first. Never blocks on I/O."""
        now_ms = int(self.clock() * 1000)
        start = now_ms - now_ms % WINDOW_MS
        reset = max(1, (start + WINDOW_MS - now_ms + 999) // 1000)
        with self._lock:
            state = self._windows.setdefault(key_id, _KeyWindow())
            if state.start != start:  # a new minute: the old counts no longer matter
                state.start, state.known_total, state.unsynced, state.synced_at = start, 0, 0, 0.0
            estimate = state.known_total + state.unsynced
            due = self.monotonic() - state.synced_at >= self.sync_seconds or state.unsynced + 1 >= batch_size(
                limit
            )
            if due and not state.syncing:
                state.syncing = True
                delta, state.unsynced = state.unsynced + 1, 0
                return None, delta, start
            if estimate >= limit:
                self.refused += 1
                return Decision(False, limit, 0, reset), 0, start
            state.unsynced += 1
            return Decision(True, limit, max(0, limit - estimate - 1), reset), 0, start

    def sync(self, key_id: str, limit: int, window: int, delta: int) -> Decision:
        """Add ``delta`` (this request included) to the window in the database and decide this
        request on the total it answers."""
        try:
            total = self._add(key_id, window, delta)
        finally:
            with self._lock:
                self._windows[key_id].syncing = False
        now_ms = int(self.clock() * 1000)
        reset = max(1, (window + WINDOW_MS - now_ms + 999) // 1000)
        with self._lock:
            state = self._windows[key_id]
            if state.start == window:
                state.known_total, state.synced_at = total, self.monotonic()
            if total > limit:
                self.refused += 1
        return Decision(total <= limit, limit, max(0, limit - total), reset)

    def _add(self, key_id: str, window: int, delta: int) -> int:
        module = sqlite if self.db.is_sqlite else postgresql
        insert = module.insert(_TABLE).values(key_id=key_id, window_start=window, requests=delta)
        upsert = insert.on_conflict_do_update(
            index_elements=["key_id", "window_start"],
            set_={"requests": _TABLE.c.requests + insert.excluded.requests},
        ).returning(_TABLE.c.requests)
        with self.db.write() as session:
            total = int(session.execute(upsert).scalar_one())
            if total == delta:  # this process opened the window: drop the key's older ones
                session.execute(
                    delete(_TABLE).where(
                        _TABLE.c.key_id == key_id, _TABLE.c.window_start < window - WINDOW_MS
                    )
                )
        return total
