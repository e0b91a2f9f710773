"""One table used as a queue, the way Oban, River and procrastinate do it: claim due rows with
a lease, renew it while working, write the outcome fenced by the claim, and let expired
leases be found (reaped) or claimed again.

PostgreSQL claims with ``FOR UPDATE SKIP LOCKED``, so claimers never wait on each other;
SQLite renders no FOR UPDATE and runs the same statement inside ``BEGIN IMMEDIATE``, which
serialises writers anyway. Each claim adds one to the row's ``token`` column (a job's
``attempt``, a delivery's ``attempts``): every later write names the token it was given, so
a claimer whose lease ran out and was claimed again changes nothing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, ColumnElement, Row, Table, select, update
from sqlalchemy.orm import Session


@dataclass(frozen=True)
class LeasedQueue:
    """How one table is used as a queue.

    ``waiting``: rows that may be claimed once ``due_at <= now``; ``held``: the condition a
    claimed row keeps while its lease is valid (e.g. ``status = 'Processing'``).
    ``expired_are_due``: a row whose lease ran out is claimable again without a reaper
    (outboxes); otherwise a reaper decides what becomes of it (jobs: retry or give up).
    ``ready``: a further condition a due row must meet to be claimed (an ordered outbox: no
    earlier row of its ordering key still pending), checked in the claim's one statement."""

    table: Table
    waiting: ColumnElement[bool]
    held: ColumnElement[bool]
    due_at: Column[Any]
    token: Column[Any]
    lease_until: Column[Any]
    order_by: Sequence[Any]
    owner: Column[Any] | None = None
    expired_are_due: bool = False
    on_claim: Mapping[str, Any] = field(default_factory=dict)  # more values set by every claim
    ready: ColumnElement[bool] | None = None

    @classmethod
    def outbox(
        cls, table: Table, pending: str, *, owner: bool = False, ready: ColumnElement[bool] | None = None
    ) -> LeasedQueue:
        """An outbox: rows stay ``pending`` while waiting and while leased, are due at
        ``next_attempt_at``, fenced by ``attempts``, and due again once a lease ran out (the
        sender died mid-attempt: delivery is at least once)."""
        c = table.c
        return cls(
            table=table,
            waiting=c.status == pending,
            held=c.status == pending,
            due_at=c.next_attempt_at,
            token=c.attempts,
            lease_until=c.lease_expires_at,
            owner=c.lease_owner if owner else None,
            order_by=(c.next_attempt_at,),
            expired_are_due=True,
            ready=ready,
        )

    @property
    def id(self) -> Column[Any]:
        return self.table.c.id  # type: ignore[no-any-return]

    def due(self, now: int) -> ColumnElement[bool]:
        due = self.waiting & (self.due_at <= now)
        if self.expired_are_due:
            due = due & (self.lease_until.is_(None) | (self.lease_until < now))
        return due

    def claim(
        self,
        session: Session,
        *,
        now: int,
        lease_ms: int,
        limit: int = 1,
        owner: str | None = None,
        values: Mapping[str, Any] | None = None,
        returning: Sequence[Any] = (),
        candidates: Any = None,
    ) -> Sequence[Row[Any]]:
        """Lease up to ``limit`` due rows, the first by ``order_by``; returns ``id``, ``token`` and
        ``returning`` of each (in no particular order: RETURNING does not keep the CTE's).
        ``values``: what else this claim sets (it may depend on now). ``candidates``: a locking
        CTE of the ids to take instead (the jobs queue's fair choice across keys)."""
        # A CTE, not a plain IN (subquery): PostgreSQL may rescan a LIMIT ... SKIP LOCKED
        # subquery once per outer row (a nested-loop semi join), each rescan locking another
        # row, and so update more than ``limit`` rows. A locking CTE is evaluated once.
        due = self.due(now) if self.ready is None else self.due(now) & self.ready
        candidates = (
            candidates
            if candidates is not None
            else (
                select(self.id)
                .where(due)
                .order_by(*self.order_by)
                .limit(limit)
                .with_for_update(skip_locked=True)
                .cte("due")
            )
        )
        claimed: dict[str, Any] = {
            self.token.key: self.token + 1,
            self.lease_until.key: now + lease_ms,
            **self.on_claim,
            **(values or {}),
        }
        if self.owner is not None:
            claimed[self.owner.key] = owner
        # The outer WHERE re-checks "still waiting": under READ COMMITTED a row that another
        # transaction claimed between the subquery and the update is skipped, not taken twice.
        statement = (
            update(self.table)
            .where(self.id.in_(select(candidates.c.id)), self.waiting)
            .values(claimed)
            .returning(self.id, self.token, *returning)
        )
        return session.execute(statement).all()

    def fenced(self, row_id: Any, token: int) -> ColumnElement[bool]:
        """The WHERE clause of every write made under a claim."""
        fence: ColumnElement[bool] = (self.id == row_id) & (self.token == token) & self.held
        return fence

    def renew(self, session: Session, row_id: Any, token: int, *, now: int, lease_ms: int) -> bool:
        """Extend the lease; False means the row is no longer this claim's."""
        result = session.execute(
            update(self.table)
            .where(self.fenced(row_id, token))
            .values({self.lease_until.key: now + lease_ms})
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def still_held(self, session: Session, row_id: Any, token: int) -> bool:
        """A read-only check (cheap enough to run every second)."""
        return session.execute(select(self.id).where(self.fenced(row_id, token))).first() is not None

    def record(self, session: Session, row_id: Any, token: int, values: Mapping[str, Any]) -> bool:
        """Write under the claim, ending the lease; False (nothing written) if it was lost."""
        ended = {self.lease_until.key: None, **({self.owner.key: None} if self.owner is not None else {})}
        result = session.execute(
            update(self.table).where(self.fenced(row_id, token)).values({**ended, **values})
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def locked(self, session: Session, row_id: Any, token: int, *columns: Any) -> Row[Any] | None:
        """``columns`` of the row if the claim still holds it, locked until commit (PostgreSQL)."""
        return session.execute(select(*columns).where(self.fenced(row_id, token)).with_for_update()).first()

    def expired(self, session: Session, *, now: int, limit: int = 100) -> Sequence[Row[Any]]:
        """Held rows whose lease ran out, locked for the reaper (skipping any a live claimer
        or another reaper holds right now)."""
        return session.execute(
            select(self.table)
            .where(self.held, self.lease_until < now)
            .order_by(self.lease_until)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
