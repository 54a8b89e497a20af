"""Backups cover everything ``oewsctl render`` lists: the monitoring stack with its alert rules and
dashboard too, not only the app (issue 15). Real sshd DB nodes + the Kubernetes API emulator."""

from __future__ import annotations

from pathlib import Path

import yaml

from oewsctl.clients.kube import Kube
from oewsctl.configuration.loading import load_config
from oewsctl.runbooks.manifests import group_objects
from tests.fixtures.dbnodes import CliRun, DbCluster, DbFiles
from tests.fixtures.kube import RESOURCES

SERVED = {info["kind"] for info in RESOURCES.values()}


def test_backup_saves_the_monitoring_objects_render_lists(db_cluster: DbCluster, db_files: DbFiles, cli: CliRun, tmp_path: Path) -> None:
    assert cli(db_cluster.config, "db", "push", db_files.old).returncode == 0
    config = load_config(db_cluster.config)
    monitoring = [obj for obj in group_objects(config, "monitoring") if obj["kind"] in SERVED and obj["kind"] != "Secret"]
    kube = Kube.from_config(config)
    try:
        for obj in monitoring:
            kube.apply(obj)
    finally:
        kube.close()

    result = cli(db_cluster.config, "backup", "run", "--dest", str(tmp_path / "backups"))
    assert result.returncode == 0, result.stderr
    [backup] = (tmp_path / "backups").iterdir()
    saved = {(doc["kind"], doc["metadata"]["name"]) for path in (backup / "state").iterdir() for doc in [yaml.safe_load(path.read_text())]}
    assert {(obj["kind"], obj["metadata"]["name"]) for obj in monitoring} <= saved
    assert {"PrometheusRule", "ServiceMonitor", "ConfigMap"} <= {kind for kind, _ in saved}  # the alert rules and the dashboard
    assert {("Deployment", "oews-api"), ("Middleware", "oews-api-ratelimit"), ("NetworkPolicy", "oews-api")} <= saved
