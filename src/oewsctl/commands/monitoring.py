"""CLI wiring for `oewsctl monitoring ...` (logic in oewsctl.runbooks.monitoring)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from oewsctl.commands._common import run_context
from oewsctl.core.console import out_console
from oewsctl.core.runner import run_plan
from oewsctl.runbooks.report import as_json, render_text

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

    Changes: labels the monitoring node oews/role=monitoring; creates Grafana's admin Secret with a generated password (once, never the chart default, kept on re-runs); applies the kube-prometheus-stack HelmChart (pinned version, sized for a Raspberry Pi); then, once its CRDs exist, the oews-api ServiceMonitor, the Traefik PodMonitor, the alert rules, the Grafana dashboard and the blackbox exporter HelmChart probing https://<app.domain>/health and its certificate from the Pi.

    Example:  oewsctl --dry-run monitoring install   (then without --dry-run)
    """
    from oewsctl.runbooks import monitoring as runbook

    rc = run_context(ctx)
    assert rc.config is not None
    run_plan(runbook.install_plan(rc.config), rc)


@app.command()
def status(ctx: typer.Context, prometheus: PrometheusUrl = None) -> None:
    """Show the chart and its install state, monitoring pods and their nodes, Prometheus's view.

    Read-only: the chart version (pinned or not) and k3s's install job, every pod in namespace monitoring (flagged when not on the monitoring node), whether Grafana's admin Secret exists (never its value), oews-api targets up and alerts firing.

    Example:  oewsctl monitoring status
    """
    from oewsctl.clients.kube import Kube
    from oewsctl.runbooks import monitoring as runbook

    rc = run_context(ctx)
    assert rc.config is not None
    config = rc.config
    sections = runbook.status_sections(config, lambda: Kube.from_config(config), prometheus)
    out_console.print(as_json(sections) if rc.options.output == "json" else render_text(sections), markup=False, highlight=False)


@app.command()
def password(ctx: typer.Context) -> None:
    """Print Grafana's admin user and password (from the Secret monitoring/grafana-admin) on stdout.

    This is the only command that shows it; nothing is logged. Log in to Grafana with it after `oewsctl port-forward grafana`.

    Example:  oewsctl monitoring password
    """
    from oewsctl.clients.kube import Kube
    from oewsctl.runbooks import monitoring as runbook

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
