"""Backup folders without a cluster: cleaning exported objects, verify, list, retention, the DNS note."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
import yaml

from oewsctl.commands.backup import CRON_LINE
from oewsctl.configuration.loading import load_config
from oewsctl.core.lock import STALE_SECONDS
from oewsctl.runbooks.backup import MANIFEST, clean, dns_change, file_sha256, list_backups, managed_objects, prune, verify
from tests.conftest import DATA_DIR, TESTS_DIR
from tests.fixtures.cli import CliRunner

CONFIG = DATA_DIR / "deploy" / "oewsctl.yaml"


def make_backup(dest: Path, backup_id: str, database: Path) -> Path:
    folder = dest / backup_id
    (folder / "state").mkdir(parents=True)
    shutil.copyfile(database, folder / "oews.db")
    shutil.copyfile(CONFIG, folder / "oewsctl.yaml")
    (folder / "state" / "01-namespace-oews.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: oews}\n")
    files = [p for p in folder.rglob("*") if p.is_file()]
    manifest = {"time": "2026-11-26T03:15:00+00:00", "database": {"sha256": file_sha256(folder / "oews.db"), "size": 1},
                "files": [{"path": str(p.relative_to(folder)), "size": p.stat().st_size, "sha256": file_sha256(p)} for p in files]}
    (folder / MANIFEST).write_text(json.dumps(manifest))
    return folder


def test_clean_drops_status_and_server_fields_but_keeps_the_spec() -> None:
    live = {"apiVersion": "apps/v1", "kind": "Deployment", "status": {"replicas": 2}, "spec": {"replicas": 2},
            "metadata": {"name": "oews-api", "namespace": "oews", "uid": "u", "resourceVersion": "7", "generation": 3,
                         "managedFields": [{}], "creationTimestamp": "t", "labels": {"a": "b"},
                         "annotations": {"deployment.kubernetes.io/revision": "4", "kubernetes.io/change-cause": "deploy"}}}
    assert clean(live) == {"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": 2},
                           "metadata": {"name": "oews-api", "namespace": "oews", "labels": {"a": "b"},
                                        "annotations": {"kubernetes.io/change-cause": "deploy"}}}


def test_verify_finds_a_damaged_file_and_a_damaged_database(tmp_path: Path, sample_db: Path) -> None:
    folder = make_backup(tmp_path, "20261126T031500Z", sample_db)
    assert verify(folder) == []
    (folder / "oewsctl.yaml").write_text((folder / "oewsctl.yaml").read_text() + "\n# edited\n")
    with (folder / "oews.db").open("r+b") as db:
        db.truncate(4096)
    problems = verify(folder)
    assert "oewsctl.yaml: SHA-256 or size differs from manifest.json (damaged)" in problems
    assert "oews.db: SHA-256 or size differs from manifest.json (damaged)" in problems
    assert any(p.startswith("oews.db: ") and "truncated or damaged" in p for p in problems)


def test_partial_folders_are_not_backups_and_retention_keeps_the_newest(tmp_path: Path, sample_db: Path) -> None:
    for backup_id in ("20261124T031500Z", "20261125T031500Z", "20261126T031500Z"):
        make_backup(tmp_path, backup_id, sample_db)
    (tmp_path / ".20261127T031500Z.partial").mkdir()  # a crashed run
    assert [b.id for b in list_backups(tmp_path)] == ["20261124T031500Z", "20261125T031500Z", "20261126T031500Z"]
    shutil.copyfile(sample_db, tmp_path / ".20261127T031500Z.partial" / "oews.db")  # a full copy a SIGKILL left behind
    _age(tmp_path / ".20261127T031500Z.partial", STALE_SECONDS + 60)
    assert prune(tmp_path, 2) == ["20261124T031500Z", ".20261127T031500Z.partial"]
    assert [b.id for b in list_backups(tmp_path)] == ["20261125T031500Z", "20261126T031500Z"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["20261125T031500Z", "20261126T031500Z"]  # no stale copy left
    assert prune(tmp_path, 2) == []


def _age(folder: Path, seconds: float) -> None:
    """Make ``folder`` and everything in it look untouched for ``seconds``."""
    then = time.time() - seconds
    for path in [*folder.rglob("*"), folder]:
        os.utime(path, (then, then))


def test_prune_leaves_a_partial_folder_another_backup_is_still_writing(tmp_path: Path, sample_db: Path) -> None:
    """Two clusters (or machines) backing up into one dest: the other run's folder is not a leftover."""
    for backup_id in ("20261125T031500Z", "20261126T031500Z"):
        make_backup(tmp_path, backup_id, sample_db)
    running = tmp_path / ".20261126T031501Z.partial"
    running.mkdir()
    shutil.copyfile(sample_db, running / "oews.db")
    _age(running, STALE_SECONDS - 600)
    (running / "state").mkdir()  # ... it is still writing: its newest entry is fresh
    dead = tmp_path / ".20261120T031500Z.partial"
    dead.mkdir()
    shutil.copyfile(sample_db, dead / "oews.db")
    _age(dead, STALE_SECONDS + 60)
    assert prune(tmp_path, 2) == [".20261120T031500Z.partial"]
    assert running.is_dir() and (running / "oews.db").is_file()


