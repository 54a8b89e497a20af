"""Global options anywhere: ``oewsctl deploy --dry-run``, ``oewsctl doctor -o json`` and
``oewsctl cluster uninstall --node raspberrypi --yes`` mean what the same flags mean before the
command (as kubectl and helm do); every ``--help`` lists them, and flags print as flags."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from oewsctl.cli import app
from oewsctl.commands._common import options
from oewsctl.core.context import Options
from tests.conftest import DATA_DIR
from tests.fixtures.cli import CliRunner, leaf_commands

EXAMPLE = DATA_DIR / "deploy" / "oewsctl.yaml"
GLOBALS = ["-c", "/tmp/x.yaml", "--dry-run", "-y", "-o", "json", "-v", "--break-lock"]
EXPECTED = Options(config_path=Path("/tmp/x.yaml"), dry_run=True, yes=True, output="json", verbose=True, break_lock=True)


LEAVES = leaf_commands()


def _parse(argv: list[str]) -> Options:
    """Parse ``oewsctl ARGV`` down to its command, as click does before running it; the Options it set."""
    command: Any = typer.main.get_command(app)
    ctx = command.make_context("oewsctl", list(argv))
    while hasattr(command, "commands"):
        _, command, rest = command.resolve_command(ctx, [*ctx._protected_args, *ctx.args])
        ctx = command.make_context(command.name, rest, parent=ctx)
    return options(ctx)


def _placeholders(command: Any) -> list[str]:
    out = []
    for param in command.params:
        if param.required:
            out += ["X"] if param.param_type_name == "argument" else [param.opts[0], "X"]
    return out


@pytest.mark.parametrize(("path", "command"), LEAVES, ids=[" ".join(p) for p, _ in LEAVES])
def test_every_command_takes_the_global_options_before_or_after(path: tuple[str, ...], command: Any) -> None:
    args = _placeholders(command)
    assert _parse([*GLOBALS, *path, *args]) == EXPECTED
    assert _parse([*path, *args, *GLOBALS]) == EXPECTED
    assert _parse([*path, *args]) == Options()


def test_the_later_place_wins() -> None:
    assert _parse(["-o", "json", "render", "-o", "text"]).output == "text"
    assert _parse(["-c", "a.yaml", "db", "status", "--config", "b.yaml"]).config_path == Path("b.yaml")


@pytest.mark.parametrize(("path", "command"), LEAVES, ids=[" ".join(p) for p, _ in LEAVES])
def test_help_lists_global_options_and_prints_flags_as_flags(path: tuple[str, ...], command: Any, run_cli: CliRunner) -> None:
    result = run_cli(*path, "--help")
    assert result.returncode == 0, result.stderr
    assert "Global options" in result.stdout and "--dry-run" in result.stdout and "--break-lock" in result.stdout
    assert "<bool>" not in result.stdout


def test_root_help_prints_flags_as_flags(run_cli: CliRunner) -> None:
    result = run_cli("--help")
    assert result.returncode == 0 and "Global options" in result.stdout and "<bool>" not in result.stdout


def test_flags_after_the_command_take_effect(run_cli: CliRunner, tmp_path: Path) -> None:
    rendered = run_cli("render", "--only", "app", "-o", "json", "--config", EXAMPLE)
    assert rendered.returncode == 0, rendered.stderr
    assert {obj["kind"] for obj in json.loads(rendered.stdout)} >= {"Deployment", "Ingress"}

    uninstall = run_cli("cluster", "uninstall", "--node", "raspberrypi", "--yes", "--dry-run", "-c", EXAMPLE)
    assert uninstall.returncode == 0, uninstall.stderr  # --yes after the command: no confirmation asked
    assert "Plan for cluster uninstall (1 steps, nothing changed)" in uninstall.stderr and "raspberrypi" in uninstall.stderr

    data = yaml.safe_load(EXAMPLE.read_text())
    data["cluster"]["kubeconfig"] = str(tmp_path / "none")
    config = tmp_path / "oewsctl.yaml"
    config.write_text(yaml.safe_dump(data))
    planned = run_cli("deploy", "--dry-run", "-c", config)
    assert planned.returncode == 0, planned.stderr
    assert "Plan for deploy" in planned.stderr and "nothing changed" in planned.stderr
