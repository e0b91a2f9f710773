"""``squall secrets rotate``: every sealed secret (a key's cookies, storage credentials)
opened with the old ``SQUALL_SECRET_KEY`` and sealed again under the new one, in one
transaction. A value that already opens with the new secret is left alone, so a rotation
that was interrupted can be run again."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from squall.crypto import SealedSecretError, SecretBox
from squall.keys.cookies import cookie_box
from squall.keys.models import KeyCookies
from squall.keys.storage_models import StorageBackend
from squall.keys.storage_service import storage_box


@dataclass
class Resealed:
    cookies: int = 0
    storage: int = 0
    already: int = 0  # sealed under the new secret already
    unreadable: int = 0  # opens with neither secret: left as it was

    def as_text(self) -> str:
        return (f"re-encrypted {self.cookies} cookie files and {self.storage} storage configurations; "
                f"{self.already} were already under the new secret; {self.unreadable} open with neither")  # fmt: skip


def _reseal(sealed: bytes, context: str, old: SecretBox, new: SecretBox) -> bytes | None:
    """The value sealed under ``new``; None if it already is, or if it opens with neither."""
    try:
        new.open(sealed, context)
        return None
    except SealedSecretError:
        pass
    return new.seal(old.open(sealed, context), context)  # SealedSecretError: neither opens it


def reseal_all(session: Session, old_secret: str, new_secret: str) -> Resealed:
    done = Resealed()
    boxes: list[tuple[Callable[[str], SecretBox], str]] = [(cookie_box, "cookies"), (storage_box, "storage")]
    for make_box, kind in boxes:
        old, new = make_box(old_secret), make_box(new_secret)
        rows: list[KeyCookies] | list[StorageBackend]
        if kind == "cookies":
            rows = list(session.scalars(select(KeyCookies)))
        else:
            rows = list(session.scalars(select(StorageBackend).where(StorageBackend.sealed.is_not(None))))
        for row in rows:
            context = row.key_id if isinstance(row, KeyCookies) else row.id
            assert row.sealed is not None
            try:
                resealed = _reseal(row.sealed, context, old, new)
            except SealedSecretError:
                done.unreadable += 1
                continue
            if resealed is None:
                done.already += 1
                continue
            row.sealed = resealed
            if kind == "cookies":
                done.cookies += 1
            else:
                done.storage += 1
    return done
