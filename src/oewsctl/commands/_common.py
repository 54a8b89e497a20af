"""Helpers every command module shares: options and a RunContext from the Typer context."""

from __future__ import annotations

import typer

from oewsctl.config import load_config
from oewsctl.runner import Options, RunContext


def options(ctx: typer.Context) -> Options:
    """The global options set by the root callback (defaults when called directly)."""
    obj = ctx.find_root().obj
    return obj if isinstance(obj, Options) else Options()


def run_context(ctx: typer.Context, *, need_config: bool = True) -> RunContext:
    """A RunContext with the inventory loaded (exit 2 with every problem if invalid)."""
    opts = options(ctx)
    config = load_config(opts.config_path) if need_config else None
    return RunContext(config=config, options=opts)
