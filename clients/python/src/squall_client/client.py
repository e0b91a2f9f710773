"""The synchronous client: ``Squall(api_key, base_url)``."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from typing import TypeVar, Unpack

import httpx

from squall_client import calls
from squall_client._core import Call, Poller, RetryPolicy, default_headers, resolve_settings, timeout_for
from squall_client.calls import BulkItem, DateLike, JobOptions
from squall_client.errors import APIConnectionError, BatchTimeout, JobTimeout
from squall_client.models import (
    Batch,
    BatchCreated,
    BatchPage,
    BatchStarted,
    BulkCreated,
    DailyStat,
    DashboardStats,
    FailureReason,
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

T = TypeVar("T")


class Squall:
    """A Squall API client. Transient failures are retried (``max_retries``); creates send an
    ``Idempotency-Key`` that every retry of the same call reuses, so no call makes two jobs.

    >>> client = Squall("sk_…", "http://127.0.0.1:8000")
    >>> job = client.download("https://example.com/talk.mp4", format="mkv")
    >>> job.status, job.download_url
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 3,
        retry_policy: RetryPolicy | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        self.api_key, self.base_url = resolve_settings(api_key, base_url)
        self.retry_policy = retry_policy or RetryPolicy(max_retries=max_retries)
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(timeout=timeout)
        self._headers = default_headers(self.api_key)
        self.jobs = Jobs(self)
        self.batches = Batches(self)
        self.dashboard = Dashboard(self)
        self.usage = UsageAPI(self)

    def request(self, call: Call[T]) -> T:
        """Send ``call``, retrying what the policy allows; the parsed answer or an exception."""
        attempt = 0
        while True:
            try:
                response = self._http.request(
                    call.method, self.base_url + call.path, params=call.query(), json=call.json,
                    headers={**self._headers, **call.headers()},
                    timeout=timeout_for(call, self._http.timeout),
                )  # fmt: skip
            except httpx.TransportError as error:
                wait = self.retry_policy.wait_before_retry(call, attempt, error=error)
                if wait is None:
                    raise APIConnectionError(f"{call.method} {call.path} failed: {error!r}") from error
            else:
                wait = self.retry_policy.wait_before_retry(call, attempt, response=response)
                if wait is None:
                    return call.finish(response)
            time.sleep(wait)
            attempt += 1

    def metadata(self, url: str) -> Metadata:
        """What the server can tell about ``url`` without downloading it (not counted)."""
        return self.request(calls.metadata(url))

    def download(
        self,
        url: str,
        *,
        wait: bool = True,
        timeout: float = 600.0,
        idempotency_key: str | None = None,
        poll_interval: float = 0.5,
        max_poll_interval: float = 5.0,
        **options: Unpack[JobOptions],
    ) -> Job:
        """Create a job for ``url`` and, with ``wait``, poll (backing off from
        ``poll_interval`` to ``max_poll_interval`` seconds) until it ends; returns the job
        (check ``job.status``, or call ``job.raise_for_status()``). ``JobTimeout`` after
        ``timeout`` seconds. A feed or playlist URL makes a batch: use ``jobs.create`` for those."""
        created = self.jobs.create(url, idempotency_key=idempotency_key, **options)
        if isinstance(created, BatchCreated):
            raise ValueError(
                f"{url} is a feed or playlist: it created batch {created.batch_id} "
                f"({created.total_episodes} jobs); follow it with client.batches.wait()"
            )
        if not wait:
            return self.jobs.get(created.job_id)
        return self.jobs.wait(created.job_id, timeout=timeout, poll_interval=poll_interval,
                              max_poll_interval=max_poll_interval)  # fmt: skip

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Squall:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Jobs:
    def __init__(self, client: Squall) -> None:
        self._client = client

    def create(
        self, url: str, *, idempotency_key: str | None = None, **options: Unpack[JobOptions]
    ) -> JobCreated | BatchCreated:
        """``POST /jobs``: a job, or a batch for a feed or playlist URL. An
        ``Idempotency-Key`` is generated unless given (give one to make retries of your own
        safe across processes)."""
        return self._client.request(calls.create_job(url, options, idempotency_key))

    def bulk(
        self,
        items: Sequence[str | BulkItem],
        *,
        idempotency_key: str | None = None,
        **options: Unpack[JobOptions],
    ) -> BulkCreated:
        """``POST /jobs/bulk``: up to 100 URLs (or ``{"url", "filename"}``) sharing ``options``."""
        return self._client.request(calls.create_bulk(items, options, idempotency_key))

    def get(self, job_id: str) -> Job:
        return self._client.request(calls.get_job(job_id))

    def list(self, *, status: str | None = None, limit: int = 20, offset: int = 0) -> JobPage:
        """One page, newest first. ``status`` as the API writes it or lowercase."""
        return self._client.request(calls.list_jobs(status=status, limit=limit, offset=offset))

    def iter(self, *, status: str | None = None, page_size: int = 100) -> Iterator[Job]:
        """Every job of the key, newest first, page after page (a job that moves between
        pages while they are read is yielded once)."""
        seen: set[str] = set()
        offset = 0
        while True:
            page = self.list(status=status, limit=page_size, offset=offset)
            for job in page.jobs:
                if job.id not in seen:
                    seen.add(job.id)
                    yield job
            if len(page.jobs) < page_size:
                return
            offset += page_size

    def wait(
        self,
        job_id: str,
        *,
        timeout: float = 600.0,
        poll_interval: float = 0.5,
        max_poll_interval: float = 5.0,
    ) -> Job:
        """Poll until the job ends; ``JobTimeout`` (carrying its last state) after ``timeout``."""
        poller = Poller(timeout, poll_interval, max_poll_interval)
        while not (job := self.get(job_id)).ended:
            pause = poller.pause()
            if pause is None:
                raise JobTimeout(f"Job {job_id} still {job.status} after {timeout:g} s", job=job)
            time.sleep(pause)
        return job

    def cancel(self, job_id: str) -> JobCancelled:
        """Cancel a Pending or Processing job (it becomes Failed, "Job cancelled by user")."""
        return self._client.request(calls.cancel_job(job_id))

    def retry(self, job_id: str) -> JobRetried:
        """Run a Failed or Warning job again, as a new job (``.job_id``)."""
        return self._client.request(calls.retry_job(job_id))

    def delete_file(self, job_id: str) -> FileDeleted:
        """Delete a completed job's stored files; the job record stays."""
        return self._client.request(calls.delete_file(job_id))


