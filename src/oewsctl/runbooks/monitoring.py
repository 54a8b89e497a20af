"""Monitoring on the Pi: kube-prometheus-stack, the API's alerts, its dashboard, Grafana's password.

What ``oewsctl monitoring install`` ships is rendered from ``templates/monitoring/``:
a k3s HelmChart (chart version pinned, values sized for a Raspberry Pi, everything pinned
to the node labelled ``oews/role=monitoring``), a ServiceMonitor for ``oews-api``, a
PodMonitor for Traefik, a PrometheusRule built from ``rules.yaml`` (the very file the
promtool tests read) and the Grafana dashboard ConfigMap built from ``dashboard.json``.

Grafana's admin password is generated here (``secrets``), stored only in the Secret
``monitoring/grafana-admin``, never shown in a plan or a log, and read back only by
``oewsctl monitoring password``.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable, Mapping
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx
import yaml

from oewsctl.clients.kube import KindNotServed, Kube
from oewsctl.configuration.schema import Config, NodeConfig
from oewsctl.core.errors import OewsctlError, UsageError
from oewsctl.core.plan import Needs, Plan, Step
from oewsctl.runbooks.kube_steps import apply_step
from oewsctl.runbooks.render import MONITORING_NAMESPACE, TEMPLATES_DIR, render_template, values
from oewsctl.runbooks.report import KubeOnce, Section, Source, probe

if TYPE_CHECKING:
    from oewsctl.core.context import RunContext

NAMESPACE = MONITORING_NAMESPACE
CHART_VERSION = "69.6.0"
"""kube-prometheus-stack (Prometheus 3.2, operator CRDs monitoring.coreos.com/v1); bump deliberately."""
RELEASE = "kube-prometheus-stack"
"""HelmChart name = Helm release name; the chart names its Services after it."""
PROMETHEUS_SERVICE = f"{RELEASE}-prometheus"
PROMETHEUS_PORT = 9090
GRAFANA_SERVICE = f"{RELEASE}-grafana"
BLACKBOX_CHART_VERSION = "11.17.2"
"""prometheus-blackbox-exporter (blackbox_exporter v0.28.0): the outside-in probes of the public URL."""
BLACKBOX_RELEASE = "blackbox-exporter"
PROBE_HEALTH_TARGET = "oews-public-health"
"""The probe's ``target`` label (the chart's ServiceMonitor name suffix); the public alerts select it."""
PROBE_REDIRECT_TARGET = "oews-public-redirect"
CRD_API_VERSION = "monitoring.coreos.com/v1"
CRD_WAIT_SECONDS = 600
GRAFANA_SECRET = "grafana-admin"
GRAFANA_USER = "admin"
ROLE_LABEL = "oews/role"
ROLE_VALUE = "monitoring"

RULES_FILE = TEMPLATES_DIR / "monitoring" / "rules.yaml"
DASHBOARD_FILE = TEMPLATES_DIR / "monitoring" / "dashboard.json"
CHART_TEMPLATE = "monitoring/kube-prometheus-stack.yaml.j2"
CRD_TEMPLATES = (
    "monitoring/servicemonitor.yaml.j2",
    "monitoring/prometheusrule.yaml.j2",
)
DASHBOARD_TEMPLATE = "monitoring/dashboard.yaml.j2"
BLACKBOX_TEMPLATE = "monitoring/blackbox-exporter.yaml.j2"


@cache
def rule_groups() -> list[dict[str, Any]]:
    """The alert rule groups of ``rules.yaml`` (shipped in the PrometheusRule as they are)."""
    data = yaml.safe_load(RULES_FILE.read_text())
    return list(data["groups"])


def alert_names() -> list[str]:
    return [rule["alert"] for group in rule_groups() for rule in group["rules"] if "alert" in rule]


@cache
def dashboard() -> dict[str, Any]:
    """The Grafana dashboard model (``dashboard.json``)."""
    data: dict[str, Any] = json.loads(DASHBOARD_FILE.read_text())
    return data


def dashboard_expressions() -> list[tuple[str, str]]:
    """Every PromQL expression of the dashboard as (panel title, expression)."""
    return [(panel["title"], target["expr"]) for panel in dashboard()["panels"] for target in panel.get("targets", [])]


def monitoring_node(config: Config) -> NodeConfig:
    """The node Prometheus and Grafana run on: ``monitoring.node``, else the one labelled for it."""
    if config.monitoring.node:
        return config.node(config.monitoring.node)
    labelled = [n for n in config.nodes if n.labels.get(ROLE_LABEL) == ROLE_VALUE]
    if len(labelled) == 1:
        return labelled[0]
    found = f"{len(labelled)} nodes are labelled {ROLE_LABEL}={ROLE_VALUE}" if labelled else "no node is chosen"
    raise UsageError(
        f"cannot tell which node runs monitoring: {found}",
        hint="set `monitoring: {node: raspberrypi}` in oewsctl.yaml (the node's name from nodes:)",
    )


def node_selector(node: NodeConfig) -> dict[str, str]:
    """Where every monitoring pod is scheduled: the role label and the node's architecture."""
    return {ROLE_LABEL: ROLE_VALUE, "kubernetes.io/arch": node.arch}