def _plant(folder: Path, *, listed: bool) -> str:
    rel = "state/99-clusterrolebinding-backdoor.yaml"
    (folder / rel).write_text(yaml.safe_dump({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "backdoor"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "oews"}]}))
    if listed:  # an attacker who can write the backup can rewrite manifest.json too
        manifest = json.loads((folder / MANIFEST).read_text())
        manifest["files"].append({"path": rel, "size": (folder / rel).stat().st_size, "sha256": file_sha256(folder / rel)})
        (folder / MANIFEST).write_text(json.dumps(manifest))
    return rel


def test_verify_reports_files_the_manifest_does_not_list(tmp_path: Path, sample_db: Path) -> None:
    folder = make_backup(tmp_path, "20261126T031500Z", sample_db)
    rel = _plant(folder, listed=False)
    (folder / "notes.txt").write_text("x")
    assert verify(folder) == [
        "notes.txt: not listed in manifest.json (not written by `backup run`; remove it)",
        f"{rel}: not listed in manifest.json (not written by `backup run`; remove it)",
    ]


def test_verify_refuses_a_listed_object_oewsctl_never_renders(tmp_path: Path, sample_db: Path) -> None:
    # oewsctl renders a ClusterRoleBinding of its own (Headlamp's read-only viewer): the planted
    # one must be refused by identity, not merely by kind.
    rendered = {(o["kind"], o["metadata"]["name"]) for o in managed_objects(load_config(CONFIG))}
    assert ("ClusterRoleBinding", "headlamp-viewer") in rendered
    folder = make_backup(tmp_path, "20261126T031500Z", sample_db)
    rel = _plant(folder, listed=True)
    assert verify(folder) == [
        f"{rel}: ClusterRoleBinding backdoor (rbac.authorization.k8s.io/v1) is not an object oewsctl renders; restore refuses it"
    ]


def test_dns_change_only_when_the_server_address_changed() -> None:
    saved = load_config(CONFIG)
    moved = saved.model_copy(deep=True)
    moved.nodes[0].host = "203.0.113.99"
    assert dns_change(saved, saved) is None
    assert dns_change(saved, moved) == "DNS: point api.example.com (A record) at 203.0.113.99 — it still points at 203.0.113.10, the old server's address"


def test_readme_cron_line_is_the_one_backup_help_prints(run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (TESTS_DIR.parent / "README.md").read_text()
    cron = [line for line in readme.splitlines() if line.startswith("15 3 * * *")]
    assert cron == [CRON_LINE]
    monkeypatch.setenv("COLUMNS", "250")  # the line is long: no wrapping in help
    done = run_cli("backup", "--help")
    assert done.returncode == 0 and CRON_LINE in done.stdout
