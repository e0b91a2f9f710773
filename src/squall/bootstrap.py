"""Start-up helpers for the CLI: open the database, claim the port, create the first key on
a fresh install, and tell a newcomer where Squall is and how to try it."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

from squall.db import Database
from squall.db.presence import InUse
from squall.settings import Settings

if TYPE_CHECKING:
    from squall.keys.service import NewKey

# What the banner's example submits: a well-known, freely downloadable short film.
EXAMPLE_MEDIA_URL = "https://download.blender.org/peach/bigbuckbunny_movies/BigBuckBunny_320x180.mp4"


class PortTaken(Exception):
    def __init__(self, host: str, port: int, reason: str) -> None:
        super().__init__(
            f"cannot listen on {host}:{port} ({reason}); is another Squall running? "
            f"Pick another port with --port, e.g. `squall serve --port {port + 1}`"
        )


def open_database(settings: Settings) -> Database:
    """The database, with the domain events' subscribers wired (a key's counters, …)."""
    from squall.subscriptions import wire

    return wire(Database(settings.resolved_database_url))


def claim_port(host: str, port: int) -> socket.socket:
    """A socket listening on host:port, taken before anything is created, so a busy port
    fails the start with nothing made. Address reuse as uvicorn binds: a port in TIME_WAIT is free."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise PortTaken(host, port, exc.strerror or str(exc)) from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise PortTaken(host, port, exc.strerror or str(exc)) from None
    return sock


def base_url(host: str, port: int) -> str:
    """Where a browser on this machine reaches a server listening on host:port."""
    shown = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(host, f"[{host}]" if ":" in host else host)
    return f"http://{shown}:{port}"


def ensure_first_key(settings: Settings) -> NewKey | None:
    """The key "default" when the database has none yet, else None."""
    from squall.keys.service import any_key_exists, create_key

    db = open_database(settings)
    try:
        with db.write() as session:
            if any_key_exists(session):
                return None
            return create_key(session, pepper=settings.resolved_secret_key(), name="default")
    finally:
        db.dispose()


def first_key_banner(new: NewKey, base: str) -> str:
    return (
        f"\nFirst start: created the API key {new.client_name!r} ({new.id}). Copy it now: only its hash\n"
        "is stored, so it cannot be shown again (`squall keys create` makes more).\n\n"
        f"  {new.api_key}\n\n"
        f"Webhooks to this key are signed with {new.webhook_secret}\n"
        f"(replace it with `squall keys rotate-webhook-secret {new.id}`).\n\n"
        "Try it with a direct link to a video or audio file, or any page yt-dlp supports:\n\n"
        f"  curl -s -X POST {base}/jobs -H 'x-api-key: {new.api_key}' \\\n"
        f"       -H 'content-type: application/json' -d '{{\"url\": \"{EXAMPLE_MEDIA_URL}\"}}'\n\n"
        f"then ask for the job with the job_id it answers:\n\n"
        f"  curl -s {base}/jobs/<job_id> -H 'x-api-key: {new.api_key}'\n"
    )


def listening_banner(host: str, port: int) -> str:
    base = base_url(host, port)
    where = f"{host}:{port}" + (" (all interfaces)" if host in ("0.0.0.0", "::") else "")
    return (
        f"\nSquall is listening on {where}\n"
        f"  Dashboard: {base}/  (sign in with an API key)\n"
        f"  API docs:  {base}/docs  and  {base}/redoc\n"
        "Stop it with Ctrl-C.\n"
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
