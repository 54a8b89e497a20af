"""`cluster install` plans and the kubeconfig merge, checked as data (no network)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from oewsctl.clients import kubeconfig
from oewsctl.configuration.loading import parse_config
from oewsctl.configuration.schema import Config
from oewsctl.core.errors import UsageError
from oewsctl.runbooks import cluster

INVENTORY = """
cluster: {name: home, server: machine1, k3s_version: v1.31.4+k3s1, firewall: true}
nodes:
  - {name: machine1, host: 203.0.113.10, user: ops, role: server, labels: {oews/db: "true"}}
  - {name: machine2, host: 203.0.113.11, user: ops, role: agent}
  - {name: raspberrypi, host: 203.0.113.12, user: pi, role: agent, arch: arm64, labels: {oews/role: monitoring}}
app: {domain: api.example.com, acme_email: ops@example.com, image: ghcr.io/example/oews-api}
"""

K3S_YAML = {
    "apiVersion": "v1", "kind": "Config", "current-context": "default",
    "clusters": [{"name": "default", "cluster": {"server": "https://127.0.0.1:6443", "certificate-authority-data": "Q0E="}}],
    "users": [{"name": "default", "user": {"client-certificate-data": "Y2VydA==", "client-key-data": "a2V5"}}],
    "contexts": [{"name": "default", "context": {"cluster": "default", "user": "default"}}],
}


@pytest.fixture
def config() -> Config:
    return parse_config(INVENTORY)


def _release(tmp_path: Path, *names: str) -> Path:
    for name in names:
        (tmp_path / name).write_text("x")
    return tmp_path


def test_online_plan_server_first_then_agents(config: Config) -> None:
    plan = cluster.install_plan(config)
    lines = [f"{s.node}: {s.description}" for s in plan.steps]
    assert lines[0] == "machine1: download the k3s installer from https://get.k3s.io"
    install_lines = [line for line in lines if ": install k3s" in line]
    assert install_lines == ["machine1: install k3s server v1.31.4+k3s1", "machine2: install k3s agent v1.31.4+k3s1",
                             "raspberrypi: install k3s agent v1.31.4+k3s1"]
    token = lines.index("machine1: read the join token (/var/lib/rancher/k3s/server/node-token, sudo)")
    assert lines.index("machine1: install k3s server v1.31.4+k3s1") < token < lines.index("machine2: write agent config (server URL, join token) → /etc/rancher/k3s/config.yaml (0600)")
    assert [s.node for s in plan.steps if s.description.startswith("firewall")] == ["machine1", "machine2", "raspberrypi"]
    assert plan.steps[-2].description.startswith("wait until machine1, machine2, raspberrypi are Ready")
    install = next(s for s in plan.steps if s.description == "install k3s agent v1.31.4+k3s1")
    assert install.shown() == "sudo env INSTALL_K3S_EXEC=agent INSTALL_K3S_VERSION=v1.31.4+k3s1 sh /usr/local/bin/k3s-install.sh"
    agent_config = next(s for s in plan.steps if s.node == "machine2" and "join token" in s.description)
    assert agent_config.command is None  # written over stdin by an action: no argv carries the token


def test_airgap_plan_uploads_the_right_binary_per_arch(config: Config, tmp_path: Path) -> None:
    release = _release(tmp_path, "install.sh", "k3s", "k3s-arm64", "k3s-airgap-images-arm64.tar.zst")
    plan = cluster.install_plan(config, airgap=release)
    uploads = [(s.node, s.description) for s in plan.steps if s.description.startswith("upload")]
    assert ("raspberrypi", "upload k3s-arm64 → /usr/local/bin/k3s") in uploads
    assert ("machine2", "upload k3s → /usr/local/bin/k3s") in uploads
    images = [node for node, text in uploads if "airgap-images" in text]
    assert images == ["raspberrypi"]  # only arm64 images are in the directory
    assert all("INSTALL_K3S_SKIP_DOWNLOAD=true" in s.shown() for s in plan.steps if s.description.startswith("install k3s"))


def test_airgap_dir_missing_files(config: Config, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"missing install.sh, k3s-arm64"):
        cluster.install_plan(config, airgap=_release(tmp_path, "k3s"))


def test_upgrade_plan_cordons_agents_only(config: Config) -> None:
    plan = cluster.install_plan(config, upgrade=True)
    assert plan.title == "cluster upgrade"
    cordons = [s.node for s in plan.steps if s.description.startswith("cordon")]
    assert cordons == ["machine2", "raspberrypi"]
    lines = [f"{s.node}: {s.description}" for s in plan.steps]
    wait = [s.description for s in plan.steps].index("wait until machine2 is Ready in the Kubernetes API")
    assert lines.index("machine2: cordon and drain before the upgrade") < lines.index("machine2: install k3s agent v1.31.4+k3s1") \
        < wait < lines.index("machine2: uncordon")
    install = plan.steps[lines.index("machine2: install k3s agent v1.31.4+k3s1")]
    assert install.shown() == "sudo env INSTALL_K3S_EXEC=agent INSTALL_K3S_VERSION=v1.31.4+k3s1 sh /usr/local/bin/k3s-install.sh"


def test_uninstall_plan_agents_first(config: Config) -> None:
    assert [s.shown() for s in cluster.uninstall_plan(config).steps] == [
        "sudo /usr/local/bin/k3s-agent-uninstall.sh", "sudo /usr/local/bin/k3s-agent-uninstall.sh", "sudo /usr/local/bin/k3s-uninstall.sh"]
    assert [s.node for s in cluster.uninstall_plan(config, "machine2").steps] == ["machine2"]
    with pytest.raises(UsageError, match="no node named 'machine9'"):
        cluster.uninstall_plan(config, "machine9")


def test_agent_config_carries_server_and_token(config: Config) -> None:
    data = yaml.safe_load(cluster._k3s_config(config, config.node("machine2"), "K10abc::server:def"))
    assert data == {"node-name": "machine2", "server": "https://203.0.113.10:6443", "token": "K10abc::server:def"}
    server = yaml.safe_load(cluster._k3s_config(config, config.server_node, None))
    assert "token" not in server and server["tls-san"] == ["203.0.113.10"]


def test_firewall_rules(config: Config) -> None:
    rules = cluster._firewall_rules(config, config.server_node, cluster.SshSeen(2222, "198.51.100.7"))
    assert rules[:4] == ["allow 2222/tcp", "allow 80/tcp", "allow 443/tcp", "allow from 198.51.100.7 to any port 6443 proto tcp"]
    assert "allow from 203.0.113.12 to any port 8472 proto udp" in rules
    assert not any("203.0.113.10 to" in r for r in rules)


def test_firewall_plan_shows_the_policy_and_keeps_ssh_open_before_enabling(config: Config) -> None:
    """The dry run shows what ufw will be; the SSH port's allow rule comes before anything is denied."""
    plan = cluster.install_plan(config)
    shown = {s.node: s.shown().split("; ") for s in plan.steps if s.description.startswith("firewall")}
    server = shown["machine1"]
    assert server[0] == "ufw allow 22/tcp"  # the inventory's port in a dry run; the live session's port when it runs
    assert server[-3:] == ["ufw default deny incoming", "ufw default allow outgoing", "ufw --force enable"]
    assert "ufw allow from <this machine> to any port 6443 proto tcp" in server
    assert "ufw allow from 10.42.0.0/16 to any" in server  # pods reach kubelet / node-exporter
    assert "ufw allow 80/tcp" not in shown["machine2"]
    pinned = parse_config(INVENTORY.replace("role: agent}", "role: agent, port: 2200}", 1))
    assert cluster.firewall_policy(pinned, pinned.node("machine2"))[0] == "ufw allow 2200/tcp"


