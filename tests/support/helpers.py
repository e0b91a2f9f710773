"""Helpers the tests share (fixtures stay in conftest.py): keys, draining a worker in this
process, wiping the database, and the environment of worker subprocesses."""

from __future__ import annotations

import os
import sys

from fastapi.testclient import TestClient
from sqlalchemy import text

from squall.db import Database
from squall.keys.service import KeyLimits, create_key
from squall.models import Base
from squall.settings import Settings
from squall.worker import Worker

TEST_SECRET = "test-secret-key"
PYTHON = sys.executable


_TABLES = [t.name for t in reversed(Base.metadata.sorted_tables)]  # children before parents
# One round trip names the tables holding rows; most tests touch a few of them.
_DIRTY = " UNION ALL ".join(f"SELECT '{name}' WHERE EXISTS (SELECT 1 FROM {name})" for name in _TABLES)


def wipe(db: Database) -> None:
    """Empty every table. DELETE, not PostgreSQL's TRUNCATE: on tables this small TRUNCATE
    costs tens of milliseconds a table (new files, a lock), and it ran twice per test."""
    with db.write() as session:
        dirty = set(session.execute(text(_DIRTY)).scalars())
        for table in (name for name in _TABLES if name in dirty):
            session.execute(text(f"DELETE FROM {table}"))


class KeyFactory:
    def __init__(self, db: Database) -> None:
        self.db = db

    def __call__(self, name: str = "client", key_type: str | None = None, **limits: int) -> tuple[str, str]:
        """Create a key; returns (secret, key id)."""
        with self.db.write() as session:
            new = create_key(
                session, pepper=TEST_SECRET, name=name, key_type=key_type, limits=KeyLimits(**limits)
            )
        return new.api_key, new.id


def submit_job(client: TestClient, api_key: str, url: str = "http://127.0.0.1:9/v.mp4") -> str:
    """POST /jobs for ``url`` (by default one nothing serves: for stand-in pipelines); the job's id."""
    response = client.post("/jobs", headers={"x-api-key": api_key}, json={"url": url})
    assert response.status_code == 200, response.text
    return str(response.json()["job_id"])


def drain(worker: Worker, limit: int = 50) -> int:
    """Run queued jobs in this process until the queue is empty; returns how many ran."""
    ran = 0
    while ran < limit and worker.run_once():
        ran += 1
    return ran


def worker_env(settings: Settings) -> dict[str, str]:
    """Environment for `python -m squall ...` subprocesses sharing the test database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SQUALL_")}
    env.update(
        {
            "SQUALL_DATA_DIR": str(settings.data_dir),
            "SQUALL_DATABASE_URL": settings.resolved_database_url,
            "SQUALL_SECRET_KEY": TEST_SECRET,
            "SQUALL_ALLOW_PRIVATE_URLS": "true",
            "SQUALL_LEASE_SECONDS": str(settings.lease_seconds),
            "SQUALL_HEARTBEAT_SECONDS": str(settings.heartbeat_seconds),
            "SQUALL_RETRY_BACKOFF_SECONDS": "0",
            "SQUALL_POLL_SECONDS": "0.05",
            "SQUALL_DEFAULT_RESERVATION_MB": str(settings.default_reservation_mb),
        }
    )
    return env


def refused_as_private(what: str) -> str:
    """The words of a URL refused as private (written out here, not imported, so a change to
    them is noticed): they name the settings that would allow it."""
    return (
        f"{what} points at a private or local address, which this server does not allow; its operator can "
        "allow such addresses with SQUALL_ALLOW_PRIVATE_URLS=true, or only chosen networks with "
        "SQUALL_ALLOWED_PRIVATE_NETWORKS (e.g. 192.168.1.0/24)"
    )
