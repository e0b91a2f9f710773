"""Domain events inside the unit of work.

A service that changes state records what happened (``record(session, JobEnded(...))``);
before the transaction commits, ``Database.write()`` hands every recorded event to the
subscribers the wiring registered (``squall/subscriptions.py``), in the same transaction. So
a state change and its side effects (webhook outbox rows, batch progress, meter reports)
commit together or not at all, and the domain that changed the state never imports the
domains that react to it. Events are plain frozen data, built from what the publisher
already knows, so a subscriber never has to read it back."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.orm import Session

PENDING_KEY = "squall.events"
# A subscriber may record events of its own (an episode's end closes its batch); a chain
# longer than this is a loop.
MAX_ROUNDS = 10


class DomainEvent:
    """Base of every event; subclasses are frozen dataclasses."""


E = TypeVar("E", bound=DomainEvent)
Handler = Callable[[Session, Any], None]


def record(session: Session, event: DomainEvent) -> None:
    """Note ``event`` in the session's unit of work; subscribers hear it before commit."""
    session.info.setdefault(PENDING_KEY, []).append(event)


def pending(session: Session) -> list[DomainEvent]:
    """What has been recorded and not yet handed out (tests look here)."""
    return list(session.info.get(PENDING_KEY, []))


class EventBus:
    """Which handlers hear which event types. Registering the same handler twice for one
    type is a no-op, so wiring that runs twice (an app and a worker sharing one database
    object in tests) does not double every side effect."""

    def __init__(self) -> None:
        self._handlers: dict[type[DomainEvent], list[Handler]] = defaultdict(list)

    def subscribe(self, event_type: type[E], handler: Callable[[Session, E], None]) -> None:
        handlers = self._handlers[event_type]
        if handler not in handlers:
            handlers.append(handler)

    def unsubscribe(self, event_type: type[E], handler: Callable[[Session, E], None]) -> None:
        if handler in self._handlers.get(event_type, ()):
            self._handlers[event_type].remove(handler)

    def dispatch(self, session: Session) -> None:
        """Run the handlers of every event recorded in ``session``, in order, including the
        events they record themselves. Raises (rolling the transaction back) if a handler
        does."""
        for _ in range(MAX_ROUNDS):
            events = session.info.pop(PENDING_KEY, None)
            if not events:
                return
            for event in events:
                for handler in self._handlers.get(type(event), ()):
                    handler(session, event)
        raise RuntimeError(f"domain events still being recorded after {MAX_ROUNDS} rounds")
