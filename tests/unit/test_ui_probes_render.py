"""Headlamp (ui install) and the blackbox exporter (monitoring install): what is rendered is valid,
pinned, Pi-sized, read-only by default, and probes the public URL.

Core objects go through kubernetes-validate (upstream schemas, strict); HelmCharts through the
HelmChart CRD schema in tests/data/deploy/crd-schemas.yaml (an unknown field fails, as the API
server would prune it).
"""

from __future__ import annotations

from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from oewsctl.configuration.loading import load_config
from oewsctl.configuration.schema import Config
from oewsctl.core.errors import UsageError
from oewsctl.runbooks import monitoring, ui
from tests.conftest import DATA_DIR

K8S_VERSION = "1.31.0"
PI = {"oews/role": "monitoring", "kubernetes.io/arch": "arm64"}


@pytest.fixture(scope="module")
def config() -> Config:
    return load_config(DATA_DIR / "monitoring" / "oewsctl.yaml")


def helmchart_schema() -> dict[str, Any]:
    schemas = yaml.safe_load((DATA_DIR / "deploy" / "crd-schemas.yaml").read_text())
    return {**schemas["HelmChart"], "$defs": schemas["$defs"]}


def values(chart: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(chart["spec"]["valuesContent"])
    return data


def test_access_objects_pass_kubernetes_validate_strict_and_are_read_only_by_default(config: Config) -> None:
    default = ui.render_access(config)
    for obj in ui.render_access(config, admin=True):
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    roles = {o["metadata"]["name"]: o["roleRef"]["name"] for o in default if o["kind"] == "ClusterRoleBinding"}
    assert roles == {"headlamp-viewer": "view"}
    admin_roles = {o["metadata"]["name"]: o["roleRef"]["name"] for o in ui.render_access(config, admin=True) if o["kind"] == "ClusterRoleBinding"}
    assert admin_roles == {"headlamp-viewer": "view", "headlamp-admin": "cluster-admin"}
    assert not [o for o in ui.render_all(config, admin=True) if o["kind"] == "Secret"]  # tokens come from TokenRequest only
    for account in (o for o in default if o["kind"] == "ServiceAccount"):
        assert account["automountServiceAccountToken"] is False


def test_headlamp_chart_is_pinned_on_the_pi_and_gives_its_pod_no_rights(config: Config) -> None:
    (chart,) = ui.render_chart(config)
    jsonschema.validate(chart, helmchart_schema())
    assert chart["metadata"] == {"name": "headlamp", "namespace": "kube-system", "labels": {"app.kubernetes.io/managed-by": "oewsctl"}}
    assert (chart["spec"]["repo"], chart["spec"]["chart"], chart["spec"]["version"]) == ("https://kubernetes-sigs.github.io/headlamp/", "headlamp", "0.45.0")
    assert chart["spec"]["targetNamespace"] == monitoring.NAMESPACE
    got = values(chart)
    assert got["nodeSelector"] == PI
    assert got["resources"]["limits"]["memory"] == "192Mi"
    assert got["clusterRoleBinding"] == {"create": False}  # the chart default is cluster-admin for the pod
    assert got["config"]["unsafeUseServiceAccountToken"] is False
    assert got["ingress"] == {"enabled": False} and got["service"]["type"] == "ClusterIP"


def test_blackbox_chart_probes_the_public_health_url_and_the_redirect(config: Config) -> None:
    (chart,) = monitoring.render_probes(config)
    jsonschema.validate(chart, helmchart_schema())
    assert (chart["spec"]["chart"], chart["spec"]["version"]) == ("prometheus-blackbox-exporter", "11.17.2")
    got = values(chart)
    assert got["nodeSelector"] == PI and got["resources"]["limits"]["memory"] == "64Mi"
    health = got["config"]["modules"]["http_2xx"]["http"]
    assert health["fail_if_not_ssl"] is True and health["tls_config"] == {"insecure_skip_verify": False}
    redirect = got["config"]["modules"]["http_redirect_to_https"]["http"]
    assert redirect["follow_redirects"] is False and redirect["fail_if_header_not_matches"] == [{"header": "Location", "regexp": "^https://"}]
    targets = {t["name"]: (t["url"], t["module"]) for t in got["serviceMonitor"]["targets"]}
    assert targets == {"oews-public-health": ("https://api.example.com/health", "http_2xx"),
                       "oews-public-redirect": ("http://api.example.com/health", "http_redirect_to_https")}
    # The alerts select exactly the probe target the chart labels its series with.
    exprs = {r["alert"]: r["expr"] for g in monitoring.rule_groups() for r in g["rules"]}
    assert 'target="oews-public-health"' in exprs["OewsPublicEndpointDown"]
    assert 'target="oews-public-health"' in exprs["OewsCertificateExpiresSoon"]


def test_a_misspelt_helmchart_field_is_caught(config: Config) -> None:
    (chart,) = ui.render_chart(config)
    chart["spec"]["valuesContents"] = chart["spec"].pop("valuesContent")
    with pytest.raises(jsonschema.ValidationError, match="valuesContents"):
        jsonschema.validate(chart, helmchart_schema())


def test_monitoring_install_applies_the_probes_after_the_crds(config: Config) -> None:
    steps = [s.description for s in monitoring.install_plan(config).steps]
    crds = next(i for i, d in enumerate(steps) if d.startswith("wait for the chart's CRDs"))
    assert steps.index("apply HelmChart kube-system/blackbox-exporter") > crds


def test_dashboard_shows_the_public_probe_and_certificate_days(config: Config) -> None:
    exprs = dict(monitoring.dashboard_expressions())
    assert exprs["Public /health probe (blackbox, outside-in)"] == 'probe_success{target=~"oews-public-.*"}'
    assert "probe_ssl_earliest_cert_expiry" in exprs["Days until the served certificate expires"]


@pytest.mark.parametrize(("text", "seconds"), [("1h", 3600), ("10m", 600), ("2h30m", 9000), ("1d", 86400), ("900s", 900)])
def test_ttl_parses_durations(text: str, seconds: int) -> None:
    assert ui.parse_ttl(text) == seconds


@pytest.mark.parametrize(("text", "message"), [("5m", "shorter than 10 minutes"), ("599s", "shorter than 10 minutes"),
                                               ("1 hour", "not a duration"), ("", "not a duration"), ("h1", "not a duration")])
def test_ttl_below_the_floor_or_malformed_is_a_usage_error(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        ui.parse_ttl(text)
