"""Check before change: a run that will need the cluster API or a node verifies it can reach each
of them (with its credentials) before its first change, so nothing is half done (issue 15).

Real sshd DB nodes (``tests/fixtures/dbnodes.py``); no Kubernetes API: the kubeconfig is missing.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path

import yaml

from tests.fixtures.dbnodes import DB_PATH, CliRun, DbFiles, sha256
from tests.fixtures.sshd import TestCluster

NODES = ("machine1", "machine2")


def _set(nodes: TestCluster, change: dict[str, object], node: dict[str, object] | None = None) -> None:
    data = yaml.safe_load(nodes.config_path.read_text())
    for section, values in change.items():
        data[section].update(values)
    if node:
        data["nodes"][1].update(node)
    nodes.config_path.write_text(yaml.safe_dump(data, sort_keys=False))


def _node_files(nodes: TestCluster) -> dict[str, dict[str, str]]:
    """Every file in each DB node's database folder with its SHA-256 (live, versions, staged, ledger)."""
    out = {}
    for name in NODES:
        folder = nodes.node(name).path(DB_PATH).parent
        out[name] = {p.name: sha256(p) for p in sorted(folder.iterdir()) if p.is_file()}
    return out


def test_db_update_without_a_kubeconfig_changes_no_node(db_nodes: TestCluster, db_files: DbFiles, cli: CliRun, tmp_path: Path) -> None:
    _set(db_nodes, {"cluster": {"kubeconfig": str(tmp_path / "missing" / "config")}})
    assert cli(db_nodes.config_path, "db", "push", db_files.old).returncode == 0
    before = _node_files(db_nodes)

    result = cli(db_nodes.config_path, "db", "update", db_files.new)
    assert result.returncode == 2, result.stderr
    assert f"kubeconfig {tmp_path / 'missing' / 'config'} not found" in result.stderr
    assert "checked before any change: nothing was changed" in result.stderr
    assert "Traceback" not in result.stderr
    assert _node_files(db_nodes) == before  # no staged upload, no switch, no new version, same ledger
    assert sha256(db_nodes.node("machine1").path(DB_PATH)) == sha256(db_files.old)

    rollback = cli(db_nodes.config_path, "db", "rollback")
    assert rollback.returncode == 2 and "nothing was changed" in rollback.stderr, rollback.stderr
    assert _node_files(db_nodes) == before


def test_db_push_with_an_unreachable_node_touches_none(db_nodes: TestCluster, db_files: DbFiles, cli: CliRun) -> None:
    assert cli(db_nodes.config_path, "db", "push", db_files.old).returncode == 0
    before = _node_files(db_nodes)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # nothing listens there once the socket is closed
    _set(db_nodes, {}, node={"port": port})

    result = cli(db_nodes.config_path, "db", "push", db_files.new)
    assert result.returncode == 1, result.stderr
    assert "machine2" in result.stderr and re.search(r"(nothing|no node) was changed", result.stderr), result.stderr
    assert _node_files(db_nodes) == before  # machine1 answered, yet got nothing
