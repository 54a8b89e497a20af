"""CLI wiring for the `db` commands: build and validate an oews.db (push/update/rollback/status join later)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from oews_api.builder import BuildError, BuildUsageError, build_database
from oews_api.builder.validate import validate_database
from oews_api.builder.writer import Progress as ProgressCallback
from oewsctl.commands._common import options
from oewsctl.console import err_console, interactive, out_console
from oewsctl.errors import OewsctlError, UsageError

db_app = typer.Typer(
    name="db",
    help=(
        "The OEWS database file: build it from BLS downloads, check it, and (later) ship it to the cluster.\n\n"
        "Start here each BLS release:  oewsctl db build --from oesm25all/ --out oews.db  then  oewsctl db validate oews.db"
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
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn(), console=err_console, transient=True) as bar:
        tasks: dict[str, int] = {}

        def update(label: str, done: int, total: int) -> None:
            if label not in tasks:
                tasks[label] = bar.add_task(f"reading {label}", total=total)
            bar.update(tasks[label], completed=done)

        yield update


def _as_cli_error(exc: BuildError) -> OewsctlError:
    kind = UsageError if isinstance(exc, BuildUsageError) else OewsctlError
    return kind(exc.message, exc.hint)


@db_app.command("build")
def build(
    ctx: typer.Context,
    sources: Annotated[list[Path], typer.Option("--from", "-f", help="BLS flat-file directory, all-data .xlsx/.csv, or an existing oews.db (table oews_data). Repeat to merge years.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Database file to write. Replaced only after the new one validated.", show_default=False)],
    replace_year: Annotated[bool, typer.Option("--replace-year", help="When two --from hold the same year, take it from the later one instead of failing.")] = False,
) -> None:
    """Build one SQLite oews.db from BLS data (flat files, all-data spreadsheet, or an old oews.db).

    Writes a temp file beside --out, validates it, then renames it over --out; on any
    error nothing is left behind and the message names the file, line and field.
    Changes nothing on the cluster.

    Example:  oewsctl db build --from bls-oe-may2025/ --from all_data_M_2024.xlsx --out oews.db
    """
    opts = options(ctx)
    if opts.dry_run:
        err_console.print(f"would build {out} from: {', '.join(map(str, sources))} (nothing changed)", markup=False)
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
