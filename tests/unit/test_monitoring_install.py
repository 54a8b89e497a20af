"""`oewsctl monitoring install | password | status` against the Kubernetes API emulator.

What a user would notice: the objects stored in the API (HelmChart pinned and Pi-sized, the
node labelled, the rules and dashboard), a second run that changes nothing, a Grafana
password that exists only in its Secret and in `monitoring password`'s output, and a clear
exit 1 when the monitoring node never joined.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from oewsctl.core.audit import audit_path
from oewsctl.runbooks import monitoring
from tests.conftest import DATA_DIR
from tests.fixtures.keyvault import CliResult
from tests.fixtures.kube import VERBS, KubeCluster

Cli = Callable[..., CliResult]

CONFIG = DATA_DIR / "monitoring" / "oewsctl.yaml"
NODES = ("machine1", "machine2", "raspberrypi")


@pytest.fixture
def cluster(kube_cluster: KubeCluster, tmp_path: Path) -> tuple[KubeCluster, str]:
    """The emulator with the example's three nodes (none labelled yet) and PodMonitor served."""
    kube_cluster._locked(lambda: kube_cluster.emulator.resources.__setitem__(
        "monitoring.coreos.com/v1/podmonitors", {"kind": "PodMonitor", "namespaced": True, "verbs": VERBS}))
    for name in NODES:
        kube_cluster.put("v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}})
    return kube_cluster, str(kube_cluster.write_config(tmp_path / "oewsctl.yaml", source=CONFIG))


def stored_password(kube: KubeCluster) -> str:
    secret = kube.get("v1/secrets", monitoring.NAMESPACE, monitoring.GRAFANA_SECRET)
    assert secret is not None
    return base64.b64decode(secret["data"]["admin-password"]).decode()


def test_install_applies_everything_and_a_second_run_changes_nothing(cluster: tuple[KubeCluster, str], oewsctl: Cli) -> None:
    kube, config = cluster
    first = oewsctl("-c", config, "monitoring", "install")
    assert first.code == 0, first.err

    assert kube.get("v1/nodes", None, "raspberrypi")["metadata"]["labels"]["oews/role"] == "monitoring"
    chart = kube.get("helm.cattle.io/v1/helmcharts", "kube-system", "kube-prometheus-stack")
    assert chart["spec"]["version"] == monitoring.CHART_VERSION and chart["spec"]["targetNamespace"] == "monitoring"
    values = yaml.safe_load(chart["spec"]["valuesContent"])
    assert values["prometheus"]["prometheusSpec"]["nodeSelector"] == {"oews/role": "monitoring", "kubernetes.io/arch": "arm64"}
    assert values["grafana"]["admin"]["existingSecret"] == monitoring.GRAFANA_SECRET
    rule = kube.get("monitoring.coreos.com/v1/prometheusrules", "monitoring", "oews-api")
    assert rule["spec"]["groups"] == monitoring.rule_groups()
    assert kube.get("monitoring.coreos.com/v1/servicemonitors", "oews", "oews-api") is not None
    assert kube.get("monitoring.coreos.com/v1/podmonitors", "kube-system", "traefik") is not None
    dashboard = kube.get("v1/configmaps", "monitoring", "oews-api-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["oews-api.json"])["uid"] == "oews-api"

    password = stored_password(kube)
    assert len(password) >= 32 and password != "prom-operator"
    assert password not in first.out + first.err
    assert password not in audit_path().read_text()

    second = oewsctl("-c", config, "monitoring", "install")
    assert second.code == 0, second.err
    assert "Nothing to change" in second.err
    assert stored_password(kube) == password, "a re-run must keep Grafana's password"


def test_password_is_printed_only_by_monitoring_password(cluster: tuple[KubeCluster, str], oewsctl: Cli) -> None:
    kube, config = cluster
    dry = oewsctl("-c", config, "--dry-run", "monitoring", "install")
    assert dry.code == 0 and "create Secret monitoring/grafana-admin" in dry.err
    assert kube.get("v1/secrets", "monitoring", "grafana-admin") is None, "a dry run created the Secret"

    early = oewsctl("-c", config, "monitoring", "password")
    assert early.code == 1 and "run `oewsctl monitoring install`" in early.err

    assert oewsctl("-c", config, "monitoring", "install").code == 0
    shown = oewsctl("-c", config, "monitoring", "password")
    assert shown.code == 0
    assert shown.out == f"user: admin\npassword: {stored_password(kube)}\n"
    as_json = oewsctl("-c", config, "-o", "json", "monitoring", "password")
    assert json.loads(as_json.out) == {"user": "admin", "password": stored_password(kube)}


def test_monitoring_node_missing_from_cluster_fails_before_changing_anything(cluster: tuple[KubeCluster, str], oewsctl: Cli) -> None:
    kube, config = cluster
    kube.delete("v1/nodes", None, "raspberrypi")
    result = oewsctl("-c", config, "monitoring", "install")
    assert result.code == 1
    assert "node 'raspberrypi' (the monitoring node) is not part of the cluster" in result.err
    assert "oewsctl cluster install" in result.err
    assert kube.get("helm.cattle.io/v1/helmcharts", "kube-system", "kube-prometheus-stack") is None
    assert kube.get("v1/secrets", "monitoring", "grafana-admin") is None


def test_no_monitoring_node_in_the_inventory_is_a_usage_error(cluster: tuple[KubeCluster, str], oewsctl: Cli) -> None:
    _, config = cluster
    data = yaml.safe_load(Path(config).read_text())
    data["monitoring"] = {}
    data["nodes"][2]["labels"] = {}
    Path(config).write_text(yaml.safe_dump(data))
    result = oewsctl("-c", config, "monitoring", "install")
    assert result.code == 2
    assert "cannot tell which node runs monitoring" in result.err and "monitoring: {node: raspberrypi}" in result.err


def test_monitoring_status_reports_install_state_misplaced_pods_and_unknown_prometheus(cluster: tuple[KubeCluster, str], oewsctl: Cli) -> None:
    kube, config = cluster
    before = oewsctl("-c", config, "monitoring", "status")
    assert before.code == 0
    assert "HelmChart kube-system/kube-prometheus-stack not installed (run `oewsctl monitoring install`)" in before.out

    assert oewsctl("-c", config, "monitoring", "install").code == 0
    kube.put("batch/v1/jobs", {"apiVersion": "batch/v1", "kind": "Job",
                               "metadata": {"name": "helm-install-kube-prometheus-stack", "namespace": "kube-system"},
                               "status": {"succeeded": 1}})
    for name, where in (("kube-prometheus-stack-grafana-5d9c7", "raspberrypi"), ("prometheus-kube-prometheus-stack-prometheus-0", "machine2")):
        kube.put("v1/pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "monitoring"},
                             "spec": {"nodeName": where, "containers": [{"name": "main"}]},
                             "status": {"phase": "Running", "containerStatuses": [{"name": "main", "ready": True}]}})
    after = oewsctl("-c", config, "monitoring", "status", "--prometheus", "http://127.0.0.1:9")
    assert after.code == 0, after.err
    assert f"kube-prometheus-stack {monitoring.CHART_VERSION}: installed" in after.out
    assert "kube-prometheus-stack-grafana-5d9c7: Running 1/1 on raspberrypi\n" in after.out
    assert "prometheus-kube-prometheus-stack-prometheus-0: Running 1/1 on machine2 (expected on raspberrypi)" in after.out
    assert "admin password set in Secret monitoring/grafana-admin" in after.out
    assert stored_password(kube) not in after.out
    assert "prometheus: unknown (Prometheus at http://127.0.0.1:9 is not reachable" in after.out


def test_chart_that_never_serves_its_crds_stops_with_the_chart_hint(
    kube_cluster: KubeCluster, tmp_path: Path, oewsctl: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The emulator serves no PodMonitor kind here: as if the chart's install job failed."""
    monkeypatch.setattr(monitoring, "CRD_WAIT_SECONDS", 0.3)
    kube_cluster.put("v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "raspberrypi"}})
    config = str(kube_cluster.write_config(tmp_path / "oewsctl.yaml", source=CONFIG))
    result = oewsctl("-c", config, "monitoring", "install")
    assert result.code == 1
    assert "wait for the chart's CRDs (ServiceMonitor, PodMonitor, PrometheusRule) failed" in result.err
    assert "does not serve PodMonitor (monitoring.coreos.com/v1)" in result.err
    assert "kubectl -n kube-system get helmchart" in result.err or "helmcharts,jobs" in result.err
    assert kube_cluster.get("helm.cattle.io/v1/helmcharts", "kube-system", "kube-prometheus-stack") is not None
    assert kube_cluster.get("v1/configmaps", "monitoring", "oews-api-dashboard") is None, "nothing after the failed step runs"
