"""From a validated POST /jobs or POST /jobs/bulk to committed jobs: one job, or a batch when
the URL names a feed or playlist (its entries are read first, in a downloader child), with
``Idempotency-Key`` replay."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from squall.batches import service as batches
from squall.batches.service import Episode
from squall.clock import now_ms
from squall.db import Database
from squall.errors import BadRequest
from squall.jobs import idempotency
from squall.jobs import service as jobs
from squall.jobs.options import JobOptions
from squall.keys.service import AuthenticatedKey
from squall.pipeline.metadata import fetch_entries, looks_like_playlist
from squall.pipeline.urlguard import check_url
from squall.settings import Settings
from squall.validation import validated

MAX_BULK_JOBS = 100
PLAYLIST_TIMEOUT_SECONDS = 120.0


class BulkItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=4096)
    filename: str | None = None


class BulkRequest(BaseModel):
    """POST /jobs/bulk: up to 100 items sharing every other job option."""

    model_config = ConfigDict(extra="allow")  # the shared options, validated as JobOptions

    jobs: list[BulkItem]


def admission(settings: Settings) -> jobs.Admission:
    return jobs.Admission(settings.default_reservation_bytes, settings.max_attempts)


def refuse_unsupported(options: JobOptions) -> None:
    """Options this server cannot honour yet are refused, never silently ignored."""
    unsupported = options.features_in_use()
    if unsupported:
        verb = "is" if len(unsupported) == 1 else "are"
        raise BadRequest(f"{', '.join(unsupported)} {verb} not supported by this server yet")


def check_options(options: JobOptions, settings: Settings) -> None:
    refuse_unsupported(options)
    check_url(options.url, settings.url_policy, what="url")
    if options.webhook_url is not None:
        check_url(options.webhook_url, settings.url_policy, what="webhook_url")


def submit(
    options: JobOptions, key: AuthenticatedKey, db: Database, settings: Settings, idempotency_key: str | None
) -> tuple[dict[str, Any], bool]:
    check_options(options, settings)
    fingerprint = idempotency.request_hash("/jobs", options, idempotency_key)
    earlier = idempotency.earlier_answer(db, key.id, idempotency_key, fingerprint)
    if earlier is not None:
        return earlier, True
    found = discover(options, settings)
    if found is None:

        def create(session: Session) -> dict[str, Any]:
            job_id = jobs.create_job(session, key, options, now=now_ms(), admission=admission(settings))
            return {"job_id": job_id}

    else:
        title, episodes = found

        def create(session: Session) -> dict[str, Any]:
            batch, job_ids = batches.create_batch(
                session, key, kind="feed", show_url=options.url, title=title, episodes=episodes,
                options=options, now=now_ms(), admission=admission(settings),
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

    return idempotency.commit(db, key.id, idempotency_key, fingerprint, create)


def discover(options: JobOptions, settings: Settings) -> tuple[str | None, list[Episode]] | None:
    """(title, episodes) when the URL names a feed or playlist with entries, else None."""
    if not looks_like_playlist(options.url):
        if options.paused:
            raise BadRequest("paused applies to feeds and playlists; this URL is a single video")
        return None
    found = fetch_entries(
        options.url,
        policy=settings.url_policy,
        socket_timeout=settings.socket_timeout_seconds,
        timeout=PLAYLIST_TIMEOUT_SECONDS,
        limit=settings.batch_max_episodes,
    )
    if found["entries"] is None:
        if options.paused:
            raise BadRequest("paused applies to feeds and playlists; this URL is a single video")
        return None
    if not found["entries"]:
        raise BadRequest("This feed or playlist has no entries")
    episodes = [Episode(url=entry["url"], title=entry["title"]) for entry in found["entries"]]
    _check_hosts([episode.url for episode in episodes], settings)
    return found["title"], episodes


def _check_hosts(urls: list[str], settings: Settings) -> None:
    """Each distinct host once: a feed's entries usually share one or two."""
    seen: set[tuple[str, str]] = set()
    for url in urls:
        parts = urlsplit(url)
        if (parts.scheme, parts.netloc) not in seen:
            seen.add((parts.scheme, parts.netloc))
            check_url(url, settings.url_policy, what="An entry of this feed")


def submit_bulk(
    request: BulkRequest, key: AuthenticatedKey, db: Database, settings: Settings, idempotency_key: str | None
) -> tuple[dict[str, Any], bool]:
    if not request.jobs:
        raise BadRequest("jobs must hold at least one item")
    if len(request.jobs) > MAX_BULK_JOBS:
        raise BadRequest(f"jobs holds {len(request.jobs)} items; at most {MAX_BULK_JOBS} are allowed")
    extra = request.model_extra or {}
    shared = validated(JobOptions, {**extra, "url": request.jobs[0].url})
    refuse_unsupported(shared)
    episodes = []
    for n, item in enumerate(request.jobs):
        options = validated(JobOptions, {**extra, **item.model_dump(exclude_none=True)}, where=f"jobs[{n}]")
        try:
            check_options(options, settings)
        except BadRequest as refused:
            raise BadRequest(f"jobs[{n}]: {refused.message}") from None
        episodes.append(Episode(url=item.url, filename=options.filename))
    fingerprint = idempotency.request_hash("/jobs/bulk", request, idempotency_key)
    earlier = idempotency.earlier_answer(db, key.id, idempotency_key, fingerprint)
    if earlier is not None:
        return earlier, True

    def create(session: Session) -> dict[str, Any]:
        batch, job_ids = batches.create_batch(
            session, key, kind="bulk", show_url=None, episodes=episodes, options=shared,
            now=now_ms(), admission=admission(settings),
        )  # fmt: skip
        return {"batch_id": batch.id, "total_jobs": len(job_ids), "job_ids": job_ids}

    return idempotency.commit(db, key.id, idempotency_key, fingerprint, create)
