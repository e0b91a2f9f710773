"""Worker processes, as they report themselves: the operator's view of who is working
(``GET /admin/queue``, ``squall status``). A worker whose heartbeat is older than a few lease
periods is dead; the jobs it still holds are shown as such until the reaper takes them."""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, String, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from squall.db.base import Base
from squall.jobs.models import Job, JobStatus


class WorkerProcess(Base):
    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the lease owner
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    concurrency: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[int] = mapped_column(BigInteger)
    last_heartbeat_at: Mapped[int] = mapped_column(BigInteger)


def beat(session: Session, *, worker_id: str, host: str, pid: int, concurrency: int, now: int) -> None:
    """Record that the worker is alive (one upsert)."""
    module = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = module.insert(WorkerProcess).values(
        id=worker_id, host=host, pid=pid, concurrency=concurrency, started_at=now, last_heartbeat_at=now
    )
    session.execute(statement.on_conflict_do_update(index_elements=["id"], set_={"last_heartbeat_at": now}))


def forget_stale(session: Session, *, before: int) -> None:
    """Drop workers silent since ``before`` that hold no job any more."""
    holding = select(Job.lease_owner).where(Job.status == JobStatus.PROCESSING, Job.lease_owner.is_not(None))
    session.execute(
        delete(WorkerProcess).where(
            WorkerProcess.last_heartbeat_at < before, WorkerProcess.id.not_in(holding)
        )
    )
