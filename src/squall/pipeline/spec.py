"""What the pipeline is asked to do and what it reports back. Plain data: no database."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from squall.pipeline.urlguard import UrlPolicy
from squall.pipeline.ytdlp_config import DownloaderConfig

AUDIO_CONTAINERS = frozenset({"m4a", "mp3", "ogg", "opus"})


@dataclass(frozen=True)
class JobSpec:
    job_id: str
    url: str
    container: str = "mp4"
    video_codec: str = "copy"  # copy, h264, h265, vp9
    audio_codec: str = "copy"  # copy, aac, opus, mp3
    audio_bitrate: str = "192k"
    video_quality: int | None = None  # CRF; None: the preset's, else the encoder's default
    quality_preset: str | None = None
    audio_only: bool = False
    subtitles: bool = False  # store the source's subtitles (one language) next to the media
    thumbnail: bool = False  # store the source's thumbnail, or a frame FFmpeg takes
    clip_start: float | None = None  # seconds
    clip_end: float | None = None
    max_output_seconds: int | None = None  # the request's max_duration: the output is cut there
    filename: str | None = None
    folder: str | None = None
    max_resolution: int | None = None  # cap on the output's shorter side (request and key)
    max_duration_seconds: int | None = None
    max_filesize_bytes: int | None = None
    url_policy: UrlPolicy = field(default_factory=UrlPolicy)
    socket_timeout: float = 20.0
    timeout_seconds: float = 3600.0
    downloader: DownloaderConfig = field(default_factory=DownloaderConfig)
    cookies: str | None = field(default=None, repr=False)  # the key's own (Netscape), never shown
    # Whose job (the API key's id): a downloader child may run several jobs of one tenant
    # (pipeline/warm_children.py). None: a child for this job alone.
    tenant: str | None = None
    # Live sources (always recorded as live when the source says it is).
    live_recording: bool | None = None  # False: a live source fails the job instead
    live_from_start: bool = False
    wait_for_video: bool = False
    live_max_seconds: float = 43200.0  # SQUALL_LIVE_MAX_SECONDS: no recording runs longer
    live_wait_seconds: float = 21600.0  # SQUALL_LIVE_WAIT_SECONDS: the longest wait_for_video

    def live_caps(self) -> dict[str, float]:
        """Each bound on a recording's length, by the name a job reports when it stopped one."""
        caps = {
            "max_duration": self.max_output_seconds,
            "key_max_duration_limit": self.max_duration_seconds,
            "operator_cap": self.live_max_seconds,
        }
        return {name: float(cap) for name, cap in caps.items() if cap}

    @property
    def audio_output(self) -> bool:
        """The output holds audio only (asked for, or implied by an audio container)."""
        return self.audio_only or self.container in AUDIO_CONTAINERS


@dataclass
class DownloadResult:
    path: str
    downloaded_bytes: int
    info: dict[str, Any] = field(default_factory=dict)
    subtitle: str | None = None  # path of the subtitle file, if asked for and the source has one
    subtitle_language: str | None = None
    thumbnail: str | None = None  # path of the source's thumbnail, if asked for and it has one


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
    subtitle_key: str | None = None
    thumbnail_key: str | None = None
    extra_bytes: int = 0  # subtitles and thumbnail: stored, so metered, but not the media's size

    @property
    def stored_bytes(self) -> int:
        return self.file_size + self.extra_bytes

    @property
    def stored_keys(self) -> list[str]:
        return [k for k in (self.output_key, self.subtitle_key, self.thumbnail_key) if k]


class PipelineEvents(Protocol):
    """How the pipeline talks to whoever runs it (the worker)."""

    def step(self, name: str) -> None:
        """Downloading, Muxing or Uploading has started."""

    def need_bytes(self, total_bytes: int, *, exact: bool = False) -> bool:
        """The job will store about ``total_bytes``; False means the quota has no room.
        ``exact``: the size is known (not just a lower bound), so a larger reservation made
        before it was known may shrink to it."""
        ...

    def cancelled(self) -> bool:
        """True once the job must stop (cancelled, lease lost, worker shutting down)."""
        ...

    def stop_requested(self) -> bool:
        """True once the user asked a live recording to end (POST /jobs/{id}/stop)."""
        ...

    def recording(self, seconds: float, size: int) -> None:
        """A live recording holds ``seconds`` of media in ``size`` bytes so far."""

    def stored(self, key: str) -> None:
        """An object is in storage under ``key``, before the run's outcome is written: if the
        run dies now, whoever ends the job deletes it (the books never name it)."""


class Cancelled(Exception):
    """The run was stopped from outside (cancel, lost lease, shutdown); nothing to report."""
