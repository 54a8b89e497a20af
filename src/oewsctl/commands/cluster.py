"""CLI wiring for `oewsctl cluster ...` (logic in oewsctl.runbooks.cluster)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from oewsctl.commands._common import confirm, run_context
from oewsctl.core.console import out_console
from oewsctl.core.constants import READY_TIMEOUT
from oewsctl.core.errors import OewsctlError
from oewsctl.core.runner import run_plan

app = typer.Typer(help="The k3s cluster itself: install over SSH, status, kubeconfig, uninstall.", no_args_is_help=True)


@app.command("install")
def install(
    ctx: typer.Context,
    airgap: Annotated[Path | None, typer.Option("--airgap", help="Directory with install.sh, k3s / k3s-arm64 and optional k3s-airgap-images-<arch>.tar.zst: uploaded, nothing downloaded on the nodes.", show_default=False)] = None,
    upgrade: Annotated[bool, typer.Option("--upgrade", help="Move nodes on another version to cluster.k3s_version, one at a time (server first; agents cordoned, drained, uncordoned).")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for every node to be Ready, and (--upgrade) for each drain a PodDisruptionBudget holds up.")] = READY_TIMEOUT,
) -> None:
    """Install k3s: the server on cluster.server, then every agent joined with the server's token
    (given in /etc/rancher/k3s/config.yaml, mode 0600, never on a command line), the kubeconfig
    merged as context cluster.name, labels and taints from the inventory, and waits until every
    node is Ready. With cluster.firewall: true it shows the ufw policy and asks (or --yes), then
    enables ufw on each node with default deny incoming plus the cluster's rules; the SSH port in
    use is allowed first, so the session is never cut.

    Safe to re-run: installed nodes say "already installed (vX)" and nothing changes.

    Example:  oewsctl --dry-run cluster install --airgap ./k3s-v1.31.4      oewsctl cluster install --upgrade
    """
    from oewsctl.runbooks import cluster as runbook

    rc = run_context(ctx)
    assert rc.config is not None
    plan = runbook.install_plan(rc.config, airgap=airgap, upgrade=upgrade, ready_timeout=timeout)
    if rc.config.cluster.firewall:
        policy = "".join(f"\n  {node.name}: {'; '.join(runbook.firewall_policy(rc.config, node))}" for node in rc.config.nodes)
        confirm(rc, f"cluster.firewall is on: ufw will deny incoming traffic on every node except what these allow:{policy}\nEnable ufw so?",
                 "cluster install enables ufw (default deny incoming) on every node")
    try:
        run_plan(plan, rc)
    finally:
        rc.close()


@app.command("kubeconfig")
def kubeconfig(ctx: typer.Context) -> None:
    """Fetch /etc/rancher/k3s/k3s.yaml from the server, point it at the server's address, rename it to
    cluster.name and merge it into cluster.kubeconfig (other contexts kept, old file backed up, 0600).

    Example:  oewsctl cluster kubeconfig && kubectl --context home get nodes
    """
    from oewsctl.runbooks import cluster as runbook

    rc = run_context(ctx)
    assert rc.config is not None
    try:
        run_plan(runbook.kubeconfig_plan(rc.config), rc)
    finally:
        rc.close()


@app.command("status")
def status(ctx: typer.Context) -> None:
    """The cluster's nodes from the Kubernetes API: roles, k3s version, Ready, schedulable, oews labels.
    Read-only. Exit 1 when a node of the inventory is missing or not Ready.

    Example:  oewsctl cluster status        oewsctl -o json cluster status
    """
    from oewsctl.clients.kube import Kube
    from oewsctl.runbooks import cluster as runbook

    rc = run_context(ctx)
    config = rc.config
    assert config is not None
    kube = Kube.from_config(config)
    try:
        rows = runbook.node_rows(kube.list("v1", "Node"), config)
    finally:
        kube.close()
    missing = sorted({n.name for n in config.nodes} - {r["name"] for r in rows})
    not_ready = [r["name"] for r in rows if not r["ready"]]
    if rc.options.output == "json":
        out_console.print_json(json.dumps({"nodes": rows, "missing": missing, "ok": not missing and not not_ready}))
    else:
        table = Table(title=f"cluster {config.cluster.name}")
        for column in ("node", "roles", "version", "ready", "schedulable", "labels"):
            table.add_column(column)
        for row in rows:
            labels = ", ".join(f"{k}={v}" for k, v in row["labels"].items())
            table.add_row(row["name"], row["roles"], row["version"], "yes" if row["ready"] else "NO", "yes" if row["schedulable"] else "no (cordoned)", Text(labels))
        out_console.print(table)
    if missing or not_ready:
        parts = ([f"not in the cluster: {', '.join(missing)}"] if missing else []) + ([f"not Ready: {', '.join(not_ready)}"] if not_ready else [])
        raise OewsctlError("; ".join(parts), hint="run `oewsctl cluster install` (it only does what is missing) or check k3s on those nodes")


@app.command("uninstall")
def uninstall(
    ctx: typer.Context,
    node: Annotated[str | None, typer.Option("--node", help="Only this node (default: every node, agents first).", show_default=False)] = None,
) -> None:
    """Remove k3s from a node (or from all) with k3s's own uninstall script. This deletes the node's
    cluster state; the database file under /opt/k3s/storage is not touched. Asks first (or --yes).

    Example:  oewsctl cluster uninstall --node raspberrypi
    """
    from oewsctl.runbooks import cluster as runbook

    rc = run_context(ctx)
    assert rc.config is not None
    plan = runbook.uninstall_plan(rc.config, node)
    what = node or "EVERY node"
    confirm(rc, f"Remove k3s from {what} of cluster {rc.config.cluster.name!r}?", f"cluster uninstall removes k3s from {what}")
    try:
        run_plan(plan, rc)
    finally:
        rc.close()


def register(root: typer.Typer) -> None:
    """Add the `cluster` group to the root app."""
    root.add_typer(app, name="cluster")
