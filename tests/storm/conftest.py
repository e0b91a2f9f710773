"""Fixtures of the storm tests: a fleet of real Squall processes, closed after each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from squall.settings import Settings
from tests.support.fleet import Fleet


@pytest.fixture
def fleet(settings: Settings) -> Iterator[Fleet]:
    fleet = Fleet(settings)
    try:
        yield fleet
    finally:
        fleet.close()
