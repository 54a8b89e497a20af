"""The pure parts of the Kubernetes layer and rollouts: patches, no-op detection, order, kubectl status lines, image pinning."""

from __future__ import annotations

from typing import Any

import yaml

from oewsctl.clients.kube import apply_order, contains, merge_patch
from oewsctl.configuration.loading import parse_config
from oewsctl.runbooks.deploy import DeployOptions, deploy_plan, resolve_image
from oewsctl.runbooks.images import record_digest
from oewsctl.runbooks.rollout import rollout_state
from tests.conftest import DATA_DIR

EXAMPLE = DATA_DIR / "deploy" / "oewsctl.yaml"


def test_merge_patch_removes_what_the_target_lacks() -> None:
    current = {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "x"}, "labels": {"a": "1"}},
               "spec": {"containers": [{"image": "v2"}]}}
    target = {"metadata": {"labels": {"a": "1"}}, "spec": {"containers": [{"image": "v1"}]}}
    assert merge_patch(current, target) == {"metadata": {"annotations": None}, "spec": {"containers": [{"image": "v1"}]}}
    assert merge_patch(target, target) == {}


def test_contains_ignores_server_defaults_but_not_changes() -> None:
    live = {"spec": {"ports": [{"port": 80, "protocol": "TCP", "targetPort": "http"}], "clusterIP": "10.43.0.5"}}
    assert contains(live, {"spec": {"ports": [{"port": 80, "targetPort": "http"}]}})
    assert not contains(live, {"spec": {"ports": [{"port": 8080, "targetPort": "http"}]}})
    assert not contains(live, {"spec": {"ports": [{"port": 80}, {"port": 443}]}})


def test_apply_order_puts_dependencies_first() -> None:
    kinds = ["Ingress", "Deployment", "ExternalSecret", "Namespace", "SecretStore", "HelmChart", "Service", "Widget"]
    ordered = [o["kind"] for o in apply_order([{"kind": k} for k in kinds])]
    assert ordered == ["Namespace", "HelmChart", "SecretStore", "ExternalSecret", "Service", "Deployment", "Ingress", "Widget"]


def _deployment(generation: int = 2, observed: int = 2, **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "oews-api", "generation": generation}, "spec": {"replicas": 2},
            "status": {"observedGeneration": observed, **status}}


def test_rollout_state_follows_kubectl() -> None:
    assert rollout_state(_deployment(generation=3)).message == "Waiting for deployment spec update to be observed..."
    waiting = rollout_state(_deployment(updatedReplicas=1, replicas=3, availableReplicas=1))
    assert waiting.message.startswith('Waiting for deployment "oews-api" rollout to finish: 1 out of 2 new replicas have been updated...')
    old = rollout_state(_deployment(updatedReplicas=2, replicas=3, availableReplicas=2))
    assert "1 old replicas are pending termination" in old.message
    unavailable = rollout_state(_deployment(updatedReplicas=2, replicas=2, availableReplicas=1))
    assert "1 of 2 updated replicas are available" in unavailable.message and not unavailable.done
    done = rollout_state(_deployment(updatedReplicas=2, replicas=2, availableReplicas=2))
    assert done.done and done.message.startswith('deployment "oews-api" successfully rolled out')
    stalled = rollout_state(_deployment(updatedReplicas=1, replicas=3, availableReplicas=1, conditions=[
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": 'ReplicaSet "x" has timed out progressing.'}]))
    assert stalled.failed and not stalled.done and "exceeded its progress deadline" in stalled.message


def test_untagged_app_image_is_pinned_to_the_pushed_digest() -> None:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["app"]["image"] = "ghcr.io/example/oews-api"
    config = parse_config(yaml.safe_dump(data))
    assert resolve_image(config) == "ghcr.io/example/oews-api"
    digest = "sha256:" + "ab" * 32
    record_digest("ghcr.io/example/oews-api", digest, tags=["1.5.0"], platforms=["linux/amd64"], source=None)
    assert resolve_image(config) == f"ghcr.io/example/oews-api@{digest}"
    assert resolve_image(config, "ghcr.io/example/oews-api:1.4.0") == "ghcr.io/example/oews-api:1.4.0"
    plan = deploy_plan(config, DeployOptions())
    assert f"ghcr.io/example/oews-api@{digest}" in plan.steps[-2].description


def test_deploy_plan_without_wait_only_applies() -> None:
    config = parse_config(EXAMPLE.read_text())
    plan = deploy_plan(config, DeployOptions(wait=False))
    assert [s.description for s in plan.steps][:2] == ["apply Namespace oews", "apply HelmChart kube-system/external-secrets"]
    applies = [s.description for s in plan.steps if s.description.startswith("apply ")]
    assert len(applies) == 12 and len(plan.steps) == 14
    descriptions = [s.description for s in plan.steps]
    at = descriptions.index("apply Deployment oews/oews-api")
    assert descriptions[at - 2:at] == [
        "Secret oews/ghcr-credentials: pull credentials for ghcr.io (from $GHCR_TOKEN or docker login)",
        "wait for External Secrets Operator to create Secret oews/oews-api-secrets (timeout 120s)",
    ]
    assert "<withheld>" in (plan.steps[at - 2].detail or "")