def test_kubeconfig_merge_keeps_other_contexts() -> None:
    entry = kubeconfig.adapt(K3S_YAML, "home", "203.0.113.10")
    assert entry["clusters"][0] == {"name": "home", "cluster": {"server": "https://203.0.113.10:6443", "certificate-authority-data": "Q0E="}}
    existing = {"apiVersion": "v1", "kind": "Config", "current-context": "work",
                "clusters": [{"name": "work", "cluster": {"server": "https://w"}}, {"name": "home", "cluster": {"server": "https://old"}}],
                "users": [{"name": "work", "user": {}}], "contexts": [{"name": "work", "context": {"cluster": "work", "user": "work"}}]}
    merged = kubeconfig.merge(existing, entry, "home")
    assert [c["name"] for c in merged["clusters"]] == ["work", "home"]
    assert merged["clusters"][1]["cluster"]["server"] == "https://203.0.113.10:6443"
    assert merged["current-context"] == "work"
    assert kubeconfig.merge(None, entry, "home")["current-context"] == "home"
    assert kubeconfig.adapt(K3S_YAML, "home", "2001:db8::1")["clusters"][0]["cluster"]["server"] == "https://[2001:db8::1]:6443"


def test_kubeconfig_write_is_private_with_backup(tmp_path: Path) -> None:
    path = tmp_path / ".kube" / "config"
    assert kubeconfig.write(path, {"a": 1}) is None
    backup = kubeconfig.write(path, {"a": 2})
    assert backup is not None and yaml.safe_load(backup.read_text()) == {"a": 1}
    assert (path.stat().st_mode & 0o777) == 0o600 and yaml.safe_load(path.read_text()) == {"a": 2}
