"""The Python client library (clients/python) against a real `squall serve`: downloads,
errors, idempotent retries, pages, batches, webhooks, the async client and the Tornado name."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import text

from squall.db import Database
from squall_client import (
    AsyncSquall,
    AuthenticationError,
    BatchCreated,
    Conflict,
    JobCreated,
    NotFound,
    QuotaExceeded,
    RetryPolicy,
    ServerError,
    Squall,
    ValidationError,
    WebhookVerificationError,
    verify_webhook,
)
from tests.clients.conftest import KeyMaker
from tests.support.receiver import WebhookReceiver
from tests.support.server import MediaServer

GB = 1024**3


def eventually(condition: Callable[[], bool], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_download_returns_a_completed_job_whose_file_downloads_and_the_books_show_it(
    squall_url: str, new_key: KeyMaker, media: MediaServer, receiver: WebhookReceiver
) -> None:
    key = new_key()
    hook = receiver.script("hook", 200)
    with Squall(key.api_key, squall_url) as client:
        job = client.download(media.url("media/tiny.mp4"), filename="Tiny clip", max_resolution=360,
                              webhook_url=hook, timeout=60)  # fmt: skip
        assert (job.status, job.step, job.error) == ("Completed", "Finished", None)
        assert job.s3_key is not None and job.s3_key.endswith("Tiny clip.mp4")
        assert job.download_url is not None and job.file_size
        file = httpx.get(job.download_url)
        assert file.status_code == 200 and len(file.content) == job.file_size
        assert file.content[4:8] == b"ftyp"  # an MP4, whole
        assert job.raise_for_status() is job

        usage = client.usage()
        assert (usage.usage_count, usage.storage_usage_bytes) == (1, job.file_size)
        today = datetime.now(UTC).date()
        assert client.usage.storage(today, today)[0].bytes_stored == job.file_size
        # The download above is metered once its response has ended: soon after the client has it.
        assert eventually(lambda: client.usage.network(today, today.isoformat())[0].requests == 1)
        assert sum(client.usage.transcoding(today, today)[0].minutes_by_priority.values()) > 0
        assert client.dashboard.stats().completed_jobs == 1
        assert client.dashboard.daily()[-1].completed == 1

    # The job_completed webhook, as Squall signed it with the key's secret.
    (delivery,) = receiver.wait_for(1, "hook")
    event = verify_webhook(delivery.body, delivery.headers, key.webhook_secret)
    assert (event["type"], event["job_id"], event["key"]) == ("job_completed", job.id, job.s3_key)
    tampered = delivery.body.replace(b"job_completed", b"job_failed")
    with pytest.raises(WebhookVerificationError):
        verify_webhook(tampered, delivery.headers, key.webhook_secret)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(delivery.body, delivery.headers, new_key("other").webhook_secret)


def test_errors_carry_the_status_and_the_servers_message_and_metadata_reads_a_url(
    squall_url: str, new_key: KeyMaker, media: MediaServer
) -> None:
    key = new_key()
    with Squall(key.api_key, squall_url) as client:
        with pytest.raises(NotFound) as missing:
            client.jobs.get("00000000-0000-0000-0000-000000000000")
        assert (missing.value.status_code, missing.value.body) == (404, {"error": "Job not found"})
        with pytest.raises(ValidationError) as invalid:
            client.jobs.create("http://127.0.0.1/x.mp4", format="avi")
        assert invalid.value.status_code == 400 and "Invalid format 'avi'" in invalid.value.message
        about = client.metadata(media.url("media/tiny.mp4"))  # read, not downloaded, not counted
        assert (about.title, about.extractor) == ("tiny", "generic")
        assert client.usage().usage_count == 0
    with Squall("sk_not_a_key", squall_url) as stranger, pytest.raises(AuthenticationError) as refused:
        stranger.usage()
    assert refused.value.status_code == 401


def test_a_full_key_raises_quota_exceeded_with_the_403s_fields(
    squall_url: str, new_key: KeyMaker, db: Database, media: MediaServer
) -> None:
    key = new_key(storage_limit_bytes=2 * GB)
    with db.write() as session:  # a key that has used all of its 2 GB
        session.execute(text("UPDATE key_counters SET used_bytes = :b WHERE key_id = :k"),
                        {"b": 2 * GB, "k": key.id})  # fmt: skip
    with Squall(key.api_key, squall_url) as client:
        with pytest.raises(QuotaExceeded) as refused:
            client.download(media.url("media/tiny.mp4"))
        error = refused.value
        assert (error.status_code, error.message) == (403, "Storage quota exceeded")
        assert (error.limit_gb, error.used_gb) == ("2.00", "2.00")
        assert error.detail is not None and "2 GB" in error.detail
        assert error.body["error"] == "Storage quota exceeded"
        if "stored_gb" in error.body:  # servers that also say what is stored and what is reserved
            assert error.stored_gb is not None and error.reserved_gb is not None
            assert float(error.stored_gb) >= 0 and float(error.reserved_gb) >= 0
        assert client.usage().usage_count == 0  # nothing was created


class LoseFirstAnswer(httpx.HTTPTransport):
    """A real HTTP transport that delivers every request, but loses the answer to the first
    one (as when a connection breaks after sending): the client cannot know the job exists."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        response = super().handle_request(request)
        if len(self.sent) == 1:
            response.read()
            response.close()
            raise httpx.ReadError("connection lost before the answer arrived", request=request)
        return response


