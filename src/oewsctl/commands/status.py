"""CLI wiring for `oewsctl status` (logic in oewsctl.runbooks.status)."""

from __future__ import annotations

from typing import Annotated

import typer

from oewsctl.commands._common import run_context
from oewsctl.core.console import out_console
from oewsctl.runbooks.report import as_json, render_text


def status(
    ctx: typer.Context,
    prometheus: Annotated[
        str | None,
        typer.Option("--prometheus", help="Prometheus base URL (e.g. a port-forward); default: through the Kubernetes API server.", show_default=False),
    ] = None,
) -> None:
    """One screen: nodes, API replicas and image, database per node, certificate, backup, alerts.

    Read-only. Each source is asked on its own; one that cannot be reached shows "unknown (why)" and the rest still show (exit 0).

    Example:  oewsctl status        (oewsctl -o json status for scripts)
    """
    from oewsctl.clients.kube import Kube
    from oewsctl.runbooks import status as runbook

    rc = run_context(ctx)
    assert rc.config is not None
    config = rc.config
    sections = runbook.overview(config, lambda: Kube.from_config(config), prometheus)
    out_console.print(as_json(sections) if rc.options.output == "json" else render_text(sections), markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    """Add `status` to the root app."""
    app.command("status")(status)
