"""The migrations build exactly the schema the models describe, on either engine."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from squall.db import Database
from squall.db.models import Base

# An expression index (priority DESC): Alembic cannot read one back to compare it.
NOT_COMPARABLE = {"ix_jobs_queue"}


def _comparable(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    return not (type_ == "index" and name in NOT_COMPARABLE)


def test_migrated_schema_matches_the_models(shared_db: Database) -> None:
    with shared_db.read_engine.connect() as connection:
        opts = {"compare_type": True, "include_object": _comparable}
        differences = compare_metadata(MigrationContext.configure(connection, opts=opts), Base.metadata)
    assert differences == []
