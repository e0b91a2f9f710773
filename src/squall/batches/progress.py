"""Episode counts of a batch, moved in the transaction that ends each of its jobs (a
subscriber of ``JobEnded``); the episode that ends the batch closes it and records
``BatchEnded``."""

from __future__ import annotations

from sqlalchemy import case, update
from sqlalchemy.orm import Session

from squall.batches.events import BatchEnded
from squall.batches.models import Batch, BatchStatus
from squall.events import record
from squall.jobs.events import JobEnded
from squall.jobs.models import JobStatus


def on_job_ended(session: Session, ended: JobEnded) -> None:
    if ended.batch_id is None:
        return
    column = Batch.completed_episodes if ended.status == JobStatus.COMPLETED else Batch.failed_episodes
    session.execute(update(Batch).where(Batch.id == ended.batch_id).values({column.key: column + 1}))
    finish_if_done(session, ended.batch_id, now=ended.at)


def finish_if_done(session: Session, batch_id: str, *, now: int) -> None:
    """Close a running batch whose episodes have all ended (one statement: only one caller
    can close it, so ``BatchEnded`` is recorded once)."""
    closed = session.execute(
        update(Batch)
        .where(
            Batch.id == batch_id,
            Batch.status == BatchStatus.PROCESSING,
            Batch.completed_episodes + Batch.failed_episodes >= Batch.total_episodes,
        )
        .values(
            status=case(
                (Batch.failed_episodes == 0, BatchStatus.COMPLETED.value), else_=BatchStatus.FINISHED.value
            ),
            finished_at=now,
        )
        .returning(Batch)
    ).scalar_one_or_none()
    if closed is not None:
        record(
            session,
            BatchEnded(
                batch_id=batch_id,
                key_id=closed.key_id,
                show_url=closed.show_url,
                folder=closed.folder,
                status=closed.status,
                completed=closed.completed_episodes,
                failed=closed.failed_episodes,
                total=closed.total_episodes,
                webhook_url=closed.webhook_url,
                at=now,
            ),
        )
