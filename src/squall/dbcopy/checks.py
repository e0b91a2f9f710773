"""What must hold before a copy, each refusal saying what to do about it: the source is at
this Squall's schema revision and nothing is serving it, the target is an empty PostgreSQL
database at the same revision, and the secret is the one the keys were hashed with."""

from __future__ import annotations

from pathlib import Path

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session

from squall.billing.models import MeterReport, ReportStatus
from squall.db.migrate import alembic_config
from squall.db.presence import held_by_a_server
from squall.dbcopy.tables import count_rows, tables
from squall.jobs.models import Job, JobStatus
from squall.keys.fingerprint import WRONG_SECRET, secret_fingerprint, stored_fingerprint
from squall.keys.models import ApiKey
from squall.settings import Settings
from squall.webhooks.models import DeliveryStatus, WebhookDelivery


class Refused(Exception):
    """The copy cannot go ahead; the message says why and what to do."""

    @property
    def message(self) -> str:
        return str(self.args[0])


def head_revision(url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


def revision_of(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def target_url_problem(url: str) -> str | None:
    try:
        parsed = make_url(url)
    except ArgumentError:
        return f"--to {url!r} is not a database URL such as postgresql+psycopg://user@host:5432/squall"
    if parsed.get_backend_name() != "postgresql":
        return "--to must be a PostgreSQL database (postgresql+psycopg://user@host:5432/squall)"
    return None


def check_source(conn: Connection, head: str | None) -> None:
    revision = revision_of(conn)
    if revision != head:
        raise Refused(
            f"the source database is at schema revision {revision or 'none'}, this Squall's is {head}: "
            "stop Squall, run `squall db upgrade` against the source, then copy"
        )


def target_rows(conn: Connection) -> dict[str, int]:
    """Tables of the target that already hold rows."""
    counts = {table.name: count_rows(conn, table) for table in tables()}
    return {name: n for name, n in counts.items() if n}


def check_target(conn: Connection, revision: str | None) -> None:
    found = revision_of(conn)
    if found is None:
        raise Refused(
            "the target database has no Squall schema: add --migrate to create it, or run "
            "`SQUALL_DATABASE_URL=<target> squall db upgrade` first"
        )
    if found != revision:
        raise Refused(
            f"the target database is at schema revision {found}, the source at {revision}: copy into a "
            "new, empty database (createdb) migrated by this same Squall version (--migrate)"
        )
    filled = target_rows(conn)
    if filled:
        listed = ", ".join(f"{name}: {n} row{'s' * (n != 1)}" for name, n in sorted(filled.items()))
        raise Refused(
            f"the target database is not empty ({listed}): copy only into a new, empty database; "
            "to start over, drop and re-create it"
        )


def live_leases(conn: Connection, now: int) -> dict[str, int]:
    """Rows that a worker holds right now (their leases have not run out)."""
    held = {
        "jobs being processed": select(func.count()).where(
            Job.status == JobStatus.PROCESSING, Job.lease_expires_at > now
        ),
        "webhook deliveries being sent": select(func.count()).where(
            WebhookDelivery.status == DeliveryStatus.PENDING, WebhookDelivery.lease_expires_at > now
        ),
        "meter reports being sent": select(func.count()).where(
            MeterReport.status == ReportStatus.PENDING, MeterReport.lease_expires_at > now
        ),
    }
    counts = {what: int(conn.execute(query).scalar_one()) for what, query in held.items()}
    return {what: n for what, n in counts.items() if n}


def check_not_running(conn: Connection, source_url: str, now: int) -> None:
    """Refuse while a server or worker still uses the source: a copy would miss what they
    write after its snapshot."""
    reasons = []
    if held_by_a_server(source_url):
        reasons.append("a `squall serve` or `squall worker` process on this machine has it open")
    reasons += [f"{n} {what} under a live lease" for what, n in live_leases(conn, now).items()]
    if reasons:
        raise Refused(
            "Squall is still running against the source database ("
            + "; ".join(reasons)
            + "): stop every `squall serve` and `squall worker` (on every machine), wait for their leases "
            "to run out (SQUALL_LEASE_SECONDS), then copy; or add --online to copy a snapshot anyway "
            "(what is written after it is not copied)"
        )


def known_secret(settings: Settings) -> str | None:
    """The configured secret or the data directory's, without generating one (a new secret
    here would be the wrong one by definition)."""
    if settings.secret_key:
        return settings.secret_key
    path: Path = settings.data_dir / "secret_key"
    return path.read_text().strip() if path.exists() else None


def check_secret(conn: Connection, settings: Settings) -> str | None:
    """Refuse a secret the keys were not hashed with; returns a warning when the source
    records no fingerprint to check against (keys made before Squall recorded one)."""
    session = Session(bind=conn)
    stored = stored_fingerprint(session)
    has_keys = conn.execute(select(ApiKey.id).limit(1)).first() is not None
    secret = known_secret(settings)
    if stored is None:
        if has_keys:
            return (
                "warning: the source records no fingerprint of its secret (its keys predate it), so "
                "the secret could not be checked; start `squall serve` once on the source to record it"
            )
        return None
    if secret is None:
        raise Refused(
            "no server secret here: set SQUALL_SECRET_KEY (or SQUALL_DATA_DIR) to the secret this "
            "Squall's keys were hashed with (the old machine's <data dir>/secret_key file)"
        )
    if stored != secret_fingerprint(secret):
        raise Refused(WRONG_SECRET)
    return None
