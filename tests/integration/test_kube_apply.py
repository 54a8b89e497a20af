"""The shared Kubernetes layer against the API emulator: apply is create-then-patch and idempotent."""

from __future__ import annotations

from pathlib import Path

import pytest

from oewsctl.config import load_config
from oewsctl.deploy import manifests
from oewsctl.errors import UsageError
from oewsctl.kube import Kube, load_api_client
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
