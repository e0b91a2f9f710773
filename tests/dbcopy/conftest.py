"""The Squall to move (SQLite, built once per session) and scratch PostgreSQL databases to
move it into: the machine's PostgreSQL (SQUALL_TEST_DATABASE_URL, else 127.0.0.1:5432/test),
each scratch database named uniquely and dropped after its test."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from typer.testing import CliRunner

from squall.cli import app
from squall.settings import get_settings
from tests.dbcopy.history import Source, build
from tests.support.helpers import PYTHON
from tests.support.receiver import WebhookReceiver
from tests.support.server import MediaServer
from tests.support.stripe_standin import StripeStandIn

MACHINE_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="session")
def stripe() -> Iterator[StripeStandIn]:
    with StripeStandIn() as server:
        yield server


@pytest.fixture(scope="session")
def source(tmp_path_factory: pytest.TempPathFactory, media: MediaServer, stripe: StripeStandIn) -> Source:
    with WebhookReceiver() as receiver:
        return build(tmp_path_factory.mktemp("old-machine") / "data", media, stripe, receiver)


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[str]:
    url = os.environ.get("SQUALL_TEST_DATABASE_URL") or MACHINE_POSTGRES
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        engine.dispose()
        pytest.skip(f"the copy needs a PostgreSQL to copy into; none at {url}: {exc.orig}")
    engine.dispose()
    yield url


@pytest.fixture
def scratch_postgres(postgres_admin: str) -> Iterator[Callable[[], str]]:
    """Makes empty databases (no schema), dropped when the test ends."""
    admin = create_engine(postgres_admin, isolation_level="AUTOCOMMIT")
    made: list[str] = []

    def make() -> str:
        name = f"squall_copy_{uuid.uuid4().hex[:12]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        made.append(name)
        return make_url(postgres_admin).set(database=name).render_as_string(hide_password=False)

    yield make
    with admin.connect() as conn:
        for name in made:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def squall_process(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m squall ...` as an operator runs it on the old machine: SQUALL_DATA_DIR only
    (the default SQLite file, the generated secret), plus ``env``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SQUALL_")}
    clean.update({"SQUALL_DATA_DIR": str(data_dir), "COLUMNS": "200", **env})
    return subprocess.run([PYTHON, "-m", "squall", *args], env=clean, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip


def squall(data_dir: Path, *args: str, **env: str) -> tuple[int, str]:
    """The same command run in this process (seconds faster than a new interpreter): the
    environment is set for the call and the cached settings forgotten before and after."""
    wanted: dict[str, str | None] = {"SQUALL_DATA_DIR": str(data_dir), "SQUALL_DATABASE_URL": None,
                                     "SQUALL_SECRET_KEY": None, "COLUMNS": "200", **env}  # fmt: skip
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, list(args), env=wanted)
    finally:
        get_settings.cache_clear()
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output
