"""CLI wiring for `oewsctl port-forward grafana|ui|prometheus|api` (logic in oewsctl.runbooks.port_forward)."""

from __future__ import annotations

from typing import Annotated

import typer

from oewsctl.commands._common import run_context
from oewsctl.core.console import err_console


def forward_target(ctx: typer.Context, name: str, port: int | None, *, note: str | None = None) -> None:
    """Forward target ``name`` until Ctrl-C: its URL on stdout, notes on stderr (shared with `ui open`)."""
    from oewsctl.clients.kube import Kube
    from oewsctl.runbooks import port_forward as runbook

    rc = run_context(ctx)
    assert rc.config is not None
    goal = runbook.target(rc.config, name)

    def say(line: str) -> None:
        err_console.print(line, markup=False, highlight=False)

    def announce(url: str) -> None:
        typer.echo(url)
        if note:
            say(note)

    runbook.forward(Kube.from_config(rc.config), goal, port, announce=announce, warn=say)


def port_forward(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(metavar="grafana|ui|prometheus|api", help="What to reach.")],
    port: Annotated[int | None, typer.Option("--port", help="Local port (default grafana 3000, ui 4466, prometheus 9090, api 8000; 0 picks a free one).", min=0, max=65535, show_default=False)] = None,
) -> None:
    """Reach a service on 127.0.0.1 through the Kubernetes API (no kubectl needed) until Ctrl-C.

    Picks a ready pod behind the Service for every new connection, prints the local URL on stdout. Grafana's login: `oewsctl monitoring password`; Headlamp's: `oewsctl ui token`.

    Example:  oewsctl port-forward grafana        (then open http://127.0.0.1:3000/)
    """
    forward_target(ctx, target, port)


def register(app: typer.Typer) -> None:
    """Add `port-forward` to the root app."""
    app.command("port-forward")(port_forward)
