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
    public: Annotated[bool, typer.Option("--public", help="Check the API from outside instead: DNS A record, HTTPS /health (verified), certificate issuer and days left, HTTP->HTTPS redirect.")] = False,
    public_ip: Annotated[str | None, typer.Option("--public-ip", help="With --public: the router's public IPv4 address the A record must point at.", show_default=False)] = None,
    resolve: Annotated[str | None, typer.Option("--resolve", metavar="HOST:ADDR", help="With --public: connect to ADDR instead of asking DNS (the certificate is still verified for HOST).", show_default=False)] = None,
    https_port: Annotated[int, typer.Option("--https-port", help="With --public: the HTTPS port.", min=1, max=65535)] = 443,
    http_port: Annotated[int, typer.Option("--http-port", help="With --public: the plain HTTP port (must redirect).", min=1, max=65535)] = 80,
) -> None:
    """One screen: nodes, API replicas and image, database per node, certificate, backup, alerts.

    Read-only. Each source is asked on its own; one that cannot be reached shows "unknown (why)" and the rest still show (exit 0).

    --public checks from this machine what visitors get (exit 1 on any problem); the CA bundle is the system's (SSL_CERT_FILE overrides).

    Example:  oewsctl status        (oewsctl -o json status for scripts)
              oewsctl status --public --public-ip 198.51.100.7
    """
    from oewsctl.clients.kube import Kube
    from oewsctl.runbooks import status as runbook

    rc = run_context(ctx)
    assert rc.config is not None
    config = rc.config
    if public:
        from oewsctl.runbooks import public_status

        target = public_status.endpoint(config, resolve=resolve, public_ip=public_ip, https_port=https_port, http_port=http_port)
        sections = public_status.sections(target)
    else:
        sections = runbook.overview(config, lambda: Kube.from_config(config), prometheus)
    out_console.print(as_json(sections) if rc.options.output == "json" else render_text(sections), markup=False, highlight=False)
    if public and not public_status.all_ok(sections):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add `status` to the root app."""
    app.command("status")(status)
