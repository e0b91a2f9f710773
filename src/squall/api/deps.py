"""FastAPI dependencies shared by every domain's routes. ``app.py`` fills ``app.state``.

Routes get their transaction here, and only here: ``WriteTx`` is committed after the route
returns and before the response is sent (a client is never told of a change that did not
commit), or rolled back if the route raised; ``ReadTx`` is rolled back. Both open on first
use. A sync route's units are finished in its own thread as it returns
(``api/routing.py``); what is left (an async route's, or a route that raised) is finished
here. Services take the session and never commit."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager
from typing import Annotated, Any

from anyio import CancelScope, CapacityLimiter, to_thread
from fastapi import Depends, Query, Request
from sqlalchemy.orm import Session

from squall.clock import Clock
from squall.db import Database
from squall.db.unit_of_work import UnitOfWork
from squall.settings import Settings
from squall.storage.base import Storage

# These are async on purpose: FastAPI runs a sync dependency in the thread pool, which would
# cost a thread hop per dependency per request for what is an attribute lookup.


def get_database(request: Request) -> Database:
    return request.app.state.db  # type: ignore[no-any-return]


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def get_clock(request: Request) -> Clock:
    return request.app.state.clock  # type: ignore[no-any-return]


async def settings_dep(request: Request) -> Settings:
    return get_app_settings(request)


async def storage_dep(request: Request) -> Storage:
    return request.app.state.storage  # type: ignore[no-any-return]


async def clock_dep(request: Request) -> Clock:
    return get_clock(request)


_finishers: CapacityLimiter | None = None


async def _finish(unit: UnitOfWork, error: BaseException | None = None) -> None:
    """Commit or roll back off the event loop, in threads of their own: a commit must never
    wait for a thread of the routes' pool, whose threads may all be waiting for the SQLite
    write lock that this very transaction holds."""
    global _finishers
    if not unit.opened:
        return
    if _finishers is None:
        _finishers = CapacityLimiter(64)
    with CancelScope(shield=True):  # a client that hung up must not leave the lock held
        await to_thread.run_sync(unit.finish, error, limiter=_finishers)


async def write_tx(request: Request) -> AsyncIterator[UnitOfWork]:
    unit = UnitOfWork(get_database(request).write)
    try:
        yield unit
    except BaseException as exc:
        await _finish(unit, exc)
        raise
    await _finish(unit)


def _read_only(scope: Callable[[Database], Callable[[], AbstractContextManager[Session]]]) -> Any:
    """A dependency yielding a read transaction of ``scope`` (rolled back: a read writes nothing)."""

    async def dependency(request: Request) -> AsyncIterator[UnitOfWork]:
        unit = UnitOfWork(scope(get_database(request)))
        try:
            yield unit
        finally:
            await _finish(unit)

    return dependency


read_tx = _read_only(lambda db: db.read)
snapshot_tx = _read_only(lambda db: db.snapshot)  # one instant throughout (REPEATABLE READ on PostgreSQL)


async def database_dep(request: Request) -> Database:
    """The database itself, for work that outlives the route (metering a download once its
    body has been sent)."""
    return get_database(request)


# scope="function": the exit (the commit) runs when the route returns, before the response.
WriteTx = Annotated[UnitOfWork, Depends(write_tx, scope="function")]
ReadTx = Annotated[UnitOfWork, Depends(read_tx, scope="function")]
SnapshotTx = Annotated[UnitOfWork, Depends(snapshot_tx, scope="function")]  # one instant throughout
DatabaseDep = Annotated[Database, Depends(database_dep)]
SettingsDep = Annotated[Settings, Depends(settings_dep)]
StorageDep = Annotated[Storage, Depends(storage_dep)]
ClockDep = Annotated[Clock, Depends(clock_dep)]


# The largest integer a query may carry: what the databases store (BIGINT), stated in the schema.
MAX_INT64 = 2**63 - 1

# Paging of every list (GET /jobs, the dashboard's lists): ``limit: Limit = 20, offset: Offset = 0``.
Limit = Annotated[int, Query(ge=1, le=100, description="At most 100.")]
Offset = Annotated[int, Query(ge=0, le=MAX_INT64)]
