"""What the pipeline is asked to do and what it reports back. Plain data: no database."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class JobSpec:
    job_id: str
    url: str
    container: str = "mp4"
    filename: str | None = None
    folder: str | None = None
    max_resolution: int | None = None  # key limit on the output's shorter side
    max_duration_seconds: int | None = None
    max_filesize_bytes: int | None = None
    allow_private_urls: bool = False
    socket_timeout: float = 20.0
    timeout_seconds: float = 3600.0


@dataclass
class DownloadResult:
    path: str
    downloaded_bytes: int
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class PipelineResult:
    output_key: str
    file_size: int
    downloaded_bytes: int
    duration_seconds: float | None
    width: int | None
    height: int | None
    title: str | None
    details: dict[str, Any] = field(default_factory=dict)


class PipelineEvents(Protocol):
    """How the pipeline talks to whoever runs it (the worker)."""

    def step(self, name: str) -> None:
        """Downloading, Muxing or Uploading has started."""

    def need_bytes(self, total_bytes: int) -> bool:
        """The job will store about ``total_bytes``; False means the quota has no room."""
        ...

    def cancelled(self) -> bool:
        """True once the job must stop (cancelled, lease lost, worker shutting down)."""
        ...


class Cancelled(Exception):
    """The run was stopped from outside (cancel, lost lease, shutdown); nothing to report."""
