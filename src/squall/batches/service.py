"""Batches: the episodes of a feed or playlist, or a bulk request, admitted as one."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from squall.batches import progress
from squall.batches.models import Batch, BatchStatus
from squall.db.base import new_id
from squall.errors import InvalidInput, NotFound
from squall.jobs import service as jobs
from squall.jobs.models import Job, JobStatus
from squall.jobs.options import JobOptions
from squall.keys.service import AuthenticatedKey
from squall.storage.naming import sanitize_filename
from squall.validation import validated

NOT_PAUSED_RENAME = "Batch is not paused. Only paused batches can be renamed."


@dataclass(frozen=True)
class Episode:
    url: str
    title: str | None = None
    filename: str | None = None
    size: int | None = None  # announced by the feed (an enclosure's length): its reservation


def create_batch(
    session: Session,
    key: AuthenticatedKey,
    *,
    kind: str,
    show_url: str | None,
    title: str | None = None,
    episodes: list[Episode],
    options: JobOptions,
    now: int,
    admission: jobs.Admission,
) -> tuple[Batch, list[str]]:
    """One job per episode with the request's shared options, admitted whole or refused
    whole (the 403 quota body): a show half-queued is worse than one refused."""
    shared = options.model_dump(mode="json", exclude_defaults=True, exclude={"url", "filename", "paused"})
    items = [_episode_options(shared, episode) for episode in episodes]
    batch = Batch(
        id=new_id(),
        key_id=key.id,
        kind=kind,
        show_url=show_url,
        title=title,
        folder=options.folder,
        webhook_url=options.webhook_url,
        options=shared,
        status=BatchStatus.PAUSED if options.paused else BatchStatus.PROCESSING,
        total_episodes=len(items),
        completed_episodes=0,
        failed_episodes=0,
        created_at=now,
    )
    session.add(batch)
    session.flush()
    job_ids = jobs.create_jobs(
        session,
        key,
        items,
        now=now,
        admission=admission,
        batch_id=batch.id,
        held=options.paused,
        sizes=[episode.size for episode in episodes],
    )
    return batch, job_ids


def episode_filename(name: str) -> str:
    """A title or rename as a file name: sanitised, and without the ``..`` that file names
    may not hold ("Part 1... The End" -> "Part 1. The End"). Empty if nothing is left."""
    return re.sub(r"\.{2,}", ".", sanitize_filename(name, fallback="")).strip(" .")


def _episode_options(shared: dict[str, Any], episode: Episode) -> JobOptions:
    filename = episode.filename
    if filename is None and episode.title:  # an episode is named after its title
        filename = episode_filename(episode.title) or None
    return validated(
        JobOptions, {**shared, "url": episode.url, "filename": filename}, where=f"Episode {episode.url}"
    )


def get_batch(session: Session, key_id: str, batch_id: str) -> Batch:
    batch = session.get(Batch, batch_id) if len(batch_id) == 36 else None
    if batch is None or batch.key_id != key_id:
        raise NotFound("Batch not found")
    return batch


def episode_job_ids(session: Session, batch_id: str) -> list[str]:
    rows = session.execute(select(Job.id).where(Job.batch_id == batch_id).order_by(Job.batch_index))
    return list(rows.scalars())


def list_batches(session: Session, key_id: str, *, limit: int, offset: int) -> tuple[list[Batch], int]:
    total = session.execute(
        select(func.count()).select_from(Batch).where(Batch.key_id == key_id)
    ).scalar_one()
    rows = session.execute(
        select(Batch)
        .where(Batch.key_id == key_id)
        .order_by(Batch.created_at.desc(), Batch.id)
        .limit(limit)
        .offset(offset)
    )
    return list(rows.scalars()), total


def rename_jobs(
    session: Session, key_id: str, batch_id: str, renames: list[tuple[str, str]]
) -> dict[str, Any]:
    batch = get_batch(session, key_id, batch_id)
    if batch.status != BatchStatus.PAUSED:
        raise InvalidInput(NOT_PAUSED_RENAME)
    updated, errors = 0, []
    for job_id, filename in renames:
        job = session.get(Job, job_id) if len(job_id) == 36 else None
        if job is None or job.batch_id != batch.id:
            errors.append(f"Job {job_id} is not in this batch")
            continue
        clean = episode_filename(filename)
        if not clean:
            errors.append(f"Job {job_id}: the filename '{filename}' has nothing usable in it")
            continue
        # Only while the job still waits: a start committed meanwhile wins (the row's own
        # condition is re-checked under its lock), and the batch row is never locked here.
        renamed = session.execute(
            update(Job)
            .where(Job.id == job.id, Job.status == JobStatus.PENDING, Job.run_after == jobs.HELD)
            .values(options={**job.options, "filename": clean})
        )
        if renamed.rowcount != 1:  # type: ignore[attr-defined]
            errors.append(f"Job {job_id} has already started")
            continue
        updated += 1
    return {"updated": updated, "errors": errors}


def start_batch(session: Session, key_id: str, batch_id: str, *, now: int) -> dict[str, Any]:
    batch = get_batch(session, key_id, batch_id)
    if batch.status != BatchStatus.PAUSED:
        raise InvalidInput(f"Batch is not paused (current status: {batch.status})")
    # Jobs first, then the batch: the order a cancel takes its locks in (job, then batch).
    count = jobs.release_held(session, batch.id, now=now)
    started = session.execute(
        update(Batch)
        .where(Batch.id == batch.id, Batch.status == BatchStatus.PAUSED)
        .values(status=BatchStatus.PROCESSING)
    )
    if started.rowcount != 1:  # type: ignore[attr-defined]  # a concurrent start won: roll back
        session.refresh(batch)
        raise InvalidInput(f"Batch is not paused (current status: {batch.status})")
    progress.finish_if_done(session, batch.id, now=now)  # every episode may have been cancelled
    session.refresh(batch)
    return {"batch_id": batch.id, "started_jobs": count, "status": batch.status}


def batch_view(batch: Batch, job_ids: list[str] | None = None) -> dict[str, Any]:
    ended = batch.completed_episodes + batch.failed_episodes
    body: dict[str, Any] = {
        "id": batch.id,
        "show_url": batch.show_url,
        "title": batch.title,
        "kind": batch.kind,
        "status": batch.status,
        "folder": batch.folder,
        "total_episodes": batch.total_episodes,
        "completed_episodes": batch.completed_episodes,
        "failed_episodes": batch.failed_episodes,
        "progress": round(100 * ended / batch.total_episodes, 1) if batch.total_episodes else 100.0,
        "created_at": batch.created_at,
        "finished_at": batch.finished_at,
    }
    if job_ids is not None:
        body["episode_jobs"] = job_ids
    return body
