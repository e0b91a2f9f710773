"""The registry of every domain's models, so the metadata is complete (for Alembic and
tests). It imports every domain, so it is wiring: nothing in a domain imports it."""

from squall.admin.models import OperatorToken
from squall.alerts.models import AlertState
from squall.batches.models import Batch
from squall.billing.models import BillingPeriod, MeterReport
from squall.db.base import Base
from squall.intake.models import IdempotentRequest
from squall.jobs.models import Job
from squall.jobs.workers import WorkerProcess
from squall.keys.models import ApiKey, KeyCookies, ServerFact
from squall.keys.rate_models import RateWindow
from squall.keys.storage_models import JobStorage, StorageBackend
from squall.metering.models import DailyRollup, KeyCounters, UsageEvent, UsageMonth
from squall.webhooks.models import WebhookDelivery

__all__ = [
    "AlertState",
    "ApiKey",
    "Base",
    "Batch",
    "BillingPeriod",
    "DailyRollup",
    "IdempotentRequest",
    "Job",
    "JobStorage",
    "KeyCookies",
    "KeyCounters",
    "MeterReport",
    "OperatorToken",
    "RateWindow",
    "ServerFact",
    "StorageBackend",
    "UsageEvent",
    "UsageMonth",
    "WebhookDelivery",
    "WorkerProcess",
]
