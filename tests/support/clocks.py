"""Clocks of hosts whose time is off, for the clock-skew tests (in this process; the storm's
worker processes have theirs faked by ``skewclock.c``)."""

from __future__ import annotations

from squall.clock import SYSTEM


class SkewedClock:
    """This host's wall clock, ``offset_ms`` off."""

    def __init__(self, offset_ms: int) -> None:
        self.offset_ms = offset_ms

    def now_ms(self) -> int:
        return SYSTEM.now_ms() + self.offset_ms
