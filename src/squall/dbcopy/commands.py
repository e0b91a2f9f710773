"""The commands ``squall db copy`` and ``squall storage copy`` (registered in cli.py). Only
typer is imported up front, so ``squall --help`` stays fast."""

from __future__ import annotations

import json
from typing import Annotated

import typer

BATCH_ROWS = 5000


def _refuse(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def db_copy(
    to: Annotated[
        str, typer.Option("--to", help="The new database: postgresql+psycopg://user@host:5432/squall")
    ],
    migrate: Annotated[bool, typer.Option(help="Create Squall's schema in the empty target first.")] = False,
    online: Annotated[
        bool,
        typer.Option(
            help="Copy even while Squall runs: a consistent snapshot, without what is written after it."
        ),
    ] = False,
    verify_only: Annotated[
        bool, typer.Option("--verify-only", help="Copy nothing: compare the source and the target again.")
    ] = False,
    batch_rows: Annotated[int, typer.Option(min=1, help="Rows read and written per batch.")] = BATCH_ROWS,
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
) -> None:
    """Copy this Squall's database (SQUALL_DATABASE_URL or the SQLite file) into an empty
    PostgreSQL database, then verify it; exit 1 on any difference, 2 when refused."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

    from squall.dbcopy.checks import Refused
    from squall.dbcopy.move import copy_database, verify_copy
    from squall.settings import get_settings

    settings = get_settings()
    try:
        if verify_only:
            comparison = verify_copy(settings, to, batch_rows=batch_rows)
            warnings: list[str] = []
        else:
            columns = (
                TextColumn("{task.description:<22}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
            )
            with Progress(*columns, transient=True) as progress:  # the comparison lists every table after
                tasks: dict[str, TaskID] = {}

                def started(table: str, rows: int) -> None:
                    tasks[table] = progress.add_task(table, total=rows)

                def copied(table: str, rows: int) -> None:
                    progress.advance(tasks[table], rows)

                outcome = copy_database(settings, to, migrate=migrate, online=online, batch_rows=batch_rows,
                                        started=started, copied=copied)  # fmt: skip
            comparison, warnings = outcome.comparison, outcome.warnings
    except Refused as refused:
        raise _refuse(refused.message) from None
    for warning in warnings:
        typer.echo(warning, err=True)
    typer.echo(json.dumps(comparison.as_dict()) if as_json else comparison.as_text())
    if comparison.ok and not verify_only and not as_json:
        where = (
            "this SQUALL_SECRET_KEY"
            if settings.secret_key
            else f"the secret in {settings.data_dir / 'secret_key'}"
        )
        typer.echo(
            f"\nNext: give every machine {where} as SQUALL_SECRET_KEY, and SQUALL_DATABASE_URL=<the target>; "
            "see docs/operations.md"
        )
    raise typer.Exit(0 if comparison.ok else 1)


def storage_copy(
    to: Annotated[
        str, typer.Option("--to", help="The backend to copy into: s3 (configured by SQUALL_S3_*).")
    ],
) -> None:
    """Copy every object from the local storage folder to the S3 bucket configured by the
    SQUALL_S3_* settings, under the same keys; exit 1 if any is missing after. The books are
    not touched: afterwards set SQUALL_STORAGE=s3 and run `squall storage reconcile`."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from squall.errors import SquallError
    from squall.settings import get_settings
    from squall.storage.factory import make_storage
    from squall.storage.local import LocalStorage
    from squall.storage.transfer import copy_objects

    if to != "s3":
        raise _refuse("--to must be s3 (objects move from the local folder to the S3 bucket)")
    settings = get_settings()
    source = LocalStorage(settings.storage_dir)
    try:
        target = make_storage(settings.model_copy(update={"storage": "s3"}))
        total = sum(1 for _ in source.listing())
        with Progress(TextColumn("objects"), BarColumn(), MofNCompleteColumn()) as progress:
            task = progress.add_task("objects", total=total)
            result = copy_objects(source, target, lambda _key, _size: progress.advance(task))
    except SquallError as exc:
        raise _refuse(exc.message) from None
    typer.echo(result.as_text())
    if result.ok:
        typer.echo("Next: set SQUALL_STORAGE=s3 on every machine, then run `squall storage reconcile`")
    raise typer.Exit(0 if result.ok else 1)
