"""From a validated POST /jobs or POST /jobs/bulk to jobs admitted in a write transaction
shared with concurrent requests (group commit): one job, or a batch when the URL names a
feed or playlist (its entries are read first, in a downloader child, before the transaction
begins), with ``Idempotency-Key`` replay.

It runs on the event loop: an ordinary admission never waits on a thread of the routes' pool.
What blocks is handed to one: resolving a host name for the URL guard, reading an earlier
answer, verifying a request's bucket, reading a feed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from anyio import to_thread
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from squall.batches import service as batches
from squall.batches.service import Episode
from squall.clock import Clock
from squall.db import Database
from squall.errors import InvalidInput
from squall.intake import idempotency
from squall.intake.group_commit import GroupCommit
from squall.intake.request_storage import binding, take_storage, verify_storage
from squall.jobs import service as jobs
from squall.jobs.admission import JobRequest
from squall.jobs.options import JobOptions
from squall.keys.service import AuthenticatedKey
from squall.keys.storage_service import bind_jobs
from squall.pipeline.metadata import fetch_entries, looks_like_playlist
from squall.pipeline.urlguard import UrlPolicy, check_url, url_policy
from squall.pipeline.ytdlp_config import downloader_config
from squall.settings import Settings
from squall.validation import URL_FIELD_SCHEMA, validated

T = TypeVar("T")
MAX_BULK_JOBS = 100
PLAYLIST_TIMEOUT_SECONDS = 120.0
NOT_A_FEED = "paused applies to feeds and playlists; this URL is a single video"


class BulkItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        max_length=4096,
        description="The media, feed or page URL of this item.",
        json_schema_extra=URL_FIELD_SCHEMA,
    )
    filename: str | None = Field(default=None, description="The stored name (default: the source's title).")


class BulkRequest(BaseModel):
    """POST /jobs/bulk: up to 100 items, plus any POST /jobs field except ``url``, shared by
    every item."""

    model_config = ConfigDict(
        extra="allow",  # the shared options, validated as JobOptions
        json_schema_extra={
            "examples": [
                {
                    "jobs": [
                        {"url": "https://cdn.example.com/ep1.mp3", "filename": "Episode 1"},
                        {"url": "https://cdn.example.com/ep2.mp3"},
                    ],
                    "format": "mp3",
                    "folder": "podcasts",
                }
            ]
        },
    )

    jobs: list[BulkItem] = Field(
        description=f"1 to {MAX_BULK_JOBS} items: each `url` and an optional `filename`.",
        json_schema_extra={"minItems": 1, "maxItems": MAX_BULK_JOBS},  # checked by the intake, stated here
    )


class Submission:
    """One request's way to its jobs: its key, its settings, the clock, the database (read
    for an earlier answer only with an Idempotency-Key, in a read transaction ended as soon
    as it answered) and the process's group commit, which admits."""

    def __init__(
        self, key: AuthenticatedKey, settings: Settings, *, clock: Clock, database: Database,
        admissions: GroupCommit, idempotency_key: str | None,
    ) -> None:  # fmt: skip
        self.key, self.settings, self.clock = key, settings, clock
        self.database, self.admissions = database, admissions
        self.idempotency_key = idempotency_key
        self.policy: UrlPolicy = url_policy(settings)
        if idempotency_key is not None:
            idempotency.check_key(idempotency_key)

    @property
    def admission(self) -> jobs.Admission:
        return jobs.Admission(self.settings.default_reservation_bytes, self.settings.max_attempts)

    async def earlier(self, fingerprint: str) -> dict[str, Any] | None:
        if self.idempotency_key is None:
            return None
        return await to_thread.run_sync(self._earlier, self.idempotency_key, fingerprint)

    def _earlier(self, idempotency_key: str, fingerprint: str) -> dict[str, Any] | None:
        with self.database.read() as session:  # not held open while a feed is read or the jobs are written
            return idempotency.earlier_answer(session, self.key.id, idempotency_key, fingerprint)

    async def admit(
        self, fingerprint: str, create: Callable[[Session, int], dict[str, Any]]
    ) -> tuple[dict[str, Any], bool]:
        """``create(session, now)`` in a write transaction shared with concurrent requests
        (group commit), with its answer stored under the key (first, so a concurrent twin
        stops there). Returns (answer, replayed) once committed."""
        key_id, idempotency_key = self.key.id, self.idempotency_key

        def admit_in(session: Session) -> tuple[dict[str, Any], bool]:
            now = self.clock.now_ms()  # after any feed was read
            if idempotency_key is None:
                return create(session, now), False
            reserved = idempotency.reserve(session, key_id, idempotency_key, fingerprint, now=now)
            if isinstance(reserved, dict):
                return reserved, True
            reserved.response = create(session, now)
            return reserved.response, False

        return await self.admissions.admit(key_id, admit_in)

    async def admit_plain(self, options: JobOptions) -> str:
        """One job with nothing else to write (no Idempotency-Key, no bucket of the request's
        own, not a feed), admitted together with the other such requests of its batch."""
        key, admission, clock = self.key, self.admission, self.clock

        def alone(session: Session) -> str:
            job_id = jobs.create_job(session, key, options, now=clock.now_ms(), admission=admission)
            bind_jobs(session, key.id, [job_id])
            return job_id

        return await self.admissions.admit_job(JobRequest(key, options, admission), clock, alone)

    async def check(self, options: JobOptions) -> None:
        await self.checked(lambda: self.check_now(options))

    def check_now(self, options: JobOptions) -> None:
        check_url(options.url, self.policy, what="url")
        if options.webhook_url is not None:
            check_url(options.webhook_url, self.policy, what="webhook_url")

    async def checked(self, check: Callable[[], T]) -> T:
        """Run what checks URLs: inline when the policy allows every address (nothing to
        resolve), else in a thread, since resolving a host name blocks."""
        if self.policy.allow_private:
            return check()
        return await to_thread.run_sync(check)


