"""`oewsctl cluster ...` on real sshd test nodes with the stand-in k3s and the kube API emulator."""

from __future__ import annotations

import json
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.fixtures.eviction import serve_evictions
from tests.fixtures.k3s import VERSION, K3sEnv, install_logs, install_ufw, serve_release, token_pattern, ufw_calls, ufw_rules, write_release
from tests.fixtures.keyvault import CliResult
from tests.fixtures.sshd import TestNode

pytestmark = pytest.mark.sshd

Cli = Callable[..., CliResult]
OTHER_CONTEXT = {
    "apiVersion": "v1", "kind": "Config", "current-context": "work",
    "clusters": [{"name": "work", "cluster": {"server": "https://10.0.0.1:6443"}}],
    "users": [{"name": "work", "user": {"token": "abc"}}],
    "contexts": [{"name": "work", "context": {"cluster": "work", "user": "work"}}],
}


def _edit(env: K3sEnv, **cluster: object) -> None:
    data = yaml.safe_load(env.config_path.read_text())
    data["cluster"].update(cluster)
    env.config_path.write_text(yaml.safe_dump(data))


def _install(env: K3sEnv, oewsctl: Cli, *extra: str, options: tuple[str, ...] = ()) -> CliResult:
    """`oewsctl [options] cluster install --airgap RELEASE --timeout 20 [extra]`."""
    return oewsctl("-c", str(env.config_path), *options, "cluster", "install", "--airgap", str(env.release), "--timeout", "20", *extra)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_install_joins_agents_without_token_in_argv_and_is_idempotent(k3s_env: K3sEnv, oewsctl: Cli) -> None:
    env = k3s_env
    _edit(env, firewall=True)
    for node in env.nodes.nodes:
        install_ufw(node)
    env.kubeconfig.parent.mkdir(parents=True)
    env.kubeconfig.write_text(yaml.safe_dump(OTHER_CONTEXT))
    seen: set[str] = set()  # every command line of every process while the install runs
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            seen.update(TestNode.ps_args())
            time.sleep(0.02)

    unconfirmed = _install(env, oewsctl)  # no terminal to ask on: enabling a firewall needs --yes
    assert unconfirmed.code == 2 and "enables ufw (default deny incoming) on every node; confirm with --yes" in unconfirmed.err
    assert not install_logs(env.node("machine1")) and not ufw_calls(env.node("machine1"))
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        result = _install(env, oewsctl, options=("--yes",))
    finally:
        stop.set()
        watcher.join()
    assert result.code == 0, result.err

    server, agent, pi = env.node("machine1"), env.node("machine2"), env.node("machine3")
    token = server.path("/var/lib/rancher/k3s/server/node-token").read_text().strip()
    assert token_pattern().fullmatch(token)
    assert any("k3s-install.sh" in line for line in seen)  # the watcher did see the installs run
    assert not [line for line in seen if token in line or token_pattern().search(line)]  # never in any argv
    for node in (agent, pi):
        config = node.path("/etc/rancher/k3s/config.yaml")
        assert _mode(config) == 0o600
        assert yaml.safe_load(config.read_text()) == {"node-name": node.name, "server": f"https://{server.address}:6443", "token": token}
        assert node.path("/etc/systemd/system/k3s-agent.service").exists()
        assert _mode(node.path("/usr/local/bin/k3s")) == 0o755
        assert node.path("/var/lib/rancher/k3s/agent/images/k3s-airgap-images-amd64.tar.zst").exists()
    for node in env.nodes.nodes:
        logs = install_logs(node)
        assert logs and all(token not in log for log in logs)
        assert f"INSTALL_K3S_VERSION={VERSION}" in logs[0] and "INSTALL_K3S_SKIP_DOWNLOAD=true" in logs[0]
    assert token not in result.out + result.err

    merged = yaml.safe_load(env.kubeconfig.read_text())
    assert _mode(env.kubeconfig) == 0o600
    assert {c["name"] for c in merged["contexts"]} == {"work", "home"} and merged["current-context"] == "work"
    home = next(c for c in merged["clusters"] if c["name"] == "home")["cluster"]
    assert home["server"] == env.kube.url.replace("127.0.0.1", server.address)
    assert [yaml.safe_load(p.read_text()) for p in env.kubeconfig.parent.glob("config.bak-*")] == [OTHER_CONTEXT]

    nodes = {n["metadata"]["name"]: n for n in env.kube.list("v1/nodes")}
    assert nodes["machine1"]["metadata"]["labels"]["oews/db"] == "true"
    assert nodes["machine3"]["metadata"]["labels"]["oews/role"] == "monitoring"
    assert nodes["machine3"]["spec"]["taints"] == [{"key": "oews/monitoring", "value": "true", "effect": "NoSchedule"}]
    assert "allow from 127.0.0.1 to any port 6443 proto tcp" in " ".join(ufw_rules(server))
    assert "ufw allow from 127.0.0.11 to any port 8472 proto udp" in ufw_rules(pi)
    for node in env.nodes.nodes:  # the SSH port in use is open before anything is denied
        calls = [c for c in ufw_calls(node) if not c.startswith(("ufw show", "ufw status"))]
        assert calls[0] == f"ufw allow {node.port}/tcp", calls
        assert calls[-3:] == ["ufw default deny incoming", "ufw default allow outgoing", "ufw --force enable"]
        assert node.path("/etc/rancher/ufw-standin.active").exists()

    status = oewsctl("-c", str(env.config_path), "-o", "json", "cluster", "status")
    assert status.code == 0, status.err
    rows = {r["name"]: r for r in json.loads(status.out)["nodes"]}
    assert all(r["ready"] and r["version"] == VERSION for r in rows.values()) and rows["machine1"]["roles"] == "control-plane,master"

    again = _install(env, oewsctl, options=("-o", "json", "--yes"))
    assert again.code == 0, again.err
    doc = json.loads(again.out)
    assert doc["changed"] is False
    messages = [s["message"] for s in doc["steps"] if s["description"].startswith("install k3s")]
    assert messages == [f"already installed ({VERSION})"] * 3
    assert len(install_logs(agent)) == 1  # the installer did not run again


