"""Waking idle workers the moment a job is queued, so the poll is only a fallback.

PostgreSQL: the transaction that queues a job says ``NOTIFY squall_jobs`` (delivered when it
commits, never for a rollback) and every worker process ``LISTEN``s on a connection of its
own, on any host. SQLite (all processes on one machine): after the commit, a datagram goes to
each worker's unix socket in a folder beside the database. A lost wake-up costs at most one
poll interval."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import uuid
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from squall.logging import get_logger

log = get_logger("squall.db")
CHANNEL = "squall_jobs"
WAKE_AFTER_COMMIT = "squall.wake_workers"  # session.info flag: SQLite pings after the commit
NOTIFY_AT_COMMIT = "squall.notify_workers"  # session.info flag: PostgreSQL notifies just before


def notify_before_commit(session: Session) -> None:
    """One NOTIFY per transaction however many admissions it holds (a round trip each)."""
    if session.info.pop(NOTIFY_AT_COMMIT, False):
        session.execute(text(f"NOTIFY {CHANNEL}"))


def jobs_queued(session: Session) -> None:
    """Call in the transaction that queues jobs: idle workers hear of it once it commits."""
    if session.get_bind().dialect.name == "postgresql":
        session.info[NOTIFY_AT_COMMIT] = True  # Database.write says NOTIFY once, before it commits
    else:
        session.info[WAKE_AFTER_COMMIT] = True


def sqlite_wake_dir(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(f"{parsed.database}.wake")


def ping_sqlite_workers(url: str) -> None:
    """After a commit that queued jobs: one datagram to every listening worker process."""
    folder = sqlite_wake_dir(url)
    if folder is None or not folder.is_dir():
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
        sender.setblocking(False)
        for path in folder.glob("*.sock"):
            try:
                sender.sendto(b"!", str(path))
            except (ConnectionRefusedError, FileNotFoundError):  # its worker died: tidy up
                with contextlib.suppress(OSError):
                    path.unlink()
            except OSError:  # its buffer is full: it has wake-ups waiting already
                pass


class Wakeup:
    """One per worker process: ``wait(timeout)`` returns early when a job was queued."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._condition = threading.Condition()
        self._pending = False  # a wake-up that came while no thread was waiting
        self._closed = threading.Event()
        self.listening = threading.Event()  # set once wake-ups can be heard

    def start(self) -> Wakeup:
        target = self._listen_sqlite if sqlite_wake_dir(self.url) is not None else self._listen_postgres
        if make_url(self.url).get_backend_name() in ("sqlite", "postgresql"):
            threading.Thread(target=target, name="wakeup", daemon=True).start()
        return self

    def wait(self, timeout: float) -> None:
        with self._condition:
            # Checked under the lock: neither a close nor a wake-up that arrived between the
            # caller's empty claim and this wait (its job committed meanwhile) can slip past.
            if not self._closed.is_set() and not self._pending:
                self._condition.wait(timeout)
            self._pending = False

    def wake_all(self) -> None:
        with self._condition:
            self._pending = True
            self._condition.notify_all()

    def close(self) -> None:
        self._closed.set()
        self.wake_all()

    def _listen_postgres(self) -> None:
        import psycopg

        conninfo = make_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False)
        while not self._closed.is_set():
            try:
                with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    while not self._closed.is_set():
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            self.wake_all()
            except Exception as error:  # the database restarting: listen again shortly (the poll covers it)
                log.warning("wake-up listener lost its connection", error=str(error).splitlines()[0])
                self._closed.wait(2.0)

    def _listen_sqlite(self) -> None:
        folder = sqlite_wake_dir(self.url)
        assert folder is not None
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{os.getpid()}-{uuid.uuid4().hex[:8]}.sock"
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
            listener.bind(str(path))
            listener.settimeout(1.0)
            self.listening.set()
            try:
                while not self._closed.is_set():
                    try:
                        listener.recv(64)
                    except TimeoutError:
                        continue
                    self.wake_all()
            finally:
                with contextlib.suppress(OSError):
                    path.unlink()
