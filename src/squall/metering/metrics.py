"""Prometheus metrics read from the database at scrape time, so every API process reports the
same numbers however many there are."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from squall.db import Database
from squall.metering.models import KeyCounters as C


class UsageCollector(Collector):
    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[Metric]:
        with self.db.read() as session:
            row = session.execute(
                select(
                    func.coalesce(func.sum(C.jobs_pending), 0),
                    func.coalesce(func.sum(C.jobs_processing), 0),
                    func.coalesce(func.sum(C.jobs_completed), 0),
                    func.coalesce(func.sum(C.jobs_failed), 0),
                    func.coalesce(func.sum(C.used_bytes), 0),
                    func.coalesce(func.sum(C.reserved_bytes), 0),
                )
            ).one()
        jobs = GaugeMetricFamily("squall_jobs", "Jobs by status, all keys", labels=["status"])
        for status, value in zip(("pending", "processing", "completed", "failed"), row[:4], strict=True):
            jobs.add_metric([status], float(value))
        yield jobs
        yield GaugeMetricFamily("squall_storage_used_bytes", "Bytes stored, cumulative", value=float(row[4]))
        yield GaugeMetricFamily(
            "squall_storage_reserved_bytes", "Bytes reserved by active jobs", value=float(row[5])
        )
