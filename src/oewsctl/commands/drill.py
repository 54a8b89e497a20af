"""CLI wiring for `oewsctl drill ...` (logic in oewsctl.runbooks.drills)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from oewsctl.commands._common import confirm, run_context
from oewsctl.commands.loadtest import Mix, Rate, Url, Users, ViaApi, load_spec
from oewsctl.commands.secrets import FromFile, FromStdin
from oewsctl.core.console import err_console, out_console
from oewsctl.core.errors import OewsctlError

if TYPE_CHECKING:
    from collections.abc import Callable

    from oewsctl.core.context import RunContext
    from oewsctl.runbooks.drills import DrillRun, DrillSteps

INTERRUPTED = 130

app = typer.Typer(
    name="drill",
    help=(
        "Make one runbook change while load runs, then report failed requests, worst latency, recovery time and pod restarts.\n\n"
        "Each drill restores what it changed (also after a failure or Ctrl-C) and writes report.md, report.json and latency.png "
        "under <state dir>/drills/. Passing means p95 < 2 s, no failed request, no pod restart. `oewsctl drill report` lists them."
    ),
    no_args_is_help=True,
)

Settle = Annotated[str, typer.Option("--settle", help="Keep the load this long after each recovery before stopping.")]
Timeout = Annotated[str, typer.Option("--timeout", help="Give up waiting for the desired state after this long (per phase).")]


def _run(ctx: typer.Context, name: str, url: str | None, users: int, rate: str | None, mix: str, via_api: bool,
         settle: str, timeout: str, make: Callable[[DrillRun], DrillSteps], *, disrupts: str | None = None) -> None:
    """Build the drill, run it, write and print its report; exit 1 (failed/error) or 130 (interrupted).

    ``disrupts``: what a disruptive drill does to the cluster; it asks first (or --yes; not for --dry-run)."""
    from oewsctl.runbooks import drills, loadtest

    rc = run_context(ctx)
    assert rc.config is not None
    if disrupts:
        confirm(rc, f"drill {name} {disrupts} (cluster {rc.config.cluster.name!r}, under load). Go on?", f"drill {name} {disrupts}")
    limit = loadtest.parse_duration(timeout)
    spec = load_spec(rc, url=url, users=users, rate=rate, mix=mix, via_api=via_api, duration=loadtest.MAX_DURATION_SECONDS)
    text = rc.options.output == "text"
    progress, close = loadtest.live_progress(False) if text else (None, lambda: None)
    run = drills.DrillRun(name, rc.config, drills.BackgroundLoad(spec, progress), settle=loadtest.parse_duration(settle), timeout=limit)
    try:
        report = drills.execute(rc, run, make(run))
    finally:
        close()
        rc.close()
    if report is None:
        return
    folder = drills.write_drill_report(report)
    _print(rc, report, folder)
    if report.outcome == "interrupted":
        raise typer.Exit(INTERRUPTED)
    if report.outcome != "passed":
        missed = [f"{c.name} {c.value} (limit {c.limit})" for c in report.checks if c.ok is False]
        hints = report.load.summary.hints if report.load is not None else []
        raise OewsctlError(f"drill {name} {report.outcome}: {report.error or '; '.join(missed)}", hint="; ".join([*hints, f"see {folder / 'report.md'}"]))


def _print(rc: RunContext, report: object, folder: Path) -> None:
    from oewsctl.runbooks import drills, loadtest

    assert isinstance(report, drills.DrillReport)
    if rc.options.output == "json":
        out_console.print_json(json.dumps({**report.as_dict(), "report": str(folder)}))
        return
    if report.load is not None:
        out_console.print(loadtest.summary_table(report.load.summary, report.checks))
    for phase in report.run.phases:
        out_console.print(f"{phase.name}: back to the desired state after {'—' if phase.recovered is None else f'{phase.recovered:.1f}s'}", markup=False)
    colour = "green" if report.outcome == "passed" else "red"
    out_console.print(f"drill {report.run.name}: [{colour}]{report.outcome}[/{colour}]")
    err_console.print(f"report: {folder / 'report.md'}", markup=False)


@app.command("rollout")
def rollout(ctx: typer.Context, url: Url = None, users: Users = 10, rate: Rate = None, mix: Mix = "wages,query,health",
            via_api: ViaApi = False, settle: Settle = "5s", timeout: Timeout = "10m") -> None:
    """Roll out a new revision (rollout restart), then roll it back (rollout undo), under load.

    Example: oewsctl drill rollout
    """
    from oewsctl.runbooks import drills

    _run(ctx, "rollout", url, users, rate, mix, via_api, settle, timeout, drills.rollout_steps)


@app.command("pod-kill")
def pod_kill(ctx: typer.Context, pod: Annotated[str | None, typer.Option("--pod", help="Which API pod (default: the first ready one).", show_default=False)] = None,
             url: Url = None, users: Users = 10, rate: Rate = None, mix: Mix = "wages,query,health", via_api: ViaApi = False,
             settle: Settle = "5s", timeout: Timeout = "10m") -> None:
    """Delete one API pod (graceful: preStop, SIGTERM) and watch traffic move to the other replica. Asks first (or --yes).

    Example: oewsctl drill pod-kill
    """
    from oewsctl.runbooks import drills

    _run(ctx, "pod-kill", url, users, rate, mix, via_api, settle, timeout, lambda run: drills.pod_kill_steps(run, pod),
         disrupts=f"deletes API pod {pod}" if pod else "deletes an API pod")


def _node(ctx: typer.Context, node: str, *, agent_only: bool = False) -> str:
    """``node`` if the inventory has it (and, with ``agent_only``, it is not the k3s server), else exit 2."""
    from oewsctl.runbooks.drills import losable_node
    from oewsctl.runbooks.nodes import known_node

    rc = run_context(ctx)
    assert rc.config is not None
    name = known_node(rc.config, node)
    return losable_node(rc.config, name) if agent_only else name


@app.command("node-drain")
def node_drain(ctx: typer.Context, node: Annotated[str, typer.Argument(help="Inventory node name, e.g. machine2.")],
               url: Url = None, users: Users = 10, rate: Rate = None, mix: Mix = "wages,query,health", via_api: ViaApi = False,
               settle: Settle = "5s", timeout: Timeout = "10m") -> None:
    """Cordon NODE and evict its pods through the Eviction API (the PodDisruptionBudget decides), then uncordon it.

    Warns first (and notes in the report) when a pod on NODE cannot move without an outage: kube-system's
    Traefik (one replica) or a pod on a local-path/hostPath volume. Asks first (or --yes).

    Example: oewsctl drill node-drain machine2
    """
    from oewsctl.runbooks import drills

    name = _node(ctx, node)
    _run(ctx, "node-drain", url, users, rate, mix, via_api, settle, timeout, lambda run: drills.node_drain_steps(run, name),
         disrupts=f"drains node {name}")


@app.command("node-loss")
def node_loss(ctx: typer.Context, node: Annotated[str, typer.Argument(help="Inventory node name, e.g. machine2.")],
              down: Annotated[str, typer.Option("--down", help="How long k3s stays stopped.")] = "60s",
              url: Url = None, users: Users = 10, rate: Rate = None, mix: Mix = "wages,query,health", via_api: ViaApi = False,
              settle: Settle = "5s", timeout: Timeout = "10m") -> None:
    """Stop k3s and its containers on NODE over SSH (k3s-killall.sh) for --down: the runbook's "machine2 fails". Then start k3s again and measure the recovery.
    Agents only (the server runs the Kubernetes API the drill needs). Asks first (or --yes).

    Example: oewsctl drill node-loss machine2 --down 60s
    """
    from oewsctl.runbooks import drills, loadtest

    name = _node(ctx, node, agent_only=True)
    seconds = loadtest.parse_duration(down)
    _run(ctx, "node-loss", url, users, rate, mix, via_api, settle, timeout, lambda run: drills.node_loss_steps(run, name, seconds),
         disrupts=f"stops k3s on {name} for {seconds:g}s")


@app.command("db-swap")
def db_swap(ctx: typer.Context, file: Annotated[Path, typer.Argument(help="A database file other than the live one (oewsctl db build writes one).")],
            url: Url = None, users: Users = 10, rate: Rate = None, mix: Mix = "wages,query,health", via_api: ViaApi = False,
            settle: Settle = "5s", timeout: Timeout = "10m") -> None:
    """`db update FILE`, then `db rollback`, under load (database.delivery hostpath: over SSH; image: a new
    artifact the Deployment points at, then back at the revision before).

    Example: oewsctl drill db-swap ./oews-2025.db
    """
    from oewsctl.runbooks import drills

    _run(ctx, "db-swap", url, users, rate, mix, via_api, settle, timeout, lambda run: drills.db_swap_steps(run, file))


@app.command("secret-rotation")
def secret_rotation(ctx: typer.Context, names: Annotated[list[str], typer.Argument(help="App variables to rotate (OPENAI_API_KEY ...); values from stdin or a file.")],
                    from_stdin: FromStdin = False, from_file: FromFile = None,
                    url: Url = None, users: Users = 10, rate: Rate = None, mix: Mix = "wages,query,health", via_api: ViaApi = False,
                    settle: Settle = "5s", timeout: Timeout = "10m") -> None:
    """`secrets rotate NAME...` with the new values, under load. The new values stay (a rotation is meant to);
    after a failure or Ctrl-C the rotation is completed so the pods and the Secret agree.

    Example: oewsctl drill secret-rotation OPENAI_API_KEY --from-file new-key.txt
    """
    from oewsctl.runbooks import drills
    from oewsctl.runbooks.secret_input import values_for
    from oewsctl.runbooks.secrets import secrets_env

    rc = run_context(ctx)
    assert rc.config is not None
    env, values = secrets_env(rc.config), values_for(rc.config, names, from_stdin, from_file)
    _run(ctx, "secret-rotation", url, users, rate, mix, via_api, settle, timeout, lambda run: drills.secret_rotation_steps(env, values))


@app.command("report")
def report(ctx: typer.Context) -> None:
    """List the drill reports (newest last): drill, time, outcome, failed requests, p95, recovery time.

    Example: oewsctl drill report
    """
    from rich.table import Table

    from oewsctl.runbooks.drills import list_reports

    rc = run_context(ctx, need_config=False)
    found = list_reports()
    if rc.options.output == "json":
        out_console.print_json(json.dumps(found))
        return
    if not found:
        err_console.print("no drill reports yet: run one, e.g. oewsctl drill pod-kill", markup=False)
        return
    table = Table("report", "drill", "outcome", "requests", "failed", "p95", "recovery")
    for row in found:
        p95 = "—" if row["p95_seconds"] is None else f"{row['p95_seconds'] * 1000:.0f} ms"
        recovery = "—" if row["recovery_seconds"] is None else f"{row['recovery_seconds']:.1f} s"
        table.add_row(Path(row["report"]).name, str(row["drill"]), str(row["outcome"]), str(row["requests"]), str(row["failed_requests"]), p95, recovery)
    out_console.print(table)
    err_console.print(f"in {Path(found[-1]['report']).parent} (report.md, report.json, latency.png each)", markup=False)


def register(parent: typer.Typer) -> None:
    """Add the `drill` group to the root app."""
    parent.add_typer(app)
