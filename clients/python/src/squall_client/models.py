"""Typed answers of the Squall (Tornado-compatible) API. Every model keeps fields it does
not know (``extra="allow"``, read them with ``model_extra``), so a newer server never breaks
an older client; fields a server may leave out default to None."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from squall_client.errors import JobFailed

ENDED_STATUSES = frozenset({"Completed", "Failed", "Warning", "Skipped"})
BATCH_ENDED_STATUSES = frozenset({"completed", "finished"})


class Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)


class Job(Model):
    """A job as ``GET /jobs/{id}`` shows it (list pages carry a subset of the fields)."""

    id: str
    url: str
    status: str  # Pending, Processing, Completed, Failed, Warning, Skipped
    step: str | None = None  # Queued, Downloading, Muxing, Uploading, Finished
    s3_key: str | None = None
    s3_url: str | None = None  # presigned by the bucket with S3 storage, else = download_url
    download_url: str | None = None  # Squall's signed, metered link (24 h)
    error: str | None = None
    error_type: str | None = None
    file_size: int | None = None
    created_at: int | None = None  # milliseconds since the epoch
    started_at: int | None = None
    finished_at: int | None = None
    batch_id: str | None = None
    priority: int | None = None
    title: str | None = None
    description: str | None = None
    release_date: str | None = None
    folder: str | None = None
    filename: str | None = None
    format: str | None = None
    requested_quality: str | None = None
    actual_quality: str | None = None
    duration_seconds: float | None = None
    width: int | None = None
    height: int | None = None
    subtitle_key: str | None = None
    subtitle_url: str | None = None
    thumbnail_key: str | None = None
    thumbnail_url: str | None = None
    attempt: int | None = None
    retry_of: str | None = None
    webhook_url: str | None = None
    webhook: dict[str, Any] | None = None  # delivery of the job's final event

    @property
    def ended(self) -> bool:
        return self.status in ENDED_STATUSES

    @property
    def completed(self) -> bool:
        return self.status == "Completed"

    def raise_for_status(self) -> Job:
        """This job if it completed; ``JobFailed`` if it ended without output."""
        if self.ended and not self.completed:
            raise JobFailed(f"Job {self.id} is {self.status}: {self.error or 'no output'}", job=self)
        return self


class JobPage(Model):
    jobs: list[Job]
    total: int  # GET /jobs: all the key's jobs, whatever the filter
    limit: int
    offset: int


class JobCreated(Model):
    job_id: str
    replayed: bool = False  # the server answered an earlier request with this Idempotency-Key


class Episode(Model):
    job_id: str
    url: str | None = None
    title: str | None = None


class BatchCreated(Model):
    """``POST /jobs`` with a feed or playlist URL: one job per entry."""

    batch_id: str
    total_episodes: int
    paused: bool = False
    episodes: list[Episode] = Field(default_factory=list)
    episode_jobs: list[str] = Field(default_factory=list)
    replayed: bool = False


class BulkCreated(Model):
    batch_id: str
    total_jobs: int
    job_ids: list[str]
    replayed: bool = False


class Batch(Model):
    id: str
    status: str  # paused, processing, completed, finished
    show_url: str | None = None
    title: str | None = None
    kind: str | None = None
    folder: str | None = None
    total_episodes: int = 0
    completed_episodes: int = 0
    failed_episodes: int = 0
    progress: float | None = None
    created_at: int | None = None
    finished_at: int | None = None
    episode_jobs: list[str] = Field(default_factory=list)  # GET /batch/{id} only

    @property
    def ended(self) -> bool:
        return self.status in BATCH_ENDED_STATUSES


class BatchPage(Model):
    batches: list[Batch]
    total: int
    limit: int
    offset: int


class RenameResult(Model):
    updated: int
    errors: list[str] = Field(default_factory=list)


class BatchStarted(Model):
    batch_id: str
    started_jobs: int
    status: str


class JobCancelled(Model):
    job_id: str
    message: str | None = None


class JobRetried(Model):
    job_id: str  # the new job
    original_job_id: str
    message: str | None = None


class FileDeleted(Model):
    job_id: str
    deleted_key: str | None = None
    deleted_keys: list[str] = Field(default_factory=list)
    message: str | None = None


class Metadata(Model):
    title: str | None = None
    duration: float | None = None
    width: int | None = None
    height: int | None = None
    extractor: str | None = None
    uploader: str | None = None
    thumbnail: str | None = None
    description: str | None = None
    view_count: int | None = None
    like_count: int | None = None
    upload_date: str | None = None
    filesize_approx: int | float | None = None  # bytes; an estimate, sometimes fractional


class Usage(Model):
    """``GET /usage``; which optional fields appear depends on the key's type and limits."""

    client_name: str
    usage_count: int
    storage_usage_gb: float
    storage_reserved_gb: float | None = None
    storage_effective_usage_gb: float | None = None
    storage_usage_bytes: int | None = None
    storage_reserved_bytes: int | None = None
    storage_limit_gb: float | None = None
    storage_limit_bytes: int | None = None
    storage_remaining_gb: float | None = None
    billing_period_start: str | None = None
    billing_period_end: str | None = None
    current_period_usage_gb: float | None = None
    current_period_usage_bytes: int | None = None
    billing_error: str | None = None
    max_resolution_limit: str | None = None
    max_duration_limit_seconds: int | None = None
    max_filesize_limit_bytes: int | None = None
    max_filesize_limit_mb: float | None = None


class DashboardStats(Model):
    total_jobs: int
    pending_jobs: int
    processing_jobs: int
    completed_jobs: int
    failed_jobs: int
    storage_used_bytes: int
    storage_used_gb: float
    client_name: str | None = None
    avg_processing_time_seconds: float | None = None
    today_throughput_bytes: int | None = None


class DailyStat(Model):
    date: str
    completed: int
    failed: int


class FailureReason(Model):
    error: str
    count: int


class NetworkDay(Model):
    collection_date: str = Field(alias="collectionDate")
    requests: int
    bytes_downloaded: int = Field(alias="bytesDownloaded")
    cache_hit_rate: float = Field(alias="cacheHitRate")


class StorageDay(Model):
    collection_date: str = Field(alias="collectionDate")
    number_of_objects: int = Field(alias="numberOfObjects")
    bytes_stored: int = Field(alias="bytesStored")


class TranscodingDay(Model):
    collection_date: str = Field(alias="collectionDate")
    minutes_by_quality: dict[str, float] = Field(alias="outputTranscodingMinutesByQuality")
    minutes_by_priority: dict[str, float] = Field(alias="outputTranscodingMinutesByPriority")
