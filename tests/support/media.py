"""Test media made with FFmpeg's lavfi sources (a system ffmpeg, else imageio-ffmpeg's)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from squall.pipeline.binaries import ffmpeg_path

QUIET = ["-hide_banner", "-loglevel", "error", "-y"]
H264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "25"]


def _ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_path(), *QUIET, *args], check=True)


def video(
    path: Path, *, size: str = "320x180", seconds: float = 2, audio: bool = True, faststart: bool = True
) -> Path:
    inputs = ["-f", "lavfi", "-i", f"testsrc=size={size}:rate=25:duration={seconds}"]
    if audio:
        inputs += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={seconds}"]
    codecs = [*H264, *(["-c:a", "aac", "-b:a", "64k", "-shortest"] if audio else ["-an"])]
    _ffmpeg(*inputs, *codecs, *(["-movflags", "+faststart"] if faststart else []), str(path))
    return path


def mp3(path: Path, seconds: float = 3) -> Path:
    _ffmpeg("-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={seconds}",
            "-c:a", "libmp3lame", "-b:a", "64k", str(path))  # fmt: skip
    return path


def webm(path: Path, seconds: float = 2) -> Path:
    _ffmpeg(
        "-f", "lavfi", "-i", f"testsrc=size=320x180:rate=25:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=duration={seconds}",
        "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "200k",
        "-c:a", "libvorbis", "-shortest", str(path),
    )  # fmt: skip
    return path


def hls(folder: Path, seconds: float = 4) -> Path:
    folder.mkdir(exist_ok=True)
    _ffmpeg(
        "-f", "lavfi", "-i", f"testsrc=size=320x180:rate=25:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=duration={seconds}",
        *H264, "-c:a", "aac", "-b:a", "64k", "-shortest",
        "-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod",
        "-hls_segment_filename", str(folder / "seg_%03d.ts"), str(folder / "index.m3u8"),
    )  # fmt: skip
    return folder / "index.m3u8"


def dash(folder: Path, seconds: float = 4) -> Path:
    """Separate video and audio adaptation sets (segment templates), merged by the downloader."""
    folder.mkdir(exist_ok=True)
    _ffmpeg(
        "-f", "lavfi", "-i", f"testsrc=size=320x180:rate=25:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=duration={seconds}",
        "-map", "0:v", "-map", "1:a", *H264, "-keyint_min", "25", "-sc_threshold", "0",
        "-c:a", "aac", "-b:a", "64k", "-shortest", "-f", "dash", "-seg_duration", "1",
        "-use_template", "1", "-use_timeline", "0", "-adaptation_sets", "id=0,streams=v id=1,streams=a",
        str(folder / "manifest.mpd"),
    )  # fmt: skip
    return folder / "manifest.mpd"


def hls_renditions(folder: Path, seconds: float = 4) -> Path:
    """A master playlist with two renditions: 854x480 and 640x360."""
    folder.mkdir(exist_ok=True)
    _ffmpeg(
        "-f", "lavfi", "-i", f"testsrc=size=854x480:rate=25:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=duration={seconds}",
        "-filter_complex", "[0:v]split=2[v1][v2];[v2]scale=640:360[v2o]",
        "-map", "[v1]", "-map", "1:a", "-map", "[v2o]", "-map", "1:a",
        *H264, "-c:a", "aac", "-b:a", "64k", "-b:v:0", "1200k", "-b:v:1", "300k",
        "-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod", "-master_pl_name", "master.m3u8",
        "-var_stream_map", "v:0,a:0 v:1,a:1", "-hls_segment_filename", str(folder / "v%v_%03d.ts"),
        str(folder / "v%v.m3u8"),
    )  # fmt: skip
    return folder / "master.m3u8"


SUBTITLES = "WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nhello\n\n00:00:01.500 --> 00:00:02.000\nworld\n"
PLAYER_PAGE = """<html><head><title>Embedded player</title>
<meta property="og:image" content="poster.jpg"></head><body>
<video controls poster="poster.jpg"><source src="tiny.mp4" type="video/mp4">
<track kind="subtitles" srclang="en" label="English" src="subs.vtt"></video>
</body></html>"""


def make_library(root: Path) -> dict[str, Path]:
    """Every file the tests serve, generated once per test session."""
    root.mkdir(parents=True, exist_ok=True)
    files = {
        "tiny.mp4": video(root / "tiny.mp4"),
        "portrait.mp4": video(root / "portrait.mp4", size="480x854"),
        "landscape720.mp4": video(root / "landscape720.mp4", size="1280x720"),
        "long.mp4": video(root / "long.mp4", seconds=12, size="160x90"),
        "silent.mp4": video(root / "silent.mp4", audio=False),
        "index-at-end.mp4": video(root / "index-at-end.mp4", faststart=False),  # the moov after the media
        "tone.mp3": mp3(root / "tone.mp3"),
        "vorbis.webm": webm(root / "vorbis.webm"),
        "hls/index.m3u8": hls(root / "hls"),
        "dash/manifest.mpd": dash(root / "dash"),
        "hlsm/master.m3u8": hls_renditions(root / "hlsm"),
    }
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=320x180", "-frames:v", "1", str(root / "poster.jpg"))
    (root / "subs.vtt").write_text(SUBTITLES)
    (root / "player.html").write_text(PLAYER_PAGE)  # an HTML page embedding a video
    (root / "notmedia.bin").write_bytes(b"\x00\x01 this is not a media file " * 400)
    (root / "page.html").write_text("<html><body><p>No video here.</p></body></html>")
    files["notmedia.bin"] = root / "notmedia.bin"
    files["page.html"] = root / "page.html"
    return files


def lossless_video(path: Path, seconds: float) -> Path:
    """A large file for its length (lossless H.264, about 0.5 MB a second): for quota tests
    that need megabytes, not minutes."""
    _ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=size=640x360:rate=25:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=duration={seconds}",
        "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-shortest", "-movflags", "+faststart", str(path),
    )  # fmt: skip
    return path
