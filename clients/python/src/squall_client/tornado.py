"""``TornadoAPI``: the client under the Tornado SDK's name, so code written for
``pip install tornado-api`` runs against Squall once it points at Squall's URL.

The Tornado docs show one SDK call, ``TornadoAPI(api_key=...).download(url)`` returning the
finished job with its ``s3_url``. The flat method names below follow the Tornado API
reference's page names (``jobs/create`` → ``create_job``, ``user/get-usage`` →
``get_usage``, …); the SDK's own names for them are not documented, so these are a best
match, and everything of ``Squall`` (``jobs``, ``batches``, ``usage``…) is there too."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Unpack

from squall_client.calls import BulkItem, JobOptions
from squall_client.client import Squall
from squall_client.models import (
    Batch,
    BatchCreated,
    BatchStarted,
    BulkCreated,
    FileDeleted,
    Job,
    JobCancelled,
    JobCreated,
    JobPage,
    JobRetried,
    Metadata,
    RenameResult,
    Usage,
)


class TornadoAPI(Squall):
    """``TornadoAPI(api_key="sk_…", base_url="http://squall.example:8000").download(url).s3_url``"""

    def create_job(
        self, url: str, *, idempotency_key: str | None = None, **options: Unpack[JobOptions]
    ) -> JobCreated | BatchCreated:
        return self.jobs.create(url, idempotency_key=idempotency_key, **options)

    def get_job(self, job_id: str) -> Job:
        return self.jobs.get(job_id)

    get_status = get_job  # the reference's page is "jobs/get-status"

    def list_jobs(self, *, status: str | None = None, limit: int = 20, offset: int = 0) -> JobPage:
        return self.jobs.list(status=status, limit=limit, offset=offset)

    def cancel_job(self, job_id: str) -> JobCancelled:
        return self.jobs.cancel(job_id)

    def retry_job(self, job_id: str) -> JobRetried:
        return self.jobs.retry(job_id)

    def delete_file(self, job_id: str) -> FileDeleted:
        return self.jobs.delete_file(job_id)

    def create_bulk(
        self,
        items: Sequence[str | BulkItem],
        *,
        idempotency_key: str | None = None,
        **options: Unpack[JobOptions],
    ) -> BulkCreated:
        return self.jobs.bulk(items, idempotency_key=idempotency_key, **options)

    def get_metadata(self, url: str) -> Metadata:
        return self.metadata(url)

    def get_batch(self, batch_id: str) -> Batch:
        return self.batches.get(batch_id)

    def start_batch(self, batch_id: str) -> BatchStarted:
        return self.batches.start(batch_id)

    def rename_jobs(self, batch_id: str, renames: Mapping[str, str]) -> RenameResult:
        return self.batches.rename(batch_id, renames)

    def get_usage(self) -> Usage:
        return self.usage()
