"""Shared fixtures. The suite runs on SQLite, or on PostgreSQL when SQUALL_TEST_DATABASE_URL
is set (a scratch database is created for the session and dropped after)."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from squall.app import create_app
from squall.db import Database
from squall.db.migrate import upgrade
from squall.settings import Settings
from squall.storage.local import LocalStorage
from squall.subscriptions import wire
from squall.worker import Worker
from tests.support.helpers import TEST_SECRET, KeyFactory, wipe
from tests.support.media import make_library
from tests.support.receiver import WebhookReceiver
from tests.support.server import MediaServer


def pytest_report_header() -> str:
    url = os.environ.get("SQUALL_TEST_DATABASE_URL")
    return f"squall database: {'PostgreSQL ' + make_url(url).render_as_string(hide_password=True) if url else 'SQLite'}"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base = os.environ.get("SQUALL_TEST_DATABASE_URL")
    if not base:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'squall.db'}"
        upgrade(url)
        yield url
        return
    name = f"squall_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def shared_db(database_url: str) -> Iterator[Database]:
    db = wire(Database(database_url))  # key counters, webhooks, batches: as app and worker have them
    yield db
    db.dispose()


@pytest.fixture
def db(shared_db: Database) -> Iterator[Database]:
    wipe(shared_db)
    yield shared_db
    wipe(shared_db)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        secret_key=TEST_SECRET,
        allow_private_urls=True,
        default_reservation_mb=1,
        lease_seconds=3,
        heartbeat_seconds=0.5,
        retry_backoff_seconds=0,
        poll_seconds=0.05,
        socket_timeout_seconds=3,
        public_url="http://testserver",
        auth_cache_seconds=0,  # tests revoke keys and expect the next request to fail
    )


@pytest.fixture
def storage(settings: Settings) -> LocalStorage:
    return LocalStorage(settings.storage_dir)


@pytest.fixture
def client(settings: Settings, db: Database, storage: LocalStorage) -> Iterator[TestClient]:
    with TestClient(create_app(settings, db=db, storage=storage)) as test_client:
        yield test_client


@pytest.fixture
def worker(settings: Settings, db: Database, storage: LocalStorage) -> Worker:
    return Worker(settings, db=db, storage=storage)


@pytest.fixture
def make_key(db: Database) -> KeyFactory:
    return KeyFactory(db)


@pytest.fixture
def api_key(make_key: KeyFactory) -> str:
    return make_key("My App")[0]


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("media")
    make_library(root)
    return root


@pytest.fixture(scope="session")
def media(media_dir: Path) -> Iterator[MediaServer]:
    with MediaServer(media_dir) as server:
        yield server


@pytest.fixture
def live_server(settings: Settings, db: Database, storage: LocalStorage) -> Iterator[str]:
    """The app under a real uvicorn server on a free port (for concurrent HTTP clients)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(settings, db=db, storage=storage), log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server
