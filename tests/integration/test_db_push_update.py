"""`oewsctl db update` and `db rollback` end to end: sshd DB nodes + Kubernetes API emulator.

Pods report on /health (pod proxy) the SHA-256 of the file machine1 held when they started
(see ``tests/fixtures/dbnodes.py``), so only a real restart after the switch makes them serve it.
"""

from __future__ import annotations

import json

import pytest

from tests.fixtures.dbnodes import DB_PATH, CliRun, DbCluster, DbFiles, sha256


def test_update_pushes_restarts_and_every_pod_serves_the_new_file(db_cluster: DbCluster, db_files: DbFiles, cli: CliRun) -> None:
    assert cli(db_cluster.config, "db", "push", db_files.old).returncode == 0
    result = cli(db_cluster.config, "db", "update", db_files.new)
    assert result.returncode == 0, result.stderr
    want = sha256(db_files.new)
    assert f"2/2 ready pods serve sha256 {want[:12]}" in result.stderr
    assert sha256(db_cluster.nodes.node("machine2").path(DB_PATH)) == want

    status = cli(db_cluster.config, "--output", "json", "db", "status")
    pods = json.loads(status.stdout)["pods"]
    assert len(pods) == 2 and {p["sha256"] for p in pods} == {want}

    again = cli(db_cluster.config, "db", "update", db_files.new)
    assert again.returncode == 0, again.stderr
    assert "every ready pod already serves sha256" in again.stderr  # no needless restart


def test_update_names_each_pod_that_still_serves_another_file(db_cluster: DbCluster, db_files: DbFiles, cli: CliRun, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("oewsctl.runbooks.database.HEALTH_TIMEOUT", 1.0)
    assert cli(db_cluster.config, "db", "push", db_files.old).returncode == 0
    db_cluster.health.pinned = sha256(db_files.old)  # new pods keep seeing the old file
    result = cli(db_cluster.config, "db", "update", db_files.new)
    assert result.returncode == 1
    assert f"not every ready pod serves the new database sha256 {sha256(db_files.new)[:12]}" in result.stderr
    assert result.stderr.count(f": sha256 {sha256(db_files.old)[:12]}… (May 2025)") == 2  # one line per stale pod
    assert "oewsctl db rollback" in result.stderr


def test_rollback_switches_back_and_restarted_pods_serve_the_old_file(db_cluster: DbCluster, db_files: DbFiles, cli: CliRun) -> None:
    assert cli(db_cluster.config, "db", "push", db_files.old).returncode == 0
    assert cli(db_cluster.config, "db", "update", db_files.new).returncode == 0
    result = cli(db_cluster.config, "db", "rollback")
    assert result.returncode == 0, result.stderr
    assert 'deployment "oews-api" successfully rolled out' in result.stderr
    assert f"2/2 ready pods serve sha256 {sha256(db_files.old)[:12]}" in result.stderr  # rollback checks what the pods serve
    for node in ("machine1", "machine2"):
        assert db_cluster.nodes.node(node).path(DB_PATH).read_bytes() == db_files.old.read_bytes()

    def pods_serve() -> set[str]:
        status = json.loads(cli(db_cluster.config, "--output", "json", "db", "status").stdout)
        return {p["sha256"] for p in status["pods"]}

    # `db status` lists every pod, also the previous ReplicaSet's while the controller scales it down
    # (rollback checked the ready pods of the new one): wait for those to go, then all serve the old file.
    db_cluster.kube.wait_for(lambda: pods_serve() == {sha256(db_files.old)})


def test_rollback_fails_naming_each_pod_that_still_serves_the_file_rolled_away_from(db_cluster: DbCluster, db_files: DbFiles, cli: CliRun,
                                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("oewsctl.runbooks.database.HEALTH_TIMEOUT", 1.0)
    assert cli(db_cluster.config, "db", "push", db_files.old).returncode == 0
    assert cli(db_cluster.config, "db", "update", db_files.new).returncode == 0
    db_cluster.health.pinned = sha256(db_files.new)  # restarted pods still see the new file (a stale mount)
    result = cli(db_cluster.config, "db", "rollback")
    assert result.returncode == 1
    assert f"not every ready pod serves the restored database sha256 {sha256(db_files.old)[:12]}" in result.stderr
    assert result.stderr.count(f": sha256 {sha256(db_files.new)[:12]}… (May 2025)") == 2
