"""Who has a SQLite database open for serving: each ``squall serve`` and ``squall worker``
process holds a shared ``flock`` on a file beside the database for as long as it runs, and
``squall db copy`` asks for it exclusively, without waiting, to learn whether any still
does. The kernel drops a lock when its process dies, so a crashed server leaves nothing
stale behind. (A PostgreSQL database has no file here: its workers show in their leases.)"""

from __future__ import annotations

import fcntl
import os

from sqlalchemy.engine import make_url


def _lock_path(url: str) -> str | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return f"{parsed.database}.in-use"


class InUse:
    """A shared hold on the database, released by ``release()`` or when the process ends."""

    def __init__(self, url: str) -> None:
        self._fd: int | None = None
        path = _lock_path(url)
        if path is not None:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_SH)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops its lock
            self._fd = None


def held_by_a_server(url: str) -> bool:
    """True while some process holds ``InUse`` on this SQLite database."""
    path = _lock_path(url)
    if path is None or not os.path.exists(path):
        return False
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also releases the exclusive lock if it was granted
    return False
