"""``Idempotency-Key`` on POST /jobs and POST /jobs/bulk, as Stripe does it: the first answer
is stored with the jobs it created (one transaction) and replayed for the same key and
body; the same key with another body is a 409. Two requests racing with one key meet at the
table's primary key, which is inserted before anything else (in a savepoint): the second
one's insert waits for the first transaction and then fails, and it replays the first's
answer."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from squall.clock import DAY_MS
from squall.errors import Conflict, InvalidInput
from squall.intake.models import IdempotentRequest

MAX_KEY_LENGTH = 255
KEEP_MS = DAY_MS  # answers are kept at least a day


def request_hash(path: str, body: BaseModel, idempotency_key: str | None) -> str:
    """What identifies the request behind a key; nothing is computed without a key (admission
    is the hot path)."""
    if idempotency_key is None:
        return ""
    dumped = json.dumps(body.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(f"{path}\n{dumped}".encode()).hexdigest()


def check_key(idempotency_key: str) -> None:
    if not 0 < len(idempotency_key) <= MAX_KEY_LENGTH:
        raise InvalidInput(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters")


def earlier_answer(
    session: Session, key_id: str, idempotency_key: str, fingerprint: str
) -> dict[str, Any] | None:
    """The stored answer for this key and request, or None. Raises 409 for another request."""
    found = session.execute(
        select(IdempotentRequest).where(
            IdempotentRequest.key_id == key_id, IdempotentRequest.idempotency_key == idempotency_key
        )
    ).scalar_one_or_none()
    if found is None:
        return None
    if found.request_hash != fingerprint:
        raise Conflict("This Idempotency-Key was already used with a different request")
    return dict(found.response)


def reserve(
    session: Session, key_id: str, idempotency_key: str, fingerprint: str, *, now: int
) -> IdempotentRequest | dict[str, Any]:
    """Insert the key's row before anything else is written. Returns the row (to be given
    the answer), or the answer of a concurrent twin that committed first."""
    row = IdempotentRequest(key_id=key_id, idempotency_key=idempotency_key, request_hash=fingerprint,
                            response={}, created_at=now)  # fmt: skip
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        earlier = earlier_answer(session, key_id, idempotency_key, fingerprint)
        if earlier is None:
            raise
        return earlier
    return row


def prune(session: Session, *, now: int) -> int:
    result = session.execute(delete(IdempotentRequest).where(IdempotentRequest.created_at < now - KEEP_MS))
    return int(result.rowcount)  # type: ignore[attr-defined]
