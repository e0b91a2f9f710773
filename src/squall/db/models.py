"""Imports every domain's models so the metadata is complete (for Alembic and tests)."""

from squall.db.base import Base
from squall.jobs.models import Job
from squall.keys.models import ApiKey
from squall.metering.models import DailyRollup, KeyCounters, UsageEvent

__all__ = ["ApiKey", "Base", "DailyRollup", "Job", "KeyCounters", "UsageEvent"]
