"""CLI wiring for `backup run | list | verify` and the top-level `restore` (logic in oewsctl.runbooks.backup)."""

from __future__ import annotations

import json
import shutil
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from oewsctl.commands._common import options, run_context
from oewsctl.core.console import err_console, out_console
from oewsctl.core.context import RunContext
from oewsctl.core.errors import LockHeldError
from oewsctl.core.runner import run_plan

CRON_LINE = (
    "15 3 * * *  OEWSCTL_CONFIG=/home/ops/oewsctl.yaml /home/ops/.local/bin/oewsctl --output json backup run --quiet"
    " >> /var/log/oewsctl-backup.jsonl 2>&1"
)
"""The crontab line README shows (tests/unit/test_backup.py keeps the two the same)."""

backup_app = typer.Typer(
    name="backup",
    help=f"Back up the database, the cluster state and the inventory; list and verify backups. Made for cron:\n\n  {CRON_LINE}",
    no_args_is_help=True,
    rich_markup_mode="rich",
)

DestOpt = Annotated[Path | None, typer.Option("--dest", help="Backup folder (default: backup.dest in oewsctl.yaml).", show_default=False)]


def register(app: typer.Typer) -> None:
    """Add the `backup` group and the top-level `restore` command."""
    app.add_typer(backup_app, name="backup")
    app.command("restore")(restore)


@contextmanager
def _quiet(enabled: bool) -> Iterator[None]:
    """--quiet: no step lines on stderr; errors still reach the operator (printed after this exits)."""
    before = err_console.quiet
    err_console.quiet = enabled or before
    try:
        yield
    finally:
        err_console.quiet = before


@contextmanager
def _closing(run: RunContext) -> Iterator[RunContext]:
    try:
        yield run
    finally:
        run.close()


@contextmanager
def _sigterm_as_exit() -> Iterator[None]:
    """SIGTERM (cron's `timeout`, systemd stop) raises SystemExit(143) so cleanup and the lock release run.

    Python's default for SIGTERM is to die on the spot, leaving a full database copy in .ID.partial.
    """
    before = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


@backup_app.command("run")
def run_backup(
    ctx: typer.Context,
    dest: DestOpt = None,
    keep: Annotated[int | None, typer.Option("--keep", help="Keep the newest N backups (default: backup.keep).", show_default=False)] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors (for cron).")] = False,
    ping_url: Annotated[str | None, typer.Option("--ping-url", help="Healthchecks-style URL: pinged <url>/start, <url> on success, <url>/fail with the error line (default: backup.ping_url).", show_default=False)] = None,
) -> None:
    """Write one backup folder: the database (from a DB node), the cluster state, oewsctl.yaml, manifest.json.

    Written as DEST/.ID.partial, verified (every SHA-256, the database, the manifests), then renamed
    to DEST/ID; only then are backups beyond --keep pruned (and .ID.partial folders a killed run left,
    once untouched for 6 hours: never another backup's that is still being written). A failed, interrupted (Ctrl-C) or terminated (SIGTERM, e.g. cron's `timeout`) run removes
    its .ID.partial folder. Never writes Secret values. Takes the cluster lock: a second run while
    one is going exits 3 at once. Exit 0 ok, 1 failed or interrupted, 143 terminated.
    With --ping-url (or backup.ping_url) a dead-man's switch hears of every run; a ping that fails
    only prints a warning, never fails or holds up the backup.

    Example:  oewsctl backup run --dest /mnt/backup/oews --keep 6
    """
    from oewsctl.clients.healthchecks import checked_option, pinged
    from oewsctl.runbooks.backup import backup_plan, options_for

    ping_url = checked_option(ping_url)
    opts = options(ctx)
    with _closing(run_context(ctx)) as run:
        assert run.config is not None
        plan, work = backup_plan(run.config, options_for(run.config, opts.config_path, dest, keep))
        url = None if opts.dry_run else ping_url or run.config.backup.ping_url
        with _sigterm_as_exit(), pinged(url, _warn), _quiet(quiet):  # ping warnings show even with --quiet
            try:
                run_plan(plan, run)
            except LockHeldError:
                raise  # another run holds the lock and may be writing a folder of the same name
            except BaseException:  # failed, Ctrl-C, or cron's `timeout` (SIGTERM): no half backup left
                shutil.rmtree(work, ignore_errors=True)
                raise


