"""`oewsctl doctor` against real sshd test nodes, run through the real CLI entry point."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.fixtures.keyvault import CliResult
from tests.fixtures.sshd import TestCluster

pytestmark = pytest.mark.sshd

Cli = Callable[..., CliResult]


def _rows(result: CliResult) -> dict[tuple[str, str], dict[str, str]]:
    return {(c["node"], c["check"]): c for c in json.loads(result.out)["checks"]}


def _edit(cluster: TestCluster, change: Callable[[dict], None]) -> None:  # type: ignore[type-arg]
    data = yaml.safe_load(cluster.config_path.read_text())
    change(data)
    cluster.config_path.write_text(yaml.safe_dump(data))


def test_healthy_nodes_pass(ssh_nodes: TestCluster, oewsctl: Cli) -> None:
    text = oewsctl("-c", str(ssh_nodes.config_path), "doctor")
    assert text.code == 0, text.err
    assert "machine3" in text.out and "FAIL" not in text.out
    result = oewsctl("-c", str(ssh_nodes.config_path), "-o", "json", "doctor")
    rows = _rows(result)
    assert result.code == 0 and json.loads(result.out)["ok"] is True
    for node in ("machine1", "machine2", "machine3"):
        for check in ("ssh", "sudo", "arch", "memory", "clock", "ports"):
            assert rows[(node, check)]["status"] == "ok", rows[(node, check)]
    assert rows[("machine1", "disk")]["status"] == "ok" and "no database yet" in rows[("machine1", "disk")]["detail"]
    assert rows[("machine2", "disk")]["status"] == "skip"
    assert rows[("cluster", "kube-api")]["status"] == "skip"


def test_unknown_host_refused_then_accepted_with_flag(ssh_nodes: TestCluster, oewsctl: Cli, oewsctl_state: Path) -> None:
    node = ssh_nodes.node("machine2")
    ssh_nodes.forget_host_key(node)
    refused = oewsctl("-c", str(ssh_nodes.config_path), "-o", "json", "doctor")
    assert refused.code == 1
    row = _rows(refused)[("machine2", "ssh")]
    assert row["status"] == "fail" and "host key not in" in row["detail"] and "SHA256:" in row["detail"]
    assert "--accept-new-host-keys" in row["hint"]
    assert "error: 1 check(s) failed: machine2 ssh" in refused.err

    accepted = oewsctl("-c", str(ssh_nodes.config_path), "doctor", "--accept-new-host-keys")
    assert accepted.code == 0, accepted.err
    assert f"recorded host key of machine2 ([{node.address}]:{node.port}): ssh-ed25519 SHA256:" in accepted.err
    assert node.known_hosts_line() in ssh_nodes.known_hosts.read_text()
    audit = [json.loads(line) for line in (oewsctl_state / "audit.jsonl").read_text().splitlines()]
    assert audit[-1]["command"] == "doctor --accept-new-host-keys" and audit[-1]["result"] == "ok"
    assert oewsctl("-c", str(ssh_nodes.config_path), "doctor").code == 0


def test_changed_host_key_refused_even_with_flag(ssh_nodes: TestCluster, oewsctl: Cli) -> None:
    ssh_nodes.node("machine3").new_host_key()
    before = ssh_nodes.known_hosts.read_text()
    result = oewsctl("-c", str(ssh_nodes.config_path), "-o", "json", "doctor", "--accept-new-host-keys")
    assert result.code == 1
    rows = _rows(result)
    assert rows[("machine3", "ssh")]["status"] == "fail" and "HOST KEY CHANGED" in rows[("machine3", "ssh")]["detail"]
    assert rows[("machine3", "sudo")]["status"] == "skip"
    assert json.loads(result.out)["accepted_host_keys"] == []
    assert ssh_nodes.known_hosts.read_text() == before


def test_wrong_user_node_down_and_wrong_arch(ssh_nodes: TestCluster, oewsctl: Cli) -> None:
    def change(data: dict) -> None:  # type: ignore[type-arg]
        data["nodes"][1]["user"] = "nobody-here"
        data["nodes"][0]["arch"] = "arm64"

    _edit(ssh_nodes, change)
    ssh_nodes.node("machine3").stop()
    result = oewsctl("-c", str(ssh_nodes.config_path), "-o", "json", "doctor")
    assert result.code == 1
    rows = _rows(result)
    assert "SSH login refused for user 'nobody-here'" in rows[("machine2", "ssh")]["detail"]
    assert "unreachable (connection refused)" in rows[("machine3", "ssh")]["detail"]
    assert rows[("machine1", "arch")]["status"] == "fail" and "inventory says arm64" in rows[("machine1", "arch")]["detail"]
    assert "arch: amd64" in rows[("machine1", "arch")]["hint"]
    assert "machine1 arch, machine2 ssh, machine3 ssh" in result.err


def test_port_taken_and_sudo_password_fail(ssh_nodes: TestCluster, oewsctl: Cli) -> None:
    node = ssh_nodes.node("machine2")
    ssh_nodes.node("machine1").require_sudo_password()
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((node.address, 10250))
        listener.listen()
        result = oewsctl("-c", str(ssh_nodes.config_path), "-o", "json", "doctor")
    rows = _rows(result)
    assert result.code == 1
    assert rows[("machine2", "ports")]["status"] == "fail" and "taken: 10250 by " in rows[("machine2", "ports")]["detail"]
    assert rows[("machine3", "ports")]["status"] == "ok"  # bound to machine2's address only
    assert rows[("machine1", "sudo")]["status"] == "fail" and "NOPASSWD" in rows[("machine1", "sudo")]["hint"]


def test_disk_too_small_for_the_database(ssh_nodes: TestCluster, oewsctl: Cli) -> None:
    node = ssh_nodes.node("machine1")
    assert node.process is not None
    subprocess.run(["nsenter", "-t", str(node.process.pid), "-m", "mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", "/opt/k3s/storage"], check=True)
    subprocess.run(["nsenter", "-t", str(node.process.pid), "-m", "sh", "-c", "head -c 2000000 /dev/zero > /opt/k3s/storage/oews.db"], check=True)
    result = oewsctl("-c", str(ssh_nodes.config_path), "-o", "json", "doctor")
    row = _rows(result)[("machine1", "disk")]
    assert result.code == 1 and row["status"] == "fail"
    assert "free at /opt/k3s/storage, database 0.0 GiB" in row["detail"] and "free" in row["hint"]


def test_kube_api_checked_when_kubeconfig_exists(ssh_nodes: TestCluster, kube_cluster: object, oewsctl: Cli) -> None:
    def change(data: dict) -> None:  # type: ignore[type-arg]
        data["cluster"]["name"] = kube_cluster.context  # type: ignore[attr-defined]
        data["cluster"]["kubeconfig"] = str(kube_cluster.kubeconfig)  # type: ignore[attr-defined]

    _edit(ssh_nodes, change)
    result = oewsctl("-c", str(ssh_nodes.config_path), "-o", "json", "doctor")
    row = _rows(result)[("cluster", "kube-api")]
    assert result.code == 0 and row["status"] == "ok" and "answers" in row["detail"]
    dead = ssh_nodes.root / "kubeconfig-dead"  # same context, an API server that is not there
    dead.write_text(kube_cluster.kubeconfig.read_text().replace(kube_cluster.url, "http://127.0.0.1:9"))  # type: ignore[attr-defined]
    _edit(ssh_nodes, lambda data: data["cluster"].update(kubeconfig=str(dead)))
    down = oewsctl("-c", str(ssh_nodes.config_path), "-o", "json", "doctor")
    assert down.code == 1 and _rows(down)[("cluster", "kube-api")]["status"] == "fail"


def test_odd_output_fails_one_row_not_the_doctor(ssh_nodes: TestCluster, oewsctl: Cli) -> None:
    fake_date = ssh_nodes.node("machine2").path("/usr/local/bin/date")  # first on the node's PATH
    fake_date.write_text("#!/bin/sh\necho 'Thu 26 Nov 05:30:00 UTC 2026'\n")
    fake_date.chmod(0o755)
    result = oewsctl("-c", str(ssh_nodes.config_path), "-o", "json", "doctor")
    assert result.code == 1 and "Traceback" not in result.err
    rows = _rows(result)
    assert rows[("machine2", "clock")]["status"] == "fail"
    assert "unexpected answer from the node (ValueError: could not convert string to float" in rows[("machine2", "clock")]["detail"]
    assert rows[("machine2", "ports")]["status"] == "ok" and rows[("machine1", "clock")]["status"] == "ok"
    assert "error: 1 check(s) failed: machine2 clock" in result.err
