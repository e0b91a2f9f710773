"""The operator's commands: operator tokens (`squall admin token create`), the queue and its
workers (`squall status`), and re-sealing secrets under a new server secret (`squall secrets
rotate`). Registered on the `squall` app by cli.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from squall.cli_help import fail
from squall.clock import now_ms
from squall.settings import get_settings

admin_app = typer.Typer(help="The operator's credentials.", no_args_is_help=True)
admin_token_app = typer.Typer(
    help="Operator tokens (for /admin, /metrics and the operator page).", no_args_is_help=True
)
admin_app.add_typer(admin_token_app, name="token")
# Sealed secrets (cookies, storage credentials) under a new SQUALL_SECRET_KEY.
secrets_app = typer.Typer(help="Sealed secrets.", no_args_is_help=True)


@admin_token_app.command("create")
def admin_token_create(
    name: Annotated[str, typer.Option(help="Whose token this is.")] = "operator",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create an operator token and print it once (only its hash is stored)."""
    from squall.admin.tokens import create_token
    from squall.bootstrap import open_database
    from squall.errors import SquallError

    settings = get_settings()
    try:
        with open_database(settings).write() as session:
            new = create_token(session, pepper=settings.resolved_secret_key(), name=name, now=now_ms())
    except SquallError as exc:
        raise fail(exc.message) from None
    if as_json:
        typer.echo(json.dumps({"id": new.id, "name": new.name, "token": new.token}))
    else:
        typer.echo(f"Operator token {new.id} ({new.name}):\n\n  {new.token}\n\nIt is shown only once. "
                   "Send it as Authorization: Bearer <token>.")  # fmt: skip


def status(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """The queue by key and priority, claims, and every worker (GET /admin/queue)."""
    from rich.console import Console

    from squall.admin.status import render
    from squall.admin.views import queue_view
    from squall.bootstrap import open_database
    from squall.db.dbtime import database_now_ms

    settings = get_settings()
    with open_database(settings).read() as session:
        view = queue_view(session, now=database_now_ms(session), lease_ms=int(settings.lease_seconds * 1000))
    if as_json:
        typer.echo(json.dumps(view))
    else:
        render(view, Console())


@secrets_app.command("rotate")
def secrets_rotate(
    old_secret_file: Annotated[Path, typer.Option(help="A file holding the previous SQUALL_SECRET_KEY.")],
) -> None:
    """Re-encrypt every sealed secret (cookies, storage credentials) from the old secret to the
    current SQUALL_SECRET_KEY, and record the new secret as this database's. API keys and
    download links made under the old secret stop working (they are hashed/signed with it)."""
    from squall.bootstrap import open_database
    from squall.keys.fingerprint import SECRET_FINGERPRINT, secret_fingerprint
    from squall.keys.models import ServerFact
    from squall.keys.rotation import reseal_all

    settings = get_settings()
    old, new = old_secret_file.read_text().strip(), settings.resolved_secret_key()
    if not old or old == new:
        raise fail("the old secret file is empty or holds the current secret")
    with open_database(settings).write() as session:
        done = reseal_all(session, old, new)
        fact = session.get(ServerFact, SECRET_FINGERPRINT)
        if fact is not None:
            fact.value = secret_fingerprint(new)
    typer.echo(done.as_text())
    raise typer.Exit(1 if done.unreadable else 0)
