"""When to try again: one policy type that jobs, webhook deliveries and meter reports each
configure (procrastinate's ``RetryStrategy`` is the model)."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """The wait after failed attempt ``n`` (1-based): ``schedule_ms[n-1]`` when a schedule is
    given (no attempt after its end), else ``first_ms * multiplier**(n-1)`` up to ``max_ms``;
    then ``± jitter`` of it at random. ``max_attempts`` caps the attempts in all."""

    first_ms: float = 0.0
    multiplier: float = 2.0
    max_ms: float | None = None
    schedule_ms: tuple[float, ...] = ()
    max_attempts: int | None = None
    jitter: float = 0.0

    @classmethod
    def exponential(
        cls, first_ms: float, *, max_ms: float | None = None, max_attempts: int | None = None
    ) -> RetryPolicy:
        return cls(first_ms=first_ms, max_ms=max_ms, max_attempts=max_attempts)

    @classmethod
    def scheduled(cls, schedule_ms: tuple[float, ...], *, jitter: float = 0.0) -> RetryPolicy:
        return cls(schedule_ms=schedule_ms, jitter=jitter)

    def delay_ms(self, attempt: int, *, max_attempts: int | None = None) -> int | None:
        """The wait before the next attempt after failed attempt ``attempt``, or None when no
        attempt is left. ``max_attempts`` overrides the policy's (a job keeps the cap it was
        admitted with)."""
        cap = max_attempts if max_attempts is not None else self.max_attempts
        if cap is not None and attempt >= cap:
            return None
        if self.schedule_ms:
            if attempt > len(self.schedule_ms):
                return None
            delay = self.schedule_ms[attempt - 1]
        else:
            delay = self.first_ms * self.multiplier ** (attempt - 1)
            if self.max_ms is not None:
                delay = min(delay, self.max_ms)
        if self.jitter:
            delay *= random.uniform(1 - self.jitter, 1 + self.jitter)
        return int(delay)
