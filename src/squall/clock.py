"""Time in integer milliseconds since the epoch (the unit of every stored timestamp).

Whatever reads the time for state takes a ``Clock``: the system's in production, a
``ManualClock`` in tests that move time (``tests/support/clock.py``), so no test patches a
module's globals."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from typing import Protocol

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MINUTE_MS = 60_000


class Clock(Protocol):
    def now_ms(self) -> int: ...


class SystemClock:
    """The machine's wall clock."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class ManualClock:
    """A clock that moves only when told to (tests, replays)."""

    def __init__(self, now_ms: int) -> None:
        self.now = now_ms

    def now_ms(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms


SYSTEM = SystemClock()


def now_ms() -> int:
    """The system clock's time, for code that records when something happened outside any
    clock-driven state (key creation by the CLI, log lines)."""
    return SYSTEM.now_ms()


def utc_day(ms: int) -> date:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).date()


def hour_of(ms: int) -> str:
    """The UTC hour, "00".."23" (the dimension of hourly metrics)."""
    return f"{ms // HOUR_MS % 24:02d}"


def day_start_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
