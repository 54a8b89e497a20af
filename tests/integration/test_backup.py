"""`oewsctl backup run | list | verify` and `restore` against sshd DB nodes + the Kubernetes API emulator.

The lost-machine drill: back up, wipe the nodes' database files and every object of the app's
namespace, restore, and get back the same SHA-256 on every DB node and the same objects.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from oewsctl.clients.kube import Kube
from oewsctl.configuration.loading import load_config
from oewsctl.core.lock import lock_path
from oewsctl.runbooks.backup import export_state
from tests.fixtures.dbnodes import DB_PATH, CliRun, DbCluster, DbFiles, sha256
from tests.fixtures.kube import RESOURCES

SECRET_VALUE = "sk-test-do-not-leak-7f3c9b2e"
AZURE = {"provider": "azure-keyvault", "vault_url": "https://oews-secrets.vault.azure.net",
         "tenant_id": "00000000-0000-0000-0000-000000000000", "keys": {"OPENAI_API_KEY": "OPENAI-API-KEY"}}


def use_azure_secrets(cluster: DbCluster, cli: CliRun) -> None:
    """Inventory with secrets in Azure Key Vault (ESO objects deployed) and the synced Secret holding a value."""
    data = yaml.safe_load(cluster.config.read_text())
    data["secrets"] = AZURE
    cluster.config.write_text(yaml.safe_dump(data, sort_keys=False))
    deployed = cli(cluster.config, "deploy", "--image", "127.0.0.1:5000/oews-api:1.0")
    assert deployed.returncode == 0, deployed.stderr
    cluster.kube.put("v1/secrets", {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                                    "metadata": {"name": "oews-api-secrets", "namespace": "oews"},
                                    "data": {"OPENAI_API_KEY": base64.b64encode(SECRET_VALUE.encode()).decode()}})


def live_objects(cluster: DbCluster) -> list[dict[str, Any]]:
    kube = Kube.from_config(load_config(cluster.config))
    try:
        return export_state(kube, load_config(cluster.config))
    finally:
        kube.close()


def wipe_namespace(cluster: DbCluster) -> None:
    """Delete everything in the namespace, Deployments first: deleting Pods first let the controller
    re-create them (serving no file: it was removed) before their Deployment went, and restore then
    found them and restarted the pods."""
    first = ["apps/v1/deployments", "apps/v1/replicasets"]
    for resource, info in sorted(RESOURCES.items(), key=lambda item: item[0] not in first):
        if info["namespaced"]:
            for obj in cluster.kube.list(resource, "oews"):
                cluster.kube.delete(resource, "oews", obj["metadata"]["name"])
    cluster.kube.delete("v1/namespaces", None, "oews")


def test_backup_wipe_restore_gives_back_the_same_database_and_objects(db_cluster: DbCluster, db_files: DbFiles, cli: CliRun, tmp_path: Path) -> None:
    use_azure_secrets(db_cluster, cli)
    assert cli(db_cluster.config, "db", "update", db_files.new).returncode == 0
    dest = tmp_path / "backups"
    made = cli(db_cluster.config, "--output", "json", "backup", "run", "--dest", dest, "--keep", "2")
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["ok"] is True
    (backup,) = [p for p in dest.iterdir()]
    manifest = json.loads((backup / "manifest.json").read_text())
    assert manifest["database"]["sha256"] == sha256(db_files.new) == sha256(backup / "oews.db")
    assert {f["path"] for f in manifest["files"]} >= {"oews.db", "oewsctl.yaml"}
    assert manifest["secrets"] == [{"name": "oews-api-secrets", "type": "Opaque", "keys": ["OPENAI_API_KEY"]}]
    kinds = {yaml.safe_load(p.read_text())["kind"] for p in (backup / "state").iterdir()}
    assert {"Deployment", "ExternalSecret", "SecretStore", "Namespace"} <= kinds and "Secret" not in kinds
    state_text = "".join(p.read_text() for p in (backup / "state").iterdir())
    for field in ("status:", "managedFields", "uid:", "resourceVersion"):
        assert field not in state_text
    for needle in (SECRET_VALUE, base64.b64encode(SECRET_VALUE.encode()).decode()):  # grep the whole folder, bytes included
        assert subprocess.run(["grep", "-r", "-F", "-l", needle, str(backup)], check=False, capture_output=True).returncode == 1
    assert cli(db_cluster.config, "backup", "verify", backup.name, "--dest", dest).returncode == 0
    listed = cli(db_cluster.config, "backup", "list", "--dest", dest)
    assert backup.name in listed.stdout and "May 2025" in listed.stdout

    before = live_objects(db_cluster)
    for node in ("machine1", "machine2"):
        db_cluster.nodes.node(node).path(DB_PATH).unlink()
    wipe_namespace(db_cluster)
    assert [o["kind"] for o in live_objects(db_cluster)] == ["HelmChart", "HelmChartConfig"]  # kube-system add-ons stay

    plan = cli(db_cluster.config, "--dry-run", "restore", backup.name, "--dest", dest)
    assert plan.returncode == 0 and "restore Deployment oews/oews-api" in plan.stderr
    assert not db_cluster.nodes.node("machine1").path(DB_PATH).exists()  # a dry run changes nothing

    restored = cli(db_cluster.config, "restore", backup.name, "--dest", dest)
    assert restored.returncode == 0, restored.stderr
    assert "oews-api-secrets must be synced by ESO" in restored.stderr
    for node in ("machine1", "machine2"):
        assert sha256(db_cluster.nodes.node(node).path(DB_PATH)) == manifest["database"]["sha256"]
    assert live_objects(db_cluster) == before
    assert f"2/2 ready pods serve sha256 {manifest['database']['sha256'][:12]}" in restored.stderr


def test_restore_onto_a_new_server_address_prints_the_dns_change(db_cluster: DbCluster, db_files: DbFiles, cli: CliRun, tmp_path: Path) -> None:
    assert cli(db_cluster.config, "db", "push", db_files.new).returncode == 0
    dest = tmp_path / "backups"
    assert cli(db_cluster.config, "backup", "run", "--dest", dest).returncode == 0
    (backup,) = list(dest.iterdir())
    saved = yaml.safe_load((backup / "oewsctl.yaml").read_text())
    saved["nodes"][0]["host"] = "203.0.113.10"  # the machine that was lost
    (backup / "oewsctl.yaml").write_text(yaml.safe_dump(saved))
    manifest = json.loads((backup / "manifest.json").read_text())
    for entry in manifest["files"]:
        if entry["path"] == "oewsctl.yaml":
            entry["size"], entry["sha256"] = (backup / "oewsctl.yaml").stat().st_size, sha256(backup / "oewsctl.yaml")
    (backup / "manifest.json").write_text(json.dumps(manifest))
    result = cli(db_cluster.config, "restore", backup.name, "--dest", dest, "--node", "machine2")
    assert result.returncode == 0, result.stderr
    assert "DNS: point api.example.test (A record) at 127.0.0.11 — it still points at 203.0.113.10" in result.stderr
    assert "restore Deployment oews/oews-api — exists, left alone" in result.stderr


def test_backup_for_cron_lock_quiet_json_and_retention(db_cluster: DbCluster, db_files: DbFiles, big_db: Path, cli: CliRun, tmp_path: Path) -> None:
    dest = tmp_path / "backups"
    nothing = cli(db_cluster.config, "backup", "run", "--dest", dest)  # no database on the nodes yet
    assert nothing.returncode == 1 and "cannot read /opt/k3s/storage/oews.db" in nothing.stderr
    assert not dest.exists() or list(dest.iterdir()) == []  # no half backup left behind

    assert cli(db_cluster.config, "db", "push", big_db).returncode == 0
    env = {**os.environ, "TERM": "dumb"}
    first = subprocess.Popen([sys.executable, "-m", "oewsctl.cli", "--config", str(db_cluster.config), "--output", "json",
                              "backup", "run", "--dest", str(dest), "--keep", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    lock = lock_path("home")
    deadline = time.monotonic() + 30
    while not lock.exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert lock.exists(), "the first backup never took the lock"
    started = time.monotonic()
    second = cli(db_cluster.config, "backup", "run", "--dest", dest)
    assert second.returncode == 3
    assert time.monotonic() - started < 5
    assert "cluster 'home' is locked by" in second.stderr and "backup run" in second.stderr
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert json.loads(out)["ok"] is True
    assert "\x1b[" not in err.decode()  # no colors or spinners without a TTY

    quiet = cli(db_cluster.config, "backup", "run", "--dest", dest, "--keep", "1", "--quiet")
    assert quiet.returncode == 0 and quiet.stderr == "" and quiet.stdout == ""
    backups = [p.name for p in dest.iterdir()]
    assert len(backups) == 1 and not backups[0].startswith(".")  # the older one pruned after the new one verified


def test_backup_terminated_mid_copy_leaves_no_partial_folder(db_cluster: DbCluster, big_db: Path, cli: CliRun, tmp_path: Path) -> None:
    """cron's `timeout` sends SIGTERM: the half-copied database must not stay behind, nor the lock."""
    assert cli(db_cluster.config, "db", "push", big_db).returncode == 0
    dest = tmp_path / "backups"
    run = subprocess.Popen([sys.executable, "-m", "oewsctl.cli", "--config", str(db_cluster.config), "backup", "run", "--dest", str(dest)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "TERM": "dumb"})
    deadline = time.monotonic() + 60
    copied = 0
    while run.poll() is None and time.monotonic() < deadline and copied < 16 * 1048576:
        copied = sum(p.stat().st_size for p in dest.glob(".*.partial/*") if p.is_file()) if dest.exists() else 0
        time.sleep(0.005)
    assert copied >= 16 * 1048576, "the copy finished before it could be interrupted"
    run.send_signal(signal.SIGTERM)
    run.communicate(timeout=30)
    assert run.returncode == 143
    assert list(dest.iterdir()) == []
    assert not lock_path("home").exists()


