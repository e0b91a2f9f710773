"""The ``squall`` command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Annotated

import typer

from squall.cli_help import fail
from squall.clock import now_ms
from squall.doctor import doctor_command
from squall.settings import get_settings
from squall.units import GB, MB

app = typer.Typer(
    help="Squall: self-hosted media ingest API with exact usage metering.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"show_default": True},
    epilog="Run `squall COMMAND --help` for a command's options and examples.",
)
db_app = typer.Typer(help="Database commands.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
usage_app = typer.Typer(help="Usage metering.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(usage_app, name="usage")
storage_app = typer.Typer(help="Stored objects.", no_args_is_help=True)
app.add_typer(storage_app, name="storage")
billing_app = typer.Typer(help="Stripe billing.", no_args_is_help=True)
app.add_typer(billing_app, name="billing")
app.command("doctor")(doctor_command)

# Moving to PostgreSQL and S3 (squall/dbcopy): `squall db copy`, `squall storage copy`.
from squall.dbcopy.commands import db_copy, storage_copy  # noqa: E402

db_app.command("copy")(db_copy)
storage_app.command("copy")(storage_copy)

# The operator's commands (squall/cli_operator.py): `admin token create`, `status`, `secrets rotate`.
from squall.cli_operator import admin_app, secrets_app, status  # noqa: E402

app.add_typer(admin_app, name="admin")
app.add_typer(secrets_app, name="secrets")
app.command()(status)


# Tenancy options of `keys create` and `keys update` (issue 15).
MAX_CONCURRENT_OPTION = typer.Option(help="Jobs of this key running at once (0: unlimited).")
RATE_LIMIT_OPTION = typer.Option(
    help="Requests a minute (0: the server default, SQUALL_RATE_LIMIT_PER_MINUTE)."
)
ALERT_URL_OPTION = typer.Option(help="Where usage alerts go (default: each job's webhook_url).")


def _show_version(value: bool) -> None:
    if value:
        from squall import __version__

        typer.echo(f"squall {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Squall: self-hosted media ingest API with exact usage metering."""


@app.command(
    epilog="Examples:\n\n"
    "squall serve    (on 127.0.0.1:8000, with 2 workers)\n\n"
    "squall serve --port 9000 --workers 4\n\n"
    "SQUALL_PUBLIC_URL=https://media.example.org squall serve --host 0.0.0.0"
)
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Embedded worker processes (0 = API only).")] = 2,
    api_processes: Annotated[int, typer.Option(help="API server processes sharing the port.")] = 1,
) -> None:
    """Migrate, then run the API and dashboard with N embedded worker processes."""
    import uvicorn

    from squall.app import create_app
    from squall.bootstrap import (
        PortTaken,
        base_url,
        claim_for_serving,
        claim_port,
        ensure_first_key,
        first_key_banner,
        listening_banner,
    )
    from squall.db.migrate import upgrade
    from squall.logging import configure_logging
    from squall.serving import ApiProcesses

    configure_logging()
    try:
        listener = claim_port(host, port)  # before anything is created
    except PortTaken as exc:
        raise fail(str(exc)) from None
    settings = get_settings()
    if "public_url" not in settings.model_fields_set:  # links should point at this server
        settings.public_url = base_url(host, port)
    # Every process of this serve (API processes, embedded workers) builds links from it.
    os.environ["SQUALL_PUBLIC_URL"] = settings.public_url
    upgrade(settings.resolved_database_url)
    if problem := claim_for_serving(settings):  # the keys' secret; `db copy` sees this server
        raise fail(problem)
    if (first := ensure_first_key(settings)) is not None:
        typer.echo(first_key_banner(first, base_url(host, port)))
    # The workers are told this process's pid: one that starts after serve died must not take
    # init (its parent by then) for the serve it belongs to.
    command = [sys.executable, "-m", "squall", "worker", f"--exit-with-parent={os.getpid()}"]
    children = [subprocess.Popen(command, env=os.environ.copy()) for _ in range(workers)]
    # uvicorn re-raises SIGTERM after its own shutdown; turn it into an exit so the workers
    # are stopped below (and they also exit by themselves if this process dies outright).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    typer.echo(listening_banner(host, port))
    try:
        if api_processes > 1:  # each process builds its app from the environment
            listener.close()  # and binds the port itself, beside the others
            ApiProcesses(host, port, api_processes).run()
        else:
            config = uvicorn.Config(create_app(settings), log_level="warning")
            uvicorn.Server(config).run(sockets=[listener])
    except KeyboardInterrupt:  # Ctrl-C is the ordinary way to stop
        pass
    finally:
        for child in children:
            child.terminate()
        deadline = time.monotonic() + 10
        for child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()