def context(config: Config) -> dict[str, Any]:
    """The render values of the app plus what the monitoring templates need."""
    return {
        **values(config),
        "monitoring_namespace": NAMESPACE,
        "chart_version": CHART_VERSION,
        "node_selector": node_selector(monitoring_node(config)),
        "grafana_secret": GRAFANA_SECRET,
        "rule_groups": rule_groups(),
        "dashboard_json": json.dumps(dashboard(), indent=2),
        "blackbox_release": BLACKBOX_RELEASE,
        "blackbox_chart_version": BLACKBOX_CHART_VERSION,
        "probe_health_target": PROBE_HEALTH_TARGET,
        "probe_redirect_target": PROBE_REDIRECT_TARGET,
    }


def render_chart(config: Config) -> list[dict[str, Any]]:
    """The HelmChart object (kube-system) that installs kube-prometheus-stack."""
    return render_template(CHART_TEMPLATE, context(config))


def render_crd_objects(config: Config) -> list[dict[str, Any]]:
    """ServiceMonitor, PodMonitor and PrometheusRule (need the chart's CRDs first)."""
    ctx = context(config)
    return [obj for name in CRD_TEMPLATES for obj in render_template(name, ctx)]


def render_dashboard(config: Config) -> list[dict[str, Any]]:
    return render_template(DASHBOARD_TEMPLATE, context(config))


def render_probes(config: Config) -> list[dict[str, Any]]:
    """The blackbox exporter HelmChart probing ``https://<app.domain>/health`` from the Pi (its
    ServiceMonitors need the operator's CRDs, so it comes after them)."""
    return render_template(BLACKBOX_TEMPLATE, context(config))


def render_all(config: Config) -> list[dict[str, Any]]:
    """Every monitoring object in apply order."""
    return render_chart(config) + render_crd_objects(config) + render_dashboard(config) + render_probes(config)


def new_grafana_password() -> str:
    """A fresh admin password (32 URL-safe characters, ~190 bits)."""
    return secrets.token_urlsafe(24)


def grafana_secret(password: str) -> dict[str, Any]:
    """The Secret Grafana reads its admin login from (``grafana.admin.existingSecret``)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": GRAFANA_SECRET,
            "namespace": NAMESPACE,
            "labels": {"app.kubernetes.io/managed-by": "oewsctl"},
        },
        "data": {key: base64.b64encode(value.encode()).decode() for key, value in (("admin-user", GRAFANA_USER), ("admin-password", password))},
    }


def namespace_object() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE, "labels": {"app.kubernetes.io/managed-by": "oewsctl"}}}


def _live_node(kube: Kube, name: str) -> dict[str, Any]:
    node = kube.get("v1", "Node", name)
    if node is None:
        raise OewsctlError(
            f"node {name!r} (the monitoring node) is not part of the cluster",
            hint="join it first with `oewsctl cluster install`, or set monitoring.node to a node that is",
        )
    return node


def label_node_step(node: NodeConfig) -> Step:
    """Label the monitoring node ``oews/role=monitoring`` (what every monitoring pod selects)."""

    def labelled(ctx: "RunContext") -> str | None:
        labels = _live_node(ctx.kube, node.name)["metadata"].get("labels") or {}
        return f"already labelled {ROLE_LABEL}={ROLE_VALUE}" if labels.get(ROLE_LABEL) == ROLE_VALUE else None

    def label(ctx: "RunContext") -> None:
        ctx.kube.patch("v1", "Node", node.name, None, {"metadata": {"labels": {ROLE_LABEL: ROLE_VALUE}}})

    return Step(
        description=f"label node {node.name} {ROLE_LABEL}={ROLE_VALUE}",
        node=node.name,
        action=label,
        skip_if=labelled,
        detail=f"merge-patch Node {node.name} metadata.labels[{ROLE_LABEL}]={ROLE_VALUE}",
    )


def grafana_secret_step() -> Step:
    """Create Grafana's admin Secret with a fresh password, once; an existing one is never replaced."""

    def exists(ctx: "RunContext") -> str | None:
        if ctx.kube.get("v1", "Secret", GRAFANA_SECRET, NAMESPACE) is not None:
            return "exists, password kept (`oewsctl monitoring password` shows it)"
        return None

    def create(ctx: "RunContext") -> str:
        ctx.kube.create(grafana_secret(new_grafana_password()))
        return "password generated (`oewsctl monitoring password` shows it)"

    return Step(
        description=f"create Secret {NAMESPACE}/{GRAFANA_SECRET} with a generated Grafana admin password",
        action=create,
        skip_if=exists,
        detail="random 32-character password from the secrets module; stored only in the Secret",
    )


