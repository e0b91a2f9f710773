"""Job JSON in the Tornado shape: capitalised statuses, millisecond timestamps, fields present
only when they mean something."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from squall.jobs.models import ENDED_WITHOUT_OUTPUT, Job, JobStatus
from squall.pipeline.failures import scrub_tool_names
from squall.storage.base import Storage
from squall.storage.signing import SIGNED_URL_SECONDS, signed_url

# A live recording's fields in GET /jobs/{id} (recorded_bytes: while it records).
LIVE_FIELDS = ("live", "recorded_seconds", "recorded_bytes", "recording_stopped_by", "recording_from",
               "recording_note")  # fmt: skip
DETAIL_FIELDS = (
    "download_duration_ms",
    "mux_duration_ms",
    "upload_duration_ms",
    "download_speed_mbps",
    "upload_speed_mbps",
    "native_video_codec",
    "native_audio_codec",
    "actual_quality",
    "description",
    "release_date",
)


def object_link(job_id: str, key: str, *, public_url: str, secret: str, now_s: int) -> str:
    """Squall's signed /files link to a stored object (24 h): delivery through it is metered."""
    return signed_url(public_url, job_id, key.rsplit("/", 1)[-1], secret=secret, now_s=now_s)


def job_links(
    job: Job, storage_of: Callable[[], Storage | None], *, public_url: str, secret: str, now_s: int
) -> dict[str, str]:
    """Links to a completed job's objects: ``download_url``, ``subtitle_url`` and
    ``thumbnail_url`` through Squall; ``s3_url`` straight from the bucket where the backend
    can presign one (unmetered by Squall), else the same as ``download_url``. ``storage_of``
    looks the bucket up, only for a job with an output: a poll of a running job skips it."""
    if job.status != JobStatus.COMPLETED:
        return {}
    storage = storage_of() if job.output_key else None
    links = {}
    for field, key in (
        ("download_url", job.output_key),
        ("subtitle_url", job.subtitle_key),
        ("thumbnail_url", job.thumbnail_key),
    ):
        if key:
            links[field] = object_link(job.id, key, public_url=public_url, secret=secret, now_s=now_s)
    if job.output_key and storage is None:  # a request's bucket, its credentials erased: no links
        return {}
    if job.output_key and storage is not None:
        direct = storage.presigned_url(job.output_key, job.output_key.rsplit("/", 1)[-1], SIGNED_URL_SECONDS)
        links["s3_url"] = direct or links["download_url"]
    return links


def job_summary(job: Job) -> dict[str, Any]:
    """The list shape (GET /jobs, GET /dashboard/jobs)."""
    return {
        "id": job.id,
        "url": job.url,
        "status": job.status,
        "step": job.step,
        "s3_key": job.output_key,
        "error": scrub_tool_names(job.error) if job.error and job.status in ENDED_WITHOUT_OUTPUT else None,
        "error_type": job.error_type,
        "priority": job.priority,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
        "file_size": job.file_size,
        "batch_id": job.batch_id,
    }


def job_page(jobs: list[Job], *, total: int, limit: int, offset: int) -> dict[str, Any]:
    """A page of the job list (GET /jobs, GET /dashboard/jobs)."""
    return {"jobs": [job_summary(j) for j in jobs], "total": total, "limit": limit, "offset": offset}


def job_detail(job: Job, *, links: dict[str, str], webhook: dict[str, Any] | None = None) -> dict[str, Any]:
    """The GET /jobs/{id} shape; ``webhook`` is the delivery of its final event, if any."""
    body = job_summary(job)
    options = job.options
    body.update(
        {
            "s3_url": links.get("s3_url"),
            "download_url": links.get("download_url"),
            "subtitle_url": links.get("subtitle_url"),
            "subtitle_key": job.subtitle_key,
            "thumbnail_url": links.get("thumbnail_url"),
            "thumbnail_key": job.thumbnail_key,
            "folder": options.get("folder"),
            "filename": options.get("filename"),
            "format": options.get("format", "m4a" if options.get("audio_only") else "mp4"),
            "requested_quality": options.get("max_resolution", "best"),
            "attempt": job.attempt,
            "retry_of": job.retry_of,
            "started_at": job.started_at,
            "webhook_url": options.get("webhook_url"),
            "webhook": webhook,
        }
    )
    if job.started_at is not None:
        body["queue_wait_ms"] = max(0, job.started_at - job.created_at)
    body["download_retries"] = max(0, job.attempt - 1)  # each new attempt downloads again
    if job.finished_at is not None:
        body["total_duration_ms"] = job.finished_at - job.created_at
    if job.details and job.details.get("live"):  # a live recording: while it grows, and after
        body.update({name: job.details.get(name) for name in LIVE_FIELDS})
    if job.status == JobStatus.COMPLETED:
        body["title"] = job.title
        body["duration_seconds"] = job.duration_seconds
        body["width"] = job.width
        body["height"] = job.height
        for name in DETAIL_FIELDS:
            if job.details and name in job.details:
                body[name] = job.details[name]
    return body
