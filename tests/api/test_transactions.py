"""The request's transaction (api/deps.py, api/routing.py): committed when a sync route
returns, and only then; rolled back, with nothing written, when the route raises, when its
answer cannot be rendered, or when a domain event's subscriber fails."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from squall.api.deps import ReadTx, WriteTx
from squall.api.errors import install_error_handlers
from squall.api.routing import TransactionalRoute
from squall.db import Database
from squall.errors import InvalidInput
from squall.events import DomainEvent, record
from squall.keys.models import ApiKey
from squall.keys.service import revoke_key
from tests.support.helpers import KeyFactory


@dataclass(frozen=True)
class Refused(DomainEvent):
    key_id: str


def refuse(_session: Session, _event: Refused) -> None:
    raise InvalidInput("a subscriber said no")


@pytest.fixture
def revoking(db: Database, make_key: KeyFactory) -> Iterator[tuple[TestClient, str]]:
    """A tiny app whose routes revoke a key (a write), then do something else."""
    _, key_id = make_key()
    app = FastAPI()
    app.state.db = db
    install_error_handlers(app)
    router = APIRouter(route_class=TransactionalRoute)

    @router.post("/ok")
    def ok(tx: WriteTx) -> dict[str, str]:
        revoke_key(tx.session, key_id)
        return {"revoked": key_id}

    @router.post("/raises")
    def raises(tx: WriteTx) -> dict[str, str]:
        revoke_key(tx.session, key_id)
        raise InvalidInput("changed my mind")

    @router.post("/unrenderable")
    def unrenderable(tx: WriteTx) -> dict[str, object]:
        revoke_key(tx.session, key_id)
        return {"revoked": object()}

    @router.post("/refused")
    def refused(tx: WriteTx) -> dict[str, str]:
        revoke_key(tx.session, key_id)
        record(tx.session, Refused(key_id))
        return {"revoked": key_id}

    @router.get("/read")
    def read(tx: ReadTx) -> dict[str, bool]:
        return {"revoked": tx.session.get(ApiKey, key_id).revoked_at is not None}  # type: ignore[union-attr]

    app.include_router(router)
    db.events.subscribe(Refused, refuse)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            yield client, key_id
    finally:
        db.events.unsubscribe(Refused, refuse)


def revoked(db: Database, key_id: str) -> bool:
    with db.read() as session:
        key = session.get(ApiKey, key_id)
        return key is not None and key.revoked_at is not None


def test_a_route_that_returns_has_committed_before_the_answer(
    revoking: tuple[TestClient, str], db: Database
) -> None:
    """The answer arrives after the commit: a read right after it sees the change."""
    client, key_id = revoking
    assert client.post("/ok").json() == {"revoked": key_id}
    assert revoked(db, key_id) and client.get("/read").json() == {"revoked": True}


@pytest.mark.parametrize(
    ("path", "status", "error"),
    [
        ("/raises", 400, "changed my mind"),
        ("/unrenderable", 500, "Internal server error"),
        ("/refused", 400, "a subscriber said no"),
    ],
)
def test_nothing_is_written_when_the_request_fails(
    revoking: tuple[TestClient, str], db: Database, path: str, status: int, error: str
) -> None:
    """The route raised, its answer could not be rendered, or a subscriber failed before the
    commit: the client gets the error and the key is not revoked; the next write succeeds (no
    write lock was left held)."""
    client, key_id = revoking
    answer = client.post(path)
    assert (answer.status_code, answer.json()) == (status, {"error": error})
    assert not revoked(db, key_id)
    assert client.post("/ok").status_code == 200 and revoked(db, key_id)
