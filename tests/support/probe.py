"""Read an output file back with PyAV, independently of the code under test."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av


@dataclass
class Probed:
    format_name: str
    duration: float
    width: int | None
    height: int | None
    video_codec: str | None
    audio_codec: str | None


def probe(path: Path) -> Probed:
    with av.open(str(path)) as container:
        video = next(iter(container.streams.video), None)
        audio = next(iter(container.streams.audio), None)
        return Probed(
            format_name=container.format.name,
            duration=(container.duration or 0) / av.time_base,
            width=video.codec_context.width if video else None,
            height=video.codec_context.height if video else None,
            video_codec=video.codec_context.codec.canonical_name if video else None,
            audio_codec=audio.codec_context.codec.canonical_name if audio else None,
        )