def test_agent_failing_to_join_names_it_and_leaves_the_server(k3s_env: K3sEnv, oewsctl: Cli) -> None:
    env = k3s_env
    env.node("machine3").path("/etc/rancher/k3s").mkdir(parents=True, exist_ok=True)
    env.node("machine3").path("/etc/rancher/k3s/fail-join").write_text("")
    result = _install(env, oewsctl)
    assert result.code == 1
    assert "machine3: install k3s agent v1.31.4+k3s1 failed (exit 1): Job for k3s-agent.service failed" in result.err
    assert "journalctl -u k3s-agent" in result.err
    assert env.node("machine1").path("/var/lib/rancher/k3s/standin/running").exists()
    assert env.node("machine2").path("/var/lib/rancher/k3s/standin/running").exists()
    env.node("machine3").path("/etc/rancher/k3s/fail-join").unlink()
    fixed = _install(env, oewsctl)
    assert fixed.code == 0, fixed.err
    assert "machine1: install k3s server" in fixed.err and "already installed (v1.31.4+k3s1)" in fixed.err


def test_dry_run_lists_every_step_and_changes_nothing(k3s_env: K3sEnv, oewsctl: Cli) -> None:
    result = _install(k3s_env, oewsctl, options=("--dry-run",))
    assert result.code == 0, result.err
    for node in ("machine1", "machine2", "machine3"):
        assert f"{node}: upload k3s → /usr/local/bin/k3s" in result.err
        assert f"{node}: install k3s" in result.err
    assert "INSTALL_K3S_SKIP_DOWNLOAD=true" in result.err
    assert not k3s_env.node("machine1").path("/usr/local/bin/k3s").exists()
    assert not k3s_env.kubeconfig.exists()


