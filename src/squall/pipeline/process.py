"""FFmpeg stage. FFmpeg only ever reads the local file the downloader wrote
(``-protocol_whitelist file,pipe``): a hostile playlist cannot make it fetch anything.

Streams are copied unless something must change: a codec was asked for, the container cannot
hold the source's codec ("copy" then falls back to the container's usual codec), the video is
above the resolution cap (shorter side, so portrait works), or the output is audio only. A
clip is cut here from the downloaded file: to the frame when the video is re-encoded, at the
nearest earlier keyframe when it is copied."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from pathlib import Path

from squall.errors import JobFailure
from squall.pipeline.binaries import ffmpeg_path
from squall.pipeline.exit_watch import ExitWatch
from squall.pipeline.failures import DISK_FULL
from squall.pipeline.probe import MediaInfo
from squall.pipeline.spec import Cancelled, JobSpec, PipelineEvents

MUXERS = {"mp4": "mp4", "mov": "mov", "mkv": "matroska", "webm": "webm", "m4a": "mp4", "mp3": "mp3", "ogg": "ogg",
          "opus": "opus"}  # fmt: skip
# Source codecs (FFmpeg's names) each container takes as they are; None: anything.
HOLDS_VIDEO: dict[str, set[str] | None] = {
    "mp4": {"h264", "hevc", "vp9", "av1", "mpeg4"},
    "mov": {"h264", "hevc", "mpeg4"},
    "mkv": None,
    "webm": {"vp8", "vp9", "av1"},
}
HOLDS_AUDIO: dict[str, set[str] | None] = {
    "mp4": {"aac", "mp3", "opus", "ac3", "eac3", "alac", "flac"},
    "mov": {"aac", "mp3", "alac"},
    "mkv": None,
    "webm": {"opus", "vorbis"},
    "m4a": {"aac", "alac"},
    "mp3": {"mp3"},
    "ogg": {"vorbis", "opus", "flac"},
    "opus": {"opus"},
}
FALLBACK_VIDEO = {"mp4": "h264", "mov": "h264", "mkv": "h264", "webm": "vp9"}
FALLBACK_AUDIO = {"mp4": "aac", "mov": "aac", "mkv": "aac", "webm": "opus", "m4a": "aac", "mp3": "mp3", "ogg": "opus",
                  "opus": "opus"}  # fmt: skip
AUDIO_ENCODERS = {"aac": "aac", "mp3": "libmp3lame", "opus": "libopus"}
# CRF for each quality preset, per encoder (x264/x265 use 0-51, VP9 0-63; lower is better).
PRESET_CRF = {
    "h264": {"highest": 18, "high": 20, "medium": 23, "low": 28, "lowest": 32},
    "h265": {"highest": 20, "high": 24, "medium": 28, "low": 32, "lowest": 36},
    "vp9": {"highest": 24, "high": 28, "medium": 32, "low": 38, "lowest": 44},
}
DEFAULT_PRESET = "medium"


def crf_for(spec: JobSpec, codec: str) -> int:
    if spec.quality_preset:  # "overrides video_quality" (Tornado)
        return PRESET_CRF[codec][spec.quality_preset]
    if spec.video_quality is not None:
        return spec.video_quality
    return PRESET_CRF[codec][DEFAULT_PRESET]


def video_encoder(codec: str, crf: int, container: str) -> list[str]:
    if codec == "h264":
        return ["-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf), "-pix_fmt", "yuv420p"]
    if codec == "h265":
        tag = ["-tag:v", "hvc1"] if container in ("mp4", "mov") else []  # so Apple players open it
        return ["-c:v", "libx265", "-preset", "fast", "-crf", str(crf), "-pix_fmt", "yuv420p", *tag]
    return ["-c:v", "libvpx-vp9", "-b:v", "0", "-crf", str(crf), "-row-mt", "1", "-deadline", "good",
            "-cpu-used", "5"]  # fmt: skip


def video_args(spec: JobSpec, media: MediaInfo) -> list[str]:
    if spec.audio_output or media.video_codec is None:
        return ["-vn"]
    cap, short = spec.max_resolution, media.short_side
    scale = (
        f"scale='if(gte(iw,ih),-2,{cap})':'if(gte(iw,ih),{cap},-2)'"
        if cap and short and short > cap
        else None
    )
    codec = spec.video_codec
    if codec == "copy":
        allowed = HOLDS_VIDEO[spec.container]
        if scale is None and (allowed is None or media.video_codec in allowed):
            return ["-c:v", "copy"]
        codec = FALLBACK_VIDEO[spec.container]
    encoder = video_encoder(codec, crf_for(spec, codec), spec.container)
    return ["-vf", scale, *encoder] if scale else encoder


def audio_args(spec: JobSpec, media: MediaInfo) -> list[str]:
    if media.audio_codec is None:
        return ["-an"]
    codec = spec.audio_codec
    if codec == "copy":
        allowed = HOLDS_AUDIO[spec.container]
        if allowed is None or media.audio_codec in allowed:
            return ["-c:a", "copy"]
        codec = FALLBACK_AUDIO[spec.container]  # "copy falls back to aac where the container needs it"
    return ["-c:a", AUDIO_ENCODERS[codec], "-b:a", spec.audio_bitrate]


def ffmpeg_base() -> list[str]:
    """How every FFmpeg run starts: quiet, non-interactive, overwriting, local files only."""
    return [
        ffmpeg_path(),
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-protocol_whitelist",
        "file,pipe",
    ]


def build_command(source: Path, target: Path, spec: JobSpec, media: MediaInfo) -> list[str]:
    cmd = ffmpeg_base()
    if spec.clip_start is not None:
        cmd += ["-ss", f"{spec.clip_start:.3f}"]
    if spec.clip_end is not None:
        cmd += ["-to", f"{spec.clip_end:.3f}"]
    cmd += ["-i", str(source), "-map", "0:v:0?", "-map", "0:a:0?", "-sn", "-dn"]
    cmd += video_args(spec, media) + audio_args(spec, media)
    if spec.max_output_seconds:
        cmd += ["-t", str(spec.max_output_seconds)]
    if spec.container in ("mp4", "mov", "m4a"):
        cmd += ["-movflags", "+faststart"]
    return [*cmd, "-f", MUXERS[spec.container], str(target)]


def run_ffmpeg(cmd: list[str], events: PipelineEvents, timeout_seconds: float) -> None:
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors, start_new_session=True
        )
        waited = 0.0
        try:
            with ExitWatch(process) as exits:
                while (code := exits.wait(0.2)) is None:
                    waited += 0.2
                    if events.cancelled():
                        raise Cancelled()
                    if waited > timeout_seconds:
                        raise JobFailure(
                            f"Processing took longer than {timeout_seconds:g} seconds and was stopped"
                        )
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if code != 0:
            errors.seek(0)
            tail = errors.read()[-400:].decode(errors="replace").strip()
            if "no space left on device" in tail.lower():
                raise JobFailure(DISK_FULL, retryable=True)
            raise JobFailure(f"Processing failed: {tail or f'ffmpeg exited with {code}'}")
