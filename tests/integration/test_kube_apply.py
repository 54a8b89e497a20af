"""The shared Kubernetes layer against the API emulator: apply creates, prunes what it stopped rendering, and is idempotent."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from oewsctl.clients.kube import KindNotServed, Kube, load_api_client
from oewsctl.configuration.loading import load_config
from oewsctl.core.errors import UsageError
from oewsctl.core.state import state_dir
from oewsctl.runbooks.deploy import manifests
from tests.fixtures.kube import KubeCluster


def test_apply_creates_then_second_apply_is_a_noop(kube_cluster: KubeCluster, tmp_path: Path) -> None:
    config = load_config(kube_cluster.write_config(tmp_path / "oewsctl.yaml"))
    kube = Kube.from_config(config)
    objects = manifests(config)
    first = [kube.apply(obj) for obj in objects]
    assert first == ["created"] * len(objects)
    stored = kube_cluster.get("apps/v1/deployments", "oews", "oews-api")
    assert stored is not None
    container = stored["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/example/oews-api:1.4.0"
    assert kube_cluster.get("external-secrets.io/v1/externalsecrets", "oews", "oews-api-secrets") is not None
    assert kube_cluster.get("helm.cattle.io/v1/helmchartconfigs", "kube-system", "traefik") is not None

    second = [kube.apply(obj) for obj in objects]
    assert second == ["unchanged"] * len(objects)

    changed = manifests(config, image="ghcr.io/example/oews-api:1.5.0")
    third = {f"{o['kind']}/{o['metadata']['name']}": kube.apply(o) for o in changed}
    assert third["Deployment/oews-api"] == "configured"
    assert [v for k, v in third.items() if k != "Deployment/oews-api"] == ["unchanged"] * (len(changed) - 1)
    stored = kube_cluster.get("apps/v1/deployments", "oews", "oews-api")
    assert stored["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/example/oews-api:1.5.0"
    assert stored["metadata"]["generation"] == 2


def test_missing_context_names_the_contexts(kube_cluster: KubeCluster, tmp_path: Path) -> None:
    path = kube_cluster.write_config(tmp_path / "oewsctl.yaml")
    text = path.read_text().replace("name: home", "name: office", 1)
    path.write_text(text)
    with pytest.raises(UsageError) as info:
        load_api_client(load_config(path))
    assert "no context 'office'" in info.value.message and "home" in info.value.message
    assert "oewsctl cluster kubeconfig" in (info.value.hint or "")


def test_apply_waits_for_a_crd_kind_to_be_served(kube_cluster: KubeCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A SecretStore applied right after the ESO HelmChart waits until its CRD is served."""
    config = load_config(kube_cluster.write_config(tmp_path / "oewsctl.yaml"))
    store = next(o for o in manifests(config) if o["kind"] == "SecretStore")
    kube_cluster.drop_kind("external-secrets.io/v1/secretstores")
    kube = Kube.from_config(config)
    timer = threading.Timer(0.5, kube_cluster.serve_kind, ["external-secrets.io/v1/secretstores"])
    timer.start()
    started = time.monotonic()
    assert kube.apply(store) == "created"
    assert time.monotonic() - started >= 0.4
    assert kube_cluster.get("external-secrets.io/v1/secretstores", "oews", "azure-keyvault") is not None

    kube_cluster.drop_kind("external-secrets.io/v1/externalsecrets")
    for cached in state_dir().glob("discovery-*.json"):  # a fresh machine: no discovery cache yet
        cached.unlink()
    monkeypatch.setattr("oewsctl.clients.kube.CRD_WAIT_SECONDS", 0.3)
    secret = next(o for o in manifests(config) if o["kind"] == "ExternalSecret")
    with pytest.raises(KindNotServed) as info:
        Kube.from_config(config).apply(secret)
    assert "does not serve ExternalSecret (external-secrets.io/v1) after waiting 0s" in info.value.message
    assert "HelmChart" in (info.value.hint or "")


def test_a_field_the_template_stops_rendering_is_removed(kube_cluster: KubeCluster, tmp_path: Path) -> None:
    """Turning image_pull_secret off is a change (not "unchanged") and removes imagePullSecrets from the live object."""
    with_secret = load_config(kube_cluster.write_config(tmp_path / "with.yaml"))
    without = load_config(kube_cluster.write_config(tmp_path / "without.yaml", image_pull_secret=None))
    kube = Kube.from_config(with_secret)
    deployment = next(o for o in manifests(with_secret) if o["kind"] == "Deployment")
    assert kube.apply(deployment) == "created"
    live = kube_cluster.get("apps/v1/deployments", "oews", "oews-api")
    assert live["spec"]["template"]["spec"]["imagePullSecrets"] == [{"name": "ghcr-credentials"}]
    assert any(f["manager"] == "oewsctl" and f["operation"] == "Apply" for f in live["metadata"]["managedFields"])

    dropped = next(o for o in manifests(without) if o["kind"] == "Deployment")
    assert not kube.is_unchanged(dropped)
    assert kube.apply(dropped) == "configured"
    live = kube_cluster.get("apps/v1/deployments", "oews", "oews-api")
    assert "imagePullSecrets" not in live["spec"]["template"]["spec"]
    assert kube.apply(dropped) == "unchanged"
