"""How a run ended, written to the books: a completion, a failure (retried later or final), or
a job handed back at shutdown; and the objects a run or earlier attempts left behind."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from squall.errors import JobFailure, SquallError
from squall.jobs import leftovers as stored_objects
from squall.jobs import queue
from squall.jobs import service as jobs
from squall.jobs.claimed import ClaimedJob
from squall.jobs.views import object_link
from squall.logging import get_logger
from squall.pipeline.spec import PipelineResult
from squall.storage.base import Storage

if TYPE_CHECKING:
    from squall.worker.loop import Worker

log = get_logger("squall.worker")


class Outcomes:
    """The worker's writes once a run is over, each fenced by the job's attempt."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    def record_completion(self, job: ClaimedJob, result: PipelineResult, storage: Storage) -> None:
        worker = self.worker
        link = self.webhook_download_url(job, result.output_key)
        earlier: list[str] = []

        def complete(session: Session) -> bool:
            earlier[:] = stored_objects.stored_keys(session, job.id)  # first: a completion replaces them
            return jobs.complete_job(session, job, result, now=worker.clock.now_ms(), download_url=link)

        # A database outage does not cost the run: the result waits for it (fenced as ever).
        ok = worker.patient.write(complete, what="job completion")
        if not ok:
            self.discard_if_ended(job, result.stored_keys, storage)
        else:
            self.delete_leftovers(job.id, earlier=earlier, keep=result.stored_keys)
        log.info(
            "job completed" if ok else "completion fenced off",
            job_id=job.id,
            bytes=result.file_size,
        )

    def webhook_download_url(self, job: ClaimedJob, key: str) -> str | None:
        if job.hook is None:
            return None
        settings, clock = self.worker.settings, self.worker.clock
        return object_link(job.id, key, public_url=settings.public_url,
                           secret=settings.resolved_secret_key(), now_s=clock.now_ms() // 1000)  # fmt: skip

    def hand_back(self, job: ClaimedJob) -> None:
        """Shutting down: the job goes back to the queue now, not after its lease."""
        with self.worker.db.write() as session:
            queue.requeue(session, job.id, job.key_id, job.attempt, run_after=self.worker.lease_now(session))

    def discard_if_ended(self, job: ClaimedJob, keys: list[str], storage: Storage) -> None:
        """A run whose job was cancelled while it uploaded leaves an object nobody will ever
        point at: delete it. (If the job was reaped instead, another attempt may be choosing
        names right now, so the object is left for reconciliation.)"""
        with self.worker.db.read() as session:
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
        worker = self.worker
        delay = worker.retry_policy.delay_ms(job.attempt, max_attempts=job.max_attempts)

        def fail(session: Session) -> int | None:
            # run_after is compared with the claimers' now: the database's clock
            retry_at = worker.lease_now(session) + delay if failure.retryable and delay is not None else None
            jobs.fail_job(session, job, failure, now=worker.clock.now_ms(), retry_at=retry_at)
            return retry_at

        retry_at = worker.patient.write(fail, what="job failure")
        if retry_at is None:  # ended: what earlier attempts stored goes
            self.delete_leftovers(job.id)
        log.info("job failed", job_id=job.id, error=failure.message, retry_at=retry_at)

    def delete_leftovers(self, job_id: str, *, earlier: Sequence[str] = (), keep: Sequence[str] = ()) -> None:
        """Delete what attempts of a job that has ended stored but its books do not name (an
        attempt killed between its upload and its outcome): ``squall storage reconcile``
        stays clean. ``earlier``: such keys already read (a completion replaces the list)."""
        worker = self.worker
        try:
            with worker.db.write() as session:
                leftovers = [
                    k for k in [*earlier, *stored_objects.take_leftovers(session, job_id)] if k not in keep
                ]
                storage = worker.picker.for_deleting(session, job_id) if leftovers else None
            for key in leftovers:
                if storage is not None:
                    storage.delete(key)
            if leftovers:
                log.info("objects of interrupted attempts deleted", job_id=job_id, count=len(leftovers))
        except Exception:  # the storage or the database: reconciliation will list them
            log.warning("leftover objects not deleted", job_id=job_id, exc_info=True)
