"""One claimed job's run as the pipeline sees it (``PipelineEvents``): its steps, the growth
of its storage reservation, the live recording's progress and the stored-object notes. Each
of these writes goes through ``PatientDatabase``, the run's only way to the database, so
every one of them waits out an outage. The heartbeat is in ``heartbeat.py``."""

from __future__ import annotations

import threading
import time

from sqlalchemy.orm import Session

from squall.clock import Clock
from squall.jobs import leftovers as stored_objects
from squall.jobs import live as live_jobs
from squall.jobs import service as jobs
from squall.jobs.claimed import ClaimedJob
from squall.jobs.models import JobStep
from squall.pipeline.spec import Cancelled
from squall.worker.patience import PatientDatabase


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

    def __init__(self, job: ClaimedJob, database: PatientDatabase, clock: Clock) -> None:
        self.job = job
        self._database = database
        self._clock = clock
        self.lost = threading.Event()
        self.stop = threading.Event()  # POST /jobs/{id}/stop, seen by the heartbeat thread
        self.recording_live = False
        self._progress = RecordingPace()
        self._granted: tuple[int, bool] | None = None  # the last reservation request granted

    def step(self, name: str) -> None:
        def reach(session: Session) -> bool:
            return jobs.reach_step(session, self.job, name, now=self._clock.now_ms())

        if not self._database.write(reach, what="job step"):
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

        def show(session: Session) -> bool:
            return live_jobs.record_progress(session, self.job, seconds, size, now=self._clock.now_ms(),
                                             announce=announce and self.job.hook is not None)  # fmt: skip

        if self._database.try_write(show, what="recording progress") is False:  # None: skipped
            self.lost.set()

    def need_bytes(self, total_bytes: int, *, exact: bool = False) -> bool:
        # The downloader repeats the same exact total with every progress report: a repeat of
        # the last granted request changes nothing, so it costs no transaction. (A request for
        # the same total made exact may still shrink the reservation, so it is not a repeat.)
        if self._granted == (total_bytes, exact) or self._granted == (total_bytes, True):
            return True

        def resize(session: Session) -> bool | None:
            return jobs.resize_job_reservation(session, self.job, total_bytes, shrink=exact)

        grown = self._database.write(resize, what="job reservation")
        if grown is None:
            self.lost.set()
            return True  # the cancel check stops the run
        if grown:
            self._granted = (total_bytes, exact)
        return grown

    def cancelled(self) -> bool:
        return self.lost.is_set() or self._database.stopping.is_set()

    def stored(self, key: str) -> None:
        def note(session: Session) -> bool:
            return stored_objects.note_stored(session, self.job, key)

        if not self._database.write(note, what="stored object note"):
            self.lost.set()
