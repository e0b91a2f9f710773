"""Event payloads, in the shapes of Tornado's newer webhook docs plus ``file_size``,
``download_url`` and ``batch_id``. Content warnings (private, geo-blocked…) send no event,
as in Tornado; every other end of a job does."""

from __future__ import annotations

from typing import Any

from squall.batches.models import Batch
from squall.jobs.models import COMPLETED, FAILED, SKIPPED, Job

# Progress stages per pipeline step (enable_progress_webhook), as in Tornado's table.
STAGES = {
    "Downloading": [("downloading", 0)],
    "Muxing": [("download_complete", 33), ("muxing", 33)],
    "Uploading": [("mux_complete", 66), ("uploading", 66)],
}


def job_ended(job: Job, download_url: str | None) -> dict[str, Any] | None:
    """The event for a job's final state, or None (a warning is not announced)."""
    base = {"job_id": job.id, "url": job.url, "batch_id": job.batch_id}
    if job.status == COMPLETED:
        return {
            "type": "job_completed",
            **base,
            "status": "completed",
            "key": job.output_key,
            "folder": job.options.get("folder"),
            "title": job.title,
            "description": (job.details or {}).get("description"),
            "release_date": (job.details or {}).get("release_date"),
            "subtitle_key": job.subtitle_key,
            "thumbnail_key": job.thumbnail_key,
            "file_size": job.file_size,
            "download_url": download_url,
        }
    if job.status == FAILED:
        return {"type": "job_failed", **base, "status": "failed", "error": job.error}
    if job.status == SKIPPED:
        return {"type": "job_skipped", **base, "status": "skipped", "reason": job.error}
    return None


def job_progress(job_id: str, url: str, stage: str, progress: int) -> dict[str, Any]:
    return {"type": "job_progress", "job_id": job_id, "url": url, "stage": stage, "progress": progress}


def batch_completed(batch: Batch) -> dict[str, Any]:
    return {
        "type": "batch_completed",
        "batch_id": batch.id,
        "show_url": batch.show_url,
        "folder": batch.folder,
        "status": batch.status,
        "completed": batch.completed_episodes,
        "failed": batch.failed_episodes,
        "total": batch.total_episodes,
    }
