"""One job, end to end: download -> process -> measure -> store."""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from squall.errors import JobFailure, StorageError, StorageRefused
from squall.pipeline.download import download, quota_failure
from squall.pipeline.failures import too_large, too_long
from squall.pipeline.live_details import recording_details
from squall.pipeline.probe import MediaInfo, probe
from squall.pipeline.process import build_command, run_ffmpeg
from squall.pipeline.remux import remux
from squall.pipeline.sidecars import Sidecar, subtitle_sidecar, thumbnail_sidecar
from squall.pipeline.spec import Cancelled, JobSpec, PipelineEvents, PipelineResult
from squall.storage.base import Storage
from squall.storage.naming import alternate_key, object_key, sanitize_filename
from squall.units import MB


def _seconds_since(start: float) -> float:
    return time.perf_counter() - start


def _speed(size: int, seconds: float) -> float | None:
    """MB per second (1 MB = 1024² bytes), the unit of Tornado's *_speed_mbps fields."""
    return round(size / MB / seconds, 3) if seconds > 0 else None


def _release_date(upload_date: Any) -> str | None:
    text = str(upload_date or "")
    return f"{text[:4]}-{text[4:6]}-{text[6:8]}T00:00:00Z" if len(text) == 8 and text.isdigit() else None


def check_limits(spec: JobSpec, media: MediaInfo, size: int, *, live: bool = False) -> None:
    """``live``: a recording, already stopped at the key's duration limit (within a segment)."""
    if (
        not live
        and spec.max_duration_seconds
        and media.duration_seconds
        and media.duration_seconds > spec.max_duration_seconds
    ):
        raise JobFailure(too_long(media.duration_seconds, spec.max_duration_seconds))
    if spec.max_filesize_bytes and size > spec.max_filesize_bytes:
        raise JobFailure(too_large(size, spec.max_filesize_bytes))


def store(storage: Storage, output: Path, key: str, job_id: str, events: PipelineEvents | None = None) -> str:
    """Store under ``key``, or an alternate name if another job's file has it; returns the key."""
    try:
        for candidate in (key, alternate_key(key, job_id)):
            if storage.put(output, candidate, overwrite=False):
                if events is not None:
                    events.stored(candidate)
                return candidate
        full = alternate_key(key, job_id, full=True)  # only this job ever writes this name
        storage.put(output, full, overwrite=True)
        if events is not None:
            events.stored(full)
        return full
    except OSError as exc:
        raise JobFailure(f"The file could not be stored under '{key}': {exc.strerror or exc}") from None
    except StorageRefused as exc:  # a key's own bucket said no: retrying will not help
        raise JobFailure(exc.message) from None
    except StorageError as exc:  # a remote store failing is usually passing: try again later
        raise JobFailure(exc.message, retryable=True) from None


def store_with_sidecars(
    storage: Storage,
    output: Path,
    key: str,
    sidecars: list[Sidecar | None],
    job_id: str,
    events: PipelineEvents,
) -> tuple[str, str | None, str | None]:
    """Store the media, then its sidecars under the media's final stem. All or nothing: if a
    sidecar cannot be stored, what was stored is deleted again."""
    media_key = store(storage, output, key, job_id, events)
    stem = media_key.rpartition(".")[0]
    stored: list[str | None] = []
    try:
        for sidecar in sidecars:
            stored.append(
                store(storage, sidecar.path, stem + sidecar.suffix, job_id, events) if sidecar else None
            )
    except JobFailure:
        for done in [media_key, *stored]:
            if done:
                # The bucket failing: `storage reconcile` reports the object left behind.
                with contextlib.suppress(StorageError):
                    storage.delete(done)
        raise
    subtitle, thumbnail = stored
    return media_key, subtitle, thumbnail


def run_pipeline(spec: JobSpec, workdir: Path, storage: Storage, events: PipelineEvents) -> PipelineResult:
    events.step("Downloading")
    started = time.perf_counter()
    fetched = download(spec, workdir, events)
    if fetched.info.get("live"):  # a recording ends on a segment boundary: cut at its tightest bound
        spec = replace(spec, max_output_seconds=math.ceil(min(spec.live_caps().values())))
    download_s = _seconds_since(started)

    events.step("Muxing")
    started = time.perf_counter()
    source = Path(fetched.path)
    source_media = probe(source)
    if source_media.video_codec is None and source_media.audio_codec is None:
        raise JobFailure("The source has no audio or video stream to process", outcome="Skipped")
    output = workdir / f"output.{spec.container}"
    if spec.audio_output and source_media.audio_codec is None:
        raise JobFailure("The source has no audio stream to extract", outcome="Skipped")
    if not remux(source, output, spec, source_media, events):  # a plain copy is made in process
        run_ffmpeg(build_command(source, output, spec, source_media), events, spec.timeout_seconds)
    media = probe(output)
    size = output.stat().st_size
    check_limits(spec, media, size, live=bool(fetched.info.get("live")))
    sidecars = [
        subtitle_sidecar(fetched),
        thumbnail_sidecar(spec, fetched, [(output, media), (source, source_media)], workdir, events),
    ]
    extra_bytes = sum(s.size for s in sidecars if s)
    if not events.need_bytes(size + extra_bytes, exact=True):
        raise quota_failure()
    if events.cancelled():  # lease lost or shutting down: store nothing another attempt may redo
        raise Cancelled()
    mux_s = _seconds_since(started)

    events.step("Uploading")
    started = time.perf_counter()
    info = fetched.info
    name = sanitize_filename(spec.filename or str(info.get("title") or ""), fallback="video")
    key, subtitle, thumbnail = store_with_sidecars(
        storage, output, object_key(name, spec.container, spec.folder), sidecars, spec.job_id, events
    )
    upload_s = _seconds_since(started)

    return PipelineResult(
        output_key=key,
        file_size=size,
        downloaded_bytes=fetched.downloaded_bytes,
        duration_seconds=media.duration_seconds,
        width=media.width,
        height=media.height,
        title=info.get("title"),
        subtitle_key=subtitle,
        thumbnail_key=thumbnail,
        extra_bytes=extra_bytes,
        details={
            "download_duration_ms": int(download_s * 1000),
            "mux_duration_ms": int(mux_s * 1000),
            "upload_duration_ms": int(upload_s * 1000),
            "download_speed_mbps": _speed(fetched.downloaded_bytes, download_s),
            "upload_speed_mbps": _speed(size + extra_bytes, upload_s),
            "native_video_codec": source_media.video_codec,
            "native_audio_codec": source_media.audio_codec,
            "actual_quality": f"{media.short_side}p" if media.short_side else "audio",
            "description": info.get("description"),
            "release_date": _release_date(info.get("upload_date")),
            "extractor": info.get("extractor"),
            **recording_details(info, fetched.downloaded_bytes),
        },
    )
