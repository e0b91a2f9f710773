"""``squall storage reconcile`` over every backend in use: the operator's storage (the jobs
bound to no customer bucket), then each key's own buckets, one report per bucket and
folder root. In a customer bucket only objects under ``{folder_prefix}{base_folder}/`` are
compared: the rest of the bucket is the customer's business."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from squall.audit.storage import Reconciliation, reconcile
from squall.errors import SquallError
from squall.keys.storage_models import JobStorage, StorageBackend
from squall.keys.storage_service import StoragePicker, customer_folder


@dataclass
class BackendReport:
    label: str
    key_id: str | None
    result: Reconciliation | None = None
    problem: str | None = None  # could not be listed

    @property
    def drift(self) -> bool:
        return self.problem is not None or (self.result is not None and self.result.drift)


@dataclass
class Reports:
    backends: list[BackendReport] = field(default_factory=list)
    unlistable_request_jobs: int = 0  # jobs in buckets sent with a request, credentials erased

    @property
    def drift(self) -> bool:
        return any(report.drift for report in self.backends)

    def as_dict(self) -> dict[str, Any]:
        operator = self.backends[0].result.as_dict() if self.backends and self.backends[0].result else {}
        return {**operator, "ok": not self.drift, "unlistable_request_jobs": self.unlistable_request_jobs,
                "backends": [{"backend": r.label, "key_id": r.key_id, "ok": not r.drift, "problem": r.problem,
                              **(r.result.as_dict() if r.result else {})} for r in self.backends]}  # fmt: skip

    def as_text(self) -> str:
        parts = []
        for n, report in enumerate(self.backends):
            body = report.result.as_text() if report.result is not None else str(report.problem)
            parts.append(body if n == 0 else f"{report.label} (key {report.key_id}):\n{body}")
        if self.unlistable_request_jobs:
            parts.append(f"{self.unlistable_request_jobs} jobs stored in request-supplied buckets "
                         "(not listed: their credentials were erased when the jobs ended)")  # fmt: skip
        parts.append("drift found" if self.drift else "no drift")
        return "\n".join(parts)


def reconcile_all(session: Session, picker: StoragePicker) -> Reports:
    reports = Reports()
    bound = select(JobStorage.job_id)
    operator = reconcile(session, picker.operator.listing(), jobs=lambda column: column.not_in(bound))
    reports.backends.append(BackendReport("operator storage", None, operator))
    groups: dict[tuple[str, str, str | None, str, str], list[StorageBackend]] = defaultdict(list)
    for row in session.scalars(select(StorageBackend).order_by(StorageBackend.created_at)):
        if row.per_request and row.sealed is None:
            reports.unlistable_request_jobs += _job_count(session, [row.id])
            continue
        groups[(row.key_id, row.provider, row.endpoint, row.bucket, customer_folder(row, None))].append(row)
    for (key_id, provider, _, bucket, root), rows in groups.items():
        ids = [row.id for row in rows]
        report = BackendReport(f"{provider} bucket '{bucket}', under {root}/", key_id)
        try:
            storage = picker.for_row(rows[-1])
            listing = [(k, size) for k, size in storage.listing() if k.startswith(f"{root}/")]
            jobs = select(JobStorage.job_id).where(JobStorage.backend_id.in_(ids))
            report.result = reconcile(session, listing, jobs=lambda column, jobs=jobs: column.in_(jobs))  # type: ignore[misc]
        except SquallError as exc:
            report.problem = f"could not be listed: {exc.message}"
        reports.backends.append(report)
    return reports


def _job_count(session: Session, backend_ids: list[str]) -> int:
    return len(session.scalars(select(JobStorage.job_id).where(JobStorage.backend_id.in_(backend_ids))).all())
