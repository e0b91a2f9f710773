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


# Demuxers whose header declares every stream with its codec, size and the duration (an MP4's
# moov, Matroska's Tracks and Info). For these, reading packets to fill in stream details,
# which FFmpeg does by default up to 5 MB (17 ms for a 720p H.264 file, twice a job), adds
# nothing MediaInfo holds: with the smallest probe size FFmpeg still reads one packet and
# the codecs' own configuration from the header. Any other format, or a header that leaves
# a field open, is read the usual way; a name that promises neither family goes there at once.
# (A mislabelled stream, AC-3 in the header and E-AC-3 in the packets, may keep its header's
# name here; both choose the same processing.)
HEADER_COMPLETE = frozenset({"mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm"})
HEADER_SUFFIXES = frozenset({".mp4", ".m4a", ".m4v", ".mov", ".3gp", ".mkv", ".mka", ".webm"})
HEADER_ONLY = {"probesize": "32"}  # bytes of packets read for stream details (the minimum)


def probe(path: Path) -> MediaInfo:
    try:
        if path.suffix.lower() in HEADER_SUFFIXES:
            with av.open(str(path), container_options=HEADER_ONLY) as container:
                if container.format.name in HEADER_COMPLETE:
                    quick = measure(container)
                    if is_complete(quick):
                        return quick
        with av.open(str(path)) as container:
            return measure(container)
    except av.error.FFmpegError:
        raise JobFailure("The downloaded file is not a media file", outcome="Skipped") from None


def is_complete(media: MediaInfo) -> bool:
    has_stream = media.video_codec is not None or media.audio_codec is not None
    sized = media.video_codec is None or bool(media.width and media.height)
    return has_stream and sized and media.duration_seconds is not None


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
