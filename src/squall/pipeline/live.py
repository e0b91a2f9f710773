"""The parent's side of a live recording: it grants the child room (growing the job's
reservation before a segment is written), passes on the user's stop, shows the job as
Waiting or Recording, and moves the download's deadline past the recording's own bound."""

from __future__ import annotations

import time
from dataclasses import replace
from multiprocessing.connection import Connection
from typing import Any

from squall.pipeline.spec import DownloadResult, JobSpec, PipelineEvents

WAITING = "Waiting"
RECORDING = "Recording"
DOWNLOADING = "Downloading"


class LiveLine:
    """One download's control line to its child, and the steps it has shown."""

    def __init__(self, control: Connection, spec: JobSpec, events: PipelineEvents, deadline: float) -> None:
        self.control, self.spec, self.events, self.deadline = control, spec, events, deadline
        self.shown: str | None = None
        self.stop_sent = False
        self.live = False
        self.over_filesize = False

    def _show(self, step: str) -> None:
        if self.shown != step:
            self.shown = step
            self.events.step(step)

    def downloading(self) -> None:
        """An ordinary download began (after a wait, the job shows it again)."""
        if self.shown == WAITING:
            self._show(DOWNLOADING)

    def handle(self, kind: str, payload: Any) -> None:
        now = time.monotonic()
        if kind == "room":  # the key's file size limit first, then its quota
            limit = self.spec.max_filesize_bytes
            self.over_filesize = bool(limit and int(payload) > limit)
            self.control.send(("room", not self.over_filesize and self.events.need_bytes(int(payload))))
        elif kind == "recording":
            seconds, size = payload
            self.events.recording(float(seconds), int(size))
        elif kind == "live":
            self.live = True
            self._show(RECORDING)
            longest = min(self.spec.live_caps().values())
            self.deadline = max(self.deadline, now + longest + self.spec.timeout_seconds)
        elif kind == "waiting":
            self._show(WAITING)
            self.deadline = max(self.deadline, now + self.spec.live_wait_seconds + self.spec.timeout_seconds)

    def pass_on_stop(self) -> None:
        if self.live and not self.stop_sent and self.events.stop_requested():
            self.control.send(("stop",))
            self.stop_sent = True


def live_result(result: DownloadResult, line: LiveLine) -> DownloadResult:
    """A recording that stopped at a bound names the bound: the tightest duration cap, or the
    key's file size limit rather than its quota."""
    info, stopped_by = result.info, result.info.get("recording_stopped_by")
    if not info.get("live"):
        return result
    if stopped_by == "max_duration":
        caps = line.spec.live_caps()
        stopped_by = min(caps, key=lambda name: caps[name])
    elif stopped_by == "quota" and line.over_filesize:
        stopped_by = "max_filesize"
    return replace(result, info={**info, "recording_stopped_by": stopped_by})
