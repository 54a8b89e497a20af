"""CLI wiring for the `db` commands: build and validate an oews.db; push/update/rollback/status across the DB nodes."""

from __future__ import annotations

import atexit
import gc
import json
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from oewsctl.commands._common import options, run_context
from oewsctl.core.console import err_console, interactive, out_console
from oewsctl.core.errors import OewsctlError, UsageError
from oewsctl.core.runner import run_plan

if TYPE_CHECKING:
    from oews_api.builder import BuildError
    from oewsctl.core.context import RunContext
    from oewsctl.runbooks.database import DbPlan
    from oewsctl.runbooks.db_image import PublishPlan
    from oews_api.builder.writer import Progress as ProgressCallback

db_app = typer.Typer(
    name="db",
    help=(
        "The OEWS database file: build it from BLS downloads, check it, ship it to the pods, roll it back.\n\n"
        "database.delivery hostpath: over SSH to the DB nodes (db push); image: as an OCI artifact the pods pull (db publish).\n\n"
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

    from oewsctl.runbooks import validated

    opts = options(ctx)
    if opts.dry_run:
        _print_build_plan(sources, out, replace_year)
        return
    with _progress_bar(opts.output == "text" and interactive()) as progress:
        try:
            summary = build_database(sources, out, replace_year=replace_year, progress=progress)
        except BuildError as exc:
            raise _as_cli_error(exc) from None
    validated.remember(summary.facts, "integrity_check")  # a push of this file then skips its validation
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
    percentiles are in order. Prints one line per problem. Changes nothing on the cluster; a file
    that passes is recorded by SHA-256 in the state dir, so `db push` need not check it again.

    Example:  oewsctl db validate oews.db   (or -o json for scripts)
    """
    from oews_api.builder.validate import validate_database

    from oewsctl.runbooks import validated

    if not file.exists():
        raise UsageError(f"{file}: no such file", "pass the path of an oews.db, e.g. one written by `oewsctl db build`")
    report = validate_database(file)
    if report.ok:
        validated.remember(report.facts, "integrity_check")
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

FileArg = Annotated[Path, typer.Argument(help="The oews.db to ship (validated locally while it uploads).", show_default=False)]
ForceOpt = Annotated[bool, typer.Option("--force", help="Resend to nodes that already hold a file with the same SHA-256.")]


class Compress(str, Enum):
    auto = "auto"
    zstd = "zstd"
    none = "none"


class PublishCompress(str, Enum):
    zstd = "zstd"
    none = "none"


CompressOpt = Annotated[Compress, typer.Option("--compress", help="auto: zstd when the measured link to a node is slower than 400 Mbit/s (never on loopback); zstd; none. SSH delivery only.")]


def _run_db_plan(run: RunContext, plan: DbPlan) -> None:
    """Run a push/rollback plan; Ctrl-C ends like any failure: staged files removed, nodes named."""
    try:
        run_plan(plan, run)
    except KeyboardInterrupt:
        raise plan.interrupted(run) from None
    finally:
        run.close()
        # When the process ends, spare the interpreter's final garbage collection over every object
        # the imports made (0.07 s of a 1.3 s push, measured); the connections are closed above.
        atexit.register(gc.freeze)


def _image_mode(run: RunContext) -> bool:
    assert run.config is not None
    return run.config.database.delivery == "image"


@db_app.command("push")
def push(ctx: typer.Context, file: FileArg, force: ForceOpt = False, compress: CompressOpt = Compress.auto) -> None:
    """Copy a database to every DB node (label oews/db=true) and switch them to it; pods are not restarted.

    Checks the file header, then uploads to .oews.db.incoming beside database.path on ALL DB nodes at
    once (zstd-compressed when the link is slow, see --compress) while validating the file locally
    (skipped for a file with the SHA-256 of one `db build`, `db validate` or a push validated here);
    each node hashes, fsyncs and chmods 0444 what it wrote. Only when the validation passed and every
    node holds the right SHA-256 does it switch, all nodes at once: keep the live file as oews.db.v<N>
    (newest database.keep_versions kept), rename the new one over it (atomic) and write the ledger.
    Nodes already holding the same SHA-256 are skipped. Running pods keep the old file open until
    restarted: use `db update`. If a switch fails on some nodes while others switched (or Ctrl-C), the
    error names both groups: fix that node and run the same command again (switched nodes are skipped).
    With database.delivery: image there are no DB nodes: use `db publish` / `db update`.

    Example:  oewsctl db push oews.db        (oewsctl --dry-run db push oews.db shows the plan)
    """
    from oewsctl.runbooks.database import PushOptions, precheck_local, push_plan

    run = run_context(ctx)
    assert run.config is not None
    if _image_mode(run):
        raise UsageError("database.delivery is image: the pods pull the database from the registry, no node holds a copy",
                         hint=f"publish it and switch the pods: oewsctl db update {file}")
    precheck_local(file)
    _run_db_plan(run, push_plan(run.config, file, None, PushOptions(force=force, compress=compress.value)))  # type: ignore[arg-type]


@db_app.command("update")
def update(ctx: typer.Context, file: FileArg, force: ForceOpt = False, compress: CompressOpt = Compress.auto) -> None:
    """The release command: ship the database, switch every API pod to it, check each pod serves it.

    database.delivery hostpath: `db push`, then restart the oews-api pods (kubectl rollout restart
    semantics), wait for the rollout, then ask each ready pod's /health (through the API server's pod
    proxy) for the database SHA-256; a pod still serving another file is named with what it serves.
    database.delivery image: `db publish`, then point the Deployment's fetch-db init container at the
    new artifact digest (a new revision: `oewsctl rollout undo` goes back to the previous release),
    wait for the rollout, and check every pod's /health the same way.

    Example:  oewsctl db update oews.db
    """
    run = run_context(ctx)
    assert run.config is not None
    if _image_mode(run):
        from oewsctl.runbooks.database import validated_facts
        from oewsctl.runbooks.db_image import update_image_plan

        _run_publish(run, update_image_plan(run.config, file, validated_facts(file)))
        return
    from oewsctl.runbooks.database import PushOptions, precheck_local, update_plan

    precheck_local(file)
    _run_db_plan(run, update_plan(run.config, file, None, PushOptions(force=force, compress=compress.value)))  # type: ignore[arg-type]


@db_app.command("rollback")
def rollback(
    ctx: typer.Context,
    to: Annotated[int | None, typer.Option("--to", help="hostpath: kept version number N (oews.db.vN); image: Deployment revision N. See `db status`. Default: the newest one that differs from the live database.", show_default=False)] = None,
) -> None:
    """Switch every API pod back to an earlier database, keeping the current one for a later roll-forward.

    hostpath: every DB node goes back to a kept version (atomic rename; the live file is kept as a
    version first), then the pods restart. --to N when oews.db.vN already is the live file: says so,
    changes nothing (exit 0).  image: the Deployment's database reference goes back to the newest
    earlier revision with another database (or revision --to N), a new rollout; image and settings stay.

    Example:  oewsctl db rollback            oewsctl db rollback --to 2
    """
    run = run_context(ctx)
    assert run.config is not None
    if _image_mode(run):
        from oewsctl.runbooks.db_image import rollback_image_plan

        try:
            run_plan(rollback_image_plan(run.config, to), run)
        finally:
            run.close()
        return
    from oewsctl.runbooks.database import rollback_plan

    _run_db_plan(run, rollback_plan(run.config, to))


@db_app.command("publish")
def publish(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The oews.db to publish (fully validated first).", show_default=False)],
    tag: Annotated[str | None, typer.Option("--tag", help="Tag in the artifact repository. Default: <release>-<first 12 hex of the SHA-256>, e.g. may-2025-728c973c4c2d.", show_default=False)] = None,
    compress: Annotated[PublishCompress, typer.Option("--compress", help="zstd (level 3: the May 2025 file goes from 64 to 18 MiB) or none.")] = PublishCompress.zstd,
) -> None:
    """Push a database to the registry as an OCI artifact; print its reference REGISTRY/REPO@sha256:...

    The repository is app.image's plus "-db" (ghcr.io/you/oews-api -> ghcr.io/you/oews-api-db),
    so the same credentials push it ($GHCR_TOKEN or docker login) and the same pull Secret reads it.
    One layer (the SQLite file, zstd-compressed by default) and a config naming the release, SHA-256,
    size, row counts and who built it. Blobs already in the registry are not sent again. The
    reference is recorded in the oewsctl state dir: `render`/`deploy` with database.delivery: image
    use it for the fetch-db init container. Changes nothing in the cluster (`db update` does).

    Example:  oewsctl db publish oews.db   ->  ghcr.io/you/oews-api-db@sha256:3f5c...
    """
    from oewsctl.runbooks.database import validated_facts
    from oewsctl.runbooks.db_image import publish_plan

    run = run_context(ctx)
    assert run.config is not None
    plan = publish_plan(run.config, file, validated_facts(file), tag=tag, compress=compress is PublishCompress.zstd)
    _run_publish(run, plan)
    if plan.ref and run.options.output == "text":
        out_console.print(plan.ref, markup=False, highlight=False)


def _run_publish(run: RunContext, plan: PublishPlan) -> None:
    """Run a publish (or image-mode update) plan; the packed layer is removed whatever happens."""
    try:
        run_plan(plan, run)
    finally:
        plan.cleanup()
        run.close()


@db_app.command("status")
def status(ctx: typer.Context) -> None:
    """Which database each API pod serves; per DB node (hostpath) or per Deployment revision (image) what is kept.

    hostpath: per DB node the live file's SHA-256, size, release and kept versions (SSH).
    image: the artifact the Deployment fetches, the database of each revision (for `db rollback --to N`).
    Then, per pod, the SHA-256 and release its /health reports (and, with image, the artifact it pulled).
    Reads only. Example:  oewsctl db status
    """
    from oewsctl.clients.kube import Kube
    from oewsctl.runbooks.database import db_node_names, node_status_or_error, pods_serving, status_lines

    run = run_context(ctx)
    config = run.config
    assert config is not None
    if config.database.delivery == "image":
        from oewsctl.runbooks.db_image import image_status, image_status_lines

        kube = Kube.from_config(config)
        try:
            report = image_status(kube, config)
        finally:
            kube.close()
        if run.options.output == "json":
            out_console.print_json(json.dumps(report))
        else:
            for line in image_status_lines(report):
                out_console.print(line, markup=False)
        return
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
