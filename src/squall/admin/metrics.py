"""Prometheus metrics of the queue, read from the database at scrape time (every API process
reports the same numbers). Labels are bounded: status, priority (0-10), outcome; no per-key
series."""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import case, func, select

from squall.clock import DAY_MS
from squall.db import Database
from squall.jobs.models import Job, JobStatus
from squall.jobs.workers import WorkerProcess
from squall.keys.ratelimit import RateLimiter
from squall.webhooks.models import WebhookDelivery

DURATION_BUCKETS_S = (1, 5, 15, 60, 300, 900, 3600)


class QueueCollector(Collector):
    def __init__(self, db: Database, limiter: RateLimiter) -> None:
        self.db = db
        self.limiter = limiter

    def collect(self) -> Iterator[Metric]:
        now = int(time.time() * 1000)
        with self.db.read() as session:
            waiting = session.execute(
                select(Job.priority, func.count(), func.min(Job.created_at))
                .where(Job.status == JobStatus.PENDING)
                .group_by(Job.priority)
            ).all()
            claims = session.execute(select(func.count()).where(Job.started_at >= now - 60_000)).scalar_one()
            durations = session.execute(
                select((Job.finished_at - Job.started_at) / 1000.0).where(
                    Job.finished_at >= now - DAY_MS, Job.started_at.is_not(None)
                )
            ).scalars()
            buckets = _buckets([float(d) for d in durations if d is not None])
            deliveries = session.execute(
                select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status)
            ).all()
            workers = session.execute(
                select(
                    func.count(),
                    func.coalesce(
                        func.sum(case((WorkerProcess.last_heartbeat_at >= now - 60_000, 1), else_=0)), 0
                    ),
                    func.min(WorkerProcess.last_heartbeat_at),
                )
            ).one()
        depth = GaugeMetricFamily("squall_queue_depth", "Jobs waiting, by priority", labels=["priority"])
        oldest = GaugeMetricFamily(
            "squall_queue_oldest_wait_seconds", "Age of the oldest waiting job", labels=["priority"]
        )
        for priority, count, first in waiting:
            depth.add_metric([str(priority)], float(count))
            oldest.add_metric([str(priority)], max(0.0, (now - first) / 1000))
        yield depth
        yield oldest
        yield GaugeMetricFamily(
            "squall_claims_last_minute", "Jobs claimed by workers in the last minute", value=claims
        )
        yield HistogramMetricFamily(
            "squall_job_duration_seconds", "Run time of the jobs that ended in the last 24 hours",
            buckets=buckets[0], sum_value=buckets[1],
        )  # fmt: skip
        sent = GaugeMetricFamily(
            "squall_webhook_deliveries", "Webhook deliveries by status", labels=["status"]
        )
        for status, count in deliveries:
            sent.add_metric([status], float(count))
        yield sent
        yield CounterMetricFamily(
            "squall_rate_limited_requests",
            "Requests answered 429 by this API process",
            value=self.limiter.refused,
        )
        alive = GaugeMetricFamily("squall_workers", "Worker processes by heartbeat state", labels=["state"])
        alive.add_metric(["alive"], float(workers[1]))
        alive.add_metric(["silent"], float(workers[0] - workers[1]))
        yield alive
        if workers[2] is not None:
            yield GaugeMetricFamily(
                "squall_worker_heartbeat_oldest_seconds", "Seconds since the quietest worker's heartbeat",
                value=(now - workers[2]) / 1000,
            )  # fmt: skip


def _buckets(values: list[float]) -> tuple[list[tuple[str, float]], float]:
    cumulative = [(str(bound), float(sum(v <= bound for v in values))) for bound in DURATION_BUCKETS_S]
    return [*cumulative, ("+Inf", float(len(values)))], sum(values)
