"""The worker: claims jobs, runs the pipeline, and turns its results into state and usage.

Each claimed job holds a lease renewed by a heartbeat thread. If the heartbeat finds the lease
gone (reaped after a stall, or cancelled), the run is stopped and its results are discarded:
every write is fenced by the attempt number, so a late worker cannot change anything."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from types import FrameType

from sqlalchemy.orm import Session

from squall.billing.reporter import MeterReporter
from squall.clock import DAY_MS, SYSTEM, Clock
from squall.db import Database
from squall.db.dbtime import database_now_ms
from squall.db.outage import is_outage, until_database_back
from squall.db.presence import InUse
from squall.db.wakeup import Wakeup
from squall.errors import JobFailure, SquallError
from squall.intake import idempotency
from squall.jobs import live as live_jobs
from squall.jobs import queries as job_queries
from squall.jobs import queue, workers
from squall.jobs import service as jobs
from squall.jobs.claimed import ClaimedJob, RunLimits, pipeline_spec
from squall.jobs.models import JobStep
from squall.jobs.views import object_link
from squall.keys.cookies import CookiesUnreadable, cookie_box, load_cookies
from squall.keys.storage_service import StoragePicker, backend_of, customer_folder, storage_box
from squall.logging import get_logger
from squall.pipeline.failures import DISK_FULL, is_disk_full
from squall.pipeline.run import run_pipeline
from squall.pipeline.spec import Cancelled, JobSpec, PipelineEvents, PipelineResult
from squall.pipeline.urlguard import url_policy
from squall.pipeline.ytdlp_config import downloader_config
from squall.queue import RetryPolicy
from squall.settings import Settings
from squall.storage.base import Storage
from squall.storage.factory import make_storage
from squall.subscriptions import wire
from squall.webhooks.sender import WebhookSender

log = get_logger("squall.worker")
CANCEL_CHECK_SECONDS = 1.0
# What runs a claimed job: the real pipeline, or a stand-in in tests of the queue logic.
Pipeline = Callable[[JobSpec, Path, Storage, PipelineEvents], PipelineResult]
# Housekeeping: stored Idempotency-Key answers older than a day, outputs past retention.
PRUNE_EVERY_SECONDS = 600.0
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
                return jobs.note_stored(session, self.job, key)

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


class Worker:
    def __init__(
        self,
        settings: Settings,
        db: Database | None = None,
        storage: Storage | None = None,
        *,
        clock: Clock = SYSTEM,
        pipeline: Pipeline = run_pipeline,
        leases_on_database_time: bool | None = None,
    ) -> None:
        """``leases_on_database_time``: leases (claim, heartbeat, reaper, requeue) read the
        database's clock, which all hosts share; the default, unless a test passes a clock of
        its own to move time with."""
        self.settings = settings
        self.leases_on_database_time = (
            clock is SYSTEM if leases_on_database_time is None else leases_on_database_time
        )
        self.db = wire(db or Database(settings.resolved_database_url))
        self.storage = storage or make_storage(settings)
        self.clock = clock
        self.pipeline = pipeline
        self.retry_policy = RetryPolicy.exponential(settings.retry_backoff_seconds * 1000)
        self.run_limits = RunLimits(url_policy(settings), settings.socket_timeout_seconds,
                                    settings.download_timeout_seconds, downloader_config(settings),
                                    live_max_seconds=settings.live_max_seconds,
                                    live_wait_seconds=settings.live_wait_seconds)  # fmt: skip
        self.cookie_box = cookie_box(settings.resolved_secret_key())
        self.picker = StoragePicker(
            self.storage, storage_box(settings.resolved_secret_key()), url_policy(settings)
        )
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.stopping = threading.Event()
        self.lease_ms = int(settings.lease_seconds * 1000)
        self._last_reap = 0.0
        self._last_beat = float("-inf")
        self.concurrency = 1
        self._last_prune = 0.0
        self.parent_pid: int | None = None
        self.wakeup = Wakeup(self.db.url)
        self.webhooks = WebhookSender(self.db, settings, owner=self.worker_id, clock=clock)

    # -- loop -------------------------------------------------------------------------
    def run(self, concurrency: int = 1) -> None:
        settings = self.settings
        self.concurrency = concurrency
        settings.work_dir.mkdir(parents=True, exist_ok=True)
        threads = [threading.Thread(target=self._loop, name=f"worker-{i}") for i in range(concurrency)]
        if settings.stripe_api_key:  # stripe keys' uploads go to Stripe's meter from here
            reporter = MeterReporter(self.db, settings, clock=self.clock)
            threading.Thread(
                target=reporter.run, args=(self.stopping,), name="meter-reporter", daemon=True
            ).start()
        if settings.webhook_concurrency:
            # A daemon: a delivery cut off by shutdown is retried (its lease runs out), so a
            # slow receiver never holds up a stop.
            args = (self.stopping, settings.webhook_concurrency)
            threading.Thread(target=self.webhooks.run, args=args, name="webhooks", daemon=True).start()
        self.wakeup.start()
        for thread in threads:
            thread.start()
        log.info("worker started", worker_id=self.worker_id, concurrency=concurrency,
                 webhook_senders=settings.webhook_concurrency)  # fmt: skip
        if not threads:  # concurrency 0: this process only delivers webhooks
            while not self.stopping.wait(1.0) and not self._orphaned():
                pass
        for thread in threads:
            thread.join()

    def _orphaned(self) -> bool:
        """True (and stopping) once the serve process that started this worker is gone."""
        if self.parent_pid is None or os.getppid() == self.parent_pid:
            return False
        log.warning("parent process is gone; stopping")
        self.stop()
        return True

    def _loop(self) -> None:
        while not self.stopping.is_set():
            if self._orphaned():
                break
            try:
                self.beat_if_due()
                self.reap_if_due()
                if not self.run_once():  # idle: until a job is queued (the wake-up), or the poll
                    self.wakeup.wait(self.settings.poll_seconds)
            except Exception as error:
                if is_outage(error):  # restarting or unreachable: no traceback, just wait
                    log.warning("database unavailable; backing off", error=str(error).splitlines()[0])
                else:
                    log.exception("worker loop error; backing off")
                self.stopping.wait(self.settings.poll_seconds * 4)

    def beat_if_due(self) -> None:
        """Tell the operator's view this worker is alive (``jobs/workers.py``)."""
        if time.monotonic() - self._last_beat < self.settings.heartbeat_seconds:
            return
        self._last_beat = time.monotonic()
        host, pid, _ = self.worker_id.rsplit(":", 2)
        with self.db.write() as session:  # read against leases: on the same clock
            workers.beat(session, worker_id=self.worker_id, host=host, pid=int(pid),
                         concurrency=self.concurrency, now=self.lease_now(session))  # fmt: skip

    def reap_if_due(self) -> None:
        if time.monotonic() - self._last_reap < self.settings.lease_seconds / 2:
            return
        self._last_reap = time.monotonic()
        reaped = self.reap()
        if reaped:
            log.info("reaped expired leases", count=reaped)
        if time.monotonic() - self._last_prune >= PRUNE_EVERY_SECONDS:
            self._last_prune = time.monotonic()
            with self.db.write() as session:
                idempotency.prune(session, now=self.clock.now_ms())
                workers.forget_stale(session, before=self.lease_now(session) - DAY_MS)
            self.apply_retention()

    def apply_retention(self) -> int:
        """Delete the outputs that their key's retention has run out on; returns how many jobs.
        Each is forgotten and deleted in one transaction, as ``DELETE /jobs/{id}/file`` does."""
        deleted = 0
        with self.db.read() as session:
            due = job_queries.past_retention(session, now=self.clock.now_ms())
        for key_id, job_id in due:
            try:
                with self.db.write() as session:
                    storage = self.picker.for_deleting(session, job_id)
                    for key in jobs.clear_output(session, key_id, job_id, now=self.clock.now_ms()):
                        if storage is not None:  # None: a request's bucket, its credentials erased
                            storage.delete(key)
                deleted += 1
            except SquallError as exc:  # deleted meanwhile, or the storage failed: next round
                log.warning("retention delete skipped", job_id=job_id, error=exc.message)
        if deleted:
            log.info("outputs past retention deleted", count=deleted)
        return deleted

    def lease_now(self, session: Session) -> int:
        """Now, for leases: the database's clock (a host's own may be minutes off), read in the
        lease's own transaction; or the test's clock."""
        return database_now_ms(session) if self.leases_on_database_time else self.clock.now_ms()

    def reap(self) -> int:
        given_up: list[str] = []
        with self.db.write() as session:
            reaped = jobs.reap_expired(session, now=self.lease_now(session), given_up=given_up)
        for job_id in given_up:
            self.delete_leftovers(job_id)
        return reaped

    def delete_leftovers(self, job_id: str, *, earlier: Sequence[str] = (), keep: Sequence[str] = ()) -> None:
        """Delete what attempts of a job that has ended stored but its books do not name (an
        attempt killed between its upload and its outcome): ``squall storage reconcile``
        stays clean. ``earlier``: such keys already read (a completion replaces the list)."""
        try:
            with self.db.write() as session:
                leftovers = [k for k in [*earlier, *jobs.take_leftovers(session, job_id)] if k not in keep]
                storage = self.picker.for_deleting(session, job_id) if leftovers else None
            for key in leftovers:
                if storage is not None:
                    storage.delete(key)
            if leftovers:
                log.info("objects of interrupted attempts deleted", job_id=job_id, count=len(leftovers))
        except Exception:  # the storage or the database: reconciliation will list them
            log.warning("leftover objects not deleted", job_id=job_id, exc_info=True)

    def run_once(self) -> bool:
        """Claim and run one job; False when the queue had nothing ready."""
        with self.db.write() as session:
            now = self.lease_now(session)
            job = queue.claim(session, worker_id=self.worker_id, now=now, lease_ms=self.lease_ms)
        if job is None:
            return False
        self.process(job)
        return True

    # -- one job ----------------------------------------------------------------------
    def process(self, job: ClaimedJob) -> None:
        run = JobRun(self, job)
        done = threading.Event()
        workdir = self.settings.work_dir / f"{job.id}-{job.attempt}"
        log.info("job started", job_id=job.id, attempt=job.attempt)
        try:  # everything after the claim is inside: `finally` must stop the heartbeat
            threading.Thread(target=run.heartbeat_until, args=(done,), daemon=True).start()
            if job.options_problem:
                raise JobFailure(job.options_problem)
            workdir.mkdir(parents=True, exist_ok=True)

            def prepare() -> tuple[Storage, JobSpec]:
                with self.db.read() as session:  # one read for the key's cookies and the job's bucket
                    spec = pipeline_spec(job, self.run_limits, self.key_cookies(session, job.key_id))
                    return self.job_storage(session, job, spec)

            # An outage just after the claim waits for the database, as the completion does:
            # crashing here would spend one of the job's attempts on the database's restart.
            storage, spec = until_database_back(prepare, stopping=self.stopping, give_up_after_s=OUTAGE_PATIENCE_S,
                                                what="job start")  # fmt: skip
            result = self.pipeline(spec, workdir, storage, run)
            link = self.webhook_download_url(job, result.output_key)

            earlier: list[str] = []

            def complete() -> bool:
                with self.db.write() as session:  # the keys read first: a completion replaces them
                    earlier[:] = jobs.stored_keys(session, job.id)
                    return jobs.complete_job(session, job, result, now=self.clock.now_ms(), download_url=link)

            # A database outage does not cost the run: the result waits for it (fenced as ever).
            ok = until_database_back(complete, stopping=self.stopping, give_up_after_s=OUTAGE_PATIENCE_S,
                                     what="job completion")  # fmt: skip
            if not ok:
                self.discard_if_ended(job, result.stored_keys, storage)
            else:
                self.delete_leftovers(job.id, earlier=earlier, keep=result.stored_keys)
            log.info(
                "job completed" if ok else "completion fenced off",
                job_id=job.id,
                bytes=result.file_size,
            )
        except Cancelled:
            if not run.lost.is_set():  # shutting down: hand the job back now, not after the lease
                with self.db.write() as session:
                    queue.requeue(session, job.id, job.key_id, job.attempt, run_after=self.lease_now(session))
            log.info("job stopped", job_id=job.id, lease_lost=run.lost.is_set())
        except JobFailure as failure:
            self.record_failure(job, failure)
        except OSError as exc:  # Python's own writes (a copy, a sidecar) into a full work directory
            full = is_disk_full(exc)
            if not full:
                log.exception("job crashed", job_id=job.id)
            message = DISK_FULL if full else "Internal error while processing the job"
            self.record_failure(job, JobFailure(message, retryable=True))
        except Exception:
            log.exception("job crashed", job_id=job.id)
            self.record_failure(job, JobFailure("Internal error while processing the job", retryable=True))
        finally:
            done.set()
            shutil.rmtree(workdir, ignore_errors=True)

    def key_cookies(self, session: Session, key_id: str) -> str | None:
        """The key's own cookies, opened for its downloader child; unreadable ones fail the job."""
        try:
            return load_cookies(session, key_id, self.cookie_box)
        except CookiesUnreadable as exc:
            raise JobFailure(exc.message) from None

    def job_storage(self, session: Session, job: ClaimedJob, spec: JobSpec) -> tuple[Storage, JobSpec]:
        """The operator's storage, or the customer bucket the job was bound to at submission
        (its objects under ``{folder_prefix}{base_folder}/``). A bucket that cannot be opened
        (erased or unreadable credentials, a refused endpoint) fails this job only."""
        row = backend_of(session, job.id)
        if row is None:
            return self.storage, spec
        try:
            storage = self.picker.for_row(row)
        except SquallError as exc:
            raise JobFailure(f"Your {row.provider} storage: {exc.message}") from None
        return storage, replace(spec, folder=customer_folder(row, spec.folder))

    def webhook_download_url(self, job: ClaimedJob, key: str) -> str | None:
        if job.hook is None:
            return None
        settings = self.settings
        return object_link(job.id, key, public_url=settings.public_url,
                           secret=settings.resolved_secret_key(), now_s=self.clock.now_ms() // 1000)  # fmt: skip

    def discard_if_ended(self, job: ClaimedJob, keys: list[str], storage: Storage) -> None:
        """A run whose job was cancelled while it uploaded leaves an object nobody will ever
        point at: delete it. (If the job was reaped instead, another attempt may be choosing
        names right now, so the object is left for reconciliation.)"""
        with self.db.read() as session:
            ended = jobs.has_ended(session, job.id)
        if ended:
            for key in keys:
                try:
                    storage.delete(key)
                except SquallError as exc:  # the bucket is failing: reconcile will report the object
                    log.warning(
                        "object of an ended job not deleted", job_id=job.id, key=key, error=exc.message
                    )

    def record_failure(self, job: ClaimedJob, failure: JobFailure) -> None:
        delay = self.retry_policy.delay_ms(job.attempt, max_attempts=job.max_attempts)

        def fail() -> int | None:
            with self.db.write() as session:
                # run_after is compared with the claimers' now: the database's clock
                retry_at = (
                    self.lease_now(session) + delay if failure.retryable and delay is not None else None
                )
                jobs.fail_job(session, job, failure, now=self.clock.now_ms(), retry_at=retry_at)
                return retry_at

        retry_at = until_database_back(
            fail, stopping=self.stopping, give_up_after_s=OUTAGE_PATIENCE_S, what="job failure"
        )
        if retry_at is None:  # ended: what earlier attempts stored goes
            self.delete_leftovers(job.id)
        log.info("job failed", job_id=job.id, error=failure.message, retry_at=retry_at)

    def stop(self, *_: object) -> None:
        self.stopping.set()
        self.wakeup.close()


def sweep_work_dir(work_dir: Path, older_than_seconds: float) -> None:
    """Remove work directories left by killed workers."""
    if not work_dir.exists():
        return
    cutoff = time.time() - older_than_seconds
    for entry in work_dir.iterdir():
        if entry.is_dir() and entry.stat().st_mtime < cutoff:
            shutil.rmtree(entry, ignore_errors=True)


def run_worker(settings: Settings, concurrency: int = 1, parent_pid: int | None = None) -> None:
    """Run until SIGTERM/SIGINT, or until ``parent_pid`` is gone (workers embedded in serve)."""
    worker = Worker(settings)
    worker.parent_pid = parent_pid
    sweep_work_dir(settings.work_dir, settings.download_timeout_seconds)

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        worker.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    in_use = InUse(settings.resolved_database_url)  # `squall db copy` refuses while it is held
    try:
        worker.run(concurrency)
    finally:
        in_use.release()
