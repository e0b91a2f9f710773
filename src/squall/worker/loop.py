"""The worker process: threads that claim jobs and run them one at a time, the housekeeping
between claims (liveness beat, reaper, retention), and one job's course from its claim to
its outcome."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import FrameType

from sqlalchemy.orm import Session

from squall.billing.reporter import MeterReporter
from squall.clock import DAY_MS, SYSTEM, Clock
from squall.db import Database
from squall.db.dbtime import database_now_ms
from squall.db.outage import is_outage
from squall.db.presence import InUse
from squall.db.wakeup import Wakeup
from squall.errors import JobFailure, SquallError
from squall.intake import idempotency
from squall.jobs import queries as job_queries
from squall.jobs import queue, workers
from squall.jobs import service as jobs
from squall.jobs.claimed import ClaimedJob, RunLimits, pipeline_spec
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
from squall.worker.heartbeat import heartbeat_until
from squall.worker.outcome import Outcomes
from squall.worker.patience import PatientDatabase
from squall.worker.run import JobRun

log = get_logger("squall.worker")
# What runs a claimed job: the real pipeline, or a stand-in in tests of the queue logic.
Pipeline = Callable[[JobSpec, Path, Storage, PipelineEvents], PipelineResult]
# Housekeeping: stored Idempotency-Key answers older than a day, outputs past retention.
PRUNE_EVERY_SECONDS = 600.0


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
        # A job's writes wait out a database outage; the loop's own (claim, reaper) do not.
        self.patient = PatientDatabase(self.db, self.stopping)
        self.outcomes = Outcomes(self)

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
            self.outcomes.delete_leftovers(job_id)
        return reaped

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
        run = JobRun(job, self.patient, self.clock)
        done = threading.Event()
        workdir = self.settings.work_dir / f"{job.id}-{job.attempt}"
        log.info("job started", job_id=job.id, attempt=job.attempt)
        try:  # everything after the claim is inside: `finally` must stop the heartbeat
            threading.Thread(target=heartbeat_until, args=(self, run, done), daemon=True).start()
            if job.options_problem:
                raise JobFailure(job.options_problem)
            workdir.mkdir(parents=True, exist_ok=True)

            def prepare(session: Session) -> tuple[Storage, JobSpec]:  # the key's cookies, the job's bucket
                spec = pipeline_spec(job, self.run_limits, self.key_cookies(session, job.key_id))
                return self.job_storage(session, job, spec)

            # An outage just after the claim waits for the database, as the completion does:
            # crashing here would spend one of the job's attempts on the database's restart.
            storage, spec = self.patient.read(prepare, what="job start")
            result = self.pipeline(spec, workdir, storage, run)
            self.outcomes.record_completion(job, result, storage)
        except Cancelled:
            if not run.lost.is_set():  # shutting down: hand the job back now, not after the lease
                self.outcomes.hand_back(job)
            log.info("job stopped", job_id=job.id, lease_lost=run.lost.is_set())
        except JobFailure as failure:
            self.outcomes.record_failure(job, failure)
        except OSError as exc:  # Python's own writes (a copy, a sidecar) into a full work directory
            full = is_disk_full(exc)
            if not full:
                log.exception("job crashed", job_id=job.id)
            message = DISK_FULL if full else "Internal error while processing the job"
            self.outcomes.record_failure(job, JobFailure(message, retryable=True))
        except Exception:
            log.exception("job crashed", job_id=job.id)
            self.outcomes.record_failure(
                job, JobFailure("Internal error while processing the job", retryable=True)
            )
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
