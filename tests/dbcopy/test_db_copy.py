"""`squall db copy`: a SQLite Squall with real history moves to PostgreSQL and answers every
key exactly as before; keys, links and counters carry on; what is wrong is refused or caught."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from squall.app import create_app
from squall.audit.storage import reconcile
from squall.audit.usage import verify
from squall.bootstrap import claim_for_serving
from squall.clock import ManualClock, now_ms
from squall.db import Database
from squall.db.presence import InUse
from squall.dbcopy.copier import advance_sequences
from squall.keys.fingerprint import WRONG_SECRET
from squall.storage.local import LocalStorage
from squall.subscriptions import wire
from squall.worker import Worker
from tests.dbcopy.conftest import squall, squall_process
from tests.dbcopy.history import ANSWERED_AT, Source, answers, ask, squall_settings, submit
from tests.support.helpers import drain
from tests.support.server import MediaServer
from tests.support.stripe_standin import StripeStandIn

Scratch = Callable[[], str]


def copy(source: Source, target: str, *args: str, **env: str) -> tuple[int, str]:
    return squall(source.settings.data_dir, "db", "copy", "--to", target, *args, **env)


def test_a_copy_answers_every_key_as_the_sqlite_squall_did(
    source: Source, scratch_postgres: Scratch, media: MediaServer, stripe: StripeStandIn, tmp_path: Path
) -> None:
    target = scratch_postgres()
    done = squall_process(source.settings.data_dir, "db", "copy", "--to", target, "--migrate")  # as run
    code, output = done.returncode, done.stdout + done.stderr
    assert code == 0, output
    assert "the copy matches the source" in output and "usage_events" in output

    # The new machine: the same files (a copy of the folder, so this test's new job stays
    # its own) and the same generated secret, found in the data directory.
    data_dir = tmp_path / "new-machine"
    shutil.copytree(source.settings.data_dir, data_dir, ignore=shutil.ignore_patterns("squall.db*"))
    settings = squall_settings(data_dir, stripe, database_url=target)
    assert claim_for_serving(settings) is None  # `serve` accepts the secret
    clock = ManualClock(ANSWERED_AT)
    db = wire(Database(target))
    storage = LocalStorage(settings.storage_dir)
    try:
        with TestClient(create_app(settings, db=db, storage=storage, clock=clock)) as client:
            moved = answers(client, source.keys)  # every old key authenticates, and sees the same
            for where, before in source.answers.items():
                assert moved[where] == before, where

            clock.now = source.link_at  # a signed link made by the old server, not yet expired
            assert client.get(source.download_link.removeprefix("http://testserver")).status_code == 200
            clock.now = ANSWERED_AT
            before = ask(client, source.keys["unlimited"], "/usage")
            job_id = submit(client, source.keys["unlimited"], url=media.url("media/tiny.mp4"))["job_id"]
            assert drain(Worker(settings, db=db, storage=storage, clock=clock)) == 1
            done = client.get(f"/jobs/{job_id}", headers={"x-api-key": source.keys["unlimited"]}).json()
            assert done["status"] == "Completed", done
            after = ask(client, source.keys["unlimited"], "/usage")
            assert after["usage_count"] == before["usage_count"] + 1
            assert after["storage_usage_bytes"] == before["storage_usage_bytes"] + done["file_size"]
        with db.snapshot() as session:
            assert not verify(session).drift
            assert not reconcile(session, storage.listing()).drift
    finally:
        db.dispose()


def test_refusals_and_a_corrupted_row_caught_by_verify_only(
    source: Source, scratch_postgres: Scratch
) -> None:
    for wrong in ("sqlite:///elsewhere.db", "not a url"):
        code, output = copy(source, wrong)
        assert code == 2 and ("must be a PostgreSQL database" in output or "is not a database URL" in output)
    bare = scratch_postgres()
    code, output = copy(source, bare)
    assert code == 2 and "no Squall schema: add --migrate" in output, output

    target = scratch_postgres()
    assert copy(source, target, "--migrate")[0] == 0
    code, output = copy(source, target, "--verify-only")
    assert code == 0 and "the copy matches the source" in output, output

    code, output = copy(source, target)
    assert code == 2 and "the target database is not empty (api_keys: 4 rows" in output, output
    code, output = copy(source, target, SQUALL_SECRET_KEY="not-the-secret")
    assert code == 2 and WRONG_SECRET in output.replace("\n", " "), output

    engine = create_engine(target)
    with engine.begin() as conn:
        conn.execute(text("UPDATE jobs SET title = 'tampered' WHERE id = (SELECT min(id) FROM jobs)"))
        conn.execute(text("UPDATE key_counters SET jobs_completed = jobs_completed + 1 "
                          "WHERE key_id = (SELECT min(key_id) FROM key_counters)"))  # fmt: skip
    engine.dispose()
    code, output = copy(source, target, "--verify-only")
    assert code == 1, output
    lines = output.splitlines()
    assert any(line.startswith("jobs ") and "DIFFERS" in line for line in lines), output
    assert any(line.startswith("api_keys ") and line.endswith("same") for line in lines), output
    assert "counter jobs_completed: source" in output
    assert "counter jobs_completed: stored" in output  # usage verify on the target sees it too
    assert "DIFFERENCES FOUND" in output


def test_a_running_squall_is_refused_unless_online(source: Source, scratch_postgres: Scratch) -> None:
    serving = InUse(source.settings.resolved_database_url)  # what `squall serve` and workers hold
    try:
        code, output = copy(source, scratch_postgres(), "--migrate")
        assert code == 2 and "Squall is still running against the source database" in output, output
        code, output = copy(source, scratch_postgres(), "--migrate", "--online")
        assert code == 0 and "the copy matches the source" in output, output
    finally:
        serving.release()


def test_serve_refuses_a_database_whose_keys_another_secret_hashed(
    source: Source, scratch_postgres: Scratch, stripe: StripeStandIn, tmp_path: Path
) -> None:
    target = scratch_postgres()
    assert copy(source, target, "--migrate")[0] == 0
    settings = squall_settings(tmp_path / "fresh-machine", stripe, database_url=target)  # a new secret
    assert claim_for_serving(settings) == WRONG_SECRET


def test_sequences_are_advanced_past_the_copied_ids(scratch_postgres: Scratch) -> None:
    """Squall's ids are UUIDs today; a table with a generated integer id must not collide."""
    engine = create_engine(scratch_postgres())
    try:
        with engine.begin() as conn:
            conn.execute(
                text("CREATE TABLE numbered (id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY)")
            )
            conn.execute(text("CREATE TABLE serials (n serial PRIMARY KEY)"))
            conn.execute(text("INSERT INTO numbered (id) VALUES (1), (7), (41)"))
            conn.execute(text("INSERT INTO serials (n) VALUES (5)"))
            assert sorted(advance_sequences(conn)) == ["numbered_id_seq", "serials_n_seq"]
            assert conn.execute(text("INSERT INTO numbered DEFAULT VALUES RETURNING id")).scalar() == 42
            assert conn.execute(text("INSERT INTO serials DEFAULT VALUES RETURNING n")).scalar() == 6
    finally:
        engine.dispose()


def test_a_job_under_a_live_lease_means_a_worker_still_runs(source: Source, scratch_postgres: Scratch,
                                                            tmp_path: Path) -> None:  # fmt: skip
    """A worker on another machine holds no lock here: its live lease gives it away."""
    data_dir = tmp_path / "data"
    shutil.copytree(source.settings.data_dir, data_dir, ignore=shutil.ignore_patterns("*.in-use", "storage"))
    with sqlite3.connect(data_dir / "squall.db") as conn:
        conn.execute("UPDATE jobs SET status = 'Processing', lease_expires_at = ? WHERE rowid = 1",
                     (now_ms() + 60_000,))  # fmt: skip
    code, output = squall(data_dir, "db", "copy", "--to", scratch_postgres(), "--migrate")
    assert code == 2 and "1 jobs being processed under a live lease" in output, output
