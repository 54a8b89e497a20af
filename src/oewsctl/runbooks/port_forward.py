"""``oewsctl port-forward grafana|ui|prometheus|api`` and ``ui open``: a Service's pod port on
127.0.0.1, through the Kubernetes API (no kubectl), until Ctrl-C.

Services cannot be forwarded, only pods: as ``kubectl port-forward svc/...`` does, the
Service's selector picks a ready pod and its ``targetPort`` (a number or a container port
name) the pod port, again for every new connection (a restarted pod is followed).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from oewsctl.clients.kube import Kube, is_ready
from oewsctl.clients.port_forward import PodPort, Relay, listen
from oewsctl.configuration.schema import Config
from oewsctl.core.errors import OewsctlError, UsageError
from oewsctl.runbooks import monitoring
from oewsctl.runbooks.render import APP_NAME

HEADLAMP_RELEASE = "headlamp"
"""HelmChart name = Helm release; the chart names its Service and Deployment after it."""


@dataclass(frozen=True)
class Target:
    """A Service to reach from the operator's machine, and where it shows up locally."""

    namespace: str
    service: str
    service_port: int
    local_port: int
    what: str
    install: str
    path: str = "/"


def targets(config: Config) -> dict[str, Target]:
    """What ``port-forward`` knows, with the local port each one uses by default."""
    mon = monitoring.NAMESPACE
    return {
        "grafana": Target(mon, monitoring.GRAFANA_SERVICE, 80, 3000, "Grafana", "oewsctl monitoring install"),
        "ui": Target(mon, HEADLAMP_RELEASE, 80, 4466, "Headlamp", "oewsctl ui install"),
        "prometheus": Target(mon, monitoring.PROMETHEUS_SERVICE, monitoring.PROMETHEUS_PORT, 9090, "Prometheus", "oewsctl monitoring install"),
        "api": Target(config.app.namespace, APP_NAME, 80, 8000, "oews-api", "oewsctl deploy", path="/health"),
    }


def target(config: Config, name: str) -> Target:
    known = targets(config)
    if name not in known:
        raise UsageError(f"unknown port-forward target {name!r}", hint=f"one of: {', '.join(known)}")
    return known[name]


def _matches(labels: Mapping[str, str], selector: Mapping[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def _container_port(pod: Mapping[str, Any], target_port: int | str) -> int:
    """The pod port a Service ``targetPort`` means: a number as it is, a name looked up in the containers."""
    if isinstance(target_port, int) or str(target_port).isdigit():
        return int(target_port)
    for container in pod["spec"].get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == target_port:
                return int(port["containerPort"])
    raise OewsctlError(f"pod {pod['metadata']['name']} has no container port named {target_port!r}")


def pick_pod(kube: Kube, goal: Target) -> PodPort:
    """A ready pod behind ``goal``'s Service and the container port its ``targetPort`` names."""
    where = f"Service {goal.namespace}/{goal.service}"
    service = kube.get("v1", "Service", goal.service, goal.namespace)
    if service is None:
        raise OewsctlError(f"{where} does not exist: {goal.what} is not installed", hint=f"run `{goal.install}`")
    spec = service["spec"]
    selector = spec.get("selector") or {}
    port = next((p for p in spec.get("ports") or [] if p.get("port") == goal.service_port), None)
    if not selector or port is None:
        raise OewsctlError(f"{where} has no selector or no port {goal.service_port}", hint=f"re-run `{goal.install}`")
    listed = kube.list("v1", "Pod", goal.namespace, label_selector=",".join(f"{k}={v}" for k, v in sorted(selector.items())))
    pods = [p for p in listed
            if _matches(p["metadata"].get("labels") or {}, selector) and is_ready(p) and not p["metadata"].get("deletionTimestamp")]
    if not pods:
        raise OewsctlError(f"no ready pod behind {where}", hint=f"check `oewsctl monitoring status` / `oewsctl status`; `{goal.install}` installs it")
    pod = min(pods, key=lambda p: p["metadata"]["name"])
    return PodPort(goal.namespace, pod["metadata"]["name"], _container_port(pod, port.get("targetPort", goal.service_port)))


def forward(kube: Kube, goal: Target, local_port: int | None, *, announce: Callable[[str], None], warn: Callable[[str], None]) -> None:
    """Serve ``goal`` on 127.0.0.1 until Ctrl-C; ``announce`` gets the URL once listening."""
    first = pick_pod(kube, goal)  # fail before listening when nothing is there to forward to
    port = goal.local_port if local_port is None else local_port
    try:
        server = listen(port)
    except OSError as exc:
        raise UsageError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}", hint="pick another with --port N (0: any free port)") from None
    relay = Relay(kube.api_client, server, lambda: pick_pod(kube, goal), warn)
    announce(f"http://127.0.0.1:{relay.port}{goal.path}")
    warn(f"forwarding 127.0.0.1:{relay.port} -> {goal.what} (pod {first.namespace}/{first.pod} port {first.port}) through the API server; Ctrl-C to stop")
    try:
        relay.serve_forever()
    except KeyboardInterrupt:
        warn("stopped")
    finally:
        relay.close()
