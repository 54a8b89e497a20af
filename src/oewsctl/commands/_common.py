"""Helpers every command module shares: the global options, and a RunContext from the Typer context.

Command modules import only light modules at the top (typer, rich, this one); the
runbook modules (config, kube, ssh, ...) are imported inside the commands that use
them, so that ``oewsctl --help`` starts fast. tests/unit/test_cli_startup.py checks it.

Global options (``--dry-run``, ``-y``, ``-o``, ``-v``, ``-c``, ``--break-lock``) are accepted
before or after the subcommand, as kubectl and helm accept theirs: the same click options are
added to the root and to every group and command (:func:`add_global_options`), each one
storing what it was given on the root context's :class:`Options`, so ``oewsctl -o json doctor``
and ``oewsctl doctor -o json`` are one thing. They show in every ``--help`` under
"Global options".
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup, TyperOption

from oewsctl.core.context import Options, RunContext
from oewsctl.core.errors import UsageError

GLOBAL_PANEL = "Global options"


class OutputFormat(str, Enum):
    text = "text"
    json = "json"


def options(ctx: typer.Context) -> Options:
    """The global options of this run (made on first use, filled by the global flags wherever they stood)."""
    root = ctx.find_root()
    if not isinstance(root.obj, Options):
        root.obj = Options()
    return root.obj


def _store(field: str) -> Callable[[typer.Context, Any], None]:
    """An option callback that sets ``Options.<field>`` when the flag was given (a later place wins)."""

    def callback(ctx: typer.Context, value: Any) -> None:
        if value is not None and value is not False:
            setattr(options(ctx), field, value.value if isinstance(value, Enum) else value)

    return callback


def _option(*decls: str, field: str, **kwargs: Any) -> Any:
    return typer.Option(*decls, callback=_store(field), expose_value=False, rich_help_panel=GLOBAL_PANEL, show_default=False, **kwargs)


def _global_options_template(
    config: Annotated[Path | None, _option("--config", "-c", field="config_path", metavar="PATH", help="Inventory file (default: $OEWSCTL_CONFIG, then ./oewsctl.yaml).")] = None,
    dry_run: Annotated[bool, _option("--dry-run", field="dry_run", help="Print the plan (every step, per node) and change nothing.")] = False,
    yes: Annotated[bool, _option("--yes", "-y", field="yes", help="Answer yes to confirmations (for scripts and cron).")] = False,
    output: Annotated[OutputFormat | None, _option("--output", "-o", field="output", help="text for people (default), json for scripts and cron.")] = None,
    verbose: Annotated[bool, _option("--verbose", "-v", field="verbose", help="Stream remote command output.")] = False,
    break_lock: Annotated[bool, _option("--break-lock", field="break_lock", help="Remove a stale cluster lock left by a run that died.")] = False,
) -> None:
    """Declares the global options once; :func:`add_global_options` copies them onto every command."""


@cache
def _template_options() -> tuple[TyperOption, ...]:
    app = typer.Typer(add_completion=False)
    app.command()(_global_options_template)
    return tuple(p for p in typer.main.get_command(app).params if isinstance(p, TyperOption))


def _global_options() -> list[TyperOption]:
    """Copies of the options Typer made once from the template (a parameter belongs to one command;
    building them anew for each of the ~50 commands cost 0.3 s per run)."""
    return [copy.copy(option) for option in _template_options()]


def without_type_labels(command: typer.core.TyperCommand | TyperGroup, ctx: typer.Context) -> None:
    """Flags print as flags: no ``<bool>`` after ``--dry-run`` (or ``--help``) in the help."""
    for param in command.get_params(ctx):
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""


def add_global_options(command: typer.core.TyperCommand | TyperGroup) -> None:
    """Give ``command`` and every command below it the global options (see module docstring)."""
    taken = {name for param in command.params for name in param.opts}
    for option in _global_options():
        clash = taken.intersection(option.opts)
        if clash:
            raise ValueError(f"command {command.name!r} declares the global option {', '.join(sorted(clash))} itself")
        command.params.append(option)
    without_type_labels(command, typer.Context(command))  # get_params makes (and keeps) the --help option too
    if isinstance(command, TyperGroup):
        for sub in command.commands.values():
            add_global_options(sub)


def run_context(ctx: typer.Context, *, need_config: bool = True) -> RunContext:
    """A RunContext with the inventory loaded (exit 2 with every problem if invalid)."""
    opts = options(ctx)
    if not need_config:
        return RunContext(config=None, options=opts)
    from oewsctl.configuration.loading import load_config  # pydantic and yaml load only for commands that read the inventory

    return RunContext(config=load_config(opts.config_path), options=opts)


def confirm(rc: RunContext, question: str, change: str) -> None:
    """Ask before a risky change (skipped by --yes and --dry-run); without a terminal, ask for --yes."""
    if rc.options.dry_run or rc.options.yes:
        return
    if not sys.stdin.isatty():
        raise UsageError(f"{change}; confirm with --yes (no terminal to ask on)", hint="see what it does first with --dry-run")
    typer.confirm(question, abort=True)
