"""The heartbeat thread of a job's run: it renews the lease, and notices a cancel (the lease
gone) or a recording's stop request. It tries once per beat and does not wait out an outage:
the lease has slack, and the next beat tries again."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from squall.db.outage import is_outage
from squall.jobs import live as live_jobs
from squall.jobs import queue
from squall.logging import get_logger
from squall.worker.run import JobRun

if TYPE_CHECKING:
    from squall.worker.loop import Worker

log = get_logger("squall.worker")
CANCEL_CHECK_SECONDS = 1.0


def heartbeat_until(worker: Worker, run: JobRun, done: threading.Event) -> None:
    """Renew the lease every heartbeat; in between, check each second (a read) whether the
    job was cancelled (or its recording asked to stop), so a cancel stops the downloader and
    FFmpeg within about a second."""
    settings, job = worker.settings, run.job
    last_beat = time.monotonic()
    while not done.wait(min(settings.heartbeat_seconds, CANCEL_CHECK_SECONDS)):
        try:
            if time.monotonic() - last_beat >= settings.heartbeat_seconds:
                with worker.db.write() as session:
                    now = worker.lease_now(session)
                    alive = queue.heartbeat(session, job, now=now, lease_ms=worker.lease_ms)
                last_beat = time.monotonic()
            else:
                with worker.db.read() as session:
                    alive = queue.still_owned(session, job)
            if alive and run.recording_live and not run.stop.is_set():
                with worker.db.read() as session:  # POST /jobs/{id}/stop
                    if live_jobs.stop_requested(session, job):
                        run.stop.set()
        except Exception as error:  # a database blip: the lease has slack, try again next beat
            log.warning("heartbeat failed", job_id=job.id, exc_info=not is_outage(error))
            continue
        if not alive and done.is_set():  # the job ended (its lease with it) as this check ran
            return
        if not alive:
            log.warning("lease lost", job_id=job.id, attempt=job.attempt)
            run.lost.set()
            return