def crds_step(remediation: str) -> Step:
    """Wait until the API serves the operator's kinds (the chart installs their CRDs; on a Pi
    pulling its images can take minutes)."""
    kinds = ("ServiceMonitor", "PodMonitor", "PrometheusRule")

    def served(ctx: "RunContext") -> str | None:
        kube = ctx.kube
        try:
            for kind in kinds:
                kube.resource(CRD_API_VERSION, kind)
        except KindNotServed:
            return None
        return "already served"

    def wait(ctx: "RunContext") -> str:
        kube = ctx.kube
        for kind in kinds:
            kube.resource(CRD_API_VERSION, kind, wait_seconds=CRD_WAIT_SECONDS)
        return "served"

    return Step(
        description=f"wait for the chart's CRDs ({', '.join(kinds)})",
        action=wait,
        skip_if=served,
        detail=f"poll API discovery for {CRD_API_VERSION} up to {CRD_WAIT_SECONDS}s",
        remediation=remediation,
    )


def install_plan(config: Config) -> Plan:
    """``monitoring install``: label the node, Grafana's Secret, the chart, then what needs its CRDs."""
    node = monitoring_node(config)
    plan = Plan("monitoring install", needs=Needs(kube=True))
    plan.add(label_node_step(node))
    plan.add(apply_step(namespace_object()))
    plan.add(grafana_secret_step())
    chart_hint = "kubectl -n kube-system get helmchart kube-prometheus-stack; kubectl -n kube-system logs job/helm-install-kube-prometheus-stack"
    plan.extend([apply_step(obj, remediation=chart_hint) for obj in render_chart(config)])
    plan.add(crds_step(chart_hint))
    plan.extend([apply_step(obj) for obj in render_crd_objects(config)])
    plan.extend([apply_step(obj) for obj in render_dashboard(config)])
    probes_hint = f"kubectl -n kube-system logs job/helm-install-{BLACKBOX_RELEASE}"
    plan.extend([apply_step(obj, remediation=probes_hint) for obj in render_probes(config)])
    return plan


def read_grafana_password(kube: Kube) -> tuple[str, str]:
    """(user, password) from Grafana's Secret; an error saying to install when it is missing."""
    secret = kube.get("v1", "Secret", GRAFANA_SECRET, NAMESPACE)
    if secret is None:
        raise OewsctlError(
            f"Secret {NAMESPACE}/{GRAFANA_SECRET} does not exist: monitoring is not installed",
            hint="run `oewsctl monitoring install` (it generates the password)",
        )
    data = secret.get("data") or {}
    try:
        return base64.b64decode(data["admin-user"]).decode(), base64.b64decode(data["admin-password"]).decode()
    except (KeyError, ValueError):
        raise OewsctlError(
            f"Secret {NAMESPACE}/{GRAFANA_SECRET} has no admin-user/admin-password keys",
            hint=f"delete it (kubectl -n {NAMESPACE} delete secret {GRAFANA_SECRET}) and re-run `oewsctl monitoring install`",
        ) from None


