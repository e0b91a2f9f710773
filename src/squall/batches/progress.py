"""Episode counts of a batch, moved in the transaction that ends each of its jobs; the
episode that ends the batch marks it completed or finished and queues ``batch_completed``."""

from __future__ import annotations

from sqlalchemy import case, select, update
from sqlalchemy.orm import Session

from squall.batches.models import COMPLETED, FINISHED, PROCESSING, Batch
from squall.webhooks import events, outbox


def episode_ended(session: Session, batch_id: str, *, succeeded: bool, now: int) -> None:
    column = Batch.completed_episodes if succeeded else Batch.failed_episodes
    session.execute(update(Batch).where(Batch.id == batch_id).values({column.key: column + 1}))
    finish_if_done(session, batch_id, now=now)


def finish_if_done(session: Session, batch_id: str, *, now: int) -> None:
    """Close a running batch whose episodes have all ended (one statement: only one caller
    can close it, so ``batch_completed`` is queued once)."""
    closed = session.execute(
        update(Batch)
        .where(
            Batch.id == batch_id,
            Batch.status == PROCESSING,
            Batch.completed_episodes + Batch.failed_episodes >= Batch.total_episodes,
        )
        .values(status=case((Batch.failed_episodes == 0, COMPLETED), else_=FINISHED), finished_at=now)
        .returning(Batch.id)
    ).first()
    if closed is None:
        return
    batch = session.execute(
        select(Batch).where(Batch.id == batch_id).execution_options(populate_existing=True)
    ).scalar_one()
    if batch.webhook_url:
        outbox.enqueue(
            session,
            key_id=batch.key_id,
            url=batch.webhook_url,
            payload=events.batch_completed(batch),
            now=now,
            batch_id=batch.id,
        )
