"""CLI wiring for `oewsctl secrets ...` (logic in oewsctl.runbooks.secrets)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from oewsctl.commands._common import run_context
from oewsctl.core.console import err_console, out_console
from oewsctl.core.runner import run_plan

app = typer.Typer(
    name="secrets",
    help=(
        "App secrets (API keys) in Azure Key Vault, synced into the cluster by External Secrets Operator "
        "(or, with secrets.provider: kubernetes, written to the Secret oews-api-secrets directly).\n\n"
        "Values are read from stdin or a file, never from the command line, and never printed."
    ),
    no_args_is_help=True,
)

FromStdin = Annotated[bool, typer.Option("--from-stdin", help="Read the value(s) from stdin (a hidden prompt on a terminal).")]
FromFile = Annotated[Path | None, typer.Option("--from-file", help="Read the value(s) from this file.", show_default=False)]


@app.command("set")
def set_(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="App variable (OPENAI_API_KEY) or its vault name (OPENAI-API-KEY).")],
    from_stdin: FromStdin = False,
    from_file: FromFile = None,
) -> None:
    """Store one secret value: a new Key Vault version (or the Secret, provider kubernetes).

    Pods are NOT restarted: use `secrets rotate` for that.

    Example:  printf %s "$KEY" | oewsctl secrets set OPENAI_API_KEY --from-stdin
    """
    from oewsctl.runbooks import secrets as runbook
    from oewsctl.runbooks.secret_input import values_for

    rc = run_context(ctx)
    assert rc.config is not None
    run_plan(runbook.set_plan(runbook.secrets_env(rc.config), values_for(rc.config, [name], from_stdin, from_file)), rc)


@app.command()
def rotate(
    ctx: typer.Context,
    names: Annotated[list[str], typer.Argument(help="One or more app variables; with several, the input has NAME=value lines.")],
    from_stdin: FromStdin = False,
    from_file: FromFile = None,
    sync_timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait for ESO to sync the Secret.")] = 180.0,
) -> None:
    """Change secret values and restart the API pods once, after the cluster has the new values.

    Stages: set in Key Vault; annotate the ExternalSecret force-sync; wait until ESO is Ready and the Secret holds the new values (compared by hash); roll the Deployment once; wait for the rollout. With provider kubernetes the Secret is written directly.

    Example:  oewsctl secrets rotate OPENAI_API_KEY AZURE_AI_API_KEY --from-file new-keys.env
    """
    from oewsctl.runbooks import secrets as runbook
    from oewsctl.runbooks.secret_input import values_for

    rc = run_context(ctx)
    assert rc.config is not None
    env = runbook.secrets_env(rc.config, sync_timeout)
    run_plan(runbook.rotate_plan(env, values_for(rc.config, names, from_stdin, from_file)), rc)


def _print_json(doc: Any) -> None:
    out_console.print_json(json.dumps(doc))


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """List the app's secrets: name, app variable, enabled, content type, updated, version. Never values.

    Example:  oewsctl secrets list
    """
    from oewsctl.runbooks import secrets as runbook

    rc = run_context(ctx)
    assert rc.config is not None
    env = runbook.secrets_env(rc.config)
    rows = runbook.list_vault(env) if env.azure else runbook.list_cluster(env, rc)
    if rc.options.output == "json":
        _print_json(rows)
        return
    columns = list(dict.fromkeys(key for row in rows for key in row if key != "missing"))
    cells = [[_cell(row, col) for col in columns] for row in rows]
    _print_table([col.upper() for col in columns], cells)


def _cell(row: dict[str, Any], column: str) -> str:
    if row.get("missing") and column in ("enabled", "present"):
        return "MISSING"
    value = row.get(column)
    return "-" if value is None else str(value)


def _print_table(header: list[str], rows: list[list[str]]) -> None:
    """Aligned columns, nothing truncated (ids and times stay whole for copy and paste)."""
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]
    for line in [header, *rows]:
        out_console.print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip(), markup=False, soft_wrap=True)


@app.command()
def status(
    ctx: typer.Context,
    reconcile: Annotated[bool, typer.Option("--reconcile", help="If the Secret changed since the pods started (ESO synced on its own), roll them once.")] = False,
    ping_url: Annotated[str | None, typer.Option("--ping-url", help="With --reconcile: Healthchecks-style URL pinged <url>/start, <url>, <url>/fail (default: secrets.ping_url).", show_default=False)] = None,
) -> None:
    """Show ESO's SecretStore/ExternalSecret state, the Secret's keys, and whether pods use the current Secret.

    Lists conditions with their messages, the last refresh, which vault names feed which keys, and app variables missing from the Secret. --reconcile rolls the pods once if they are stale.

    With --reconcile and --ping-url (or secrets.ping_url) each run pings a dead-man's switch (start, success or fail with the error line); a failed ping only warns.

    Example (cron, every 10 min):  oewsctl --yes secrets status --reconcile
    """
    from oewsctl.clients.healthchecks import checked_option, pinged
    from oewsctl.runbooks import secrets as runbook

    ping_url = checked_option(ping_url)
    rc = run_context(ctx)
    assert rc.config is not None
    url = (ping_url or rc.config.secrets.ping_url) if reconcile and not rc.options.dry_run else None
    with pinged(url, lambda line: err_console.print(line, markup=False, highlight=False)):
        env = runbook.secrets_env(rc.config)
        report = runbook.status(env, rc)
        if rc.options.output == "json" and not reconcile:
            _print_json(report)
        elif rc.options.output == "text":
            _print_status(report)
        if reconcile:
            run_plan(runbook.reconcile_plan(env), rc)


def _print_status(report: dict[str, Any]) -> None:
    ns = report["namespace"]
    lines = [f"provider: {report['provider']}"]
    for key, kind in (("secret_store", "SecretStore"), ("external_secret", "ExternalSecret")):
        if key in report:
            item = report[key]
            lines.append(f"{kind} {ns}/{item['name']}: Ready={item['ready']} {item['reason']} {item['message']}".rstrip())
    if "external_secret" in report:
        es = report["external_secret"]
        lines.append(f"  last refresh: {es['refresh_time'] or 'never'} (every {es['refresh_interval'] or '?'})")
        lines.extend(f"  {key} <- {remote}" for key, remote in sorted(es["mapped"].items()))
    secret = report["secret"]
    if secret["found"]:
        lines.append(f"Secret {ns}/{secret['name']}: keys {', '.join(secret['keys']) or '(none)'}; sha256 {secret['sha256'][:12]}")
    else:
        lines.append(f"Secret {ns}/{secret['name']}: NOT FOUND")
    if secret["missing"]:
        lines.append(f"  MISSING app variables: {', '.join(secret['missing'])}")
    dep = report["deployment"]
    if not dep["found"]:
        lines.append(f"Deployment {ns}/{dep['name']}: NOT FOUND (run `oewsctl deploy`)")
    elif dep["in_sync"]:
        lines.append(f"Deployment {ns}/{dep['name']}: pods run with the current Secret")
    else:
        lines.append(f"Deployment {ns}/{dep['name']}: pods started with an OLDER Secret (run `oewsctl secrets status --reconcile`)")
    for line in lines:
        out_console.print(line, markup=False)


@app.command()
def bootstrap(ctx: typer.Context, from_stdin: FromStdin = False, from_file: FromFile = None) -> None:
    """Install External Secrets Operator and create the Secret azure-sp-credentials it logs in with.

    Applies the k3s HelmChart kube-system/external-secrets. Input: two lines, ClientID=<app id> and ClientSecret=<secret> (the ESO service principal).

    Example:  oewsctl secrets bootstrap --from-file sp.env   (then `oewsctl deploy`)
    """
    from oewsctl.runbooks import secrets as runbook
    from oewsctl.runbooks.render import render_template, values
    from oewsctl.runbooks.secret_input import read_values

    rc = run_context(ctx)
    assert rc.config is not None
    env = runbook.secrets_env(rc.config)
    runbook.require_azure(env)
    credentials = read_values(list(runbook.SP_KEYS), from_stdin=from_stdin, from_file=from_file)
    chart = render_template("app/external-secrets-operator.yaml.j2", values(rc.config))[0]
    run_plan(runbook.bootstrap_plan(env, chart, credentials), rc)


def register(root: typer.Typer) -> None:
    """Add `oewsctl secrets ...` to the root app."""
    root.add_typer(app)