def _warn(line: str) -> None:
    err_console.print(line, markup=False, highlight=False)


@backup_app.command("list")
def list_command(ctx: typer.Context, dest: DestOpt = None) -> None:
    """List complete backups, oldest first: id, time, size, database release and SHA-256. Reads only.

    Example:  oewsctl backup list
    """
    from oewsctl.runbooks.backup import backup_dest, list_backups

    run = run_context(ctx)
    assert run.config is not None
    folder = backup_dest(run.config, dest)
    found = [b.summary() for b in list_backups(folder)]
    if run.options.output == "json":
        out_console.print_json(json.dumps(found))
        return
    if not found:
        err_console.print(f"no backup in {folder} (run `oewsctl backup run`)", markup=False)
    for item in found:
        out_console.print(f"{item['id']}  {item['time']}  {item['size'] / 1048576:8.1f} MiB  {item['release']}  sha256 {str(item['database_sha256'])[:12]}…  {item['objects']} objects", markup=False)


@backup_app.command("verify")
def verify_command(ctx: typer.Context, backup_id: Annotated[str, typer.Argument(metavar="ID", help="Backup id (see `backup list`).")], dest: DestOpt = None) -> None:
    """Re-hash every file of a backup, open its database with `db validate`, parse its manifests; report
    files manifest.json does not list and saved objects of kinds oewsctl never renders. Exit 1 on any problem.

    Example:  oewsctl backup verify 20261126T031500Z
    """
    from oewsctl.runbooks.backup import backup_dest, find_backup, verify

    run = run_context(ctx)
    assert run.config is not None
    found = find_backup(backup_dest(run.config, dest), backup_id)
    problems = verify(found.path)
    if run.options.output == "json":
        out_console.print_json(json.dumps({"id": found.id, "path": str(found.path), "ok": not problems, "problems": problems}))
    elif problems:
        for problem in problems:
            err_console.print(f"problem: {problem}", markup=False)
    else:
        out_console.print(f"ok: backup {found.id} in {found.path} — {len(found.manifest['files'])} files verified", markup=False)
    if problems:
        raise typer.Exit(1)


def restore(
    ctx: typer.Context,
    backup_id: Annotated[str, typer.Argument(metavar="ID", help="Backup id (see `oewsctl backup list`).")],
    node: Annotated[str | None, typer.Option("--node", help="Push the database to this DB node only (e.g. the rebuilt one).", show_default=False)] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace live objects with the saved ones (default: leave existing objects alone).")] = False,
    dest: DestOpt = None,
) -> None:
    """Bring a backup back onto the cluster, e.g. after a machine was rebuilt and `cluster install` ran.

    Verifies the backup (any problem `backup verify` reports stops it before a change; only the state
    files manifest.json lists, of kinds oewsctl renders, are applied), pushes its database to the DB nodes (as `db push`: staged, verified, atomic
    switch), recreates the saved objects that are missing (existing ones are left alone unless
    --overwrite), waits for the rollout and checks every pod serves the saved database on /health.
    Secret values are not in backups: ESO syncs them back from Key Vault, or run `oewsctl secrets set`.
    Prints the DNS change still needed when the server's address changed. --dry-run shows the plan.

    Example:  oewsctl --dry-run restore 20261126T031500Z    then    oewsctl restore 20261126T031500Z
    """
    from oewsctl.configuration.loading import parse_config
    from oewsctl.runbooks.backup import backup_dest, dns_change, find_backup, restore_plan

    with _closing(run_context(ctx)) as run:
        config = run.config
        assert config is not None
        found = find_backup(backup_dest(config, dest), backup_id)
        run_plan(restore_plan(config, found, node=node, overwrite=overwrite), run)
        missing = [s["name"] for s in found.manifest.get("secrets", [])]
        if missing and run.options.output == "text":
            err_console.print(f"note: Secret values are not in backups; {', '.join(missing)} must be synced by ESO or set again with `oewsctl secrets set`", markup=False)
        note = dns_change(parse_config((found.path / "oewsctl.yaml").read_text()), config)
        if note:
            err_console.print(note, markup=False)
