"""Measure a media file with PyAV (libav in a wheel, so no ffprobe binary is needed): a local
file, or an opened container (``remote_probe`` opens one over guarded HTTP range reads)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av

from squall.errors import JobFailure


@dataclass(frozen=True)
class MediaInfo:
    duration_seconds: float | None
    width: int | None
    height: int | None
    video_codec: str | None
    audio_codec: str | None

    @property
    def short_side(self) -> int | None:
        return min(self.width, self.height) if self.width and self.height else None


def probe(path: Path) -> MediaInfo:
    try:
        with av.open(str(path)) as container:
            return measure(container)
    except av.error.FFmpegError:
        raise JobFailure("The downloaded file is not a media file", outcome="Skipped") from None


def measure(container: av.container.InputContainer) -> MediaInfo:
    """What an opened file holds (raises av.error.FFmpegError on a broken one)."""
    video = next(iter(container.streams.video), None)
    audio = next(iter(container.streams.audio), None)
    duration = container.duration / av.time_base if container.duration else None
    if duration is None:
        for stream in (video, audio):
            if stream is not None and stream.duration and stream.time_base:
                duration = float(stream.duration * stream.time_base)
                break
    return MediaInfo(
        duration_seconds=duration,
        width=video.codec_context.width if video else None,
        height=video.codec_context.height if video else None,
        video_codec=video.codec_context.codec.canonical_name if video else None,
        audio_codec=audio.codec_context.codec.canonical_name if audio else None,
    )
