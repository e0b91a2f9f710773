"""Event payloads, in the shapes of Tornado's newer webhook docs plus ``file_size``,
``download_url`` and ``batch_id``, built from the domain events alone. Content warnings
(private, geo-blocked…) send no event, as in Tornado; every other end of a job does."""

from __future__ import annotations

from typing import Any

from squall.batches.events import BatchEnded
from squall.jobs.events import JobEnded
from squall.jobs.models import JobStatus, JobStep

# Progress stages per pipeline step (enable_progress_webhook), as in Tornado's table.
STAGES: dict[str, list[tuple[str, int]]] = {
    JobStep.WAITING: [("waiting", 0)],
    JobStep.DOWNLOADING: [("downloading", 0)],
    JobStep.RECORDING: [("recording", 0)],
    JobStep.MUXING: [("download_complete", 33), ("muxing", 33)],
    JobStep.UPLOADING: [("mux_complete", 66), ("uploading", 66)],
}


def job_ended(ended: JobEnded) -> dict[str, Any] | None:
    """The event for a job's final state, or None (a warning is not announced)."""
    base = {"job_id": ended.job_id, "url": ended.url, "batch_id": ended.batch_id}
    output = ended.output
    if ended.status == JobStatus.COMPLETED and output is not None:
        return {
            "type": "job_completed",
            **base,
            "status": "completed",
            "key": output.key,
            "folder": ended.folder,
            "title": output.title,
            "description": output.description,
            "release_date": output.release_date,
            "subtitle_key": output.subtitle_key,
            "thumbnail_key": output.thumbnail_key,
            "file_size": output.file_size,
            "download_url": output.download_url,
        }
    if ended.status == JobStatus.FAILED:
        return {"type": "job_failed", **base, "status": "failed", "error": ended.error}
    if ended.status == JobStatus.SKIPPED:
        return {"type": "job_skipped", **base, "status": "skipped", "reason": ended.error}
    return None


def job_progress(job_id: str, url: str, stage: str, progress: int) -> dict[str, Any]:
    return {"type": "job_progress", "job_id": job_id, "url": url, "stage": stage, "progress": progress}


def recording_progress(job_id: str, url: str, seconds: float, size: int) -> dict[str, Any]:
    """A live recording's progress: no percentage (its end is not known), its length so far."""
    return {**job_progress(job_id, url, "recording", 0), "recorded_seconds": round(seconds, 1),
            "recorded_bytes": size}  # fmt: skip


def batch_completed(ended: BatchEnded) -> dict[str, Any]:
    return {
        "type": "batch_completed",
        "batch_id": ended.batch_id,
        "show_url": ended.show_url,
        "folder": ended.folder,
        "status": ended.status,
        "completed": ended.completed,
        "failed": ended.failed,
        "total": ended.total,
    }
