"""CLI wiring for `oewsctl init` and `oewsctl doctor` (logic in oewsctl.configuration.init and oewsctl.runbooks.doctor)."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from oewsctl.commands._common import options, run_context
from oewsctl.core.console import err_console, out_console
from oewsctl.core.constants import NODE_SPEC_HELP
from oewsctl.core.errors import OewsctlError, UsageError

if TYPE_CHECKING:
    from oewsctl.configuration import init as inventory
    from oewsctl.runbooks import doctor as checks

MARKS = {"ok": "[green]ok[/green]", "fail": "[red]FAIL[/red]", "skip": "[dim]skip[/dim]"}


def _prompt_nodes(default_user: str) -> list[inventory.NodeSpec]:
    from oewsctl.configuration import init as inventory

    err_console.print(f"Nodes, one per line as {NODE_SPEC_HELP}; the first is the k3s server. Empty line to finish.")
    nodes: list[inventory.NodeSpec] = []
    while True:
        text = typer.prompt(f"node {len(nodes) + 1}", default="", show_default=False)
        if not text:
            if nodes:
                return nodes
            continue
        try:
            nodes.append(inventory.NodeSpec.parse(text, default_user))
        except UsageError as exc:
            err_console.print(f"[red]{exc.message}[/red]")


def init(
    ctx: typer.Context,
    node: Annotated[list[str] | None, typer.Option("--node", "-n", help=f"A machine: {NODE_SPEC_HELP}. Repeat per node; the first is the server.", show_default=False)] = None,
    domain: Annotated[str | None, typer.Option(help="Public API name, e.g. api.example.com.", show_default=False)] = None,
    email: Annotated[str | None, typer.Option("--email", help="Let's Encrypt account e-mail.", show_default=False)] = None,
    image: Annotated[str | None, typer.Option(help="Image repository, e.g. ghcr.io/you/oews-api.", show_default=False)] = None,
    user: Annotated[str, typer.Option(help="SSH user for nodes given without USER@.")] = "ops",
    cluster_name: Annotated[str, typer.Option("--cluster-name", help="Cluster (and kubeconfig context) name.")] = "home",
    server: Annotated[str | None, typer.Option(help="Node that runs the k3s server (default: the first).", show_default=False)] = None,
    k3s_version: Annotated[str, typer.Option("--k3s-version", help="Pinned k3s release, e.g. v1.31.4+k3s1 (empty: installer default).")] = "",
    ssh_key: Annotated[str, typer.Option("--ssh-key", help="Private key for SSH (ssh-agent is used too).")] = "~/.ssh/id_ed25519",
    known_hosts: Annotated[str, typer.Option("--known-hosts", help="known_hosts file used to check node host keys.")] = "~/.ssh/known_hosts",
    kubeconfig: Annotated[str, typer.Option(help="Kubeconfig the cluster is merged into.")] = "~/.kube/config",
    monitoring_node: Annotated[str | None, typer.Option("--monitoring-node", help="Node for Prometheus/Grafana (default: the first arm64 agent).", show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file (the old one is kept as <file>.bak-<time>).")] = False,
) -> None:
    """Write a commented oewsctl.yaml (the inventory every command reads).

    On a terminal it asks for what the flags did not give; in scripts give everything as flags.
    Changes only that one file, and refuses to replace an existing one without --force.

    Example:  oewsctl init --node machine1=203.0.113.10 --node machine2=203.0.113.11 \\
              --node raspberrypi=pi@203.0.113.12/arm64 --domain api.example.com \\
              --email ops@example.com --image ghcr.io/you/oews-api
    """
    from oewsctl.configuration import init as inventory
    from oewsctl.configuration.loading import resolve_config_path

    path = resolve_config_path(options(ctx).config_path)
    inventory.refuse_existing(path, force)
    tty = sys.stdin.isatty()
    nodes = [inventory.NodeSpec.parse(text, user) for text in node or []]
    if tty:
        nodes = nodes or _prompt_nodes(user)
        domain = domain or typer.prompt("public API domain (e.g. api.example.com)")
        email = email or typer.prompt("Let's Encrypt e-mail")
        image = image or typer.prompt("image repository (e.g. ghcr.io/you/oews-api)")
    missing = [flag for flag, value in (("--node", nodes), ("--domain", domain), ("--email", email), ("--image", image)) if not value]
    if missing:
        raise UsageError(f"init needs {', '.join(missing)} (no terminal to ask on)", hint="example: oewsctl init --node machine1=203.0.113.10 --domain api.example.com --email ops@example.com --image ghcr.io/you/oews-api")
    answers = inventory.InitAnswers(
        nodes=nodes, domain=str(domain), acme_email=str(email), image=str(image), cluster_name=cluster_name, server=server,
        k3s_version=k3s_version, kubeconfig=kubeconfig, ssh_key=ssh_key, known_hosts=known_hosts, monitoring_node=monitoring_node,
    )
    backup = inventory.write(path, answers)
    kept = f" (previous file kept as {backup})" if backup else ""
    err_console.print(f"wrote {path}{kept}. Next: `oewsctl doctor --accept-new-host-keys` to record host keys and check the nodes.")


def _table(results: list[checks.CheckResult]) -> Table:
    table = Table(title="oewsctl doctor", show_lines=False)
    for column in ("node", "check", "result", "detail"):
        table.add_column(column, overflow="fold")
    for result in results:
        table.add_row(result.node, result.check, MARKS[result.status], Text(result.detail))
    return table


def doctor(
    ctx: typer.Context,
    accept_new_host_keys: Annotated[bool, typer.Option("--accept-new-host-keys", help="Record host keys of nodes not yet in known_hosts (never replaces a changed key).")] = False,
) -> None:
    """Check that every node is ready: SSH and host key, passwordless sudo, architecture,
    free disk at the database path (>= 2.5x the database), memory, clock skew, k3s ports
    (6443, 10250, 80, 443) free; plus the Kubernetes API when a kubeconfig exists.

    Read-only. With --accept-new-host-keys it adds the keys of NEW nodes to known_hosts
    (compare the fingerprints it prints with the node's console). Exit 1 if any check fails.

    Example:  oewsctl doctor        oewsctl doctor --accept-new-host-keys        oewsctl -o json doctor
    """
    from oewsctl.clients.ssh import SSHPool
    from oewsctl.core.audit import record_run
    from oewsctl.runbooks import doctor as checks

    rc = run_context(ctx)
    assert rc.config is not None
    started = time.monotonic()
    with SSHPool(rc.config, verbose=rc.options.verbose, accept_new_host_keys=accept_new_host_keys) as pool:
        results = checks.run_doctor(rc.config, pool)
        accepted = list(pool.accepted)
    failed = [r for r in results if r.status == "fail"]
    error = OewsctlError(f"{len(failed)} check(s) failed: " + ", ".join(f"{r.node} {r.check}" for r in failed), hint="see the hints above, fix, and run `oewsctl doctor` again") if failed else None
    if accepted:
        record_run(rc, "doctor --accept-new-host-keys", result="ok" if error is None else "failed", seconds=time.monotonic() - started, error=error)
    if rc.options.output == "json":
        doc = {"ok": not failed, "checks": [r.as_dict() for r in results], "accepted_host_keys": [asdict(a) for a in accepted]}
        out_console.print_json(json.dumps(doc))
    else:
        for key in accepted:
            err_console.print(f"recorded host key of {key.node} ({key.host}): {key.key_type} {key.fingerprint}", markup=False)
        out_console.print(_table(results))
        for result in failed:
            if result.hint:
                err_console.print(f"hint for {result.node} {result.check}: {result.hint}", markup=False)
    if error is not None:
        raise error


def register(app: typer.Typer) -> None:
    """Add `init` and `doctor` to the root app."""
    app.command("init")(init)
    app.command("doctor")(doctor)
