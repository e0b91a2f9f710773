"""Live sources inside the downloader child: waiting for a stream to start, telling a live
source from a finished one, and recording it with our own HLS loop (``live_hls``)."""

from __future__ import annotations

import re
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from squall.errors import QUOTA_EXCEEDED
from squall.pipeline import live_hls
from squall.pipeline.failures import Classified

LIVE_STATUSES = ("is_live", "is_upcoming")
NOT_STARTED = "The live stream has not started yet; submit the job with wait_for_video: true to wait for it"
SEGMENT_MAX_BYTES = 256 * 1024 * 1024  # one HLS segment; far above any real one
WAIT_FIRST_SECONDS = 1.0
WAIT_LONGEST_SECONDS = 30.0
_NOT_STARTED_TEXT = re.compile(
    r"will begin|not yet available|upcoming|premieres? in|not currently live|is offline|usernotlive"
)


class LiveStop(Exception):
    """A live source's own reason to end the job (the child reports it as a failure)."""

    def __init__(self, failure: Classified) -> None:
        super().__init__(failure.message)
        self.failure = failure


def is_live(info: dict[str, Any]) -> bool:
    return bool(info.get("is_live")) or info.get("live_status") in LIVE_STATUSES


def _not_started(exc: BaseException) -> bool:
    from yt_dlp.networking.exceptions import HTTPError
    from yt_dlp.utils import UserNotLive

    from squall.pipeline.failures import _chain

    chain = _chain(exc)
    if any(isinstance(e, UserNotLive) for e in chain):
        return True
    if any(isinstance(e, HTTPError) and e.status in (403, 404, 410) for e in chain):
        return True
    return bool(_NOT_STARTED_TEXT.search(" | ".join(str(e) for e in chain).lower()))


def extract_waiting(ydl: Any, url: str, conn: Connection, options: dict[str, Any]) -> dict[str, Any]:
    """The source's info; with ``wait_for_video``, a stream that has not started (an upcoming
    event, or a playlist that is not there yet) is asked again with backoff (1 s doubling to
    30 s) until ``wait_seconds`` have passed. The parent shows the job as Waiting meanwhile."""
    wait = bool(options.get("wait_for_video"))
    bound = float(options.get("wait_seconds") or 0)
    deadline = time.monotonic() + bound
    delay, announced = WAIT_FIRST_SECONDS, False
    while True:
        try:
            info: dict[str, Any] = ydl.extract_info(url, download=False)
        except Exception as exc:
            if not wait or not _not_started(exc):
                raise
            if time.monotonic() + delay > deadline:
                raise LiveStop(Classified(f"The live stream did not start within {bound:g} seconds "
                                          "(the longest wait_for_video waits)", outcome="Warning")) from None  # fmt: skip
        else:
            if info.get("live_status") != "is_upcoming":
                return info
            if not wait:
                raise LiveStop(Classified(NOT_STARTED, outcome="Warning"))
            if time.monotonic() + delay > deadline:
                raise LiveStop(Classified(f"The live stream did not start within {bound:g} seconds",
                                          outcome="Warning"))  # fmt: skip
        if not announced:
            conn.send(("waiting", bound))
            announced = True
        time.sleep(delay)
        delay = min(delay * 2, WAIT_LONGEST_SECONDS)


def _chosen_stream(ydl: Any, info: dict[str, Any], audio_only: bool) -> dict[str, Any]:
    """One HLS rendition that holds what the job needs (a live recording takes one stream)."""
    ydl.params["format"] = "ba/b" if audio_only else "b/bv*"
    chosen: dict[str, Any] = ydl.process_ie_result(info, download=False)
    protocol = str(chosen.get("protocol") or "")
    if chosen.get("requested_formats"):
        raise LiveStop(Classified("This live stream keeps audio and video in separate streams, "
                                  "which this server cannot record yet"))  # fmt: skip
    if protocol.startswith("rtmp") or protocol.startswith("rtsp"):
        raise LiveStop(Classified(f"Live {protocol.upper()} streams are refused: the URL guard cannot "
                                  "check the addresses they connect to (only HTTP(S) HLS is recorded)"))  # fmt: skip
    if protocol not in ("m3u8", "m3u8_native"):
        raise LiveStop(Classified(f"This live stream is delivered as '{protocol or 'unknown'}'; "
                                  "only HLS live streams can be recorded"))  # fmt: skip
    return chosen


def _fetcher(ydl: Any, headers: dict[str, str]) -> Any:
    from yt_dlp.networking import Request

    def fetch(url: str) -> tuple[bytes, str]:
        with ydl.urlopen(Request(url, headers=headers)) as response:
            body = response.read(SEGMENT_MAX_BYTES + 1)
            if len(body) > SEGMENT_MAX_BYTES:
                raise LiveStop(Classified("A live stream segment was larger than 256 MiB"))
            return bytes(body), str(response.url)

    return fetch


class _ParentLine:
    """Room and stop requests over the parent's control pipe (parent -> child)."""

    def __init__(self, conn: Connection, control: Connection) -> None:
        self.conn, self.control, self.stop = conn, control, False

    def _read(self) -> Any:
        message = self.control.recv()
        if message[0] == "stop":
            self.stop = True
        return message

    def ask_room(self, total: int) -> bool:
        self.conn.send(("room", total))
        while True:
            message = self._read()
            if message[0] == "room":
                return bool(message[1])

    def stop_requested(self) -> bool:
        while self.control.poll(0):
            self._read()
        return self.stop

    def report(self, seconds: float, size: int) -> None:
        self.conn.send(("recording", (seconds, size)))


def record_live(ydl: Any, conn: Connection, info: dict[str, Any], workdir: Path,
                options: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """Record the live source; the result has the shape of an ordinary download's."""
    chosen = _chosen_stream(ydl, info, bool(options["audio_only"]))
    from_start = bool(options.get("live_from_start"))
    conn.send(("live", {"from_start": from_start}))
    url = str(chosen["url"])
    suffix = ".aac" if url.split("?")[0].endswith(".aac") else ".ts"
    line = _ParentLine(conn, options["control"])
    control = live_hls.Control(line.ask_room, line.stop_requested, line.report)
    recording = live_hls.record(
        _fetcher(ydl, dict(chosen.get("http_headers") or {})), url, workdir / f"source{suffix}",
        limit_seconds=float(options["live_limit_seconds"]), from_start=from_start, control=control,
    )  # fmt: skip
    if recording.segments == 0:
        if recording.stopped_by == live_hls.QUOTA:
            raise LiveStop(Classified(QUOTA_EXCEEDED))
        raise LiveStop(Classified("The live stream ended before anything could be recorded"))
    described = {
        k: chosen.get(k) or info.get(k) for k in ("title", "description", "extractor", "webpage_url")
    }
    return {
        "path": str(recording.path),
        "downloaded_bytes": recording.size,
        "info": {
            **described,
            "live": True,
            "recorded_seconds": round(recording.seconds, 3),
            "recording_stopped_by": recording.stopped_by,
            "recording_from": "start" if from_start else "live_point",
        },
    }
