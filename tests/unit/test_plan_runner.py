"""The plan runner: dry run prints and changes nothing; failures stop the plan with context."""

from __future__ import annotations

import json

import pytest

from oewsctl.core.context import Options, RunContext
from oewsctl.core.errors import LockHeldError
from oewsctl.core.lock import cluster_lock
from oewsctl.core.plan import Plan, Step
from oewsctl.core.runner import StepFailed, run_plan


def _ctx(**kw: object) -> RunContext:
    return RunContext(config=None, options=Options(**kw))  # type: ignore[arg-type]


def test_dry_run_runs_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    touched: list[str] = []
    plan = Plan("demo", [Step("write the file", node="machine1", action=lambda c: touched.append("x"), detail="PUT /x")])
    result = run_plan(plan, _ctx(dry_run=True))
    assert touched == []
    assert result.records[0].status == "planned"
    assert "machine1: write the file" in capsys.readouterr().err


def test_failure_stops_and_names_node_and_hint() -> None:
    ran: list[int] = []

    def boom(_: RunContext) -> None:
        raise RuntimeError("disk full")

    plan = Plan("demo", [
        Step("first", action=lambda c: ran.append(1)),
        Step("upload", node="machine2", action=boom, remediation="free space on machine2"),
        Step("never", action=lambda c: ran.append(3)),
    ])
    with pytest.raises(StepFailed) as info:
        run_plan(plan, _ctx())
    assert ran == [1]
    assert "machine2: upload failed: disk full" in info.value.message
    assert info.value.hint == "free space on machine2"


def test_json_output_and_skip(capsys: pytest.CaptureFixture[str]) -> None:
    plan = Plan("demo", [Step("install", node="m1", action=lambda c: "done", skip_if=lambda c: "already installed (v1)")])
    run_plan(plan, _ctx(output="json"))
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is True and doc["changed"] is False
    assert doc["steps"][0]["status"] == "unchanged"
    assert doc["steps"][0]["message"] == "already installed (v1)"


def test_second_run_exits_3_while_lock_held() -> None:
    ctx = _ctx()
    with cluster_lock(ctx, "db push"):
        with pytest.raises(LockHeldError) as info:
            run_plan(Plan("backup run", [Step("x", action=lambda c: None)]), _ctx())
    assert info.value.exit_code == 3
    assert "db push" in info.value.message
    run_plan(Plan("backup run", [Step("x", action=lambda c: None)]), _ctx())  # released afterwards
