"""`oewsctl db push | rollback | status` against real sshd DB nodes (machine1 + machine2).

What an operator notices: the live file's bytes, SHA-256 and mode on each node, the kept
versions, exit codes and the one-line errors; and that a failed push leaves every live file
byte-identical with no staged file left behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from oewsctl.clients.ssh import SSHPool
from oewsctl.runbooks.database import SWITCH
from tests.fixtures.dbnodes import DB_PATH, CliRun, DbCluster, DbFiles, sha256
from tests.fixtures.sshd import TestCluster

DB_NODES = ("machine1", "machine2")


def live(nodes: TestCluster, node: str) -> Path:
    return nodes.node(node).path(DB_PATH)


def storage_files(nodes: TestCluster, node: str) -> list[str]:
    return sorted(p.name for p in live(nodes, node).parent.iterdir())


def fail_the_rename_on(nodes: TestCluster, node: str, monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Make ``node``'s switch fail for real: just before it runs, its staged file becomes a hard link to
    the live file, so ``mv`` exits 1 with "are the same file". Returns the undo."""
    real_check = SSHPool.check

    def check(pool: SSHPool, name: str, argv: Sequence[str], *args: Any, **kwargs: Any) -> Any:
        if name == node and list(argv[:3]) == ["sh", "-c", SWITCH]:
            staged = live(nodes, node).with_name(".oews.db.incoming")
            staged.unlink()
            os.link(live(nodes, node), staged)
        return real_check(pool, name, argv, *args, **kwargs)

    monkeypatch.setattr(SSHPool, "check", check)
    return lambda: monkeypatch.setattr(SSHPool, "check", real_check)


def test_push_to_two_nodes_verifies_keeps_a_version_and_is_idempotent(db_nodes: TestCluster, db_files: DbFiles, cli: CliRun) -> None:
    first = cli(db_nodes.config_path, "db", "push", db_files.old)
    assert first.returncode == 0, first.stderr
    second = cli(db_nodes.config_path, "db", "push", db_files.new)
    assert second.returncode == 0, second.stderr
    assert "previous kept as oews.db.v1" in second.stderr
    for node in DB_NODES:
        path = live(db_nodes, node)
        assert sha256(path) == sha256(db_files.new)
        assert path.stat().st_mode & 0o777 == 0o444
        kept = path.with_name("oews.db.v1")
        assert sha256(kept) == sha256(db_files.old)
        assert storage_files(db_nodes, node) == [".oews.db.releases.json", "oews.db", "oews.db.v1"]
    assert not live(db_nodes, "machine3").exists()  # not a DB node

    again = cli(db_nodes.config_path, "db", "push", db_files.new)
    assert again.returncode == 0, again.stderr
    assert f"already serves sha256 {sha256(db_files.new)[:12]}" in again.stderr
    assert storage_files(db_nodes, "machine1") == [".oews.db.releases.json", "oews.db", "oews.db.v1"]

    status = cli(db_nodes.config_path, "--output", "json", "db", "status")
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert [n["node"] for n in report["nodes"]] == list(DB_NODES)
    for node in report["nodes"]:
        assert node["live"]["sha256"] == sha256(db_files.new)
        assert node["live"]["release"] == "May 2025"
        assert [(v["version"], v["sha256"]) for v in node["versions"]] == [(1, sha256(db_files.old))]

    db_nodes.node("machine2").stop()  # one node down: the others are still reported
    down = cli(db_nodes.config_path, "db", "status")
    assert down.returncode == 0
    assert f"machine1: /opt/k3s/storage/oews.db sha256 {sha256(db_files.new)}" in down.stdout
    assert "machine2: unknown (machine2 (oewsops@127.0.0.12" in down.stdout and "unreachable" in down.stdout


def test_keep_versions_prunes_the_oldest_only_after_the_switch(db_nodes: TestCluster, db_files: DbFiles, sample_db: Path, cli: CliRun, tmp_path: Path) -> None:
    text = db_nodes.config_path.read_text().replace("path: /opt/k3s/storage/oews.db", "path: /opt/k3s/storage/oews.db\n  keep_versions: 1")
    db_nodes.config_path.write_text(text)
    for source in (db_files.old, db_files.new, sample_db):
        result = cli(db_nodes.config_path, "db", "push", source)
        assert result.returncode == 0, result.stderr
    assert storage_files(db_nodes, "machine2") == [".oews.db.releases.json", "oews.db", "oews.db.v2"]
    assert sha256(live(db_nodes, "machine2").with_name("oews.db.v2")) == sha256(db_files.new)
    assert sha256(live(db_nodes, "machine2")) == sha256(sample_db)


