"""CLI wiring for the `db` commands: build and validate an oews.db; push/update/rollback/status across the DB nodes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from oewsctl.commands._common import options, run_context
from oewsctl.core.console import err_console, interactive, out_console
from oewsctl.core.errors import OewsctlError, UsageError
from oewsctl.core.runner import run_plan

if TYPE_CHECKING:
    from oews_api.builder import BuildError
    from oews_api.builder.writer import Progress as ProgressCallback

db_app = typer.Typer(
    name="db",
    help=(
        "The OEWS database file: build it from BLS downloads, check it, ship it to the DB nodes, roll it back.\n\n"
        "Each BLS release:  oewsctl db build --from oesm25all/ --out oews.db  then  oewsctl db validate oews.db  then  oewsctl db update oews.db"
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
)


def register(app: typer.Typer) -> None:
    """Add the `db` group to the root app."""
    app.add_typer(db_app, name="db")


@contextmanager
def _progress_bar(enabled: bool) -> Iterator[ProgressCallback | None]:
    """A rich bytes-read bar on a TTY; nothing otherwise."""
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn(), console=err_console, transient=True) as bar:
        tasks: dict[str, TaskID] = {}

        def update(label: str, done: int, total: int) -> None:
            if label not in tasks:
                tasks[label] = bar.add_task(f"reading {label}", total=total or None)  # 0: size unknown (xlsx, oews.db)
            bar.update(tasks[label], completed=done)

        yield update


def _as_cli_error(exc: BuildError) -> OewsctlError:
    from oews_api.builder import BuildUsageError

    kind = UsageError if isinstance(exc, BuildUsageError) else OewsctlError
    return kind(exc.message, exc.hint)


@db_app.command("build")
def build(
    ctx: typer.Context,
    sources: Annotated[list[Path], typer.Option("--from", "-f", help="BLS flat-file directory, all-data .xlsx/.csv, an old oews.db (table oews_data) or a database built earlier. Repeat to merge years.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", help="Database file to write. Replaced only after the new one validated.", show_default=False)],
    replace_year: Annotated[bool, typer.Option("--replace-year", help="When two --from hold the same year, take it from the later one instead of failing.")] = False,
) -> None:
    """Build one SQLite oews.db from BLS data (flat files, all-data spreadsheet, or an old oews.db).

    Writes a temp file beside --out, validates it, then renames it over --out; on any
    error nothing is left behind and the message names the file, line and field.
    Changes nothing on the cluster.

    Example:  oewsctl db build --from bls-oe-may2025/ --from all_data_M_2024.xlsx --out oews.db
    """
    from oews_api.builder import BuildError, build_database

    opts = options(ctx)
    if opts.dry_run:
        _print_build_plan(sources, out, replace_year)
        return
    with _progress_bar(opts.output == "text" and interactive()) as progress:
        try:
            summary = build_database(sources, out, replace_year=replace_year, progress=progress)
        except BuildError as exc:
            raise _as_cli_error(exc) from None
    if opts.output == "json":
        out_console.print_json(json.dumps(summary.as_dict()))
        return
    years = ", ".join(map(str, summary.years))
    skipped = f"; skipped {summary.skipped:,} ownership-only rows" if summary.skipped else ""
    out_console.print(
        f"built {summary.out} ({summary.size / 1e6:.1f} MB): years {years}, {summary.rows:,} estimates, "
        f"{summary.counts['areas']:,} areas, {summary.counts['occupations']:,} occupations in {summary.seconds:.1f}s{skipped}",
        markup=False,
    )
    out_console.print(f"sha256 {summary.sha256}", markup=False)


def _print_build_plan(sources: list[Path], out: Path, replace_year: bool) -> None:
    """--dry-run: open the inputs (headers and mapping files only) and say which year comes from where."""
    from oews_api.builder import BuildError, plan_releases

    try:
        releases = plan_releases(sources, replace_year=replace_year)
    except BuildError as exc:
        raise _as_cli_error(exc) from None
    err_console.print(f"Plan for db build ({len(releases)} releases, nothing changed):", markup=False)
    for release in releases:
        err_console.print(f"  {release.year} ({release.description}) from {release.origin} [{release.files[0].kind}]", markup=False)
    err_console.print(f"  then validate and write {out}", markup=False)


@db_app.command("validate")
def validate(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The oews.db to check.", show_default=False)],
) -> None:
    """Check that a database file is a usable oews.db; exit 0 only if it is.

    Runs PRAGMA integrity_check, checks the schema version, tables and indexes, that at
    least one release and the national All Occupations row exist, and that published
    percentiles are in order. Prints one line per problem. Reads only; changes nothing.

    Example:  oewsctl db validate oews.db   (or -o json for scripts)
    """
    from oews_api.builder.validate import validate_database

    if not file.exists():
        raise UsageError(f"{file}: no such file", "pass the path of an oews.db, e.g. one written by `oewsctl db build`")
    report = validate_database(file)
    if options(ctx).output == "json":
        out_console.print_json(json.dumps(report.as_dict()))
    elif report.ok:
        facts = report.facts
        years = ", ".join(str(y) for y in facts["years"])
        out_console.print(
            f"ok: {file} — schema v{facts['schema_version']}, years {years}, {facts['rows']['estimates']:,} estimates, "
            f"{facts['rows']['areas']:,} areas, {facts['rows']['occupations']:,} occupations, sha256 {facts['sha256']}",
            markup=False,
        )
    else:
        for problem in report.problems:
            err_console.print(f"problem: {problem}", markup=False)
    if not report.ok:
        raise typer.Exit(1)


# -- releases across the DB nodes (oewsctl.runbooks.database) ------------------------------------------

FileArg = Annotated[Path, typer.Argument(help="The oews.db to ship (validated locally first).", show_default=False)]
ForceOpt = Annotated[bool, typer.Option("--force", help="Resend to nodes that already hold a file with the same SHA-256.")]


@db_app.command("push")
def push(ctx: typer.Context, file: FileArg, force: ForceOpt = False) -> None:
    """Copy a database to every DB node (label oews/db=true) and switch them to it; pods are not restarted.

    Validates FILE locally (an invalid file touches no node), checks free disk on each node,
    uploads to .oews.db.incoming beside database.path and verifies its SHA-256 there (mode 0444) on
    ALL nodes before switching ANY; then on each node keeps the live file as oews.db.v<N> (newest
    database.keep_versions kept) and renames the new one over it (atomic). Nodes already holding
    the same SHA-256 are skipped. Running pods keep the old file open until restarted: use `db update`.
    If a switch fails after other nodes switched, the error names both groups: fix that node and
    run the same command again (switched nodes are skipped).

    Example:  oewsctl db push oews.db        (oewsctl --dry-run db push oews.db shows the plan)
    """
    from oewsctl.runbooks.database import PushOptions, push_plan, validate_local

    run = run_context(ctx)
    assert run.config is not None
    new = validate_local(file)
    try:
        run_plan(push_plan(run.config, file, new, PushOptions(force=force)), run)
    finally:
        run.close()


@db_app.command("update")
def update(ctx: typer.Context, file: FileArg, force: ForceOpt = False) -> None:
    """The release command: `db push` + rolling restart + check every pod serves the new file.

    After the push it restarts the oews-api pods (kubectl rollout restart semantics), waits for the
    rollout, then asks each ready pod's /health (through the API server's pod proxy) for the
    database SHA-256; if a pod still serves another file it names the pod and what it serves.

    Example:  oewsctl db update oews.db
    """
    from oewsctl.runbooks.database import PushOptions, update_plan, validate_local

    run = run_context(ctx)
    assert run.config is not None
    new = validate_local(file)
    try:
        run_plan(update_plan(run.config, file, new, PushOptions(force=force)), run)
    finally:
        run.close()


@db_app.command("rollback")
def rollback(
    ctx: typer.Context,
    to: Annotated[int | None, typer.Option("--to", help="Kept version number N (oews.db.vN, see `db status`). Default: the newest kept version that differs from the live file.", show_default=False)] = None,
) -> None:
    """Switch every DB node back to a kept version (atomic rename) and restart the pods.

    The current live file is kept as a version first, so a rollback can itself be undone.
    --to N when oews.db.vN already is the live file: says so, changes nothing, restarts nothing (exit 0).

    Example:  oewsctl db rollback            oewsctl db rollback --to 2
    """
    from oewsctl.runbooks.database import rollback_plan

    run = run_context(ctx)
    assert run.config is not None
    try:
        run_plan(rollback_plan(run.config, to), run)
    finally:
        run.close()


@db_app.command("status")
def status(ctx: typer.Context) -> None:
    """Per DB node: the live file's SHA-256, size, release and kept versions; per pod: what it serves.

    Reads only (SSH to the DB nodes, /health of each pod through the API server). Example:  oewsctl db status
    """
    from oewsctl.clients.kube import Kube
    from oewsctl.runbooks.database import db_node_names, node_status_or_error, pods_serving, status_lines

    run = run_context(ctx)
    config = run.config
    assert config is not None
    try:
        nodes = [node_status_or_error(run.ssh, config, name) for name in db_node_names(config)]
    finally:
        run.close()
    try:
        kube = Kube.from_config(config)
        pods = pods_serving(kube, config)
        kube.close()
        pod_problem = None
    except OewsctlError as exc:
        pods, pod_problem = [], exc.message
    if run.options.output == "json":
        out_console.print_json(json.dumps({"nodes": nodes, "pods": [vars(p) for p in pods], "pods_error": pod_problem}))
        return
    for line in status_lines(nodes, pods):
        out_console.print(line, markup=False)
    if pod_problem:
        out_console.print(f"pods: unknown ({pod_problem})", markup=False)
