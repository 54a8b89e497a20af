"""CLI wiring for `render`, `deploy` and the `rollout` group (logic in oewsctl.runbooks.deploy / oewsctl.runbooks.rollout)."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from oewsctl.core.console import err_console, out_console
from oewsctl.core.errors import OewsctlError
from oewsctl.core.runner import run_plan

from ._common import run_context

if TYPE_CHECKING:
    from oewsctl.clients.kube import Kube
    from oewsctl.runbooks.rollout import Target

rollout_app = typer.Typer(
    name="rollout",
    help="Watch, list, undo and restart rollouts of the API (same meaning as kubectl rollout).",
    no_args_is_help=True,
)

NoWait = Annotated[bool, typer.Option("--no-wait", help="Return once the change is made; do not wait for the pods.")]


class RenderGroup(str, Enum):
    app = "app"
    secrets = "secrets"
    monitoring = "monitoring"


def render_cmd(
    ctx: typer.Context,
    out: Annotated[Path | None, typer.Option("--out", help="Write one YAML file per object into DIR instead of stdout.", metavar="DIR")] = None,
    image: Annotated[str | None, typer.Option("--image", help="Image to render instead of app.image.")] = None,
    only: Annotated[RenderGroup | None, typer.Option("--only", help="One group: app (deploy), secrets (External Secrets), monitoring (monitoring install).", show_default=False)] = None,
) -> None:
    """Print every object oewsctl applies (multi-document YAML): the app (namespace, Deployment,
    Service, PDB, Traefik Middlewares, Ingress, NetworkPolicy, Traefik config), the External Secrets
    objects, and the monitoring stack with its alert rules and dashboard. Backups save the live
    counterparts of this list. Changes nothing.

    Example: oewsctl render | less    oewsctl render --only monitoring    oewsctl render --out /tmp/manifests
    """
    from oewsctl.runbooks.manifests import listing
    from oewsctl.runbooks.render import to_yaml, write_dir

    run = run_context(ctx)
    assert run.config is not None
    objects = listing(run.config, image=image, only=only.value if only else None)
    if out is None and run.options.output == "json":
        out_console.print_json(json.dumps(objects))
        return
    if out is None:
        out_console.out(to_yaml(objects), end="", highlight=False)
        return
    paths = write_dir(objects, out)
    err_console.print(f"wrote {len(paths)} files to {out}", markup=False)


def deploy_cmd(
    ctx: typer.Context,
    image: Annotated[str | None, typer.Option("--image", help="Image to run (tag or @sha256 digest); default app.image.")] = None,
    no_wait: NoWait = False,
    no_rollback: Annotated[bool, typer.Option("--no-rollback", help="If the rollout stalls, leave it as is instead of rolling back.")] = False,
    expect_db_sha256: Annotated[str | None, typer.Option("--expect-db-sha256", help="Fail the smoke check unless /health reports this database SHA-256.")] = None,
) -> None:
    """Apply all manifests, wait for the new pods, roll back automatically if they never get ready.

    Changes: the namespace, Deployment, Service, Ingress, PDB and Traefik config (plus the External Secrets objects with secrets.provider azure-keyvault); objects that already match are left alone. Before the Deployment: the pull Secret app.image_pull_secret is written from GHCR_TOKEN or docker login (value never shown), and oews-api-secrets is created empty (provider kubernetes) or awaited from ESO (azure-keyvault). After the rollout, GET /health through the Service must answer ok. With --dry-run: the plan and a diff against what is live.

    Example: oewsctl deploy --image ghcr.io/me/oews-api:1.5.0
    """
    from oewsctl.runbooks.deploy import DeployOptions, deploy_plan, live_diff

    run = run_context(ctx)
    assert run.config is not None
    plan = deploy_plan(run.config, DeployOptions(image=image, wait=not no_wait, rollback=not no_rollback, expect_sha256=expect_db_sha256))
    try:
        run_plan(plan, run)
        if run.options.dry_run and run.options.output == "text":
            try:
                err_console.print("\nDiff against the live cluster:", highlight=False)
                err_console.print(live_diff(run.config, image), markup=False, highlight=False)
            except OewsctlError as exc:
                err_console.print(f"(live state unavailable: {exc.message})", markup=False)
    finally:
        run.close()


def _kube(ctx: typer.Context) -> tuple[Kube, Target, bool]:
    from oewsctl.clients.kube import Kube
    from oewsctl.runbooks.rollout import Target

    run = run_context(ctx)
    assert run.config is not None
    return Kube.from_config(run.config), Target.of(run.config), run.options.output == "json"


@rollout_app.command("status")
def status_cmd(
    ctx: typer.Context,
    no_wait: NoWait = False,
    timeout: Annotated[float, typer.Option("--timeout", help="Give up after this many seconds.")] = 660.0,
) -> None:
    """Follow the current rollout of the API until it is done (exit 1 if it stalls or --timeout passes).

    With --no-wait: print the state once; exit 1 if the rollout already failed (progress deadline exceeded).

    Example: oewsctl rollout status
    """
    from oewsctl.runbooks.rollout import current_state, wait_rollout

    kube, target, as_json = _kube(ctx)
    failed = False
    try:
        if no_wait:
            state = current_state(kube, target)
            message, done, failed = state.message, state.done, state.failed
        else:
            echo = None if as_json else lambda line: err_console.print(line, markup=False)
            message = wait_rollout(kube, target, echo=echo, timeout=timeout)
            done = True
    finally:
        kube.close()
    if as_json:
        out_console.print_json(json.dumps({"deployment": str(target), "done": done, "failed": failed, "message": message}))
    elif no_wait:
        out_console.print(message, markup=False)
    if failed:
        raise typer.Exit(1)


@rollout_app.command("history")
def history_cmd(ctx: typer.Context) -> None:
    """List the API's revisions with their image and change cause (newest last).

    Example: oewsctl rollout history
    """
    from oewsctl.runbooks.rollout import history

    kube, target, as_json = _kube(ctx)
    try:
        revisions = history(kube, target)
    finally:
        kube.close()
    if as_json:
        out_console.print_json(json.dumps([r.as_dict() for r in revisions]))
        return
    out_console.print(f"{target}", markup=False)
    out_console.print(f"{'REVISION':<9} {'IMAGE':<50} CHANGE-CAUSE", markup=False)
    for r in revisions:
        mark = " (current)" if r.current else ""
        out_console.print(f"{r.number:<9} {r.image:<50} {r.change_cause or '<none>'}{mark}", markup=False)


@rollout_app.command("undo")
def undo_cmd(
    ctx: typer.Context,
    to_revision: Annotated[int, typer.Option("--to-revision", min=0, help="Revision to go back to (see rollout history); 0 = the previous one.")] = 0,
    no_wait: NoWait = False,
) -> None:
    """Go back to an earlier revision of the API (its image and pod settings), then wait.

    Example: oewsctl rollout undo    or    oewsctl rollout undo --to-revision 3
    """
    from oewsctl.runbooks.rollout import undo_plan

    run = run_context(ctx)
    assert run.config is not None
    try:
        run_plan(undo_plan(run.config, to_revision=to_revision, wait=not no_wait), run)
    finally:
        run.close()


@rollout_app.command("restart")
def restart_cmd(ctx: typer.Context, no_wait: NoWait = False) -> None:
    """Replace every API pod with a fresh one (same image), one at a time, then wait.

    Use after changing a Secret or the database file.

    Example: oewsctl rollout restart
    """
    from oewsctl.runbooks.rollout import restart_plan

    run = run_context(ctx)
    assert run.config is not None
    try:
        run_plan(restart_plan(run.config, wait=not no_wait), run)
    finally:
        run.close()


def register(app: typer.Typer) -> None:
    """Add `render`, `deploy` and the `rollout` group to the root app."""
    app.command("render")(render_cmd)
    app.command("deploy")(deploy_cmd)
    app.add_typer(rollout_app)
