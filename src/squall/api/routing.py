"""The route class of every router: a sync route's transactions are finished (committed, or
rolled back for reads) in the route's own thread the moment it returns. Handing the commit
back to the event loop first would keep SQLite's one write lock held while the loop gets
round to it, and every other writer waits that long. The answer is rendered to JSON first,
so an answer that cannot be sent is a 500 with nothing committed. If the route raises,
nothing is finished here: the session dependency rolls back."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from squall.db.unit_of_work import OPENED_IN_CALL, UnitOfWork


def _finishing(endpoint: Callable[..., Any], status_code: int) -> Callable[..., Any]:
    @functools.wraps(endpoint)
    def call(*args: Any, **kwargs: Any) -> Any:
        opened: list[UnitOfWork] = []
        token = OPENED_IN_CALL.set(opened)
        try:
            result = endpoint(*args, **kwargs)
            if isinstance(result, dict | list):  # rendered now: FastAPI passes a Response on as it is
                result = JSONResponse(result, status_code=status_code)
        finally:
            OPENED_IN_CALL.reset(token)
        for unit in opened:
            unit.finish()
        return result

    return call


class TransactionalRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        plain = inspect.isfunction(endpoint) and not (
            inspect.iscoroutinefunction(endpoint) or inspect.isgeneratorfunction(endpoint)
        )
        if plain:  # async routes finish through their dependency; generators run past the call
            endpoint = _finishing(endpoint, kwargs.get("status_code") or 200)
        super().__init__(path, endpoint, **kwargs)
