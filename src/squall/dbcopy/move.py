"""``squall db copy`` from start to end: the checks, the copy from one source snapshot, and
the comparison of the committed target with that same snapshot (so it holds with
``--online`` too: what the source wrote after the snapshot is neither copied nor expected)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, create_engine, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from squall.clock import now_ms
from squall.db import Database
from squall.db.migrate import upgrade
from squall.dbcopy.checks import (
    Refused,
    check_not_running,
    check_secret,
    check_source,
    check_target,
    head_revision,
    revision_of,
    target_url_problem,
)
from squall.dbcopy.compare import Comparison, compare, key_counters, table_sums
from squall.dbcopy.copier import Progress, copy_tables
from squall.dbcopy.snapshot import pinned
from squall.settings import Settings


@dataclass
class Outcome:
    comparison: Comparison
    warnings: list[str] = field(default_factory=list)


def _source(settings: Settings) -> Database:
    url = settings.resolved_database_url
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").is_file():
        raise Refused(f"no source database at {parsed.database}: set SQUALL_DATA_DIR or SQUALL_DATABASE_URL")
    return Database(url)


def _target(url: str) -> Engine:
    if problem := target_url_problem(url):
        raise Refused(problem)
    engine = create_engine(url)
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        engine.dispose()
        raise Refused(f"cannot connect to the target database: {exc.orig}") from None
    return engine


def _migrate_if_asked(engine: Engine, url: str, revision: str | None, migrate: bool) -> None:
    with engine.connect() as conn:
        if revision_of(conn) is not None or not migrate:
            return  # check_target says what is wrong, if anything
        if inspect(conn).get_table_names():
            raise Refused("the target database already has tables but no Squall schema: use a new, empty one")
    upgrade(url, revision or "head")


def copy_database(
    settings: Settings,
    target_url: str,
    *,
    migrate: bool,
    online: bool,
    batch_rows: int,
    started: Progress,
    copied: Progress,
) -> Outcome:
    source = _source(settings)
    target = _target(target_url)
    warnings: list[str] = []
    try:
        with pinned(source.read_engine) as src:
            head = head_revision(source.url)
            check_source(src, head)
            if warning := check_secret(src, settings):
                warnings.append(warning)
            if not online:
                check_not_running(src, source.url, now_ms())
            _migrate_if_asked(target, target_url, head, migrate)
            with target.begin() as dst:
                check_target(dst, head)
                read = copy_tables(src, dst, batch_rows=batch_rows, started=started, copied=copied)
            counters = key_counters(src)
            with pinned(target) as written:
                return Outcome(compare(read, counters, written, batch_rows=batch_rows), warnings)
    finally:
        source.dispose()
        target.dispose()


def verify_copy(settings: Settings, target_url: str, *, batch_rows: int) -> Comparison:
    """Compare the source and the target again (both read from one snapshot each)."""
    source = _source(settings)
    target = _target(target_url)
    try:
        with pinned(source.read_engine) as src, pinned(target) as tgt:
            if revision_of(tgt) != revision_of(src):
                raise Refused("the target is not at the source's schema revision: it is not a copy of it")
            return compare(table_sums(src, batch_rows), key_counters(src), tgt, batch_rows=batch_rows)
    finally:
        source.dispose()
        target.dispose()
