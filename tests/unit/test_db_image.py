"""``database.delivery: image``: the rendered Deployment, how a release moves in and out of a pod template,
and what a machine that never ran ``db publish`` can still do (render, list for backups, deploy keeping
the live release; a first deploy stops with exit 2 and says to publish).

Rendering is checked against the real Kubernetes schemas (kubernetes-validate, strict). The
end-to-end path (publish to a real registry, fetch_db, db update on the API emulator) is in
tests/integration/test_db_artifact.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from oewsctl.configuration.loading import parse_config
from oewsctl.configuration.schema import Config
from oewsctl.runbooks.backup import managed_objects
from oewsctl.runbooks.db_artifact import UNRESOLVED, Published, default_tag, record_published, size_limit
from oewsctl.runbooks.db_image import database_of, rendered_template, transplant
from oewsctl.runbooks.render import render
from tests.conftest import DATA_DIR
from tests.fixtures.cli import CliRunner
from tests.fixtures.kube import KubeCluster

EXAMPLE = DATA_DIR / "deploy" / "oewsctl.yaml"
K3S_KUBERNETES = "1.31.0"
MAY = Published("ghcr.io/example/oews-api-db@sha256:" + "1" * 64, "a" * 64, "May 2025", 67_575_808)
APRIL = Published("ghcr.io/example/oews-api-db@sha256:" + "2" * 64, "b" * 64, "May 2024", 60_000_000)


def _config(**database: Any) -> Config:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["database"].update(database)
    return parse_config(yaml.safe_dump(data))


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OEWSCTL_STATE_DIR", str(tmp_path))
    return tmp_path


def _deployment(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == "Deployment")


def test_image_mode_renders_an_init_container_and_an_emptydir_and_validates_strictly(state: Path) -> None:
    config = _config(delivery="image")
    record_published(config, MAY)
    deployment = _deployment(render(config))
    kubernetes_validate.validate(deployment, K3S_KUBERNETES, strict=True)
    pod = deployment["spec"]["template"]
    text = json.dumps(deployment)
    assert "hostPath" not in text
    assert "oews/db" not in json.dumps(pod["spec"]["affinity"])  # no node label needed
    fetch = pod["spec"]["initContainers"][0]
    assert fetch["name"] == "fetch-db" and fetch["image"] == pod["spec"]["containers"][0]["image"] == "ghcr.io/example/oews-api:1.4.0"
    assert fetch["command"] + fetch["args"] == ["python", "-m", "oews_api.fetch_db", "--ref", MAY.ref, "--out", "/data/oews.db",
                                                "--auth-file", "/var/run/oews/registry/.dockerconfigjson"]
    assert fetch["securityContext"]["readOnlyRootFilesystem"] is True
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["db"] == {"name": "db", "emptyDir": {"sizeLimit": size_limit(MAY.size)}}
    assert volumes["registry-auth"]["secret"] == {"secretName": "ghcr-credentials", "optional": True, "defaultMode": 0o440,
                                                  "items": [{"key": ".dockerconfigjson", "path": ".dockerconfigjson"}]}
    assert pod["spec"]["securityContext"]["fsGroup"] == 1000  # the mounted Secret is readable by uid 1000
    assert pod["metadata"]["annotations"] == {"oews/db-ref": MAY.ref, "oews/db-sha256": MAY.sha256, "oews/db-release": "May 2025"}
    api = pod["spec"]["containers"][0]
    assert {"name": "db", "mountPath": "/data", "readOnly": True} in api["volumeMounts"]


def test_hostpath_mode_is_unchanged_by_a_recorded_artifact(state: Path) -> None:
    config = _config()
    record_published(config, MAY)
    pod = _deployment(render(config))["spec"]["template"]
    assert "initContainers" not in pod["spec"] and "annotations" not in pod["metadata"]
    assert {"key": "oews/db", "operator": "In", "values": ["true"]} in pod["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]["matchExpressions"]


def _inventory(path: Path, kubeconfig: Path) -> Path:
    """The example with delivery image, plain Kubernetes Secrets and no pull secret, on ``kubeconfig``."""
    data = yaml.safe_load(EXAMPLE.read_text())
    data["cluster"]["kubeconfig"] = str(kubeconfig)
    data["database"]["delivery"] = "image"
    data["secrets"] = {"provider": "kubernetes"}
    data["app"].pop("image_pull_secret")
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_without_a_publish_here_monitoring_ui_and_backup_listings_render_and_the_deployment_shows_a_placeholder(
        state: Path, run_cli: CliRunner) -> None:
    config = _inventory(state / "oewsctl.yaml", state / "no-kubeconfig")  # another machine: no db-artifacts.json, no cluster
    for command in (("render", "--only", "monitoring"), ("monitoring", "install", "--dry-run"), ("ui", "install", "--dry-run")):
        done = run_cli("--config", config, *command)
        assert done.returncode == 0, (command, done.stderr)
    kinds = {doc["kind"] for doc in yaml.safe_load_all(run_cli("--config", config, "render", "--only", "monitoring").stdout)}
    assert {"HelmChart", "PrometheusRule", "ServiceMonitor"} <= kinds

    app = run_cli("--config", config, "render", "--only", "app")
    assert app.returncode == 0, app.stderr
    fetch = _deployment(list(yaml.safe_load_all(app.stdout)))["spec"]["template"]["spec"]["initContainers"][0]
    assert fetch["args"][:2] == ["--ref", UNRESOLVED.ref] and "oewsctl db publish FILE" in UNRESOLVED.ref
    assert ("Deployment", "oews", "oews-api") in {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"])
                                                  for o in managed_objects(parse_config(config.read_text()))}  # what backup exports


def test_deploy_without_a_publish_here_keeps_the_live_deployments_database(
        state: Path, run_cli: CliRunner, kube_cluster: KubeCluster) -> None:
    config = _inventory(state / "oewsctl.yaml", kube_cluster.kubeconfig)
    record_published(parse_config(config.read_text()), MAY)
    first = run_cli("--config", config, "deploy", "--no-wait")  # the operator who published
    assert first.returncode == 0, first.stderr
    assert kube_cluster.get("v1/namespaces", None, "oews") is not None
    (state / "db-artifacts.json").unlink()  # a second operator, or the cron host

    planned = run_cli("--config", config, "deploy", "--dry-run")
    assert planned.returncode == 0, planned.stderr
    assert f"apply Deployment oews/oews-api, keeping the database it fetches: May 2025 ({MAY.ref})" in planned.stderr
    assert "<unresolved" not in planned.stderr  # nor in the diff against the live Deployment

    again = run_cli("--config", config, "deploy", "--no-wait", "--image", "ghcr.io/example/oews-api:1.5.0")
    assert again.returncode == 0, again.stderr
    live = kube_cluster.get("apps/v1/deployments", "oews", "oews-api")
    assert live is not None and live["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/example/oews-api:1.5.0"
    assert database_of(live["spec"]["template"]) == Published(MAY.ref, MAY.sha256, MAY.release, 0)
    assert {"name": "db", "emptyDir": {"sizeLimit": size_limit(MAY.size)}} in live["spec"]["template"]["spec"]["volumes"]


def test_a_first_deploy_without_a_publish_stops_before_any_change_and_says_what_to_run(
        state: Path, run_cli: CliRunner, kube_cluster: KubeCluster) -> None:
    config = _inventory(state / "oewsctl.yaml", kube_cluster.kubeconfig)
    for args in (("--dry-run",), ()):
        done = run_cli("--config", config, "deploy", *args)
        assert done.returncode == 2, done.stderr
        assert "no database was published from this machine and Deployment oews/oews-api fetches none yet" in done.stderr
        assert "run `oewsctl db publish FILE` first" in done.stderr
    assert kube_cluster.get("v1/namespaces", None, "oews") is None  # nothing applied


def test_a_release_moves_between_templates_with_the_live_image_and_nothing_else(state: Path) -> None:
    config = _config(delivery="image")
    live = rendered_template(config, MAY)
    live["spec"]["containers"][0]["image"] = live["spec"]["initContainers"][0]["image"] = "ghcr.io/example/oews-api:2.0.0"  # a later deploy
    live["metadata"]["annotations"]["oews/secrets-sha256"] = "c" * 64
    moved = transplant(live, rendered_template(config, APRIL))
    assert database_of(moved) == Published(APRIL.ref, APRIL.sha256, APRIL.release, 0)
    fetch = moved["spec"]["initContainers"][0]
    assert fetch["image"] == "ghcr.io/example/oews-api:2.0.0" and APRIL.ref in fetch["args"]
    assert {"name": "db", "emptyDir": {"sizeLimit": size_limit(APRIL.size)}} in moved["spec"]["volumes"]
    assert moved["metadata"]["annotations"]["oews/secrets-sha256"] == "c" * 64  # other annotations stay
    assert transplant(moved, live) == live  # and back again: byte for byte the template it was


def test_default_tag_is_readable_and_unique_per_file() -> None:
    assert default_tag("May 2025", "728c973c4c2dd4124ab2") == "may-2025-728c973c4c2d"
    assert default_tag(None, "ab" * 32) == "oews-db-abababababab"