async def submit(options: JobOptions, submission: Submission) -> tuple[dict[str, Any], bool]:
    fingerprint = idempotency.request_hash("/jobs", options, submission.idempotency_key)
    storage, options = take_storage(options.storage), options.model_copy(update={"storage": None})
    await submission.check(options)
    earlier = await submission.earlier(fingerprint)
    if earlier is not None:
        return earlier, True
    if storage is not None:  # a request's own bucket is verified by calling it
        await to_thread.run_sync(verify_storage, storage, submission.policy)
    found = await discover(options, submission)
    key, admission = submission.key, submission.admission
    if found is None and storage is None and submission.idempotency_key is None:
        return {"job_id": await submission.admit_plain(options)}, False
    if found is None:

        def create(session: Session, now: int) -> dict[str, Any]:
            return {"job_id": jobs.create_job(session, key, options, now=now, admission=admission)}

    else:
        title, episodes = found

        def create(session: Session, now: int) -> dict[str, Any]:
            batch, job_ids = batches.create_batch(
                session, key, kind="feed", show_url=options.url, title=title, episodes=episodes,
                options=options, now=now, admission=admission,
            )  # fmt: skip
            return {
                "batch_id": batch.id,
                "total_episodes": len(job_ids),
                "paused": options.paused,
                "episodes": [
                    {"job_id": job_id, "url": episode.url, "title": episode.title}
                    for job_id, episode in zip(job_ids, episodes, strict=True)
                ],
                "episode_jobs": job_ids,
            }

    return await submission.admit(fingerprint, binding(create, key.id, storage, submission.settings))


async def discover(options: JobOptions, submission: Submission) -> tuple[str | None, list[Episode]] | None:
    """(title, episodes) when the URL names a feed or playlist with entries, else None."""
    if not looks_like_playlist(options.url):
        if options.paused:
            raise InvalidInput(NOT_A_FEED)
        return None
    return await to_thread.run_sync(_read_feed, options, submission)


def _read_feed(options: JobOptions, submission: Submission) -> tuple[str | None, list[Episode]] | None:
    settings = submission.settings
    found = fetch_entries(options.url, policy=submission.policy, socket_timeout=settings.socket_timeout_seconds,
                          timeout=PLAYLIST_TIMEOUT_SECONDS, limit=settings.batch_max_episodes,
                          downloader=downloader_config(settings))  # fmt: skip
    if found["entries"] is None:
        if options.paused:
            raise InvalidInput(NOT_A_FEED)
        return None
    if not found["entries"]:
        raise InvalidInput("This feed or playlist has no entries")
    episodes = [Episode(url=e["url"], title=e["title"], size=e["size"]) for e in found["entries"]]
    _check_hosts([episode.url for episode in episodes], submission.policy)
    return found["title"], episodes


def _check_hosts(urls: list[str], policy: UrlPolicy) -> None:
    """Each distinct host once: a feed's entries usually share one or two."""
    seen: set[tuple[str, str]] = set()
    for url in urls:
        parts = urlsplit(url)
        if (parts.scheme, parts.netloc) not in seen:
            seen.add((parts.scheme, parts.netloc))
            check_url(url, policy, what="An entry of this feed")


async def submit_bulk(request: BulkRequest, submission: Submission) -> tuple[dict[str, Any], bool]:
    if not request.jobs:
        raise InvalidInput("jobs must hold at least one item")
    if len(request.jobs) > MAX_BULK_JOBS:
        raise InvalidInput(f"jobs holds {len(request.jobs)} items; at most {MAX_BULK_JOBS} are allowed")
    extra = dict(request.model_extra or {})
    storage = take_storage(extra.pop("storage", None))
    shared = validated(JobOptions, {**extra, "url": request.jobs[0].url})

    def checked_items() -> list[JobOptions]:
        items = []
        for n, item in enumerate(request.jobs):
            options = validated(
                JobOptions, {**extra, **item.model_dump(exclude_none=True)}, where=f"jobs[{n}]"
            )
            try:
                submission.check_now(options)
            except InvalidInput as refused:
                raise InvalidInput(f"jobs[{n}]: {refused.message}") from None
            items.append(options)
        return items

    items = await submission.checked(checked_items)
    episodes = [
        Episode(url=item.url, filename=options.filename)
        for item, options in zip(request.jobs, items, strict=True)
    ]
    fingerprint = idempotency.request_hash("/jobs/bulk", request, submission.idempotency_key)
    earlier = await submission.earlier(fingerprint)
    if earlier is not None:
        return earlier, True
    if storage is not None:
        await to_thread.run_sync(verify_storage, storage, submission.policy)
    key, admission = submission.key, submission.admission

    def create(session: Session, now: int) -> dict[str, Any]:
        batch, job_ids = batches.create_batch(
            session, key, kind="bulk", show_url=None, episodes=episodes, options=shared, now=now,
            admission=admission,
        )  # fmt: skip
        return {"batch_id": batch.id, "total_jobs": len(job_ids), "job_ids": job_ids}

    return await submission.admit(fingerprint, binding(create, key.id, storage, submission.settings))
