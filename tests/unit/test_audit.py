"""The audit log: one line per state-changing run, with nothing secret in it."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from oewsctl.core.audit import audit_path, redact_argv, withhold_secret_build_args
from oewsctl.core.context import Options, RunContext
from oewsctl.core.errors import LockHeldError, UsageError
from oewsctl.core.lock import STALE_SECONDS, lock_path
from oewsctl.core.plan import Plan, Step
from oewsctl.core.runner import StepFailed, run_plan


def test_build_arg_and_secret_looking_option_values_are_withheld() -> None:
    argv = ["image", "build", "--build-arg", "GHCR_TOKEN=s3cr3t", "--build-arg=PIP_INDEX=https://u:pw@x", "--api-key", "k3y", "--token=t0k", "--tag", "v1"]
    redacted = redact_argv(argv)
    assert not any(secret in " ".join(redacted) for secret in ("s3cr3t", "u:pw@x", "k3y", "t0k"))
    assert redacted[:4] == ["image", "build", "--build-arg", "GHCR_TOKEN=<redacted>"]
    assert redacted[-2:] == ["--tag", "v1"]


def test_the_ping_url_holds_the_checks_key_and_is_withheld() -> None:
    key = "0f8e2a86-3f61-4a8e-9d53-5b0c2c7e1a11"
    redacted = redact_argv(["backup", "run", "--ping-url", f"https://hc-ping.com/{key}", "--quiet"])
    assert redacted == ["backup", "run", "--ping-url", "<redacted>", "--quiet"]
    assert redact_argv(["secrets", "status", "--reconcile", f"--ping-url=https://hc-ping.com/{key}"])[-1] == "--ping-url=<redacted>"
    # a plan shows build-arg values unless the name looks secret: a ping key does
    assert withhold_secret_build_args(["docker", "build", "--build-arg", f"HC_PING_KEY={key}"])[-1] == "HC_PING_KEY=<redacted>"


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_interrupted_run_is_audited_and_releases_the_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["oewsctl", "db", "push", "oews.db"])

    def interrupt(_: RunContext) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_plan(Plan("db push", [Step("upload", node="m1", action=interrupt)]), RunContext(config=None, options=Options()))
    (line,) = _lines(audit_path())
    assert line["result"] == "interrupted" and line["command"] == "db push" and line["argv"] == ["db", "push", "oews.db"]
    run_plan(Plan("db push", [Step("upload", action=lambda c: None)]), RunContext(config=None, options=Options()))  # lock free again
    assert [entry["result"] for entry in _lines(audit_path())] == ["interrupted", "ok"]


def test_usage_error_inside_a_step_keeps_exit_code_2() -> None:
    def bad_input(_: RunContext) -> None:
        raise UsageError("cannot read ./k3s-airgap/k3s: no such file", hint="check --airgap DIR")

    with pytest.raises(StepFailed) as info:
        run_plan(Plan("cluster install", [Step("upload k3s", node="m1", action=bad_input)]), RunContext(config=None, options=Options()))
    assert info.value.exit_code == 2
    assert "m1: upload k3s failed: cannot read ./k3s-airgap/k3s" in info.value.message


def test_a_lock_untouched_for_the_stale_age_is_called_probably_gone() -> None:
    """The same age that lets `backup run` prune a dead run's .ID.partial folder."""
    path = lock_path("local")
    path.write_text(json.dumps({"holder": "ops@laptop", "pid": 4242, "command": "deploy", "started": "2026-11-30T03:15:00+0000"}))
    plan = Plan("deploy", [Step("apply", action=lambda c: None)])
    with pytest.raises(LockHeldError) as fresh:
        run_plan(plan, RunContext(config=None, options=Options()))
    assert "wait for it to finish" in (fresh.value.hint or "")
    then = time.time() - STALE_SECONDS - 60
    os.utime(path, (then, then))
    with pytest.raises(LockHeldError) as stale:
        run_plan(plan, RunContext(config=None, options=Options()))
    assert (stale.value.hint or "").startswith("it is over 6 h old, so that run is probably gone: re-run with --break-lock")
    path.unlink()
