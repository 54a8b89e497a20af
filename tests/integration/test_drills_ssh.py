"""Drills that work over SSH, on the stand-in running on real sshd nodes (fixture ``standin_nodes``):
``db-swap`` (`db update` + `db rollback` under load) and ``node-loss`` (k3s and its containers
stopped on a node, then started again)."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from oews_api.sample import SAMPLE_DB

from tests.fixtures.cli import CliRunner
from tests.fixtures.standin import DB_FILE, STOPPED, StandIn
from tests.integration.test_drills import LOAD, assert_valid_png, only_report


def drill(run_cli: CliRunner, standin: StandIn, *args: str) -> Any:
    assert standin.config is not None
    return run_cli("--config", standin.config, "drill", *args, "--url", standin.url, *LOAD)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_db_swap_drill_updates_and_rolls_back_without_a_failed_request(standin_nodes: StandIn, run_cli: CliRunner,
                                                                         oewsctl_state: Path, tmp_path: Path) -> None:
    other = tmp_path / "oews-next.db"  # the same data in other bytes: answers stay the same, the SHA-256 changes
    shutil.copyfile(SAMPLE_DB, other)
    with closing(sqlite3.connect(other)) as db:
        db.execute("PRAGMA user_version = 7")
        db.commit()
    live = standin_nodes.nodes.node("machine1").path(DB_FILE)
    before = sha256(live)

    done = drill(run_cli, standin_nodes, "db-swap", str(other))

    assert done.returncode == 0, done.stderr
    folder, report = only_report(oewsctl_state)
    assert report["outcome"] == "passed" and report["load"]["summary"]["failed"] == 0
    assert [p["name"] for p in report["phases"]] == ["db update", "db rollback"]
    assert any(s["description"].startswith("check every ready pod reports sha256") and s["status"] == "ok" for s in report["steps"])
    assert_valid_png(folder / "latency.png")
    assert sha256(live) == before == sha256(standin_nodes.nodes.node("machine2").path(DB_FILE))


def test_node_loss_drill_measures_the_outage_and_the_recovery(standin_nodes: StandIn, run_cli: CliRunner, oewsctl_state: Path) -> None:
    done = drill(run_cli, standin_nodes, "node-loss", "machine2", "--down", "3s")

    assert done.returncode == 1  # requests routed to the dead machine fail until the cluster notices
    folder, report = only_report(oewsctl_state)
    assert report["outcome"] == "failed"
    lost, back = report["phases"]
    assert (lost["name"], back["name"]) == ("node lost", "node back")
    assert back["recovery_seconds"] > 0 and report["recovery_seconds"] == back["recovery_seconds"]
    summary = report["load"]["summary"]
    assert 0 < summary["failed"] < summary["requests"]
    assert lost["started_at_seconds"] <= summary["first_error"]["at_seconds"] <= summary["last_error_at_seconds"] < back["started_at_seconds"] + 1
    assert "Failed requests from" in (folder / "report.md").read_text()
    assert not standin_nodes.nodes.node("machine2").path(STOPPED).exists()
    standin_nodes.wait_settled()
    assert json.loads(run_cli("-o", "json", "drill", "report").stdout)[0]["recovery_seconds"] == back["recovery_seconds"]
