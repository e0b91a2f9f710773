"""A table as a leased queue (jobs, webhook deliveries, meter reports), and retry policies."""

from squall.queue.backoff import RetryPolicy
from squall.queue.leases import LeasedQueue

__all__ = ["LeasedQueue", "RetryPolicy"]
