"""Helpers every command module shares: options and a RunContext from the Typer context.

Command modules import only light modules at the top (typer, rich, this one); the
runbook modules (config, kube, ssh, ...) are imported inside the commands that use
them, so that ``oewsctl --help`` starts fast. tests/unit/test_cli_startup.py checks it.
"""

from __future__ import annotations

import typer

from oewsctl.core.context import Options, RunContext


def options(ctx: typer.Context) -> Options:
    """The global options set by the root callback (defaults when called directly)."""
    obj = ctx.find_root().obj
    return obj if isinstance(obj, Options) else Options()


def run_context(ctx: typer.Context, *, need_config: bool = True) -> RunContext:
    """A RunContext with the inventory loaded (exit 2 with every problem if invalid)."""
    opts = options(ctx)
    if not need_config:
        return RunContext(config=None, options=opts)
    from oewsctl.configuration.loading import load_config  # pydantic and yaml load only for commands that read the inventory

    return RunContext(config=load_config(opts.config_path), options=opts)
