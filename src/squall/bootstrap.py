"""Start-up helpers for the CLI: open the database, and create the first key on a fresh
install so a newcomer can submit a job straight away."""

from __future__ import annotations

from squall.db import Database
from squall.db.presence import InUse
from squall.settings import Settings


def open_database(settings: Settings) -> Database:
    """The database, with the domain events' subscribers wired (a key's counters, …)."""
    from squall.subscriptions import wire

    return wire(Database(settings.resolved_database_url))


def ensure_first_key(settings: Settings, *, host: str, port: int) -> None:
    from squall.keys.service import any_key_exists, create_key

    db = open_database(settings)
    try:
        with db.write() as session:
            if any_key_exists(session):
                return
            new = create_key(session, pepper=settings.resolved_secret_key(), name="default")
    finally:
        db.dispose()
    base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    print(
        "\nFirst start: created an API key (shown only this once):\n\n"
        f"  {new.api_key}\n\n"
        "Try it:\n\n"
        f"  curl -s -X POST {base}/jobs -H 'x-api-key: {new.api_key}' \\\n"
        "       -H 'content-type: application/json' -d '{\"url\": \"https://example.com/video.mp4\"}'\n\n"
        f"Dashboard: {base}/  (sign in with the key)\nAPI docs: {base}/docs\n",
        flush=True,
    )


_SERVING: list[InUse] = []  # held for the life of the process


def claim_for_serving(settings: Settings) -> str | None:
    """Before serving: a problem that must stop the server (the secret is not the one the
    keys were hashed with), or None once the secret is recorded and this process is marked
    as serving the database (``squall db copy`` refuses to copy under a live server)."""
    from squall.keys.fingerprint import WRONG_SECRET, adopt_secret

    db = Database(settings.resolved_database_url)
    try:
        with db.write() as session:
            if not adopt_secret(session, settings.resolved_secret_key()):
                return WRONG_SECRET
    finally:
        db.dispose()
    _SERVING.append(InUse(settings.resolved_database_url))
    return None
