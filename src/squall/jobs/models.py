from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from squall.db.base import Base, new_id


class JobStatus(StrEnum):
    """A job's status, as the Tornado API spells it."""

    PENDING = "Pending"
    PROCESSING = "Processing"
    COMPLETED = "Completed"
    FAILED = "Failed"
    WARNING = "Warning"  # a content issue: private, unavailable, geo-blocked
    SKIPPED = "Skipped"  # nothing processable, e.g. no media stream


class JobStep(StrEnum):
    QUEUED = "Queued"
    WAITING = "Waiting"  # wait_for_video: the live stream has not started yet
    DOWNLOADING = "Downloading"
    RECORDING = "Recording"  # a live stream, recorded as it is on air
    MUXING = "Muxing"
    UPLOADING = "Uploading"
    FINISHED = "Finished"


ENDED_WITHOUT_OUTPUT = (JobStatus.FAILED, JobStatus.WARNING, JobStatus.SKIPPED)
ACTIVE = (JobStatus.PENDING, JobStatus.PROCESSING)


class Job(Base):
    """One ingest job. It is also the queue entry: ``attempt`` is the fencing token of the
    lease, and ``reserved_bytes`` is the storage it holds against the key's quota."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"))
    url: Mapped[str] = mapped_column(Text)
    options: Mapped[dict[str, Any]] = mapped_column(JSON)
    priority: Mapped[int] = mapped_column(Integer, default=5)
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.PENDING)
    step: Mapped[str] = mapped_column(String(16), default=JobStep.QUEUED)
    error: Mapped[str | None] = mapped_column(Text)
    error_type: Mapped[str | None] = mapped_column(String(16))
    retry_of: Mapped[str | None] = mapped_column(String(36))
    batch_id: Mapped[str | None] = mapped_column(String(36))
    batch_index: Mapped[int | None] = mapped_column(Integer)  # the episode's place in its batch

    # Queue and lease.
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    run_after: Mapped[int] = mapped_column(BigInteger)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[int | None] = mapped_column(BigInteger)
    reserved_bytes: Mapped[int] = mapped_column(BigInteger, default=0)

    # Timestamps (ms since epoch).
    created_at: Mapped[int] = mapped_column(BigInteger)
    started_at: Mapped[int | None] = mapped_column(BigInteger)
    finished_at: Mapped[int | None] = mapped_column(BigInteger)

    # Output and measurements.
    output_key: Mapped[str | None] = mapped_column(Text)
    subtitle_key: Mapped[str | None] = mapped_column(Text)
    thumbnail_key: Mapped[str | None] = mapped_column(Text)
    file_size: Mapped[int | None] = mapped_column(BigInteger)
    stored_bytes: Mapped[int | None] = mapped_column(BigInteger)  # media + subtitles + thumbnail
    downloaded_bytes: Mapped[int | None] = mapped_column(BigInteger)
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    title: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # POST /jobs/{id}/stop: when the user asked a live recording to end (ms since epoch).
    stop_requested_at: Mapped[int | None] = mapped_column(BigInteger)

    @property
    def stored_keys(self) -> list[str]:
        """Every object this job has in storage: the media, then its subtitles and thumbnail."""
        return [k for k in (self.output_key, self.subtitle_key, self.thumbnail_key) if k]

    __table_args__ = (
        Index("ix_jobs_key_created", "key_id", "created_at"),
        Index("ix_jobs_key_status", "key_id", "status"),
        Index("ix_jobs_key_finished", "key_id", "finished_at"),
        Index("ix_jobs_batch", "batch_id", "batch_index"),
        # Only waiting jobs are in the queue index, so it stays small however long history is.
        Index(
            "ix_jobs_queue",
            text("priority DESC"),
            "created_at",
            postgresql_where=text("status = 'Pending'"),
            sqlite_where=text("status = 'Pending'"),
        ),
        # Each key's next job (the fair claim looks up one per key with work waiting).
        Index(
            "ix_jobs_key_queue",
            "key_id",
            text("priority DESC"),
            "created_at",
            postgresql_where=text("status = 'Pending'"),
            sqlite_where=text("status = 'Pending'"),
        ),
        Index("ix_jobs_started", "started_at"),  # claims per minute (GET /admin/queue)
        Index(
            "ix_jobs_leases",
            "lease_expires_at",
            postgresql_where=text("status = 'Processing'"),
            sqlite_where=text("status = 'Processing'"),
        ),
    )
