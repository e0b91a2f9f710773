"""Time in integer milliseconds since the epoch (the unit of every stored timestamp).

Tests move time by replacing ``now_ms``; nothing else reads the wall clock for state."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime

DAY_MS = 86_400_000
HOUR_MS = 3_600_000


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def utc_day(ms: int) -> date:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).date()


def hour_of(ms: int) -> str:
    """The UTC hour, "00".."23" (the dimension of hourly metrics)."""
    return f"{ms // HOUR_MS % 24:02d}"


def day_start_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
