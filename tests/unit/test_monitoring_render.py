"""The monitoring objects oewsctl renders: valid, pinned, Pi-sized, and carrying what ships.

Core objects are validated by kubernetes-validate (upstream schemas, strict); CRD objects
(HelmChart, ServiceMonitor, PodMonitor, PrometheusRule) are checked against the fields
their CRDs define.
"""

from __future__ import annotations

import json
import re
from typing import Any

import kubernetes_validate
import pytest
import yaml

from oewsctl.configuration.loading import load_config
from oewsctl.configuration.schema import Config
from oewsctl.core.errors import UsageError
from oewsctl.runbooks import monitoring
from tests.conftest import DATA_DIR

K8S_VERSION = "1.31.0"
CRD_FIELDS: dict[str, dict[str, set[str]]] = {
    # kind -> {"spec": allowed spec keys, "required": required spec keys}, from each CRD's openAPIV3Schema
    "HelmChart": {"spec": {"repo", "chart", "version", "targetNamespace", "createNamespace", "valuesContent", "set", "helmVersion",
                           "bootstrap", "chartContent", "jobImage", "timeout", "failurePolicy", "authSecret", "repoCA", "backOffLimit"},
                  "required": {"chart", "repo", "version", "targetNamespace", "valuesContent"}},
    "ServiceMonitor": {"spec": {"selector", "namespaceSelector", "endpoints", "jobLabel", "targetLabels", "podTargetLabels", "sampleLimit"},
                       "required": {"selector", "endpoints"}},
    "PodMonitor": {"spec": {"selector", "namespaceSelector", "podMetricsEndpoints", "jobLabel", "podTargetLabels", "sampleLimit"},
                   "required": {"selector", "podMetricsEndpoints"}},
    "PrometheusRule": {"spec": {"groups"}, "required": {"groups"}},
}
ENDPOINT_FIELDS = {"port", "path", "interval", "scrapeTimeout", "scheme", "relabelings", "metricRelabelings", "honorLabels"}
RULE_FIELDS = {"alert", "record", "expr", "for", "labels", "annotations", "keep_firing_for"}


@pytest.fixture(scope="module")
def config() -> Config:
    return load_config(DATA_DIR / "monitoring" / "oewsctl.yaml")


@pytest.fixture(scope="module")
def objects(config: Config) -> dict[str, dict[str, Any]]:
    return {obj["kind"]: obj for obj in monitoring.render_all(config) if obj["metadata"]["name"] != monitoring.BLACKBOX_RELEASE}


def test_core_objects_pass_kubernetes_validate_strict(objects: dict[str, dict[str, Any]]) -> None:
    core = [objects["ConfigMap"], monitoring.namespace_object(), monitoring.grafana_secret("not-a-real-password")]
    for obj in core:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_crd_objects_use_only_their_crd_fields(objects: dict[str, dict[str, Any]]) -> None:
    for kind, fields in CRD_FIELDS.items():
        obj = objects[kind]
        assert set(obj) == {"apiVersion", "kind", "metadata", "spec"}, kind
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", obj["metadata"]["name"]), kind
        assert obj["metadata"]["namespace"], kind
        spec = set(obj["spec"])
        assert spec <= fields["spec"], f"{kind}: unknown spec fields {spec - fields['spec']}"
        assert fields["required"] <= spec, f"{kind}: missing {fields['required'] - spec}"
    for endpoint in objects["ServiceMonitor"]["spec"]["endpoints"] + objects["PodMonitor"]["spec"]["podMetricsEndpoints"]:
        assert set(endpoint) <= ENDPOINT_FIELDS
    for group in objects["PrometheusRule"]["spec"]["groups"]:
        assert set(group) == {"name", "rules"}
        for rule in group["rules"]:
            assert set(rule) <= RULE_FIELDS and {"alert", "expr"} <= set(rule)


