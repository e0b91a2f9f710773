"""What the jobs domain tells the others, recorded in the transaction of the change. Each
event carries what its subscribers need (webhook payloads, batch progress, meter reports),
so none of them reads the job back."""

from __future__ import annotations

from dataclasses import dataclass

from squall.events import DomainEvent


@dataclass(frozen=True)
class Hook:
    """Where a job's webhooks go, as its submission asked."""

    url: str
    progress: bool = False  # enable_progress_webhook: stage events too


@dataclass(frozen=True)
class Output:
    """What a completed job stored."""

    key: str
    subtitle_key: str | None
    thumbnail_key: str | None
    file_size: int
    title: str | None
    description: str | None
    release_date: str | None
    download_url: str | None  # a signed link, when a webhook will carry it


@dataclass(frozen=True)
class JobEnded(DomainEvent):
    """Completed (with ``output``), or Failed/Warning/Skipped (with ``error``)."""

    job_id: str
    key_id: str
    url: str
    status: str
    at: int
    batch_id: str | None = None
    folder: str | None = None
    hook: Hook | None = None
    output: Output | None = None
    error: str | None = None


@dataclass(frozen=True)
class StepReached(DomainEvent):
    job_id: str
    key_id: str
    url: str
    step: str
    at: int
    hook: Hook | None = None


@dataclass(frozen=True)
class ObjectsStored(DomainEvent):
    """A job's objects are in storage and counted; ``uploaded_event_id`` is the ledger row of
    the bytes uploaded (None when a retried completion found it already there)."""

    job_id: str
    key_id: str
    keys: tuple[str, ...]
    stored_bytes: int
    uploaded_event_id: str | None
    at: int


@dataclass(frozen=True)
class ObjectsDeleted(DomainEvent):
    """A job's objects were forgotten (the API's delete, or retention)."""

    job_id: str
    key_id: str
    keys: tuple[str, ...]
    stored_bytes: int
    at: int


@dataclass(frozen=True)
class JobsAdmitted(DomainEvent):
    """Jobs were admitted, reserving quota (usage alerts check the key's quota on it).
    ``quota_limited``: the key has a storage quota; ``webhook_url``: the first job's."""

    key_id: str
    count: int
    at: int
    quota_limited: bool
    webhook_url: str | None = None


@dataclass(frozen=True)
class RecordingProgressed(DomainEvent):
    """A live recording has ``seconds`` of media in ``size`` bytes so far (sent at a bounded
    rate: see ``squall/jobs/live.py``)."""

    job_id: str
    key_id: str
    url: str
    seconds: float
    size: int
    at: int
    hook: Hook | None = None
