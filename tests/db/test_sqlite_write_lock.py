"""SqliteWriteLock: one writer at a time across threads and processes, released on error;
and Database.write() serialising read-modify-write transactions on SQLite."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text

from squall.db.engine import Database, SqliteWriteLock

# Takes the lock on argv[1], marks argv[2] once it holds it, holds it ~0.5 s, and writes the time
# into argv[3] as the last thing before it lets go.
CHILD = """
import sys, time
from pathlib import Path
from squall.db.engine import SqliteWriteLock

database, held, released = sys.argv[1:4]
with SqliteWriteLock(database):
    Path(held).write_text(repr(time.time()))
    time.sleep(0.5)
    Path(released).write_text(repr(time.time()))
"""


def run_bounded(fn: Callable[[], None], timeout: float = 5.0) -> None:
    """Run fn in another thread; fail (rather than hang) if it does not finish in time."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            fn()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"{fn.__name__} did not finish within {timeout} s (a lock left held?)"
    if errors:
        raise errors[0]


@pytest.mark.parametrize("shared", [True, False], ids=["one-instance", "instance-per-thread"])
def test_two_threads_never_hold_the_lock_at_once(tmp_path: Path, shared: bool) -> None:
    """Two threads contending for the lock (one instance, or one each on the same path) never overlap."""
    database = str(tmp_path / "x.db")
    one = SqliteWriteLock(database)
    locks = [one, one] if shared else [SqliteWriteLock(database), SqliteWriteLock(database)]
    guard = threading.Lock()
    holders = 0
    most = 0
    entries = [0, 0]
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def worker(n: int) -> None:
        nonlocal holders, most
        try:
            start.wait(timeout=5)
            for _ in range(1000):
                with locks[n]:
                    with guard:
                        holders += 1
                        most = max(most, holders)
                    time.sleep(0)  # let the other thread run while this one holds the lock
                    with guard:
                        holders -= 1
                    entries[n] += 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert entries == [1000, 1000]
    assert most == 1


def test_lock_held_by_another_process_blocks_until_it_releases(tmp_path: Path) -> None:
    """While a child process holds the lock on the same path, the parent acquires only after it lets go."""
    database = str(tmp_path / "x.db")
    held = tmp_path / "child-held"
    released = tmp_path / "child-released"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, database, str(held), str(released)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 10
        while not held.exists():
            if child.poll() is not None:
                pytest.fail(
                    f"child exited ({child.returncode}) before taking the lock:\n{child.stderr.read()}"
                )
            assert time.monotonic() < deadline, "child did not take the lock within 10 s"
            time.sleep(0.01)
        assert not released.exists()  # the child holds it now, for ~0.5 s
        with SqliteWriteLock(database):
            acquired_at = time.time()
            released_when_acquired = released.exists()
        _, stderr = child.communicate(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, stderr
    assert released_when_acquired, "the parent got the lock while the child still held it"
    assert float(held.read_text()) <= float(released.read_text()) <= acquired_at


def test_exception_inside_the_block_releases_both_locks(tmp_path: Path) -> None:
    """An error raised in the with block propagates and frees the thread lock and the file lock."""
    database = str(tmp_path / "x.db")
    lock = SqliteWriteLock(database)

    def fail_then_retake() -> None:
        with pytest.raises(RuntimeError, match="boom"), lock:
            raise RuntimeError("boom")
        with lock:  # the same thread again: a non-reentrant lock left held would hang here
            pass

    run_bounded(fail_then_retake)

    with pytest.raises(RuntimeError, match="boom"), lock:
        raise RuntimeError("boom")

    entered: list[str] = []

    def take_in_other_thread() -> None:
        with lock:
            entered.append("same instance")
        with SqliteWriteLock(database):  # its own descriptor: needs the flock to be free
            entered.append("new instance")

    run_bounded(take_in_other_thread)
    assert entered == ["same instance", "new instance"]

    # And nothing still holds the file lock: a fresh descriptor gets it without waiting.
    fd = os.open(f"{database}.write-lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError if still held
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def test_concurrent_read_modify_write_through_database_write_loses_no_increment(tmp_path: Path) -> None:
    """Threads each incrementing one row via select-then-update in db.write() lose no update and never
    see 'database is locked'."""
    db = Database(f"sqlite:///{tmp_path}/x.db")
    threads_n, per_thread = 8, 25
    try:
        with db.write() as session:
            session.execute(text("CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)"))
            session.execute(text("INSERT INTO counter (id, n) VALUES (1, 0)"))
        errors: list[BaseException] = []
        start = threading.Barrier(threads_n)

        def worker() -> None:
            try:
                start.wait(timeout=5)
                for _ in range(per_thread):
                    with db.write() as session:
                        n = session.execute(text("SELECT n FROM counter WHERE id = 1")).scalar_one()
                        time.sleep(0)  # widen the window between the read and the write
                        session.execute(text("UPDATE counter SET n = :n WHERE id = 1"), {"n": n + 1})
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=worker, daemon=True) for _ in range(threads_n)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert not any(thread.is_alive() for thread in threads)
        assert not any("database is locked" in str(exc) for exc in errors), errors
        assert errors == []
        with db.read() as session:
            total = session.execute(text("SELECT n FROM counter WHERE id = 1")).scalar_one()
        assert total == threads_n * per_thread
    finally:
        db.dispose()