def test_truncated_database_is_refused_before_any_node_is_touched(db_nodes: TestCluster, db_files: DbFiles, cli: CliRun) -> None:
    assert cli(db_nodes.config_path, "db", "push", db_files.old).returncode == 0
    before = {n: storage_files(db_nodes, n) for n in DB_NODES}
    logins = {n: db_nodes.node(n).log.read_text().count("Connection from") for n in DB_NODES}
    result = cli(db_nodes.config_path, "db", "push", db_files.truncated)
    assert result.returncode == 2
    assert f"{db_files.truncated} is not a usable oews.db, no node was touched" in result.stderr
    assert "truncated or damaged" in result.stderr and "hint:" in result.stderr
    for node in DB_NODES:
        assert storage_files(db_nodes, node) == before[node]
        assert db_nodes.node(node).log.read_text().count("Connection from") == logins[node]  # not even contacted


def test_corrupt_database_found_while_uploading_is_never_switched_and_leaves_no_staged_file(db_nodes: TestCluster, db_files: DbFiles,
                                                                                             cli: CliRun) -> None:
    assert cli(db_nodes.config_path, "db", "push", db_files.old).returncode == 0
    result = cli(db_nodes.config_path, "db", "push", db_files.corrupt)
    assert result.returncode == 2
    assert f"{db_files.corrupt} is not a usable oews.db, staged files removed on machine1, machine2; no live database was switched" in result.stderr
    assert "database disk image is malformed" in result.stderr
    for node in DB_NODES:
        assert storage_files(db_nodes, node) == [".oews.db.releases.json", "oews.db"]
        assert sha256(live(db_nodes, node)) == sha256(db_files.old)


def test_a_file_validated_on_this_machine_is_not_checked_again_and_a_corrupt_one_is_never_recorded(
        db_nodes: TestCluster, db_files: DbFiles, cli: CliRun, oewsctl_state: Path) -> None:
    record = oewsctl_state / "validated-databases.json"
    assert cli(db_nodes.config_path, "db", "validate", db_files.old).returncode == 0
    first = cli(db_nodes.config_path, "db", "push", db_files.old)
    assert first.returncode == 0, first.stderr
    assert "validated earlier on this machine (integrity_check on 20" in first.stderr and "same sha256" in first.stderr

    second = cli(db_nodes.config_path, "db", "push", db_files.new)  # never validated here: checked while it uploads
    assert second.returncode == 0, second.stderr
    assert "validated (quick_check, schema, content)" in second.stderr
    assert json.loads(record.read_text())[sha256(db_files.new)]["check"] == "quick_check"

    records = json.loads(record.read_text())
    records[sha256(db_files.old)]["checks"] = "0.1"  # recorded by older checks: it no longer counts
    record.write_text(json.dumps(records))
    again = cli(db_nodes.config_path, "db", "push", db_files.old)
    assert again.returncode == 0, again.stderr
    assert "validated (quick_check, schema, content)" in again.stderr

    corrupt = cli(db_nodes.config_path, "db", "push", db_files.corrupt)
    assert corrupt.returncode == 2 and "is not a usable oews.db" in corrupt.stderr
    assert sha256(db_files.corrupt) not in json.loads(record.read_text())
    for node in DB_NODES:
        assert sha256(live(db_nodes, node)) == sha256(db_files.old)


def test_connection_killed_mid_upload_leaves_every_live_file_identical(db_nodes: TestCluster, db_files: DbFiles, big_db: Path, cli: CliRun) -> None:
    assert cli(db_nodes.config_path, "db", "push", db_files.old).returncode == 0
    before = {n: live(db_nodes, n).read_bytes() for n in DB_NODES}
    part = live(db_nodes, "machine2").with_name(".oews.db.incoming")
    killed: list[int] = []

    def killer() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if part.exists() and part.stat().st_size > 16 * 1048576:
                killed.append(db_nodes.node("machine2").kill_connections())
                return
            time.sleep(0.005)

    thread = threading.Thread(target=killer)
    thread.start()
    result = cli(db_nodes.config_path, "db", "push", big_db)
    thread.join()
    assert killed and killed[0] > 0, "the upload finished before the connection could be killed"
    assert result.returncode == 1
    assert "machine2: upload to /opt/k3s/storage/.oews.db.incoming interrupted" in result.stderr
    assert "no live database was switched" in result.stderr
    for node in DB_NODES:
        assert live(db_nodes, node).read_bytes() == before[node]
        assert storage_files(db_nodes, node) == [".oews.db.releases.json", "oews.db"]  # staged files cleaned on both


