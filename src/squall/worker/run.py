"""One claimed job's run as the pipeline sees it (``PipelineEvents``): its steps, the growth
of its storage reservation, the live recording's progress, the stored-object notes, and the
heartbeat thread that renews its lease and notices a cancel or a stop request."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from squall.db.outage import is_outage, until_database_back
from squall.jobs import leftovers as stored_objects
from squall.jobs import live as live_jobs
from squall.jobs import queue
from squall.jobs import service as jobs
from squall.jobs.claimed import ClaimedJob
from squall.jobs.models import JobStep
from squall.logging import get_logger
from squall.pipeline.spec import Cancelled

if TYPE_CHECKING:
    from squall.worker.loop import Worker

log = get_logger("squall.worker")
CANCEL_CHECK_SECONDS = 1.0
# How long a finished job's result waits through a database outage before it is given up (the
# job is then retried once its lease has run out).
OUTAGE_PATIENCE_S = 600.0


class RecordingPace:
    """How often a recording's progress is written (each second) and announced by webhook."""

    def __init__(self) -> None:
        self.written = self.announced = float("-inf")

    def due(self, now: float) -> tuple[bool, bool]:
        if now - self.written < 1.0:
            return False, False
        self.written = now
        announce = now - self.announced >= live_jobs.RECORDING_WEBHOOK_EVERY_SECONDS
        if announce:
            self.announced = now
        return True, announce


class JobRun:
    """The pipeline's view of one claimed job: steps, reservation growth, cancellation."""

    def __init__(self, worker: Worker, job: ClaimedJob) -> None:
        self.worker = worker
        self.job = job
        self.lost = threading.Event()
        self.stop = threading.Event()  # POST /jobs/{id}/stop, seen by the heartbeat thread
        self.recording_live = False
        self._progress = RecordingPace()
        self._granted: tuple[int, bool] | None = None  # the last reservation request granted

    def _write(self, change: Callable[[], bool | None], what: str) -> bool | None:
        """A write of the run: an outage waits for the database (a restart must not cost the
        job an attempt); the fencing still decides whether it counts."""
        worker = self.worker
        return until_database_back(
            change, stopping=worker.stopping, give_up_after_s=OUTAGE_PATIENCE_S, what=what
        )

    def step(self, name: str) -> None:
        def reach() -> bool:
            with self.worker.db.write() as session:
                return jobs.reach_step(session, self.job, name, now=self.worker.clock.now_ms())

        if not self._write(reach, "job step"):
            self.lost.set()
        self.recording_live = name == JobStep.RECORDING
        if self.cancelled():
            raise Cancelled()

    def stop_requested(self) -> bool:
        return self.stop.is_set()

    def recording(self, seconds: float, size: int) -> None:
        """Show the recording's progress on the job (at most once a second) and in a progress
        webhook (at most once every RECORDING_WEBHOOK_EVERY_SECONDS)."""
        write, announce = self._progress.due(time.monotonic())
        if not write:
            return
        with self.worker.db.write() as session:
            if not live_jobs.record_progress(session, self.job, seconds, size, now=self.worker.clock.now_ms(),
                                             announce=announce and self.job.hook is not None):  # fmt: skip
                self.lost.set()

    def need_bytes(self, total_bytes: int, *, exact: bool = False) -> bool:
        # The downloader repeats the same exact total with every progress report: a repeat of
        # the last granted request changes nothing, so it costs no transaction. (A request for
        # the same total made exact may still shrink the reservation, so it is not a repeat.)
        if self._granted == (total_bytes, exact) or self._granted == (total_bytes, True):
            return True

        def resize() -> bool | None:
            with self.worker.db.write() as session:
                return jobs.resize_job_reservation(session, self.job, total_bytes, shrink=exact)

        grown = self._write(resize, "job reservation")
        if grown is None:
            self.lost.set()
            return True  # the cancel check stops the run
        if grown:
            self._granted = (total_bytes, exact)
        return grown

    def cancelled(self) -> bool:
        return self.lost.is_set() or self.worker.stopping.is_set()

    def stored(self, key: str) -> None:
        def note() -> bool:
            with self.worker.db.write() as session:
                return stored_objects.note_stored(session, self.job, key)

        if not self._write(note, "stored object note"):
            self.lost.set()

    def heartbeat_until(self, done: threading.Event) -> None:
        """Renew the lease every heartbeat; in between, check each second (a read) whether the
        job was cancelled (or its recording asked to stop), so a cancel stops the downloader and
        FFmpeg within about a second."""
        settings = self.worker.settings
        last_beat = time.monotonic()
        while not done.wait(min(settings.heartbeat_seconds, CANCEL_CHECK_SECONDS)):
            try:
                if time.monotonic() - last_beat >= settings.heartbeat_seconds:
                    with self.worker.db.write() as session:
                        now = self.worker.lease_now(session)
                        alive = queue.heartbeat(session, self.job, now=now, lease_ms=self.worker.lease_ms)
                    last_beat = time.monotonic()
                else:
                    with self.worker.db.read() as session:
                        alive = queue.still_owned(session, self.job)
                if alive and self.recording_live and not self.stop.is_set():
                    with self.worker.db.read() as session:  # POST /jobs/{id}/stop
                        if live_jobs.stop_requested(session, self.job):
                            self.stop.set()
            except Exception as error:  # a database blip: the lease has slack, try again next beat
                log.warning("heartbeat failed", job_id=self.job.id, exc_info=not is_outage(error))
                continue
            if not alive and done.is_set():  # the job ended (its lease with it) as this check ran
                return
            if not alive:
                log.warning("lease lost", job_id=self.job.id, attempt=self.job.attempt)
                self.lost.set()
                return
