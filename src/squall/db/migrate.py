"""Run Alembic migrations programmatically (``squall db upgrade`` and ``squall serve``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from squall.db.engine import ensure_sqlite_dir

# The scripts live beside the model registry (squall/migrations): a path, not an import, so
# the database layer stays below the domains.
MIGRATIONS = Path(__file__).parent.parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    ensure_sqlite_dir(url)
    command.upgrade(alembic_config(url), revision)