def test_a_node_with_too_little_disk_fails_the_push_before_any_switch(db_nodes: TestCluster, db_files: DbFiles, cli: CliRun) -> None:
    assert cli(db_nodes.config_path, "db", "push", db_files.old).returncode == 0
    before = live(db_nodes, "machine1").read_bytes()
    small = db_nodes.node("machine2")
    assert small.process is not None
    # A 1 MiB tmpfs over machine2's storage dir, inside its own mount namespace (what its sshd sees).
    subprocess.run(["nsenter", "-t", str(small.process.pid), "-m", "mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", "/opt/k3s/storage"], check=True)
    result = cli(db_nodes.config_path, "db", "push", db_files.new)
    assert result.returncode == 1
    assert "machine2: only 1.0 MiB free in /opt/k3s/storage, the new database needs" in result.stderr
    assert live(db_nodes, "machine1").read_bytes() == before
    assert storage_files(db_nodes, "machine1") == [".oews.db.releases.json", "oews.db"]  # nothing uploaded, nothing switched


def test_the_staged_file_counts_as_free_space_since_the_upload_replaces_it(db_nodes: TestCluster, db_files: DbFiles, cli: CliRun) -> None:
    """The uploads start while the nodes are inspected: the space the staged file (ours, or one a failed push
    left) takes is free for this push. A 20 MiB disk holding a 10 MiB staged file takes a push needing 16.9 MiB."""
    node = db_nodes.node("machine2")
    assert node.process is not None

    def on_node(script: str) -> str:  # inside machine2's mount namespace, where its sshd (and the tmpfs) live
        return subprocess.run(["nsenter", "-t", str(node.process.pid), "-m", "sh", "-c", script],  # type: ignore[union-attr]
                              check=True, capture_output=True, text=True).stdout

    on_node("mount -t tmpfs -o size=20m tmpfs /opt/k3s/storage && head -c 10485760 /dev/zero > /opt/k3s/storage/.oews.db.incoming")
    result = cli(db_nodes.config_path, "db", "push", db_files.new)
    assert result.returncode == 0, result.stderr
    assert on_node("sha256sum /opt/k3s/storage/oews.db").split()[0] == sha256(db_files.new)
    assert on_node("ls -A /opt/k3s/storage").split() == [".oews.db.releases.json", "oews.db"]


def test_rollback_restores_the_previous_bytes_on_every_node(db_cluster: DbCluster, db_files: DbFiles, cli: CliRun) -> None:
    db_nodes = db_cluster.nodes
    for source in (db_files.old, db_files.new):
        assert cli(db_nodes.config_path, "db", "push", source).returncode == 0
    plan = cli(db_nodes.config_path, "--dry-run", "db", "rollback")
    assert plan.returncode == 0 and "stage the newest kept version" in plan.stderr
    for node in DB_NODES:
        assert sha256(live(db_nodes, node)) == sha256(db_files.new)
    result = cli(db_nodes.config_path, "db", "rollback")
    assert result.returncode == 0, result.stderr
    assert 'deployment "oews-api" successfully rolled out' in result.stderr  # the pods were restarted onto it
    for node in DB_NODES:
        assert live(db_nodes, node).read_bytes() == db_files.old.read_bytes()
        assert sha256(live(db_nodes, node).with_name("oews.db.v2")) == sha256(db_files.new)  # the file rolled away from is kept

    bad = cli(db_nodes.config_path, "db", "rollback", "--to", "9")
    assert bad.returncode == 1 and "no kept version v9 of /opt/k3s/storage/oews.db (kept: v1, v2)" in bad.stderr

    # v1 is now the live file itself (hard links): asking for it again changes nothing, no staged file left.
    again = cli(db_nodes.config_path, "db", "rollback", "--to", "1")
    assert again.returncode == 0, again.stderr
    assert "v1 is already the live file on machine1, machine2; nothing changed" in again.stderr
    for node in DB_NODES:
        assert live(db_nodes, node).read_bytes() == db_files.old.read_bytes()
        assert storage_files(db_nodes, node) == [".oews.db.releases.json", "oews.db", "oews.db.v1", "oews.db.v2"]


