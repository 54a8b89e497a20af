"""CLI wiring for `oewsctl monitoring ...` (logic in oewsctl.monitoring)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from oewsctl import monitoring as runbook
from oewsctl.commands._common import run_context
from oewsctl.console import out_console
from oewsctl.kube import Kube
from oewsctl.runner import run_plan
from oewsctl.sections import as_json, render_text

app = typer.Typer(
    name="monitoring",
    help=(
        "Prometheus, Grafana and Alertmanager on the monitoring node (the Raspberry Pi), with the "
        "oews-api alerts and dashboard."
    ),
    no_args_is_help=True,
)

PrometheusUrl = Annotated[
    str | None,
    typer.Option("--prometheus", help="Prometheus base URL (e.g. a port-forward); default: through the Kubernetes API server.", show_default=False),
]


@app.command()
def install(ctx: typer.Context) -> None:
    """Install or update the monitoring stack (idempotent: re-running changes only what differs).

    Labels the monitoring node oews/role=monitoring, creates Grafana's admin Secret with a generated
    password (once; never the chart default), applies the kube-prometheus-stack HelmChart (pinned
    version, Pi-sized), then the oews-api ServiceMonitor, Traefik PodMonitor, alert rules and dashboard.

    Example:  oewsctl --dry-run monitoring install   (then without --dry-run)
    """
    rc = run_context(ctx)
    assert rc.config is not None
    run_plan(runbook.install_plan(rc.config), rc)


@app.command()
def status(ctx: typer.Context, prometheus: PrometheusUrl = None) -> None:
    """Show the chart version and install state, the monitoring pods and their node, Grafana's
    Secret, and what Prometheus sees (oews-api targets up, alerts firing). Read-only.

    Example:  oewsctl monitoring status
    """
    rc = run_context(ctx)
    assert rc.config is not None
    config = rc.config
    sections = runbook.status_sections(config, lambda: Kube.from_config(config), prometheus)
    out_console.print(as_json(sections) if rc.options.output == "json" else render_text(sections), markup=False, highlight=False)


@app.command()
def password(ctx: typer.Context) -> None:
    """Print Grafana's admin user and password (from the Secret monitoring/grafana-admin) on stdout.

    This is the only command that shows it. Nothing is logged.

    Example:  oewsctl monitoring password
    """
    rc = run_context(ctx)
    assert rc.config is not None
    user, secret = runbook.read_grafana_password(Kube.from_config(rc.config))
    if rc.options.output == "json":
        typer.echo(json.dumps({"user": user, "password": secret}))
    else:
        typer.echo(f"user: {user}\npassword: {secret}")


def register(root: typer.Typer) -> None:
    """Add the `monitoring` group to the root app."""
    root.add_typer(app)
