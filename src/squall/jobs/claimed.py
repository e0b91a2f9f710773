"""A job as a worker holds it after the claim, and the one mapping from its options to what
the pipeline is asked to do."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from squall.jobs.events import Hook
from squall.jobs.options import JobOptions
from squall.keys.service import KeyLimits
from squall.pipeline.spec import JobSpec
from squall.pipeline.urlguard import UrlPolicy
from squall.pipeline.ytdlp_config import DownloaderConfig


@dataclass(frozen=True)
class ClaimedJob:
    id: str
    key_id: str
    attempt: int  # the claim's fencing token
    max_attempts: int
    options: JobOptions
    priority: int
    reserved_bytes: int
    created_at: int
    batch_id: str | None = None
    limits: KeyLimits = field(default_factory=KeyLimits)  # the key's resolution, duration, size limits
    options_problem: str | None = None  # set when the stored options no longer validate

    @property
    def url(self) -> str:
        return self.options.url

    @property
    def hook(self) -> Hook | None:
        return hook_of(self.options)


def hook_of(options: JobOptions) -> Hook | None:
    return Hook(options.webhook_url, options.enable_progress_webhook) if options.webhook_url else None


@dataclass(frozen=True)
class RunLimits:
    """The operator's bounds on every run."""

    url_policy: UrlPolicy
    socket_timeout: float
    timeout_seconds: float
    downloader: DownloaderConfig = field(default_factory=DownloaderConfig)
    live_max_seconds: float = 43200.0
    live_wait_seconds: float = 21600.0


def pipeline_spec(job: ClaimedJob, run: RunLimits, cookies: str | None = None) -> JobSpec:
    """``cookies``: the key's own (Netscape text), for its downloader child only."""
    return replace(_spec(job, run), downloader=run.downloader, cookies=cookies, tenant=job.key_id)


def _spec(job: ClaimedJob, run: RunLimits) -> JobSpec:
    options, limits = job.options, job.limits
    caps = [c for c in (limits.max_resolution, options.resolution_cap) if c]  # the key's and the request's
    return JobSpec(
        job_id=job.id,
        url=options.url,
        container=options.resolved_format,
        video_codec=options.video_codec,
        audio_codec=options.audio_codec,
        audio_bitrate=options.audio_bitrate,
        video_quality=options.video_quality,
        quality_preset=options.quality_preset,
        audio_only=options.audio_only,
        subtitles=options.download_subtitles,
        thumbnail=options.download_thumbnail,
        clip_start=options.clip_start_seconds,
        clip_end=options.clip_end_seconds,
        max_output_seconds=options.max_duration,
        filename=options.filename,
        folder=options.folder,
        max_resolution=min(caps) if caps else None,
        max_duration_seconds=limits.max_duration_seconds,
        max_filesize_bytes=limits.max_filesize_bytes,
        url_policy=run.url_policy,
        socket_timeout=run.socket_timeout,
        timeout_seconds=run.timeout_seconds,
        live_recording=options.live_recording,
        live_from_start=options.live_from_start,
        wait_for_video=options.wait_for_video,
        live_max_seconds=run.live_max_seconds,
        live_wait_seconds=run.live_wait_seconds,
    )
