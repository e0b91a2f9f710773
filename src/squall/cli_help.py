"""How the ``squall`` command line presents itself: its help (named ``squall`` however it was
started, flags without a type beside them, values with a plain type name: ``INTEGER``) and its
error lines."""

from __future__ import annotations

from typing import Any

import typer


def fail(message: str) -> typer.Exit:
    """``error: …`` on stderr; raise the returned Exit (status 2)."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


PLAIN_TYPES = {"str": "TEXT", "int": "INTEGER", "float": "NUMBER"}


def _tidy(command: Any) -> None:
    help_option = command.get_help_option(typer.Context(command))
    for param in [*command.params, *([help_option] if help_option is not None else [])]:
        if param.metavar is not None or not hasattr(param, "is_bool_flag"):
            continue  # named by hand, or an argument
        bare = param.bare_type()
        param.metavar = "" if param.is_bool_flag else PLAIN_TYPES.get(bare, bare.upper())
    for sub in getattr(command, "commands", {}).values():
        _tidy(sub)


def run(app: typer.Typer) -> None:
    """Run ``app`` as the ``squall`` program."""
    command = typer.main.get_command(app)
    _tidy(command)
    command(prog_name="squall")