def test_a_create_retried_by_the_client_returns_the_same_job(
    squall_url: str, new_key: KeyMaker, media: MediaServer
) -> None:
    key = new_key()
    transport = LoseFirstAnswer()
    fast = RetryPolicy(backoff=0.01)
    url = media.url("media/tiny.mp4")
    with httpx.Client(transport=transport) as http, Squall(key.api_key, squall_url, http_client=http,
                                                          retry_policy=fast) as client:  # fmt: skip
        created = client.jobs.create(url)
        assert isinstance(created, JobCreated) and created.replayed  # the first answer, replayed
        keys = {request.headers["Idempotency-Key"] for request in transport.sent}
        assert len(transport.sent) == 2 and len(keys) == 1  # two attempts, one key
        assert [job.id for job in client.jobs.iter()] == [created.job_id]
        assert client.usage().usage_count == 1

        again = client.jobs.create(url, idempotency_key=keys.pop())  # the caller's own retry
        assert again == created
        with pytest.raises(Conflict):  # the same key for another request
            client.jobs.create(url, idempotency_key=transport.sent[0].headers["Idempotency-Key"], priority=9)
        assert client.jobs.wait(created.job_id, timeout=60).status == "Completed"


class RefuseFirst(httpx.HTTPTransport):
    """A real HTTP transport behind a stand-in for a proxy that refuses the first requests
    (429 or 503 with ``Retry-After``, as given) before letting them through to Squall."""

    def __init__(self, *statuses: int) -> None:
        super().__init__()
        self.refusals = list(statuses)
        self.sent = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        if self.refusals:
            return httpx.Response(self.refusals.pop(0), headers={"Retry-After": "0"}, request=request)
        return super().handle_request(request)


def test_refusals_for_now_are_retried_a_bounded_number_of_times(squall_url: str, new_key: KeyMaker) -> None:
    key = new_key()
    fast = RetryPolicy(max_retries=2, backoff=0.01)
    refusing = RefuseFirst(429, 503)
    with httpx.Client(transport=refusing) as http, Squall(key.api_key, squall_url, http_client=http,
                                                          retry_policy=fast) as client:  # fmt: skip
        assert client.usage().client_name == "client tests"
    assert refusing.sent == 3  # two refusals, then Squall's answer

    stubborn = RefuseFirst(503, 503, 503, 503)
    with httpx.Client(transport=stubborn) as http, pytest.raises(ServerError) as gave_up:
        Squall(key.api_key, squall_url, http_client=http, retry_policy=fast).usage()
    assert gave_up.value.status_code == 503 and stubborn.sent == 3  # the first try and 2 retries


def test_pages_iterate_every_job_and_a_paused_batch_is_renamed_started_and_awaited(
    squall_url: str, new_key: KeyMaker, media: MediaServer
) -> None:
    key = new_key()
    with Squall(key.api_key, squall_url) as client:
        created = client.jobs.create(media.url("feed/show.rss?episodes=tiny.mp4,portrait.mp4"),
                                     paused=True)  # fmt: skip
        assert isinstance(created, BatchCreated) and created.total_episodes == 2
        listed = [job.id for job in client.jobs.iter(page_size=1)]  # pages of 1, 1 and 0 jobs
        assert sorted(listed) == sorted(created.episode_jobs)
        assert len(list(client.jobs.iter(status="Pending", page_size=5))) == 2
        assert client.jobs.list(limit=1).total == 2

        first = created.episodes[0].job_id
        assert client.batches.rename(created.batch_id, {first: "Opening"}).updated == 1
        assert client.batches.get(created.batch_id).status == "paused"
        assert client.batches.start(created.batch_id).started_jobs == 2
        batch = client.batches.wait(created.batch_id, timeout=90, poll_interval=0.3)
        assert (batch.status, batch.completed_episodes) == ("completed", 2)
        assert client.jobs.get(first).s3_key == "Opening.mp4"
        assert [b.id for b in client.dashboard.batches().batches] == [created.batch_id]


def test_the_async_client_makes_a_round_trip(squall_url: str, new_key: KeyMaker, media: MediaServer) -> None:
    key = new_key()

    async def scenario() -> tuple[str, int, list[str]]:
        async with AsyncSquall(key.api_key, squall_url) as client:
            job = await client.download(media.url("media/tiny.mp4"), timeout=60, poll_interval=0.2)
            usage = await client.usage()
            ids = [j.id async for j in client.jobs.iter()]
            assert ids == [job.id]
            return job.status, usage.usage_count, ids

    status, count, ids = asyncio.run(scenario())
    assert (status, count, len(ids)) == ("Completed", 1, 1)


def test_tornado_sdk_quick_start_runs_by_changing_the_base_url(
    squall_url: str, new_key: KeyMaker, media: MediaServer
) -> None:
    from tornado_api import TornadoAPI  # the import of Tornado's quick start

    key = new_key()
    tornado = TornadoAPI(api_key=key.api_key, base_url=squall_url)
    job = tornado.download(media.url("media/tiny.mp4"))
    tornado.close()
    assert job.status == "Completed" and job.s3_url is not None
    assert httpx.get(job.s3_url).content[4:8] == b"ftyp"
    with Squall(key.api_key, squall_url) as client:  # the download metered before the key is wiped
        today = datetime.now(UTC).date()
        assert eventually(lambda: client.usage.network(today, today)[0].requests == 1)
