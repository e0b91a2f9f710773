"""What counts as an outage on SQLite, from real SQLite errors: a database file that cannot be
opened or read ("unable to open database file", "disk I/O error") is waited out like a
PostgreSQL restart; "database is locked" and a read-only file are not (a worker would
otherwise wait ten minutes on them), they are raised at once; the API answers a locked
database as it answers an outage, with a 503 to try again."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy import exc as sa_exc

from squall.api.errors import install_error_handlers
from squall.db.outage import is_busy, is_outage, until_database_back


def engine_with_table(path: Path, **connect_args: object) -> Engine:
    engine = create_engine(f"sqlite:///{path}", connect_args=connect_args)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    return engine


def insert(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (1)"))


def raised_by(write: object) -> sa_exc.DBAPIError:
    with pytest.raises(sa_exc.DBAPIError) as caught:
        write()  # type: ignore[operator]
    return caught.value


@pytest.fixture
def locked(tmp_path: Path) -> Iterator[Engine]:
    """An engine whose database another connection holds a write transaction on."""
    engine = engine_with_table(tmp_path / "locked.db", timeout=0.1)
    holder = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    yield engine
    holder.execute("ROLLBACK")
    holder.close()
    engine.dispose()


def test_a_file_that_cannot_be_opened_is_an_outage(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'unmounted' / 'squall.db'}")
    error = raised_by(lambda: engine.connect().close())
    assert "unable to open database file" in str(error)
    assert is_outage(error)


def test_a_disk_io_error_is_an_outage_and_is_waited_out(tmp_path: Path) -> None:
    engine = engine_with_table(tmp_path / "io.db")
    journal = tmp_path / "io.db-journal"
    journal.mkdir()  # the rollback journal cannot be opened as a file: SQLITE_IOERR
    error = raised_by(lambda: insert(engine))
    assert "disk I/O error" in str(error)
    assert is_outage(error)

    attempts: list[int] = []

    def write() -> None:
        attempts.append(1)
        if len(attempts) == 2:
            journal.rmdir()  # the disk is back before the retry: the write goes through
        insert(engine)

    until_database_back(write, stopping=threading.Event(), give_up_after_s=60, what="test")
    assert len(attempts) == 2  # one outage, waited out, then the write
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar_one() == 1
    engine.dispose()


def test_a_locked_database_is_not_an_outage_and_is_raised_at_once(locked: Engine) -> None:
    error = raised_by(lambda: insert(locked))
    assert "database is locked" in str(error)
    assert not is_outage(error)

    attempts: list[int] = []

    def write() -> None:
        attempts.append(1)
        insert(locked)

    with pytest.raises(sa_exc.OperationalError, match="database is locked"):
        until_database_back(write, stopping=threading.Event(), give_up_after_s=600, what="test")
    assert len(attempts) == 1  # no waiting on a lock


def test_a_read_only_database_is_not_an_outage(tmp_path: Path) -> None:
    engine_with_table(tmp_path / "ro.db").dispose()
    read_only = create_engine(f"sqlite:///file:{tmp_path / 'ro.db'}?mode=ro&uri=true")
    error = raised_by(lambda: insert(read_only))
    assert "readonly database" in str(error)
    assert not is_outage(error)
    read_only.dispose()


def test_the_api_answers_a_locked_database_with_503_and_retry_after(locked: Engine) -> None:
    """A client is told to try again, as for an outage: never a 500 for another program's lock."""
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/write")
    def write() -> None:
        insert(locked)

    answer = TestClient(app).post("/write")
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "5"
    assert "try again shortly" in answer.json()["error"]
    assert is_busy(raised_by(lambda: insert(locked)))