@app.command(epilog="Example: SQUALL_DATABASE_URL=postgresql+psycopg://… squall worker --concurrency 2")
def worker(
    concurrency: Annotated[
        int, typer.Option(min=0, help="Jobs run at once in this process (0: deliver webhooks only).")
    ] = 1,
    exit_with_parent: Annotated[int | None, typer.Option(hidden=True)] = None,
) -> None:
    """Run a worker only (for scale-out machines sharing one database and bucket)."""
    from squall.logging import configure_logging
    from squall.worker import run_worker

    configure_logging()
    run_worker(get_settings(), concurrency=concurrency, parent_pid=exit_with_parent)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply database migrations."""
    from squall.db.migrate import upgrade

    upgrade(get_settings().resolved_database_url)
    typer.echo("database is up to date")


@keys_app.command(
    "create",
    epilog="Examples:\n\n"
    'squall keys create --name "My App"\n\n'
    'squall keys create --name "Trial user" --storage-limit-gb 1 --max-resolution 720\n\n'
    'squall keys create --name "Acme" --type stripe --stripe-subscription sub_123 --json',
)
def keys_create(
    name: Annotated[str, typer.Option(help="Client name shown in /usage.")],
    key_type: Annotated[
        str | None,
        typer.Option(
            "--type",
            help="unlimited, trial or stripe.",
            show_default="unlimited, or trial with --storage-limit-gb",
        ),
    ] = None,
    storage_limit_gb: Annotated[float | None, typer.Option(help="Storage quota (makes a trial key).")] = None,
    max_resolution: Annotated[int | None, typer.Option(help="Cap on the output's shorter side.")] = None,
    max_duration_seconds: Annotated[int | None, typer.Option(help="Longest video accepted.")] = None,
    max_filesize_mb: Annotated[float | None, typer.Option(help="Largest output accepted.")] = None,
    stripe_subscription: Annotated[str | None, typer.Option(help="Stripe subscription id (sub_...).")] = None,
    retention_days: Annotated[
        int | None, typer.Option(help="Delete this key's outputs this many days after they complete.")
    ] = None,
    max_concurrent_jobs: Annotated[int | None, MAX_CONCURRENT_OPTION] = None,
    rate_limit_per_minute: Annotated[int | None, RATE_LIMIT_OPTION] = None,
    alert_webhook_url: Annotated[str | None, ALERT_URL_OPTION] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create a key and print it once (only its hash is stored)."""
    from squall.bootstrap import open_database
    from squall.errors import SquallError
    from squall.keys.service import KeyLimits, create_key
    from squall.keys.tenancy import TenancyLimits

    settings = get_settings()
    limits = KeyLimits(
        storage_limit_bytes=None if storage_limit_gb is None else round(storage_limit_gb * GB),
        max_resolution=max_resolution,
        max_duration_seconds=max_duration_seconds,
        max_filesize_bytes=None if max_filesize_mb is None else round(max_filesize_mb * MB),
        retention_days=retention_days,
    )
    db = open_database(settings)
    try:
        with db.write() as session:
            new = create_key(
                session,
                pepper=settings.resolved_secret_key(),
                name=name,
                key_type=key_type,
                limits=limits,
                stripe_subscription_id=stripe_subscription,
                tenancy=TenancyLimits(max_concurrent_jobs, rate_limit_per_minute, alert_webhook_url),
            )
    except SquallError as exc:
        raise fail(exc.message) from None
    if as_json:
        body = {"api_key": new.api_key, "client_name": new.client_name, "id": new.id}
        typer.echo(json.dumps({**body, "webhook_secret": new.webhook_secret}))
    else:
        typer.echo(
            f"Created key {new.id} for {new.client_name}:\n\n  {new.api_key}\n\nIt is shown only once."
            f"\nWebhooks to this client are signed with {new.webhook_secret}"
        )


