"""Operator tokens: made like API keys (random, ~238 bits), stored as a keyed hash (HMAC with
the server secret, ``keys/secrets.py``), shown once. A distinct prefix keeps them apart from
API keys at a glance; the tables keep them apart for the server."""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from squall.admin.models import OperatorToken
from squall.errors import InvalidInput
from squall.keys.secrets import hash_key

PREFIX = "sqop_"
_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True)
class NewToken:
    id: str
    token: str
    name: str


def create_token(session: Session, *, pepper: str, name: str, now: int) -> NewToken:
    if not name.strip():
        raise InvalidInput("Token name cannot be empty")
    token = PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(40))
    row = OperatorToken(
        name=name.strip(), token_hash=hash_key(token, pepper), token_prefix=token[:10], created_at=now
    )
    session.add(row)
    session.flush()
    return NewToken(row.id, token, row.name)


def find_operator(session: Session, digest: str) -> str | None:
    """The id of the active operator token whose hash is ``digest``."""
    row = session.execute(
        select(OperatorToken.id, OperatorToken.revoked_at).where(OperatorToken.token_hash == digest)
    ).first()
    return row.id if row is not None and row.revoked_at is None else None
