"""Outbound proxies for source downloads. A job starts on one (spread over the list by its
id) and, when the source blames the client (HTTP 429, a bot check), moves on to the next
after a backoff; when every proxy was refused, the last refusal ends the attempt."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import TypeVar

from squall.errors import JobFailure

T = TypeVar("T")


class ClientBlamed(JobFailure):
    """The source refused this client (rate limit, bot check): another proxy may get through."""


def proxy_order(proxies: tuple[str, ...], seed: str) -> list[str | None]:
    """Every proxy once, starting at the one ``seed`` picks; ``[None]`` without proxies."""
    if not proxies:
        return [None]
    start = zlib.crc32(seed.encode()) % len(proxies)
    return [*proxies[start:], *proxies[:start]]


def through_proxies(
    order: list[str | None], attempt: Callable[[str | None], T], wait: Callable[[float], None], backoff: float
) -> T:
    """``attempt(proxy)`` on each proxy in turn while the source blames the client, waiting
    ``backoff`` seconds, doubled each time, in between."""
    for number, proxy in enumerate(order):
        try:
            return attempt(proxy)
        except ClientBlamed:
            if number == len(order) - 1:
                raise
            wait(backoff * 2**number)
    raise AssertionError("unreachable: the order is never empty")