def test_a_switch_failing_on_the_second_node_says_which_nodes_switched(db_cluster: DbCluster, db_files: DbFiles, cli: CliRun,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    db_nodes = db_cluster.nodes
    for source in (db_files.old, db_files.new):
        assert cli(db_nodes.config_path, "db", "push", source).returncode == 0
    undo = fail_the_rename_on(db_nodes, "machine2", monkeypatch)
    result = cli(db_nodes.config_path, "db", "rollback")
    assert result.returncode == 1
    assert "switched: machine1; not switched (still on the previous file): machine2; staged files removed on machine2" in result.stderr
    assert "Fix machine2, then re-run `oewsctl db rollback --to N`" in result.stderr
    assert live(db_nodes, "machine1").read_bytes() == db_files.old.read_bytes()
    assert live(db_nodes, "machine2").read_bytes() == db_files.new.read_bytes()
    for node in DB_NODES:
        assert ".oews.db.incoming" not in storage_files(db_nodes, node)
    undo()

    status = json.loads(cli(db_nodes.config_path, "--output", "json", "db", "status").stdout)
    assert [n["live"]["sha256"] for n in status["nodes"]] == [sha256(db_files.old), sha256(db_files.new)]  # ledger of machine1 written
    healed = cli(db_nodes.config_path, "db", "rollback", "--to", "1")  # the remediation the hint gives
    assert healed.returncode == 0, healed.stderr
    assert "v1 already live" in healed.stderr and 'deployment "oews-api" successfully rolled out' in healed.stderr
    for node in DB_NODES:
        assert live(db_nodes, node).read_bytes() == db_files.old.read_bytes()


def test_a_push_switching_one_node_then_failing_names_both_and_a_rerun_finishes(db_nodes: TestCluster, db_files: DbFiles, cli: CliRun,
                                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli(db_nodes.config_path, "db", "push", db_files.old).returncode == 0
    undo = fail_the_rename_on(db_nodes, "machine2", monkeypatch)
    result = cli(db_nodes.config_path, "db", "push", db_files.new)
    assert result.returncode == 1
    assert "are the same file" in result.stderr, result.stderr
    assert "switched: machine1; not switched (still on the previous file): machine2; staged files removed on machine2" in result.stderr
    assert "re-run the same command" in result.stderr and "oewsctl db rollback" in result.stderr
    assert sha256(live(db_nodes, "machine1")) == sha256(db_files.new)
    assert sha256(live(db_nodes, "machine2")) == sha256(db_files.old)
    assert ".oews.db.incoming" not in storage_files(db_nodes, "machine2")  # (oews.db.v1 may exist: a hard link of the live file)
    undo()

    rerun = cli(db_nodes.config_path, "db", "push", db_files.new)
    assert rerun.returncode == 0, rerun.stderr
    assert "machine1" in rerun.stderr and "already serves" in rerun.stderr
    for node in DB_NODES:
        assert sha256(live(db_nodes, node)) == sha256(db_files.new)


def test_nodes_switch_at_once_so_a_failure_on_the_first_node_names_the_others_as_switched(db_nodes: TestCluster, db_files: DbFiles, cli: CliRun,
                                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli(db_nodes.config_path, "db", "push", db_files.old).returncode == 0
    fail_the_rename_on(db_nodes, "machine1", monkeypatch)
    result = cli(db_nodes.config_path, "db", "push", db_files.new)
    assert result.returncode == 1
    assert "machine1: " in result.stderr and "are the same file" in result.stderr
    assert "switched: machine2; not switched (still on the previous file): machine1; staged files removed on machine1" in result.stderr
    assert "Fix machine1, then re-run the same command" in result.stderr
    assert sha256(live(db_nodes, "machine1")) == sha256(db_files.old)
    assert sha256(live(db_nodes, "machine2")) == sha256(db_files.new)
    ledger = json.loads(live(db_nodes, "machine2").with_name(".oews.db.releases.json").read_text())
    assert ledger["live"]["sha256"] == sha256(db_files.new)
    for node in DB_NODES:
        assert ".oews.db.incoming" not in storage_files(db_nodes, node)


def test_a_ledger_that_cannot_be_written_never_stops_another_nodes_switch(db_nodes: TestCluster, db_files: DbFiles, cli: CliRun) -> None:
    assert cli(db_nodes.config_path, "db", "push", db_files.old).returncode == 0
    blocker = live(db_nodes, "machine1").with_name(".oews.db.releases.json.tmp")
    blocker.mkdir()  # machine1's ledger cannot be written (its temp name is a directory)
    result = cli(db_nodes.config_path, "db", "push", db_files.new)
    assert result.returncode == 1
    assert "every DB node switched, but /opt/k3s/storage/.oews.db.releases.json could not be written on machine1" in result.stderr
    for node in DB_NODES:
        assert sha256(live(db_nodes, node)) == sha256(db_files.new)
        assert ".oews.db.incoming" not in storage_files(db_nodes, node)
    ledger = json.loads(live(db_nodes, "machine2").with_name(".oews.db.releases.json").read_text())
    assert ledger["live"]["sha256"] == sha256(db_files.new)
    assert ledger["versions"]["1"]["sha256"] == sha256(db_files.old)
    stale = json.loads(live(db_nodes, "machine1").with_name(".oews.db.releases.json").read_text())
    assert stale["live"]["sha256"] == sha256(db_files.old)  # the old ledger is left whole, not half-written
    blocker.rmdir()
    status = json.loads(cli(db_nodes.config_path, "--output", "json", "db", "status").stdout)
    assert status["nodes"][0]["live"] == {"sha256": sha256(db_files.new), "size": db_files.new.stat().st_size, "release": None}


def test_ctrl_c_during_the_upload_cleans_every_node_and_switches_none(db_nodes: TestCluster, db_files: DbFiles, big_db: Path,
                                                                      cli: CliRun, tmp_path: Path) -> None:
    assert cli(db_nodes.config_path, "db", "push", db_files.old).returncode == 0
    staged = live(db_nodes, "machine2").with_name(".oews.db.incoming")
    env = {**os.environ, "OEWSCTL_STATE_DIR": str(tmp_path / "state")}
    process = subprocess.Popen([sys.executable, "-m", "oewsctl.cli", "--config", str(db_nodes.config_path), "db", "push", str(big_db)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 60
    while not (staged.exists() and staged.stat().st_size > 16 * 1048576) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.005)
    process.send_signal(signal.SIGINT)  # what Ctrl-C sends
    _, err = process.communicate(timeout=60)
    assert process.returncode == 1, err
    assert f"db push {big_db.name} interrupted (Ctrl-C); switched: no node; not switched (still on the previous file): machine1, machine2; " \
           "staged files removed on machine1, machine2" in err
    assert "Traceback" not in err
    for node in DB_NODES:
        assert sha256(live(db_nodes, node)) == sha256(db_files.old)
        assert storage_files(db_nodes, node) == [".oews.db.releases.json", "oews.db"]


def test_ctrl_c_between_two_switches_names_each_side_and_leaves_right_ledgers(db_nodes: TestCluster, db_files: DbFiles, cli: CliRun,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli(db_nodes.config_path, "db", "push", db_files.old).returncode == 0
    real_check = SSHPool.check

    def check(pool: SSHPool, name: str, argv: Sequence[str], *args: Any, **kwargs: Any) -> Any:
        if name == "machine2" and list(argv[:3]) == ["sh", "-c", SWITCH]:
            raise KeyboardInterrupt  # Ctrl-C right after machine1 switched
        return real_check(pool, name, argv, *args, **kwargs)

    monkeypatch.setattr(SSHPool, "check", check)
    result = cli(db_nodes.config_path, "db", "push", db_files.new)
    assert result.returncode == 1
    assert "interrupted (Ctrl-C); switched: machine1; not switched (still on the previous file): machine2; " \
           "staged files removed on machine1, machine2" in result.stderr
    assert "re-run the same command" in result.stderr
    assert sha256(live(db_nodes, "machine1")) == sha256(db_files.new) and sha256(live(db_nodes, "machine2")) == sha256(db_files.old)
    for node, want in (("machine1", db_files.new), ("machine2", db_files.old)):
        ledger = json.loads(live(db_nodes, node).with_name(".oews.db.releases.json").read_text())
        assert ledger["live"]["sha256"] == sha256(want)  # each ledger names the file its node serves
        assert ".oews.db.incoming" not in storage_files(db_nodes, node)
