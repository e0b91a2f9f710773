"""A key's own cookies for its downloads: checked (Netscape format), sealed at rest, opened
only to hand them to that key's downloader children."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from squall.crypto import SealedSecretError, SecretBox
from squall.errors import Conflict, InvalidInput
from squall.keys.models import KeyCookies
from squall.pipeline.cookies import netscape_text

PURPOSE = "cookies"


class CookiesUnreadable(Conflict):
    """Stored cookies that no longer open (the secret key changed)."""


def cookie_box(secret_key: str) -> SecretBox:
    return SecretBox(secret_key, PURPOSE)


def save_cookies(session: Session, key_id: str, text: str, box: SecretBox, *, now: int) -> int:
    """Check and store ``text`` (replacing any earlier cookies); returns how many cookies."""
    try:
        normalised = netscape_text(text)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    sealed = box.seal(normalised.encode(), key_id)
    row = session.get(KeyCookies, key_id)
    if row is None:
        session.add(KeyCookies(key_id=key_id, sealed=sealed, updated_at=now))
    else:
        row.sealed, row.updated_at = sealed, now
    return normalised.count("\n") - 1  # the header's line is not a cookie


def load_cookies(session: Session, key_id: str, box: SecretBox) -> str | None:
    sealed = session.scalar(select(KeyCookies.sealed).where(KeyCookies.key_id == key_id))
    if sealed is None:
        return None
    try:
        return box.open(sealed, key_id).decode()
    except SealedSecretError:
        raise CookiesUnreadable(
            "This key's cookies can no longer be read (the server's secret key changed); "
            "send them again with POST /user/cookies"
        ) from None


def delete_cookies(session: Session, key_id: str) -> bool:
    return bool(session.execute(delete(KeyCookies).where(KeyCookies.key_id == key_id)).rowcount)  # type: ignore[attr-defined]
