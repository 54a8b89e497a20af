"""`db push | update | rollback` as data, and the node-side scripts run by a real shell on a temp dir.

The shell scripts (INSPECT, SWITCH, STAGE_VERSION) are what the nodes run; executing them with
/bin/sh here checks the version bookkeeping (keep, prune, no duplicate of a rolled-back file)
without SSH. The end-to-end behaviour over SSH is in tests/integration/test_db_push*.py.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from oewsctl.configuration.loading import load_config
from oewsctl.core.errors import UsageError
from oewsctl.runbooks.database import INSPECT, STAGE_VERSION, SWITCH, Layout, PushOptions, Release, parse_inspect, push_plan, update_plan
from tests.conftest import DATA_DIR

CONFIG = DATA_DIR / "deploy" / "oewsctl.yaml"
NEW = Release("ab" * 32, 5 * 1048576, "May 2025", [2025])


def sh(script: str, *args: str) -> str:
    return subprocess.run(["sh", "-c", script, "sh", *args], capture_output=True, text=True, check=True).stdout


def test_push_plan_uploads_to_every_db_node_before_switching_any_and_records_last() -> None:
    plan = push_plan(load_config(CONFIG), Path("oews.db"), NEW)
    assert [(s.node, s.description.split(" ")[0]) for s in plan.steps] == [
        ("machine1", "check"), ("machine2", "check"), ("machine1", "upload"), ("machine2", "upload"), ("machine1", "switch"), ("machine2", "switch"),
        (None, "record"),  # ledgers only once every rename is done: a ledger failure never stops a switch
    ]
    assert plan.steps[2].description == "upload oews.db (5.0 MiB) → /opt/k3s/storage/.oews.db.incoming"
    assert plan.mutating


def test_update_plan_adds_restart_wait_and_pod_check() -> None:
    plan = update_plan(load_config(CONFIG), Path("oews.db"), NEW)
    tail = [s.description for s in plan.steps[7:]]
    assert tail[0].startswith("restart the pods of deployment oews/oews-api")
    assert tail[1] == "wait for the rollout of deployment oews/oews-api"
    assert tail[2] == f"check every ready pod reports sha256 {NEW.sha256[:12]}… on /health"


def test_push_to_a_node_that_is_not_a_db_node_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="'raspberrypi' is not a DB node"):
        push_plan(load_config(CONFIG), Path("oews.db"), NEW, PushOptions(node="raspberrypi"))


def test_invalid_file_is_refused_with_exit_2_and_a_dry_run_touches_nothing(oewsctl_proc, tmp_path: Path, sample_db: Path) -> None:  # type: ignore[no-untyped-def]
    junk = tmp_path / "oews.db"
    junk.write_bytes(b"not a database at all")
    refused = oewsctl_proc("--config", CONFIG, "db", "push", junk)
    assert refused.returncode == 2
    assert "is not a usable oews.db, no node was touched" in refused.stderr
    plan = oewsctl_proc("--config", CONFIG, "--dry-run", "--output", "json", "db", "push", sample_db)
    assert plan.returncode == 0, plan.stderr
    steps = json.loads(plan.stdout)["steps"]
    assert len(steps) == 7 and {s["status"] for s in steps} == {"planned"}


def test_node_scripts_keep_versions_prune_and_never_duplicate(tmp_path: Path) -> None:
    layout = Layout(str(tmp_path / "oews.db"))

    def push(data: bytes, keep: int = 2) -> str:
        Path(layout.staged).write_bytes(data)
        return sh(SWITCH, layout.live, layout.staged, str(keep))

    assert push(b"one") == ""  # first file: nothing to keep
    assert push(b"two") == "kept 1\n"
    assert push(b"three") == "kept 2\n"
    assert push(b"four") == "kept 3\npruned 1\n"  # oldest pruned only after the switch
    assert Path(layout.live).read_bytes() == b"four"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["oews.db", "oews.db.v2", "oews.db.v3"]

    sh(STAGE_VERSION, layout.version(2), layout.staged)  # roll back to v2 ("two")
    assert sh(SWITCH, layout.live, layout.staged, "2") == "kept 4\npruned 2\n"
    assert Path(layout.live).read_bytes() == b"two"  # v2's bytes live on in the live file
    assert push(b"five") == "kept 5\npruned 3\n"  # the rolled-back file was not yet a version: kept once

    state = parse_inspect("m1", sh(INSPECT, layout.live))
    assert [v.number for v in state.versions] == [4, 5]
    assert state.live_size == 4 and state.avail > 0
    assert state.previous() is not None and state.previous().number == 5  # type: ignore[union-attr]


def test_switch_without_a_staged_file_fails_and_keeps_the_live_file(tmp_path: Path) -> None:
    layout = Layout(str(tmp_path / "oews.db"))
    Path(layout.live).write_bytes(b"live")
    result = subprocess.run(["sh", "-c", SWITCH, "sh", layout.live, layout.staged, "3"], capture_output=True, text=True, check=False)
    assert result.returncode == 66 and "the upload did not finish" in result.stderr
    assert Path(layout.live).read_bytes() == b"live" and sorted(p.name for p in tmp_path.iterdir()) == ["oews.db"]


def test_inspect_reads_the_ledger_and_ignores_a_broken_one() -> None:
    text = "avail_kib 10\nlive 5 100\nversion 2 6 90 1700000000\nledger\n" + json.dumps(
        {"live": {"sha256": "a" * 64, "size": 100, "release": "May 2025", "years": [2025]}, "versions": {"2": {"sha256": "b" * 64, "size": 90}}})
    state = parse_inspect("m1", text)
    assert state.avail == 10240 and state.ledger_live is not None and state.ledger_live.release == "May 2025"
    assert state.release_of_version(2).sha256 == "b" * 64  # type: ignore[union-attr]
    assert parse_inspect("m1", "avail_kib 1\nledger\n{broken").ledger_live is None


def test_inspect_on_a_fresh_node_reads_only(tmp_path: Path) -> None:
    target = tmp_path / "opt" / "k3s" / "storage" / "oews.db"
    state = parse_inspect("m1", sh(INSPECT, str(target)))
    assert state.avail > 0 and state.live_inode is None and state.versions == []
    assert list(tmp_path.iterdir()) == []  # nothing created