@keys_app.command("list", epilog="Example: squall keys list --json")
def keys_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List keys (never the secrets)."""
    from squall.bootstrap import open_database
    from squall.keys.service import list_keys
    from squall.metering.counters import storage_limits

    with open_database(get_settings()).read() as session:
        limits = storage_limits(session)
        rows = [
            {
                "id": key.id,
                "client_name": key.client_name,
                "type": key.key_type,
                "prefix": key.key_prefix,
                "storage_limit_gb": None if (limit := limits.get(key.id)) is None else limit / GB,
                "max_resolution": key.max_resolution,
                "max_duration_seconds": key.max_duration_seconds,
                "max_filesize_bytes": key.max_filesize_bytes,
                "retention_days": key.retention_days,
                "max_concurrent_jobs": key.max_concurrent_jobs,
                "rate_limit_per_minute": key.rate_limit_per_minute,
                "alert_webhook_url": key.alert_webhook_url,
                "created_at": key.created_at,
                "revoked": key.revoked_at is not None,
            }
            for key in list_keys(session)
        ]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    if not rows:
        typer.echo("no keys yet: create one with `squall keys create --name NAME`")
        return
    table = [["ID", "PREFIX", "TYPE", "STATE", "CLIENT"]] + [
        [str(row["id"]), f"{row['prefix']}…", str(row["type"]), "revoked" if row["revoked"] else "active",
         str(row["client_name"])]
        for row in rows
    ]  # fmt: skip
    widths = [max(len(line[column]) for line in table) for column in range(4)]
    for line in table:  # the client name last, unpadded: it may hold spaces
        typer.echo(
            "  ".join([*(cell.ljust(width) for cell, width in zip(line[:4], widths, strict=True)), line[4]])
        )


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke a key: API processes refuse it within SQUALL_AUTH_CACHE_SECONDS (default 5 s)."""
    from squall.bootstrap import open_database
    from squall.errors import SquallError
    from squall.keys.service import revoke_key

    try:
        with open_database(get_settings()).write() as session:
            revoke_key(session, key_id)
    except SquallError as exc:
        raise fail(exc.message) from None
    typer.echo(f"revoked {key_id}")


@keys_app.command("update")
def keys_update(
    key_id: str,
    stripe_subscription: Annotated[
        str | None,
        typer.Option(
            help="Link the key to this Stripe subscription (sub_...); unlimited keys become stripe keys."
        ),
    ] = None,
    max_concurrent_jobs: Annotated[int | None, MAX_CONCURRENT_OPTION] = None,
    rate_limit_per_minute: Annotated[int | None, RATE_LIMIT_OPTION] = None,
    alert_webhook_url: Annotated[str | None, ALERT_URL_OPTION] = None,
) -> None:
    """Change a key's Stripe subscription (its cached billing period is fetched anew) or its
    tenancy limits (0 or an empty URL removes one)."""
    from squall.billing.periods import forget
    from squall.bootstrap import open_database
    from squall.errors import SquallError
    from squall.keys.service import link_subscription
    from squall.keys.tenancy import TenancyLimits, update_limits

    tenancy = TenancyLimits(max_concurrent_jobs, rate_limit_per_minute, alert_webhook_url)
    if stripe_subscription is None and tenancy == TenancyLimits():
        raise fail("nothing to change: give --stripe-subscription or a limit")
    try:
        with open_database(get_settings()).write() as session:
            if stripe_subscription is not None:
                link_subscription(session, key_id, stripe_subscription)
                forget(session, key_id)
            if tenancy != TenancyLimits():
                update_limits(session, key_id, tenancy)
    except SquallError as exc:
        raise fail(exc.message) from None
    if stripe_subscription is not None:
        typer.echo(f"key {key_id} is billed through {stripe_subscription}")
    if tenancy != TenancyLimits():
        typer.echo(f"key {key_id} limits updated")


