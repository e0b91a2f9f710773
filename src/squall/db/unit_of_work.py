"""A request's unit of work: one read or one write transaction, opened on first use and
finished (committed, or rolled back on error) by whoever created it: the API's session
dependency (``squall/api/deps.py``). Opening late matters on SQLite, where a write
transaction holds the one write lock: a route checks URLs or reads a feed before it first
touches the session, and nobody waits for that."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from contextvars import ContextVar

from sqlalchemy.orm import Session

# The units opened during one route call (see squall/api/routing.py), finished in its thread.
OPENED_IN_CALL: ContextVar[list[UnitOfWork] | None] = ContextVar("opened_in_call", default=None)


class UnitOfWork:
    def __init__(self, scope: Callable[[], AbstractContextManager[Session]]) -> None:
        self._scope = scope
        self._stack: ExitStack | None = None
        self._session: Session | None = None
        self._finished = False

    @property
    def session(self) -> Session:
        """The transaction's session, begun now if this is its first use."""
        if self._finished:  # a transaction nobody would finish (on SQLite: the write lock, held)
            raise RuntimeError("this unit of work has been finished")
        if self._session is None:
            stack = ExitStack()
            self._session = stack.enter_context(self._scope())
            self._stack = stack
            opened = OPENED_IN_CALL.get()
            if opened is not None:
                opened.append(self)
        return self._session

    @property
    def opened(self) -> bool:
        return self._session is not None

    def finish(self, error: BaseException | None = None) -> None:
        """Commit (rollback when ``error`` is given) and close; a no-op if never opened."""
        stack, self._stack, self._session = self._stack, None, None
        if stack is None:
            return
        self._finished = True
        if error is None:
            stack.close()
        else:  # rolled back; the caller re-raises ``error``
            stack.__exit__(type(error), error, error.__traceback__)
