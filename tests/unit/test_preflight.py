"""Check before change, at the runner: a plan's ``needs`` are checked before its first step runs,
listed by a dry run, and a failed check keeps its exit code (a missing kubeconfig is still exit 2).
End to end against sshd nodes: tests/integration/test_check_before_change.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from oewsctl.configuration.loading import parse_config
from oewsctl.core.context import Options, RunContext
from oewsctl.core.errors import OewsctlError
from oewsctl.core.plan import Needs, Plan, Step
from oewsctl.core.runner import run_plan
from tests.conftest import DATA_DIR


def _ctx(tmp_path: Path, **options: object) -> RunContext:
    data = yaml.safe_load((DATA_DIR / "deploy" / "oewsctl.yaml").read_text())
    data["cluster"]["kubeconfig"] = str(tmp_path / "absent")
    return RunContext(config=parse_config(yaml.safe_dump(data)), options=Options(**options))  # type: ignore[arg-type]


def _plan(ran: list[str], needs: Needs) -> Plan:
    return Plan("demo", [Step("change the world", action=lambda ctx: ran.append("changed"))], needs=needs)


def test_a_failed_check_runs_no_step_and_keeps_its_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ran: list[str] = []
    with pytest.raises(OewsctlError) as info:
        run_plan(_plan(ran, Needs(kube=True)), _ctx(tmp_path))
    assert ran == []
    assert info.value.exit_code == 2
    assert f"kubeconfig {tmp_path / 'absent'} not found" in info.value.message
    assert info.value.message.endswith("(checked before any change: nothing was changed)")
    assert "✗ check: the Kubernetes API accepts the kubeconfig's credentials" in capsys.readouterr().err


def test_every_check_fails_the_same_way_and_json_says_nothing_ran(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ran: list[str] = []

    def unreachable_vault() -> object:
        raise OewsctlError("Key Vault https://v.vault.azure.net is unreachable")

    with pytest.raises(OewsctlError, match="Key Vault .* unreachable .*nothing was changed"):
        run_plan(_plan(ran, Needs(keyvault=unreachable_vault)), _ctx(tmp_path, output="json"))
    doc = json.loads(capsys.readouterr().out)
    assert ran == [] and doc["ok"] is False and [s["status"] for s in doc["steps"]] == ["not run"]


def test_dry_run_lists_the_checks_and_makes_none(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ran: list[str] = []
    needs = Needs(kube=True, nodes=("machine1", "machine2"), registry="ghcr.io/example/oews-api:1.0")
    run_plan(_plan(ran, needs), _ctx(tmp_path, dry_run=True))
    err = capsys.readouterr().err
    assert err.startswith("Checked first, before any change:\n")
    assert "  the Kubernetes API accepts the kubeconfig's credentials" in err
    assert "  machine1: SSH login and passwordless sudo" in err and "  machine2: SSH login and passwordless sudo" in err
    assert "  the registry accepts the credentials for ghcr.io/example/oews-api:1.0" in err
    run_plan(_plan(ran, needs), _ctx(tmp_path, dry_run=True, output="json"))
    doc = json.loads(capsys.readouterr().out)
    assert [c["node"] for c in doc["checks"]] == [None, "machine1", "machine2", None]
    assert ran == []


def test_checks_pass_then_the_steps_run(tmp_path: Path) -> None:
    ran: list[str] = []
    vault_listed: list[str] = []

    class Vault:
        host = "v.vault.azure.net"

        def list(self) -> list[str]:
            vault_listed.append("listed")
            return []

    run_plan(_plan(ran, Needs(keyvault=Vault)), _ctx(tmp_path))
    assert vault_listed == ["listed"] and ran == ["changed"]
