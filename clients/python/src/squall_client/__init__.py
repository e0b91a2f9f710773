"""Python client for Squall, the self-hosted, Tornado-compatible media ingest API.

>>> from squall_client import Squall
>>> job = Squall("sk_…", "http://127.0.0.1:8000").download("https://example.com/talk.mp4")
"""

from squall_client._core import RetryPolicy
from squall_client.async_client import AsyncSquall
from squall_client.calls import BulkItem, JobOptions
from squall_client.client import Squall
from squall_client.errors import (
    APIConnectionError,
    AuthenticationError,
    BatchTimeout,
    Conflict,
    JobFailed,
    JobTimeout,
    NotFound,
    PermissionDenied,
    QuotaExceeded,
    RateLimited,
    ServerError,
    SquallError,
    ValidationError,
    WebhookVerificationError,
)
from squall_client.models import (
    Batch,
    BatchCreated,
    BatchPage,
    BatchStarted,
    BulkCreated,
    DailyStat,
    DashboardStats,
    FileDeleted,
    Job,
    JobCancelled,
    JobCreated,
    JobPage,
    JobRetried,
    Metadata,
    NetworkDay,
    RenameResult,
    StorageDay,
    TranscodingDay,
    Usage,
)
from squall_client.tornado import TornadoAPI
from squall_client.webhooks import verify_webhook

__version__ = "0.1.0"

__all__ = [
    "APIConnectionError",
    "AsyncSquall",
    "AuthenticationError",
    "Batch",
    "BatchCreated",
    "BatchPage",
    "BatchStarted",
    "BatchTimeout",
    "BulkCreated",
    "BulkItem",
    "Conflict",
    "DailyStat",
    "DashboardStats",
    "FileDeleted",
    "Job",
    "JobCancelled",
    "JobCreated",
    "JobFailed",
    "JobOptions",
    "JobPage",
    "JobRetried",
    "JobTimeout",
    "Metadata",
    "NetworkDay",
    "NotFound",
    "PermissionDenied",
    "QuotaExceeded",
    "RateLimited",
    "RenameResult",
    "RetryPolicy",
    "ServerError",
    "Squall",
    "SquallError",
    "StorageDay",
    "TornadoAPI",
    "TranscodingDay",
    "Usage",
    "ValidationError",
    "WebhookVerificationError",
    "verify_webhook",
]
