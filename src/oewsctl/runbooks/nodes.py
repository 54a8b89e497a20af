"""Node maintenance with kubectl's semantics: cordon, drain through the Eviction API, uncordon.

``drain`` is ``kubectl drain --ignore-daemonsets --delete-emptydir-data``: every pod on the node
except DaemonSet and mirror pods is evicted with ``POST pods/NAME/eviction``, so the API server
refuses (429) any eviction that would break a PodDisruptionBudget; refused pods are retried
until ``timeout``, then the drain waits until they are gone from the node.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from oewsctl.clients.kube import Kube, poll_seconds
from oewsctl.core.errors import OewsctlError, UsageError

if TYPE_CHECKING:
    from oewsctl.configuration.schema import Config

Echo = Callable[[str], None]


def known_node(config: Config, name: str) -> str:
    """``name`` if the inventory has it, else exit 2 listing the nodes it has."""
    names = [node.name for node in config.nodes]
    if name not in names:
        raise UsageError(f"unknown node {name!r}: the inventory has {', '.join(names)}", hint="pass one of the names under nodes: in oewsctl.yaml")
    return name


def is_cordoned(kube: Kube, node: str) -> bool:
    live = kube.get("v1", "Node", node)
    if live is None:
        raise OewsctlError(f"node {node} is not in the cluster", hint="oewsctl cluster status lists the nodes that joined")
    return bool((live.get("spec") or {}).get("unschedulable"))


def cordon(kube: Kube, node: str) -> str:
    if is_cordoned(kube, node):
        return f"{node} was already cordoned"
    kube.patch("v1", "Node", node, None, {"spec": {"unschedulable": True}})
    return f"{node} cordoned"


def uncordon(kube: Kube, node: str) -> str:
    kube.patch("v1", "Node", node, None, {"spec": {"unschedulable": None}})
    return f"{node} schedulable again"


def _evictable(pod: dict[str, Any], node: str) -> bool:
    meta = pod["metadata"]
    owners = meta.get("ownerReferences") or []
    return ((pod.get("spec") or {}).get("nodeName") == node and not meta.get("deletionTimestamp")
            and "kubernetes.io/config.mirror" not in (meta.get("annotations") or {})
            and not any(o.get("kind") == "DaemonSet" for o in owners)
            and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"))


def pods_on(kube: Kube, node: str, *, evictable_only: bool = True) -> list[dict[str, Any]]:
    pods = kube.list("v1", "Pod")
    if evictable_only:
        return [p for p in pods if _evictable(p, node)]
    return [p for p in pods if (p.get("spec") or {}).get("nodeName") == node]


LOCAL_STORAGE_CLASSES = ("local-path",)
"""k3s's default provisioner: a hostPath directory on the one node the volume was made on."""


def _is_traefik(pod: dict[str, Any]) -> bool:
    meta = pod["metadata"]
    return meta.get("namespace") == "kube-system" and (
        (meta.get("labels") or {}).get("app.kubernetes.io/name") == "traefik" or meta["name"].startswith("traefik-"))


def _node_bound_claim(kube: Kube, namespace: str, claim: str) -> str | None:
    """Why PersistentVolumeClaim ``claim`` ties its pod to one node (local-path, hostPath or local volume), or None."""
    pvc = kube.get("v1", "PersistentVolumeClaim", claim, namespace)
    if pvc is None:
        return None
    spec = pvc.get("spec") or {}
    volume = kube.get("v1", "PersistentVolume", spec["volumeName"]) if spec.get("volumeName") else None
    pv_spec = (volume or {}).get("spec") or {}
    storage_class = spec.get("storageClassName") or pv_spec.get("storageClassName")
    if storage_class in LOCAL_STORAGE_CLASSES:
        return f"volume {claim} is {storage_class} (on this node only)"
    for kind in ("hostPath", "local"):
        if kind in pv_spec:
            return f"volume {claim} is a {kind} PersistentVolume (on this node only)"
    return None


def outage_risks(kube: Kube, node: str) -> list[str]:
    """Pods on ``node`` that cannot run elsewhere at once: kube-system's Traefik (one replica: the public
    entry point) and pods whose PersistentVolumeClaims are node-local (local-path, hostPath, local).
    One line each; empty when a drain moves everything without an outage."""
    risks = []
    for pod in pods_on(kube, node):
        meta = pod["metadata"]
        reasons = ["the cluster's Traefik (one replica: the public entry point)"] if _is_traefik(pod) else []
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
            why = _node_bound_claim(kube, meta["namespace"], claim) if claim else None
            if why:
                reasons.append(why)
        if reasons:
            risks.append(f"{meta['namespace']}/{meta['name']}: {', '.join(reasons)}")
    return risks


def evict(kube: Kube, namespace: str, name: str) -> bool:
    """Ask the API server to evict a pod: False when a PodDisruptionBudget refuses it (429) for now."""
    from kubernetes.client import CoreV1Api, V1DeleteOptions, V1Eviction, V1ObjectMeta
    from kubernetes.client.exceptions import ApiException

    body = V1Eviction(metadata=V1ObjectMeta(name=name, namespace=namespace), delete_options=V1DeleteOptions())
    with kube.errors(f"evict pod {namespace}/{name}"):
        try:
            CoreV1Api(kube.api_client).create_namespaced_pod_eviction(name, namespace, body)
        except ApiException as exc:
            if exc.status == 429:
                return False
            if exc.status != 404:  # already gone: evicted
                raise
    return True


def drain(kube: Kube, node: str, *, timeout: float, echo: Echo | None = None) -> str:
    """Evict every evictable pod on ``node`` (PDBs honoured, refusals retried), then wait until they are gone."""
    deadline = time.monotonic() + timeout
    pending = {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in pods_on(kube, node)}
    evicted: set[tuple[str, str]] = set()
    while pending - evicted:
        for namespace, name in sorted(pending - evicted):
            if evict(kube, namespace, name):
                evicted.add((namespace, name))
                if echo:
                    echo(f"evicted pod {namespace}/{name}")
            elif echo:
                echo(f"pod {namespace}/{name}: eviction refused by its PodDisruptionBudget, retrying")
        if pending - evicted:
            if time.monotonic() >= deadline:
                left = ", ".join(f"{ns}/{n}" for ns, n in sorted(pending - evicted))
                raise OewsctlError(f"drain of {node}: the PodDisruptionBudget kept refusing {left} for {timeout:.0f}s",
                                   hint="are the other replicas ready? oewsctl rollout status; the node stays cordoned until uncordoned")
            time.sleep(max(poll_seconds(), 1.0))
    while any((p["metadata"]["namespace"], p["metadata"]["name"]) in evicted for p in pods_on(kube, node, evictable_only=False)):
        if time.monotonic() >= deadline:
            raise OewsctlError(f"drain of {node}: evicted pods are still terminating after {timeout:.0f}s")
        time.sleep(poll_seconds())
    return f"{len(evicted)} pod(s) evicted from {node}"
