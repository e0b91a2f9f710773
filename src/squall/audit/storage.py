"""``squall storage reconcile``: what the books say is stored, against a listing of the
storage backend. It reports every difference and never fixes anything: a missing object
may be a backend outage, an unknown one may be another system's."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from squall.jobs.models import Job, JobStatus
from squall.metering import ledger
from squall.metering.models import UsageEvent

JobFilter = Callable[[Any], ColumnElement[bool]]
SHOWN = 20  # differences listed by name in the text report


@dataclass
class Reconciliation:
    books_objects: int = 0  # the ledger's storage.objects total
    books_bytes: int = 0
    listed_objects: int = 0  # what the backend holds
    listed_bytes: int = 0
    missing: list[str] = field(default_factory=list)  # in the books, not in storage
    unknown: list[str] = field(default_factory=list)  # in storage, in no job's books

    @property
    def drift(self) -> bool:
        return bool(
            self.missing
            or self.unknown
            or self.books_objects != self.listed_objects
            or self.books_bytes != self.listed_bytes
        )

    def as_dict(self) -> dict[str, Any]:
        return {"ok": not self.drift, **{k: v for k, v in self.__dict__.items()}}

    def as_text(self) -> str:
        lines = [
            f"books:   {self.books_objects} objects, {self.books_bytes} bytes",
            f"storage: {self.listed_objects} objects, {self.listed_bytes} bytes",
        ]
        for label, names in (
            ("missing from storage", self.missing),
            ("in storage, not in the books", self.unknown),
        ):
            if names:
                lines.append(f"{label}: {len(names)}")
                lines += [f"  {name}" for name in names[:SHOWN]]
                lines += [f"  … and {len(names) - SHOWN} more"] if len(names) > SHOWN else []
        lines.append("drift found" if self.drift else "no drift")
        return "\n".join(lines)


def reconcile(
    session: Session, listing: Iterable[tuple[str, int]], *, jobs: JobFilter | None = None
) -> Reconciliation:
    """``jobs``: which jobs' books this backend holds (a where-clause on a job id column);
    None for every job."""
    result = Reconciliation()
    metrics = UsageEvent.metric.in_([ledger.STORED_OBJECTS, ledger.STORED_BYTES])
    in_books = [metrics] if jobs is None else [metrics, jobs(UsageEvent.job_id)]
    totals = dict(
        session.execute(
            select(UsageEvent.metric, func.sum(UsageEvent.quantity))
            .where(*in_books)
            .group_by(UsageEvent.metric)
        ).all()
    )
    result.books_objects = int(totals.get(ledger.STORED_OBJECTS) or 0)
    result.books_bytes = int(totals.get(ledger.STORED_BYTES) or 0)
    expected: set[str] = set()
    completed = [Job.status == JobStatus.COMPLETED, Job.output_key.is_not(None)]
    rows = session.execute(
        select(Job.output_key, Job.subtitle_key, Job.thumbnail_key).where(
            *completed, *([] if jobs is None else [jobs(Job.id)])
        )
    )
    for row in rows:
        expected.update(key for key in row if key)
    listed: set[str] = set()
    for key, size in listing:
        listed.add(key)
        result.listed_objects += 1
        result.listed_bytes += size
    result.missing = sorted(expected - listed)
    result.unknown = sorted(listed - expected)
    return result