class Batches:
    def __init__(self, client: Squall) -> None:
        self._client = client

    def get(self, batch_id: str) -> Batch:
        return self._client.request(calls.get_batch(batch_id))

    def rename(self, batch_id: str, renames: Mapping[str, str]) -> RenameResult:
        """Rename episodes of a paused batch: ``{job_id: filename}``."""
        return self._client.request(calls.rename_batch_jobs(batch_id, renames))

    def start(self, batch_id: str) -> BatchStarted:
        """Queue the jobs of a paused batch."""
        return self._client.request(calls.start_batch(batch_id))

    def wait(
        self,
        batch_id: str,
        *,
        timeout: float = 3600.0,
        poll_interval: float = 1.0,
        max_poll_interval: float = 10.0,
    ) -> Batch:
        """Poll until every episode ended (status ``completed`` or ``finished``)."""
        poller = Poller(timeout, poll_interval, max_poll_interval)
        while not (batch := self.get(batch_id)).ended:
            pause = poller.pause()
            if pause is None:
                raise BatchTimeout(f"Batch {batch_id} still {batch.status} after {timeout:g} s", batch=batch)
            time.sleep(pause)
        return batch


class Dashboard:
    def __init__(self, client: Squall) -> None:
        self._client = client

    def stats(self) -> DashboardStats:
        return self._client.request(calls.dashboard_stats())

    def daily(self) -> list[DailyStat]:
        """The last 7 UTC days, oldest first, zero-filled."""
        return self._client.request(calls.dashboard_daily())

    def jobs(
        self, *, status: str | None = None, q: str | None = None, limit: int = 50, offset: int = 0
    ) -> JobPage:
        return self._client.request(calls.dashboard_jobs(status=status, q=q, limit=limit, offset=offset))

    def batches(self, *, limit: int = 50, offset: int = 0) -> BatchPage:
        return self._client.request(calls.dashboard_batches(limit=limit, offset=offset))

    def failures(self) -> list[FailureReason]:
        return self._client.request(calls.dashboard_failures())


class UsageAPI:
    """``client.usage()`` is ``GET /usage``; ``client.usage.network(start, end)`` and its
    siblings are the per-day date-range endpoints (ISO dates, both ends inclusive)."""

    def __init__(self, client: Squall) -> None:
        self._client = client

    def __call__(self) -> Usage:
        return self._client.request(calls.usage())

    def network(self, start: DateLike, end: DateLike) -> list[NetworkDay]:
        return self._client.request(calls.usage_network(start, end))

    def storage(self, start: DateLike, end: DateLike) -> list[StorageDay]:
        return self._client.request(calls.usage_storage(start, end))

    def transcoding(self, start: DateLike, end: DateLike) -> list[TranscodingDay]:
        return self._client.request(calls.usage_transcoding(start, end))


__all__ = ["Batches", "Dashboard", "Jobs", "Squall", "UsageAPI"]
