"""FFmpeg stage. FFmpeg only ever reads the local file the downloader wrote
(``-protocol_whitelist file,pipe``): a hostile playlist cannot make it fetch anything.

Default is a stream copy (remux). It re-encodes only what must change: a stream the target
container cannot hold, or video above the key's resolution cap (shorter side, so portrait
works)."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from pathlib import Path

from squall.errors import JobFailure
from squall.pipeline.binaries import ffmpeg_path
from squall.pipeline.probe import MediaInfo
from squall.pipeline.spec import Cancelled, PipelineEvents

MP4_VIDEO = {"h264", "hevc", "vp9", "av1", "mpeg4"}
MP4_AUDIO = {"aac", "mp3", "opus", "ac3", "eac3", "alac", "flac"}
MUXERS = {"mp4": "mp4", "mkv": "matroska"}


def build_command(
    source: Path, target: Path, container: str, media: MediaInfo, max_short_side: int | None
) -> list[str]:
    cmd = [ffmpeg_path(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    cmd += [
        "-protocol_whitelist",
        "file,pipe",
        "-i",
        str(source),
        "-map",
        "0:v:0?",
        "-map",
        "0:a:0?",
    ]
    short = media.short_side
    if max_short_side and short and short > max_short_side:
        n = max_short_side  # scale the shorter side down to n, keep the aspect, even sizes
        scale = f"scale='if(gte(iw,ih),-2,{n})':'if(gte(iw,ih),{n},-2)'"
        cmd += [
            "-vf",
            scale,
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "23",
            "-pix_fmt",
            "yuv420p",
        ]
    elif container == "mp4" and media.video_codec and media.video_codec not in MP4_VIDEO:
        cmd += ["-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p"]
    else:
        cmd += ["-c:v", "copy"]
    if container == "mp4" and media.audio_codec and media.audio_codec not in MP4_AUDIO:
        cmd += [
            "-c:a",
            "aac",
            "-b:a",
            "192k",
        ]  # "copy falls back to aac where the container needs it"
    else:
        cmd += ["-c:a", "copy"]
    if container == "mp4":
        cmd += ["-movflags", "+faststart"]
    return [*cmd, "-f", MUXERS[container], str(target)]


def run_ffmpeg(cmd: list[str], events: PipelineEvents, timeout_seconds: float) -> None:
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            start_new_session=True,
        )
        waited = 0.0
        try:
            while True:
                try:
                    code = process.wait(timeout=0.2)
                    break
                except subprocess.TimeoutExpired:
                    waited += 0.2
                    if events.cancelled():
                        raise Cancelled() from None
                    if waited > timeout_seconds:
                        raise JobFailure(
                            f"Processing took longer than {timeout_seconds:g} seconds and was stopped"
                        ) from None
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if code != 0:
            errors.seek(0)
            tail = errors.read()[-400:].decode(errors="replace").strip()
            raise JobFailure(f"Processing failed: {tail or f'ffmpeg exited with {code}'}")
