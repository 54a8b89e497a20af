"""CLI wiring for `oewsctl ui install | token | open` (logic in oewsctl.runbooks.ui)."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer

from oewsctl.commands._common import run_context
from oewsctl.core.audit import record_run
from oewsctl.core.console import err_console
from oewsctl.core.errors import OewsctlError
from oewsctl.core.runner import run_plan

app = typer.Typer(
    name="ui",
    help=(
        "Headlamp, the Kubernetes web UI (it replaces the archived Kubernetes Dashboard), on the monitoring node: "
        "read-only by default, short-lived login tokens, reached through a port-forward."
    ),
    no_args_is_help=True,
)

AdminOpt = Annotated[bool, typer.Option("--admin", help="cluster-admin instead of the read-only `view` ClusterRole (full control of the cluster).")]


def _say(line: str) -> None:
    err_console.print(line, markup=False, highlight=False)


@app.command()
def install(ctx: typer.Context, admin: AdminOpt = False) -> None:
    """Install or update Headlamp (pinned chart, sized for a Raspberry Pi, no Ingress) and its login accounts.

    Changes: labels the monitoring node; applies ServiceAccount monitoring/headlamp-viewer bound to the `view` ClusterRole (read-only, no Secrets) and the Headlamp HelmChart. --admin also creates headlamp-admin bound to cluster-admin; without it, a headlamp-admin left by an earlier --admin install is removed.

    Example:  oewsctl --dry-run ui install   (then without --dry-run; then `oewsctl ui token` and `oewsctl ui open`)
    """
    from oewsctl.runbooks import ui as runbook

    rc = run_context(ctx)
    assert rc.config is not None
    if admin:
        _say("WARNING: --admin binds ServiceAccount monitoring/headlamp-admin to cluster-admin: its tokens can read every Secret and change or delete anything in the cluster.")
    run_plan(runbook.install_plan(rc.config, admin=admin), rc)


@app.command()
def token(
    ctx: typer.Context,
    ttl: Annotated[str, typer.Option("--ttl", help="How long the token is valid (at least 10m): 30m, 1h, 8h, 1d.")] = "1h",
    admin: AdminOpt = False,
) -> None:
    """Print a Headlamp login token (TokenRequest API; it expires by itself, nothing is stored in the cluster).

    The token is printed on stdout only (paste it into Headlamp's login); its expiry goes to stderr. Read-only (`view`) unless --admin.

    Example:  oewsctl ui token --ttl 1h
    """
    from oewsctl.clients.kube import Kube
    from oewsctl.runbooks import ui as runbook

    rc = run_context(ctx)
    assert rc.config is not None
    seconds = runbook.parse_ttl(ttl)
    account = runbook.access(admin)
    if rc.options.dry_run:
        _say(f"would ask the TokenRequest API for a token of monitoring/{account.account} ({account.cluster_role}) valid {seconds}s")
        return
    what = f"ui token for monitoring/{account.account} ({account.cluster_role}), valid {seconds}s"
    started = time.monotonic()
    try:
        issued = runbook.token(Kube.from_config(rc.config), seconds, admin=admin)
    except OewsctlError as exc:
        record_run(rc, what, result="failed", seconds=time.monotonic() - started, error=exc)
        raise
    record_run(rc, what, result="ok", seconds=time.monotonic() - started)  # who got a token, for what and how long; never the token
    if rc.options.output == "json":
        typer.echo(json.dumps({"token": issued.token, "expires": issued.expires.isoformat(), "service_account": account.account,
                               "cluster_role": account.cluster_role}))
        return
    typer.echo(issued.token)
    _say(f"token for monitoring/{account.account} ({account.cluster_role}), expires {issued.expires:%Y-%m-%d %H:%M %Z}")


@app.command("open")
def open_ui(
    ctx: typer.Context,
    port: Annotated[int | None, typer.Option("--port", help="Local port (default 4466; 0 picks a free one).", min=0, max=65535, show_default=False)] = None,
) -> None:
    """Forward Headlamp to 127.0.0.1 through the Kubernetes API (no kubectl) and print its URL; Ctrl-C stops.

    Log in with a token from `oewsctl ui token`. Same as `oewsctl port-forward ui`.

    Example:  oewsctl ui open
    """
    from oewsctl.commands.port_forward import forward_target

    forward_target(ctx, "ui", port, note="log in with a token from `oewsctl ui token`")


def register(root: typer.Typer) -> None:
    """Add the `ui` group to the root app."""
    root.add_typer(app)
