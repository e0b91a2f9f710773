"""The fingerprint of the server secret, kept in the database beside the keys it hashed.

A key's stored hash cannot tell which secret made it without the key itself, so a database
moved to a machine with another secret would refuse every key with no hint why. The
fingerprint (an HMAC of a fixed label, which reveals nothing of the secret) is recorded when
a key is created or a server first starts, and checked by ``squall serve`` and
``squall db copy``."""

from __future__ import annotations

import hashlib
import hmac

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from squall.db.base import table_of
from squall.keys.models import ServerFact

SECRET_FINGERPRINT = "secret_fingerprint"
_LABEL = b"squall secret fingerprint v1"
WRONG_SECRET = (
    "the server secret (SQUALL_SECRET_KEY, or the data directory's secret_key file) is not the "
    "one this database's API keys were hashed with: every key would be refused. Set "
    "SQUALL_SECRET_KEY to the original machine's secret (its <data dir>/secret_key file)"
)


def secret_fingerprint(secret: str) -> str:
    return hmac.new(secret.encode(), _LABEL, hashlib.sha256).hexdigest()


def stored_fingerprint(session: Session) -> str | None:
    return session.execute(
        select(ServerFact.value).where(ServerFact.name == SECRET_FINGERPRINT)
    ).scalar_one_or_none()


def remember_secret(session: Session, secret: str) -> None:
    """Record the secret's fingerprint unless one is recorded already (first writer wins)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    session.execute(
        dialect.insert(table_of(ServerFact))
        .values(name=SECRET_FINGERPRINT, value=secret_fingerprint(secret))
        .on_conflict_do_nothing(index_elements=["name"])
    )


def adopt_secret(session: Session, secret: str) -> bool:
    """At start-up: False if the database's keys were hashed with another secret; otherwise
    the secret is (now) the recorded one."""
    stored = stored_fingerprint(session)
    if stored is None:
        remember_secret(session, secret)
        return True
    return hmac.compare_digest(stored, secret_fingerprint(secret))
