"""Typer wiring only: the root app, global options, and the command groups.

Each group's commands live in ``oewsctl.commands.<group>`` and call into the
runbook modules; this file only assembles them and maps errors to exit codes.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any, NoReturn

import typer
from rich.markup import escape
from typer.core import TyperGroup

from oewsctl import __version__
from oewsctl.commands import backup, cluster, db, deploy, drill, image, loadtest, monitoring, port_forward, secrets, serve, setup, status, ui
from oewsctl.commands._common import add_global_options, options, without_type_labels
from oewsctl.core.console import err_console
from oewsctl.core.errors import OewsctlError


class RootGroup(TyperGroup):
    """The root command: gives itself and every subcommand the global options (flags anywhere)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        add_global_options(self)

    def format_help(self, ctx: typer.Context, formatter: Any) -> None:
        without_type_labels(self, ctx)  # Typer adds the completion options after __init__
        super().format_help(ctx, formatter)


app = typer.Typer(
    name="oewsctl",
    help=(
        "Run the oews-api home cluster: install k3s over SSH, build and push the image, "
        "deploy and roll back, swap the database each BLS release, rotate secrets, back up and restore.\n\n"
        "Every command that changes machines prints its plan with --dry-run and changes nothing then."
    ),
    cls=RootGroup,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"oewsctl {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """Global options are added by RootGroup and land on the context's Options wherever they stand."""
    options(ctx)


for module in (setup, serve, status, cluster, image, deploy, db, secrets, backup, monitoring, ui, port_forward, loadtest, drill):
    module.register(app)


TRACEBACK_ENV = "OEWSCTL_TRACEBACK"


def _fail(message: str, hint: str | None, code: int) -> NoReturn:
    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    if hint:
        err_console.print(f"[yellow]hint:[/yellow] {escape(hint)}", highlight=False)
    sys.exit(code)


def main() -> None:
    """Entry point: run the app and turn OewsctlError into one line, a hint and an exit code.

    Click handles usage errors itself (exit 2) in standalone mode. Any other exception is a bug:
    still one line (cron logs stay readable), the traceback only with $OEWSCTL_TRACEBACK set.
    tests/unit/test_no_tracebacks.py drives every command with broken inputs and fails on either.
    """
    try:
        app()
    except OewsctlError as exc:
        _fail(exc.message, exc.hint, exc.exit_code)
    except Exception as exc:  # noqa: BLE001 - the last line of defence against a traceback
        if os.environ.get(TRACEBACK_ENV):
            raise
        _fail(f"unexpected {type(exc).__name__}: {exc}", f"this is a bug in oewsctl: run again with {TRACEBACK_ENV}=1 to see where, and report it", 1)


if __name__ == "__main__":
    main()