@keys_app.command("rotate-webhook-secret")
def keys_rotate_webhook_secret(
    key_id: str, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
) -> None:
    """Give a key a new webhook signing secret; the old one also signs for 24 hours."""
    from squall.bootstrap import open_database
    from squall.errors import SquallError
    from squall.keys.service import rotate_webhook_secret

    try:
        with open_database(get_settings()).write() as session:
            secret = rotate_webhook_secret(session, key_id, now=now_ms())
    except SquallError as exc:
        raise fail(exc.message) from None
    typer.echo(json.dumps({"id": key_id, "webhook_secret": secret}) if as_json else secret)


@usage_app.command("verify", epilog="Example: squall usage verify --json")
def usage_verify(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Recompute counters and rollups from the ledger; exit 1 on drift."""
    from squall.audit.usage import verify
    from squall.bootstrap import open_database

    with open_database(get_settings()).snapshot() as session:  # counters and ledger seen at one instant
        report = verify(session)
    if as_json:
        typer.echo(json.dumps(report.as_dict()))
    else:
        typer.echo(report.as_text())
    raise typer.Exit(1 if report.drift else 0)


@storage_app.command("reconcile")
def storage_reconcile(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Compare what the books say is stored with a listing of the storage; exit 1 on drift.
    Reports only: nothing is deleted or re-counted."""
    from squall.audit.backends import reconcile_all
    from squall.bootstrap import open_database
    from squall.keys.storage_service import StoragePicker, storage_box
    from squall.pipeline.urlguard import url_policy
    from squall.storage.factory import make_storage

    settings = get_settings()  # every backend in use: the operator's, then each key's own buckets
    picker = StoragePicker(
        make_storage(settings), storage_box(settings.resolved_secret_key()), url_policy(settings)
    )
    with open_database(settings).snapshot() as session:
        result = reconcile_all(session, picker)
    typer.echo(json.dumps(result.as_dict()) if as_json else result.as_text())
    raise typer.Exit(1 if result.drift else 0)


@billing_app.command("reconcile")
def billing_reconcile(
    period: Annotated[str, typer.Option(help="current or previous billing period.")] = "current",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Compare what Stripe's meter holds with the ledger for each stripe key; exit 1 on drift."""
    from squall.billing.reconcile import add_books, as_text, ask_stripe, failed, stripe_keys
    from squall.billing.reconcile import as_json as balances_json
    from squall.billing.stripe_api import BillingUnavailable, StripeApi
    from squall.bootstrap import open_database

    settings = get_settings()
    if period not in ("current", "previous"):
        raise fail("--period must be current or previous")
    if not settings.stripe_api_key:
        raise fail("SQUALL_STRIPE_API_KEY is not set")
    db = open_database(settings)
    try:
        with db.read() as session:
            keys = stripe_keys(session)
        balances, pending = ask_stripe(StripeApi(settings), keys, period)  # Stripe first, then the books
        with db.snapshot() as session:
            balances += add_books(session, pending)
    except BillingUnavailable as exc:
        raise fail(exc.message) from None
    typer.echo(json.dumps(balances_json(balances)) if as_json else as_text(balances))
    raise typer.Exit(1 if failed(balances) else 0)


def main() -> None:
    from squall.cli_help import run

    run(app)