def test_online_install_fetches_the_installer_on_each_node(k3s_env: K3sEnv, oewsctl: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    env = k3s_env
    with serve_release(env.release) as url:
        monkeypatch.setenv("OEWSCTL_K3S_INSTALL_URL", url)
        result = oewsctl("-c", str(env.config_path), "cluster", "install", "--timeout", "20")
    assert result.code == 0, result.err
    assert f"machine2: download the k3s installer from {url}" in result.err
    for node in env.nodes.nodes:
        assert _mode(node.path("/usr/local/bin/k3s-install.sh")) == 0o755
        log = install_logs(node)[0]
        assert "INSTALL_K3S_SKIP_DOWNLOAD" not in log and f"INSTALL_K3S_VERSION={VERSION}" in log
    assert all(n["status"]["conditions"][0]["status"] == "True" for n in env.kube.list("v1/nodes"))


def test_bad_airgap_dir_is_a_usage_error(k3s_env: K3sEnv, oewsctl: Cli) -> None:
    (k3s_env.release / "k3s").unlink()
    result = _install(k3s_env, oewsctl)
    assert result.code == 2 and f"--airgap {k3s_env.release}: missing k3s" in result.err


NEWER = "v1.32.1+k3s1"


def _installed_then_pinned_newer(env: K3sEnv, oewsctl: Cli) -> None:
    """An installed cluster whose inventory now pins NEWER, with NEWER's release files ready."""
    assert _install(env, oewsctl).code == 0
    write_release(env.release, env.kube.url, version=NEWER)
    _edit(env, k3s_version=NEWER)


def test_upgrade_moves_one_node_at_a_time(k3s_env: K3sEnv, oewsctl: Cli) -> None:
    env = k3s_env
    _installed_then_pinned_newer(env, oewsctl)
    newer = NEWER
    refused = _install(env, oewsctl)
    assert refused.code == 0 and f"installed {VERSION}, pinned {newer}: run with --upgrade" in refused.err
    upgraded = _install(env, oewsctl, "--upgrade")
    assert upgraded.code == 0, upgraded.err
    order = [line for line in upgraded.err.splitlines() if "install k3s" in line or "cordon and drain" in line]
    assert [line.split("] ")[1].split(":")[0] for line in order] == ["machine1", "machine2", "machine2", "machine3", "machine3"]
    nodes = {n["metadata"]["name"]: n for n in env.kube.list("v1/nodes")}
    assert all(n["status"]["nodeInfo"]["kubeletVersion"] == newer for n in nodes.values())
    assert not any((n.get("spec") or {}).get("unschedulable") for n in nodes.values())


def test_failed_agent_upgrade_leaves_the_node_schedulable(k3s_env: K3sEnv, oewsctl: Cli) -> None:
    env = k3s_env
    _installed_then_pinned_newer(env, oewsctl)
    newer = NEWER
    env.node("machine2").path("/etc/rancher/k3s/fail-join").write_text("")
    failed = _install(env, oewsctl, "--upgrade")
    assert failed.code == 1
    assert f"machine2: install k3s agent {newer} failed (exit 1)" in failed.err
    assert "machine2: uncordoned again after the failure" in failed.err
    nodes = {n["metadata"]["name"]: n for n in env.kube.list("v1/nodes")}
    assert not (nodes["machine2"].get("spec") or {}).get("unschedulable")  # still takes pods on its old version
    env.node("machine2").path("/etc/rancher/k3s/fail-join").unlink()
    fixed = _install(env, oewsctl, "--upgrade")
    assert fixed.code == 0, fixed.err


def test_uninstall_asks_first_then_removes_the_node(k3s_env: K3sEnv, oewsctl: Cli) -> None:
    env = k3s_env
    assert _install(env, oewsctl).code == 0
    refused = oewsctl("-c", str(env.config_path), "cluster", "uninstall", "--node", "machine3")
    assert refused.code == 2 and "confirm with --yes" in refused.err
    assert env.node("machine3").path("/usr/local/bin/k3s").exists()
    done = oewsctl("-c", str(env.config_path), "--yes", "cluster", "uninstall", "--node", "machine3")
    assert done.code == 0, done.err
    assert not env.node("machine3").path("/usr/local/bin/k3s").exists()
    assert env.node("machine1").path("/usr/local/bin/k3s").exists()
    again = oewsctl("-c", str(env.config_path), "--yes", "cluster", "uninstall", "--node", "machine3")
    assert again.code == 0 and "k3s not installed" in again.err


def _app_pod(name: str, node: str) -> dict[str, object]:
    """A ready oews-api pod bound to ``node`` (what the Deployment's ReplicaSet would have made)."""
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "oews", "labels": {"app.kubernetes.io/name": "oews-api"},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "oews-api-1", "uid": "u1", "controller": True}]},
            "spec": {"nodeName": node, "containers": [{"name": "api", "image": "oews-api:1"}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}


def test_upgrade_drain_waits_for_the_disruption_budget(k3s_env: K3sEnv, oewsctl: Cli) -> None:
    """As `kubectl drain`: evictions through the Eviction API, refused (429) while the app's PDB
    (minAvailable 1) would break, retried until --timeout; then a clear error and the node uncordoned."""
    env = k3s_env
    _installed_then_pinned_newer(env, oewsctl)
    serve_evictions(env.kube)
    env.kube.put("policy/v1/poddisruptionbudgets", {
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "oews-api", "namespace": "oews"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": "oews-api"}}}})
    env.kube.put("v1/pods", _app_pod("oews-api-a", "machine2"))  # the only ready replica

    started = time.monotonic()
    held = oewsctl("-c", str(env.config_path), "cluster", "install", "--airgap", str(env.release), "--timeout", "6", "--upgrade")
    assert held.code == 1
    assert time.monotonic() - started >= 6
    assert "pod oews/oews-api-a: eviction refused by its PodDisruptionBudget, retrying" in held.err
    assert "drain of machine2: the PodDisruptionBudget kept refusing oews/oews-api-a for 6s" in held.err
    assert "machine2: uncordoned again after the failure" in held.err
    assert env.kube.get("v1/pods", "oews", "oews-api-a") is not None  # never deleted behind the budget's back
    assert len(install_logs(env.node("machine2"))) == 1  # machine2 not touched
    assert not (env.kube.get("v1/nodes", None, "machine2") or {}).get("spec", {}).get("unschedulable")

    def second_replica_ready() -> None:  # a while after the drain began (cordon, then a refused eviction)
        env.kube.wait_for(lambda: (env.kube.get("v1/nodes", None, "machine2") or {}).get("spec", {}).get("unschedulable"), timeout=60)
        time.sleep(1.5)
        env.kube.put("v1/pods", _app_pod("oews-api-b", "machine1"))

    helper = threading.Thread(target=second_replica_ready)
    helper.start()
    try:
        upgraded = _install(env, oewsctl, "--upgrade")
    finally:
        helper.join()
    assert upgraded.code == 0, upgraded.err
    assert "eviction refused by its PodDisruptionBudget, retrying" in upgraded.err  # it waited ...
    assert "evicted pod oews/oews-api-a" in upgraded.err  # ... then evicted once the budget allowed it
    assert env.kube.get("v1/pods", "oews", "oews-api-a") is None
    assert env.kube.get("v1/pods", "oews", "oews-api-b") is not None
    assert len(install_logs(env.node("machine2"))) == 2