class Prometheus:
    """Prometheus's HTTP API: at ``url`` when given (a port-forward, a test server), otherwise
    through the API server's service proxy to the chart's Prometheus Service."""

    def __init__(self, *, kube: Kube | None = None, url: str | None = None) -> None:
        if url is None and kube is None:
            raise ValueError("Prometheus needs a url or a Kube to reach it through")
        self.url = url.rstrip("/") if url else None
        self._kube = kube

    @property
    def where(self) -> str:
        return self.url or f"service {NAMESPACE}/{PROMETHEUS_SERVICE} (API server proxy)"

    def get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        """GET /api/v1/<path>; the ``data`` of a success answer, an OewsctlError otherwise."""
        query = f"?{urlencode(params)}" if params else ""
        try:
            if self.url is not None:
                response = httpx.get(f"{self.url}/api/v1/{path}{query}", timeout=10)
                response.raise_for_status()
                text = response.text
            else:
                assert self._kube is not None
                text = self._kube.proxy_get("services", PROMETHEUS_SERVICE, NAMESPACE, f"/api/v1/{path}{query}", port=PROMETHEUS_PORT)
            body = json.loads(text)
        except httpx.HTTPError as exc:
            raise OewsctlError(f"Prometheus at {self.where} is not reachable: {exc}") from None
        except OewsctlError as exc:
            raise OewsctlError(f"Prometheus at {self.where} is not reachable: {exc.message}", hint="is monitoring installed? `oewsctl monitoring status`") from None
        except ValueError:
            raise OewsctlError(f"Prometheus at {self.where} did not answer JSON") from None
        if body.get("status") != "success":
            raise OewsctlError(f"Prometheus at {self.where}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def firing_alerts(self) -> list[dict[str, Any]]:
        return [a for a in self.get("alerts")["alerts"] if a.get("state") == "firing"]


def prometheus_source(kube: KubeOnce, url: str | None, body: Callable[[Prometheus], tuple[list[str], Any]]) -> Source:
    """A section source reading Prometheus directly at ``url``, or through the cluster."""
    if url is not None:
        return lambda: body(Prometheus(url=url))
    return kube.source(lambda k: body(Prometheus(kube=k)))


def _chart_status(kube: Kube) -> tuple[list[str], Any]:
    chart = kube.get("helm.cattle.io/v1", "HelmChart", RELEASE, "kube-system")
    if chart is None:
        return [f"HelmChart kube-system/{RELEASE} not installed (run `oewsctl monitoring install`)"], None
    version = chart["spec"].get("version")
    pinned = "" if version == CHART_VERSION else f" (oewsctl pins {CHART_VERSION}: re-run `oewsctl monitoring install`)"
    job_name = (chart.get("status") or {}).get("jobName") or f"helm-install-{RELEASE}"
    state = _install_state(kube.get("batch/v1", "Job", job_name, "kube-system"), job_name)
    return [f"{RELEASE} {version}{pinned}: {state}"], {"version": version, "state": state}


def _install_state(job: dict[str, Any] | None, job_name: str) -> str:
    """What k3s's helm-controller made of the chart, from its helm-install Job."""
    if job is None:
        return "waiting for k3s's helm-controller to start the install job"
    status = job.get("status") or {}
    if status.get("succeeded"):
        return "installed"
    if status.get("failed"):
        return f"install FAILED: see `kubectl -n kube-system logs job/{job_name}`"
    return "installing"


def _pods_status(kube: Kube, node: NodeConfig) -> tuple[list[str], Any]:
    pods = kube.list("v1", "Pod", NAMESPACE)
    if not pods:
        return [f"no pods in namespace {NAMESPACE} yet"], []
    lines, data = [], []
    for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
        name, where = pod["metadata"]["name"], pod["spec"].get("nodeName")
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        ready = sum(1 for c in statuses if c.get("ready"))
        phase = (pod.get("status") or {}).get("phase", "Pending")
        misplaced = "" if where in (node.name, None) or name.startswith(f"{RELEASE}-prometheus-node-exporter") else f" (expected on {node.name})"
        lines.append(f"{name}: {phase} {ready}/{len(statuses)} on {where or '(unscheduled)'}{misplaced}")
        data.append({"name": name, "phase": phase, "ready": ready, "containers": len(statuses), "node": where})
    return lines, data


def _grafana_status(kube: Kube) -> tuple[list[str], Any]:
    present = kube.get("v1", "Secret", GRAFANA_SECRET, NAMESPACE) is not None
    if not present:
        return [f"admin Secret {NAMESPACE}/{GRAFANA_SECRET} missing (run `oewsctl monitoring install`)"], {"admin_secret": False}
    return [
        f"admin password set in Secret {NAMESPACE}/{GRAFANA_SECRET} (`oewsctl monitoring password` prints it)",
        "open it: `oewsctl port-forward grafana`, then http://127.0.0.1:3000/",
    ], {"admin_secret": True}


def _scrape_status(prometheus: Prometheus) -> tuple[list[str], Any]:
    targets = [t for t in prometheus.get("targets", {"state": "active"})["activeTargets"] if t["labels"].get("job") == "oews-api"]
    up = sum(1 for t in targets if t.get("health") == "up")
    firing = prometheus.firing_alerts()
    lines = [f"oews-api targets up: {up}/{len(targets)}", f"alerts firing: {len(firing)}"]
    lines += [f"  {a['labels'].get('severity', '?')} {a['labels']['alertname']}" for a in firing]
    return lines, {"targets_up": up, "targets": len(targets), "firing": [a["labels"]["alertname"] for a in firing]}


def status_sections(config: Config, kube_factory: Callable[[], Kube], prometheus_url: str | None = None) -> list[Section]:
    """``monitoring status``: the chart, its pods (on the right node?), Grafana, what Prometheus sees."""
    node = monitoring_node(config)
    kube = KubeOnce(kube_factory)
    return [
        probe("chart", kube.source(_chart_status)),
        probe("pods", kube.source(lambda k: _pods_status(k, node))),
        probe("grafana", kube.source(_grafana_status)),
        probe("prometheus", prometheus_source(kube, prometheus_url, _scrape_status)),
    ]
