"""Typer wiring only: the root app, global options, and the command groups.

Each group's commands live in ``oewsctl.commands.<group>`` and call into the
runbook modules; this file only assembles them and maps errors to exit codes.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from oewsctl import __version__
from oewsctl.commands import backup, cluster, db, deploy, drill, image, loadtest, monitoring, secrets, serve, setup, status
from oewsctl.core.console import err_console
from oewsctl.core.context import Options
from oewsctl.core.errors import OewsctlError

app = typer.Typer(
    name="oewsctl",
    help=(
        "Run the oews-api home cluster: install k3s over SSH, build and push the image, "
        "deploy and roll back, swap the database each BLS release, rotate secrets, back up and restore.\n\n"
        "Every command that changes machines prints its plan with --dry-run and changes nothing then."
    ),
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
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Inventory file (default: $OEWSCTL_CONFIG, then ./oewsctl.yaml).", show_default=False)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan (every step, per node) and change nothing.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Answer yes to confirmations (for scripts and cron).")] = False,
    output: Annotated[str, typer.Option("--output", "-o", help="text for people, json for scripts and cron.")] = "text",
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Stream remote command output.")] = False,
    break_lock: Annotated[bool, typer.Option("--break-lock", help="Remove a stale cluster lock left by a run that died.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """Global options, stored on the context for every command."""
    if output not in ("text", "json"):
        raise typer.BadParameter("must be text or json", param_hint="--output")
    ctx.obj = Options(config_path=config, dry_run=dry_run, yes=yes, output=output, verbose=verbose, break_lock=break_lock)  # type: ignore[arg-type]


for module in (setup, serve, status, cluster, image, deploy, db, secrets, backup, monitoring, loadtest, drill):
    module.register(app)


def main() -> None:
    """Entry point: run the app and turn OewsctlError into one line, a hint and an exit code.

    Click handles usage errors itself (exit 2) in standalone mode.
    """
    try:
        app()
    except OewsctlError as exc:
        err_console.print(f"[red]error:[/red] {escape(exc.message)}", highlight=False)
        if exc.hint:
            err_console.print(f"[yellow]hint:[/yellow] {escape(exc.hint)}", highlight=False)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
