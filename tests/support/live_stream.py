"""A live HLS stream made during the test: FFmpeg encodes lavfi sources in real time (``-re``)
into a folder that a MediaServer serves, writing a playlist without an end list until the
test ends the stream (``end()`` appends ``#EXT-X-ENDLIST``, as a server does when a live
event is over)."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from squall.pipeline.binaries import ffmpeg_path
from tests.support.media import H264, QUIET


class LiveStream:
    """``window``: segments the playlist keeps (0: all of them, a DVR-like long window).
    ``bitrate``: the video's (a higher one fills a quota sooner)."""

    def __init__(self, folder: Path, *, window: int = 4, seconds: int = 90, bitrate: str = "200k") -> None:
        self.folder = folder
        self.playlist = folder / "index.m3u8"
        folder.mkdir(parents=True, exist_ok=True)
        flags = "omit_endlist+temp_file" + ("+delete_segments" if window else "")
        self.process = subprocess.Popen(
            [
                ffmpeg_path(), *QUIET, "-re",
                "-f", "lavfi", "-i", f"testsrc=size=320x180:rate=25:duration={seconds}",
                "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={seconds}",
                *H264, "-b:v", bitrate, "-maxrate", bitrate, "-bufsize", bitrate,
                "-c:a", "aac", "-b:a", "64k",
                "-f", "hls", "-hls_time", "1", "-hls_list_size", str(window), "-hls_flags", flags,
                "-hls_segment_filename", str(folder / "seg_%03d.ts"), str(self.playlist),
            ],
            stdin=subprocess.DEVNULL,
        )  # fmt: skip

    def segments(self) -> int:
        if not self.playlist.exists():
            return 0
        return sum(1 for line in self.playlist.read_text().splitlines() if line.endswith(".ts"))

    def wait_for_segments(self, count: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while self.segments() < count:
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError(f"the live stream did not reach {count} segments")
            time.sleep(0.1)

    def stop_encoding(self) -> None:
        """SIGKILL, so FFmpeg writes nothing more (not even a trailer)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def end(self) -> None:
        """The event is over: no more segments, and the playlist says so."""
        self.stop_encoding()
        with self.playlist.open("a") as playlist:
            playlist.write("#EXT-X-ENDLIST\n")

    def __enter__(self) -> LiveStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_encoding()
