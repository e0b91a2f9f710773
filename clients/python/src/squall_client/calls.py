"""Every endpoint as a ``Call``: its method, path, body and how its answer is read. Built
once per API call, so the sync and async clients cannot disagree about an endpoint."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, TypedDict, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter

from squall_client._core import Call
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

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
# Squall reads a feed or playlist within POST /jobs for up to 120 s, and a URL's metadata
# for up to 60 s: the client waits a little longer than the server before giving up.
CREATE_TIMEOUT_SECONDS = 150.0
METADATA_TIMEOUT_SECONDS = 75.0
DateLike = date | datetime | str


class JobOptions(TypedDict, total=False):
    """The options of ``POST /jobs`` (all optional; see the server's docs/api.md)."""

    format: str
    video_codec: str
    audio_codec: str
    audio_bitrate: str
    video_quality: int
    quality_preset: str
    max_resolution: str | int
    clip_start: str | float
    clip_end: str | float
    audio_only: bool
    download_subtitles: bool
    download_thumbnail: bool
    filename: str
    folder: str
    webhook_url: str
    enable_progress_webhook: bool
    live_recording: bool
    live_from_start: bool
    wait_for_video: bool
    max_duration: int
    storage: dict[str, Any]
    paused: bool
    priority: int


class BulkItem(TypedDict, total=False):
    url: str
    filename: str


def _model(kind: type[M]) -> Callable[[httpx.Response], M]:
    return lambda response: kind.model_validate(response.json())


def _list_of(kind: type[T], field: str | None = None) -> Callable[[httpx.Response], list[T]]:
    """A JSON array of ``kind``, or the array in the body's ``field``."""
    adapter = TypeAdapter(list[kind])  # type: ignore[valid-type]

    def parse(response: httpx.Response) -> list[T]:
        body = response.json()
        return list(adapter.validate_python(body[field] if field else body))

    return parse


def _replayed(response: httpx.Response) -> dict[str, Any]:
    body = dict(response.json())
    body["replayed"] = response.headers.get("Idempotent-Replayed", "").lower() == "true"
    return body


def _created(response: httpx.Response) -> JobCreated | BatchCreated:
    body = _replayed(response)
    return BatchCreated.model_validate(body) if "batch_id" in body else JobCreated.model_validate(body)


def _job_path(job_id: str, suffix: str = "") -> str:
    return f"/jobs/{quote(job_id, safe='')}{suffix}"


def _batch_path(batch_id: str, suffix: str = "") -> str:
    return f"/batch/{quote(batch_id, safe='')}{suffix}"


def clean_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Options as the API documents them: None means "the default", so it is not sent;
    ``max_resolution=720`` and numeric clip times are sent as the documented strings."""
    body = {name: value for name, value in options.items() if value is not None}
    if isinstance(body.get("max_resolution"), int):
        body["max_resolution"] = str(body["max_resolution"])
    for name in ("clip_start", "clip_end"):
        if isinstance(body.get(name), int | float) and not isinstance(body.get(name), bool):
            body[name] = f"{body[name]:g}"
    return body


def new_idempotency_key(given: str | None) -> str:
    return given or str(uuid.uuid4())


def create_job(
    url: str, options: Mapping[str, Any], idempotency_key: str | None
) -> Call[JobCreated | BatchCreated]:
    return Call("POST", "/jobs", _created, json={"url": url, **clean_options(options)},
                idempotency_key=new_idempotency_key(idempotency_key), timeout=CREATE_TIMEOUT_SECONDS)  # fmt: skip


def create_bulk(
    items: Sequence[str | BulkItem], options: Mapping[str, Any], idempotency_key: str | None
) -> Call[BulkCreated]:
    jobs = [{"url": item} if isinstance(item, str) else clean_options(item) for item in items]
    return Call("POST", "/jobs/bulk", lambda r: BulkCreated.model_validate(_replayed(r)),
                json={"jobs": jobs, **clean_options(options)},
                idempotency_key=new_idempotency_key(idempotency_key))  # fmt: skip


def get_job(job_id: str) -> Call[Job]:
    return Call("GET", _job_path(job_id), _model(Job))


def list_jobs(*, status: str | None, limit: int, offset: int) -> Call[JobPage]:
    params = {"status": status.lower() if status else None, "limit": limit, "offset": offset}
    return Call("GET", "/jobs", _model(JobPage), params=params)


def cancel_job(job_id: str) -> Call[JobCancelled]:
    return Call("DELETE", _job_path(job_id), _model(JobCancelled))


def retry_job(job_id: str) -> Call[JobRetried]:
    return Call("POST", _job_path(job_id, "/retry"), _model(JobRetried))


def delete_file(job_id: str) -> Call[FileDeleted]:
    return Call("DELETE", _job_path(job_id, "/file"), _model(FileDeleted))


def get_batch(batch_id: str) -> Call[Batch]:
    return Call("GET", _batch_path(batch_id), _model(Batch))


def rename_batch_jobs(batch_id: str, renames: Mapping[str, str]) -> Call[RenameResult]:
    body = {"renames": [{"job_id": job_id, "filename": name} for job_id, name in renames.items()]}
    return Call("PATCH", _batch_path(batch_id, "/jobs"), _model(RenameResult), json=body)


def start_batch(batch_id: str) -> Call[BatchStarted]:
    return Call("POST", _batch_path(batch_id, "/start"), _model(BatchStarted))


def metadata(url: str) -> Call[Metadata]:
    return Call("POST", "/metadata", _model(Metadata), json={"url": url}, repeatable=True,
                timeout=METADATA_TIMEOUT_SECONDS)  # fmt: skip


def usage() -> Call[Usage]:
    return Call("GET", "/usage", _model(Usage))


def _day(value: DateLike) -> str:
    return value if isinstance(value, str) else value.isoformat()


def _range(kind: str, record: type[T], start: DateLike, end: DateLike) -> Call[list[T]]:
    """``/usage/{kind}``: one record per UTC day, newest first, both ends inclusive."""
    return Call("GET", f"/usage/{kind}", _list_of(record),
                params={"startDate": _day(start), "endDate": _day(end)})  # fmt: skip


def usage_network(start: DateLike, end: DateLike) -> Call[list[NetworkDay]]:
    return _range("network", NetworkDay, start, end)


def usage_storage(start: DateLike, end: DateLike) -> Call[list[StorageDay]]:
    return _range("storage", StorageDay, start, end)


def usage_transcoding(start: DateLike, end: DateLike) -> Call[list[TranscodingDay]]:
    return _range("transcoding", TranscodingDay, start, end)


def dashboard_stats() -> Call[DashboardStats]:
    return Call("GET", "/dashboard/stats", _model(DashboardStats))


def dashboard_daily() -> Call[list[DailyStat]]:
    return Call("GET", "/dashboard/daily", _list_of(DailyStat, "daily_stats"))


def dashboard_jobs(*, status: str | None, q: str | None, limit: int, offset: int) -> Call[JobPage]:
    params = {"status": status.lower() if status else None, "q": q, "limit": limit, "offset": offset}
    return Call("GET", "/dashboard/jobs", _model(JobPage), params=params)


def dashboard_batches(*, limit: int, offset: int) -> Call[BatchPage]:
    return Call("GET", "/dashboard/batches", _model(BatchPage), params={"limit": limit, "offset": offset})


def dashboard_failures() -> Call[list[FailureReason]]:
    return Call("GET", "/dashboard/failures", _list_of(FailureReason, "reasons"))