def test_chart_is_pinned_pi_sized_and_every_pod_lands_on_the_monitoring_node(objects: dict[str, dict[str, Any]]) -> None:
    chart = objects["HelmChart"]
    assert chart["apiVersion"] == "helm.cattle.io/v1" and chart["metadata"]["namespace"] == "kube-system"
    assert re.fullmatch(r"\d+\.\d+\.\d+", chart["spec"]["version"]), "the chart version must be pinned exactly"
    values = yaml.safe_load(chart["spec"]["valuesContent"])
    pi = {"oews/role": "monitoring", "kubernetes.io/arch": "arm64"}
    selectors = {
        "prometheus": values["prometheus"]["prometheusSpec"]["nodeSelector"],
        "alertmanager": values["alertmanager"]["alertmanagerSpec"]["nodeSelector"],
        "grafana": values["grafana"]["nodeSelector"],
        "operator": values["prometheusOperator"]["nodeSelector"],
        "operator webhook job": values["prometheusOperator"]["admissionWebhooks"]["patch"]["nodeSelector"],
        "kube-state-metrics": values["kube-state-metrics"]["nodeSelector"],
    }
    assert selectors == dict.fromkeys(selectors, pi)
    spec = values["prometheus"]["prometheusSpec"]
    assert spec["retention"] == "7d" and spec["retentionSize"] == "4GiB"
    assert spec["resources"]["limits"]["memory"] == "1Gi"
    assert "Raspberry Pi" in chart["spec"]["valuesContent"], "the values say what they are sized for"
    # Our ServiceMonitor/PodMonitor/PrometheusRule live outside the chart: selectors must not require its labels.
    assert spec["serviceMonitorSelectorNilUsesHelmValues"] is False and spec["ruleSelectorNilUsesHelmValues"] is False


def test_grafana_never_gets_the_chart_default_password(objects: dict[str, dict[str, Any]]) -> None:
    values = yaml.safe_load(objects["HelmChart"]["spec"]["valuesContent"])
    assert values["grafana"]["admin"] == {"existingSecret": "grafana-admin", "userKey": "admin-user", "passwordKey": "admin-password"}
    assert "adminPassword" not in values["grafana"]
    assert "prom-operator" not in objects["HelmChart"]["spec"]["valuesContent"]
    first, second = monitoring.new_grafana_password(), monitoring.new_grafana_password()
    assert first != second and len(first) >= 32


def test_servicemonitor_selects_the_api_service_port(config: Config, objects: dict[str, dict[str, Any]]) -> None:
    from oewsctl.runbooks.render import render

    service = next(o for o in render(config) if o["kind"] == "Service")
    monitor = objects["ServiceMonitor"]["spec"]
    assert monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["namespaceSelector"]["matchNames"] == [service["metadata"]["namespace"]]
    assert monitor["endpoints"][0]["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert monitor["endpoints"][0]["path"] == "/metrics"


def test_dashboard_configmap_has_the_sidecar_label_and_every_panel(objects: dict[str, dict[str, Any]]) -> None:
    configmap = objects["ConfigMap"]
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    board = json.loads(configmap["data"]["oews-api.json"])
    assert board == monitoring.dashboard()
    exprs = " ".join(expr for _, expr in monitoring.dashboard_expressions())
    for needle in ("rate(oews_api_requests_total", 'status=~"5.."', "histogram_quantile(0.5,", "histogram_quantile(0.95,",
                   "histogram_quantile(0.99,", "kube_deployment_status_replicas_ready", "oews_api_database_info",
                   "kube_pod_container_status_restarts_total"):
        assert needle in exprs, f"the dashboard lacks {needle}"


def test_inventory_without_a_monitoring_node_names_the_fix(config: Config) -> None:
    broken = config.model_copy(deep=True)
    broken.monitoring.node = None
    for node in broken.nodes:
        node.labels.pop("oews/role", None)
    with pytest.raises(UsageError) as info:
        monitoring.render_all(broken)
    assert "monitoring: {node: raspberrypi}" in (info.value.hint or "")