def _plant_cluster_admin(backup: Path, *, listed: bool) -> str:
    """What a hostile edit of a backup adds: a ClusterRoleBinding to cluster-admin (listed with its hash or not)."""
    rel = "state/99-clusterrolebinding-backdoor.yaml"
    (backup / rel).write_text(yaml.safe_dump({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "backdoor"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "oews"}]}))
    if listed:
        manifest = json.loads((backup / "manifest.json").read_text())
        manifest["files"].append({"path": rel, "size": (backup / rel).stat().st_size, "sha256": sha256(backup / rel)})
        (backup / "manifest.json").write_text(json.dumps(manifest))
    return rel


def test_restore_applies_only_what_verify_checked(db_cluster: DbCluster, db_files: DbFiles, cli: CliRun, tmp_path: Path) -> None:
    """A planted object is refused whether or not manifest.json lists it; nothing is restored meanwhile."""
    assert cli(db_cluster.config, "db", "push", db_files.new).returncode == 0
    dest = tmp_path / "backups"
    assert cli(db_cluster.config, "backup", "run", "--dest", dest).returncode == 0
    (backup,) = list(dest.iterdir())
    for node in ("machine1", "machine2"):
        db_cluster.nodes.node(node).path(DB_PATH).unlink()

    rel = _plant_cluster_admin(backup, listed=False)
    checked = cli(db_cluster.config, "backup", "verify", backup.name, "--dest", dest)
    assert checked.returncode == 1
    assert f"problem: {rel}: not listed in manifest.json" in checked.stderr
    refused = cli(db_cluster.config, "restore", backup.name, "--dest", dest)
    assert refused.returncode == 1
    assert f"failed verification, nothing restored: {rel}: not listed in manifest.json" in refused.stderr

    _plant_cluster_admin(backup, listed=True)
    refused = cli(db_cluster.config, "--output", "json", "restore", backup.name, "--dest", dest)
    assert refused.returncode == 1
    line = f"{rel}: ClusterRoleBinding backdoor (rbac.authorization.k8s.io/v1) is not an object oewsctl renders; restore refuses it"
    assert line in refused.stdout + refused.stderr
    assert "Traceback" not in refused.stderr
    for node in ("machine1", "machine2"):  # refused before the first change
        assert not db_cluster.nodes.node(node).path(DB_PATH).exists()
