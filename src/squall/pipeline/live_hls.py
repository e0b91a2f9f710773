"""Live HLS recording inside the downloader child: our own segment loop, so that every
playlist refresh and every segment goes through yt-dlp's opener and therefore through the
connect-time guard (FFmpeg never connects), and so that the recording stops exactly where
we say: at a duration limit, when the stream ends, when the user stops it, or when the key's
room runs out (room is granted by the parent before a segment is written, so the work file
never grows past the reservation)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

# Why a recording ended (the job's ``recording_stopped_by``).
MAX_DURATION = "max_duration"
STREAM_ENDED = "stream_ended"
STOPPED_BY_USER = "user_stop"
QUOTA = "quota"
# A playlist that has not grown for this many target durations (and at least STALL_MIN_SECONDS)
# is taken as a stream that ended without saying so.
STALL_TARGETS = 3
STALL_MIN_SECONDS = 8.0


@dataclass
class Segment:
    sequence: int
    url: str
    duration: float


@dataclass
class Playlist:
    target_duration: float
    segments: list[Segment]
    ended: bool
    init_url: str | None = None


def parse_media_playlist(text: str, base_url: str) -> Playlist:
    """The parts of an HLS media playlist a recorder needs (RFC 8216 §4.3)."""
    sequence, target, ended, init = 0, 2.0, False, None
    segments: list[Segment] = []
    duration: float | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            sequence = int(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-TARGETDURATION:"):
            target = float(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-ENDLIST"):
            ended = True
        elif line.startswith("#EXT-X-MAP:") and 'URI="' in line:
            init = urljoin(base_url, line.split('URI="', 1)[1].split('"', 1)[0])
        elif line.startswith("#EXTINF:"):
            duration = float(line.split(":", 1)[1].split(",", 1)[0])
        elif line and not line.startswith("#"):
            segments.append(Segment(sequence + len(segments), urljoin(base_url, line), duration or target))
            duration = None
    return Playlist(target, segments, ended, init)


@dataclass
class Recording:
    """What the loop produced."""

    path: Path
    seconds: float = 0.0
    size: int = 0
    segments: int = 0
    stopped_by: str = STREAM_ENDED
    from_start: bool = False
    first_sequence: int | None = None


class Control:
    """The recorder's line to the parent: room before each write, stop requests, progress."""

    def __init__(
        self,
        ask_room: Callable[[int], bool],
        stop_requested: Callable[[], bool],
        report: Callable[[float, int], None],
    ) -> None:
        self.ask_room = ask_room
        self.stop_requested = stop_requested
        self.report = report


def record(
    fetch: Callable[[str], tuple[bytes, str]],
    playlist_url: str,
    out: Path,
    *,
    limit_seconds: float,
    from_start: bool,
    control: Control,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Recording:
    """Append the stream's segments to ``out`` until the first stop condition.
    ``fetch(url) -> (body, final_url)``; ``limit_seconds``: the tightest duration cap."""
    result = Recording(out, from_start=from_start)
    next_sequence: int | None = None
    last_growth = clock()
    with out.open("wb") as sink:
        while True:
            body, final_url = fetch(playlist_url)
            playlist = parse_media_playlist(body.decode("utf-8", "replace"), final_url)
            if next_sequence is None:  # the first look: where the recording starts
                if playlist.init_url:
                    init, _ = fetch(playlist.init_url)
                    if not control.ask_room(len(init)):
                        result.stopped_by = QUOTA
                        return result
                    sink.write(init)
                    result.size += len(init)
                start = playlist.segments[0] if from_start or not playlist.segments else playlist.segments[-1]
                next_sequence = start.sequence if playlist.segments else 0
                result.first_sequence = next_sequence
            fresh = [s for s in playlist.segments if s.sequence >= next_sequence]
            if fresh:
                last_growth = clock()
            for segment in fresh:
                if control.stop_requested() and result.segments:  # a stop keeps at least a segment
                    result.stopped_by = STOPPED_BY_USER
                    return result
                if result.seconds + segment.duration > limit_seconds + 0.01 and result.segments:
                    result.stopped_by = MAX_DURATION
                    return result
                data, _ = fetch(segment.url)
                if not control.ask_room(result.size + len(data)):
                    result.stopped_by = QUOTA
                    return result
                sink.write(data)
                sink.flush()
                result.size += len(data)
                result.seconds += segment.duration
                result.segments += 1
                next_sequence = segment.sequence + 1
                control.report(result.seconds, result.size)
                if result.seconds >= limit_seconds - 0.01:
                    result.stopped_by = MAX_DURATION
                    return result
            if playlist.ended:
                result.stopped_by = STREAM_ENDED
                return result
            stall = max(STALL_MIN_SECONDS, STALL_TARGETS * playlist.target_duration)
            if clock() - last_growth > stall:
                result.stopped_by = STREAM_ENDED
                return result
            if control.stop_requested() and result.segments:
                result.stopped_by = STOPPED_BY_USER
                return result
            sleep(max(0.3, playlist.target_duration / 2))
