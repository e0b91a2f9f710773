"""The asyncio client: ``AsyncSquall(api_key, base_url)``, the same calls as ``Squall``, awaited."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
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


class AsyncSquall:
    """``Squall`` for asyncio: same arguments, same resources, every call awaited.

    >>> async with AsyncSquall("sk_…", "http://127.0.0.1:8000") as client:
    ...     job = await client.download("https://example.com/talk.mp4")
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 3,
        retry_policy: RetryPolicy | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.api_key, self.base_url = resolve_settings(api_key, base_url)
        self.retry_policy = retry_policy or RetryPolicy(max_retries=max_retries)
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=timeout)
        self._headers = default_headers(self.api_key)
        self.jobs = AsyncJobs(self)
        self.batches = AsyncBatches(self)
        self.dashboard = AsyncDashboard(self)
        self.usage = AsyncUsageAPI(self)

    async def request(self, call: Call[T]) -> T:
        """Send ``call``, retrying what the policy allows; the parsed answer or an exception."""
        attempt = 0
        while True:
            try:
                response = await self._http.request(
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
            await asyncio.sleep(wait)
            attempt += 1

    async def metadata(self, url: str) -> Metadata:
        """What the server can tell about ``url`` without downloading it (not counted)."""
        return await self.request(calls.metadata(url))

    async def download(
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
        created = await self.jobs.create(url, idempotency_key=idempotency_key, **options)
        if isinstance(created, BatchCreated):
            raise ValueError(
                f"{url} is a feed or playlist: it created batch {created.batch_id} "
                f"({created.total_episodes} jobs); follow it with client.batches.wait()"
            )
        if not wait:
            return await self.jobs.get(created.job_id)
        return await self.jobs.wait(created.job_id, timeout=timeout, poll_interval=poll_interval,
                              max_poll_interval=max_poll_interval)  # fmt: skip

    async def close(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncSquall:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class AsyncJobs:
    def __init__(self, client: AsyncSquall) -> None:
        self._client = client

    async def create(
        self, url: str, *, idempotency_key: str | None = None, **options: Unpack[JobOptions]
    ) -> JobCreated | BatchCreated:
        """``POST /jobs``: a job, or a batch for a feed or playlist URL. An
        ``Idempotency-Key`` is generated unless given (give one to make retries of your own
        safe across processes)."""
        return await self._client.request(calls.create_job(url, options, idempotency_key))

    async def bulk(
        self,
        items: Sequence[str | BulkItem],
        *,
        idempotency_key: str | None = None,
        **options: Unpack[JobOptions],
    ) -> BulkCreated:
        """``POST /jobs/bulk``: up to 100 URLs (or ``{"url", "filename"}``) sharing ``options``."""
        return await self._client.request(calls.create_bulk(items, options, idempotency_key))

    async def get(self, job_id: str) -> Job:
        return await self._client.request(calls.get_job(job_id))

    async def list(self, *, status: str | None = None, limit: int = 20, offset: int = 0) -> JobPage:
        """One page, newest first. ``status`` as the API writes it or lowercase."""
        return await self._client.request(calls.list_jobs(status=status, limit=limit, offset=offset))

    async def iter(self, *, status: str | None = None, page_size: int = 100) -> AsyncIterator[Job]:
        """Every job of the key, newest first, page after page (a job that moves between
        pages while they are read is yielded once)."""
        seen: set[str] = set()
        offset = 0
        while True:
            page = await self.list(status=status, limit=page_size, offset=offset)
            for job in page.jobs:
                if job.id not in seen:
                    seen.add(job.id)
                    yield job
            if len(page.jobs) < page_size:
                return
            offset += page_size

    async def wait(
        self,
        job_id: str,
        *,
        timeout: float = 600.0,
        poll_interval: float = 0.5,
        max_poll_interval: float = 5.0,
    ) -> Job:
        """Poll until the job ends; ``JobTimeout`` (carrying its last state) after ``timeout``."""
        poller = Poller(timeout, poll_interval, max_poll_interval)
        while not (job := await self.get(job_id)).ended:
            pause = poller.pause()
            if pause is None:
                raise JobTimeout(f"Job {job_id} still {job.status} after {timeout:g} s", job=job)
            await asyncio.sleep(pause)
        return job

    async def cancel(self, job_id: str) -> JobCancelled:
        """Cancel a Pending or Processing job (it becomes Failed, "Job cancelled by user")."""
        return await self._client.request(calls.cancel_job(job_id))

    async def retry(self, job_id: str) -> JobRetried:
        """Run a Failed or Warning job again, as a new job (``.job_id``)."""
        return await self._client.request(calls.retry_job(job_id))

    async def delete_file(self, job_id: str) -> FileDeleted:
        """Delete a completed job's stored files; the job record stays."""
        return await self._client.request(calls.delete_file(job_id))


class AsyncBatches:
    def __init__(self, client: AsyncSquall) -> None:
        self._client = client

    async def get(self, batch_id: str) -> Batch:
        return await self._client.request(calls.get_batch(batch_id))

    async def rename(self, batch_id: str, renames: Mapping[str, str]) -> RenameResult:
        """Rename episodes of a paused batch: ``{job_id: filename}``."""
        return await self._client.request(calls.rename_batch_jobs(batch_id, renames))

    async def start(self, batch_id: str) -> BatchStarted:
        """Queue the jobs of a paused batch."""
        return await self._client.request(calls.start_batch(batch_id))

    async def wait(
        self,
        batch_id: str,
        *,
        timeout: float = 3600.0,
        poll_interval: float = 1.0,
        max_poll_interval: float = 10.0,
    ) -> Batch:
        """Poll until every episode ended (status ``completed`` or ``finished``)."""
        poller = Poller(timeout, poll_interval, max_poll_interval)
        while not (batch := await self.get(batch_id)).ended:
            pause = poller.pause()
            if pause is None:
                raise BatchTimeout(f"Batch {batch_id} still {batch.status} after {timeout:g} s", batch=batch)
            await asyncio.sleep(pause)
        return batch


class AsyncDashboard:
    def __init__(self, client: AsyncSquall) -> None:
        self._client = client

    async def stats(self) -> DashboardStats:
        return await self._client.request(calls.dashboard_stats())

    async def daily(self) -> list[DailyStat]:
        """The last 7 UTC days, oldest first, zero-filled."""
        return await self._client.request(calls.dashboard_daily())

    async def jobs(
        self, *, status: str | None = None, q: str | None = None, limit: int = 50, offset: int = 0
    ) -> JobPage:
        return await self._client.request(
            calls.dashboard_jobs(status=status, q=q, limit=limit, offset=offset)
        )

    async def batches(self, *, limit: int = 50, offset: int = 0) -> BatchPage:
        return await self._client.request(calls.dashboard_batches(limit=limit, offset=offset))

    async def failures(self) -> list[FailureReason]:
        return await self._client.request(calls.dashboard_failures())


class AsyncUsageAPI:
    """``client.usage()`` is ``GET /usage``; ``client.usage.network(start, end)`` and its
    siblings are the per-day date-range endpoints (ISO dates, both ends inclusive)."""

    def __init__(self, client: AsyncSquall) -> None:
        self._client = client

    async def __call__(self) -> Usage:
        return await self._client.request(calls.usage())

    async def network(self, start: DateLike, end: DateLike) -> list[NetworkDay]:
        return await self._client.request(calls.usage_network(start, end))

    async def storage(self, start: DateLike, end: DateLike) -> list[StorageDay]:
        return await self._client.request(calls.usage_storage(start, end))

    async def transcoding(self, start: DateLike, end: DateLike) -> list[TranscodingDay]:
        return await self._client.request(calls.usage_transcoding(start, end))


__all__ = ["AsyncBatches", "AsyncDashboard", "AsyncJobs", "AsyncSquall", "AsyncUsageAPI"]
