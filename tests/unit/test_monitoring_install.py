"""`oewsctl monitoring install | password | status` against the Kubernetes API emulator.

What a user would notice: the objects stored in the API (HelmChart pinned and Pi-sized, the
node labelled, the rules and dashboard), a second run that changes nothing, a Grafana
password that exists only in its Secret and in `monitoring password`'s output, and a clear
exit 1 when the monitoring node never joined.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import pytest
import yaml

from oewsctl import monitoring
from oewsctl.audit import audit_path
from oewsctl.cli import main
from tests.conftest import DATA_DIR
from tests.fixtures.kube import VERBS, KubeCluster

CONFIG = DATA_DIR / "monitoring" / "oewsctl.yaml"
NODES = ("machine1", "machine2", "raspberrypi")


def run_cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str, str]:
    """Run `oewsctl ARGS` in-process the way the console script does; (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["oewsctl", *args])
    capsys.readouterr()
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def cluster(kube_cluster: KubeCluster, tmp_path: Path) -> tuple[KubeCluster, Path]:
    """The emulator with the example's three nodes (none labelled yet) and PodMonitor served."""
    kube_cluster._locked(lambda: kube_cluster.emulator.resources.__setitem__(
        "monitoring.coreos.com/v1/podmonitors", {"kind": "PodMonitor", "namespaced": True, "verbs": VERBS}))
    for name in NODES:
        kube_cluster.put("v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}})
    return kube_cluster, kube_cluster.write_config(tmp_path / "oewsctl.yaml", source=CONFIG)


def stored_password(kube: KubeCluster) -> str:
    secret = kube.get("v1/secrets", monitoring.NAMESPACE, monitoring.GRAFANA_SECRET)
    assert secret is not None
    return base64.b64decode(secret["data"]["admin-password"]).decode()


def test_install_applies_everything_and_a_second_run_changes_nothing(cluster, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    kube, config = cluster
    code, out, err = run_cli(capsys, monkeypatch, "-c", str(config), "monitoring", "install")
    assert code == 0, err

    node = kube.get("v1/nodes", None, "raspberrypi")
    assert node["metadata"]["labels"]["oews/role"] == "monitoring"
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
    assert password not in out + err
    assert password not in audit_path().read_text()

    code, out, err = run_cli(capsys, monkeypatch, "-c", str(config), "monitoring", "install")
    assert code == 0, err
    assert "Nothing to change" in err
    assert stored_password(kube) == password, "a re-run must keep Grafana's password"


def test_password_is_printed_only_by_monitoring_password(cluster, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    kube, config = cluster
    code, out, err = run_cli(capsys, monkeypatch, "-c", str(config), "--dry-run", "monitoring", "install")
    assert code == 0 and "grafana-admin" in err
    assert kube.get("v1/secrets", "monitoring", "grafana-admin") is None, "a dry run created the Secret"

    code, out, err = run_cli(capsys, monkeypatch, "-c", str(config), "monitoring", "password")
    assert code == 1 and "oewsctl monitoring install" in err

    assert run_cli(capsys, monkeypatch, "-c", str(config), "monitoring", "install")[0] == 0
    code, out, err = run_cli(capsys, monkeypatch, "-c", str(config), "monitoring", "password")
    assert code == 0
    assert out == f"user: admin\npassword: {stored_password(kube)}\n"
    code, out, _ = run_cli(capsys, monkeypatch, "-c", str(config), "-o", "json", "monitoring", "password")
    assert json.loads(out) == {"user": "admin", "password": stored_password(kube)}


def test_monitoring_node_missing_from_cluster_fails_before_changing_anything(cluster, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    kube, config = cluster
    kube.delete("v1/nodes", None, "raspberrypi")
    code, out, err = run_cli(capsys, monkeypatch, "-c", str(config), "monitoring", "install")
    assert code == 1
    assert "node 'raspberrypi' (the monitoring node) is not part of the cluster" in err
    assert "oewsctl cluster install" in err
    assert kube.get("helm.cattle.io/v1/helmcharts", "kube-system", "kube-prometheus-stack") is None
    assert kube.get("v1/secrets", "monitoring", "grafana-admin") is None


def test_no_monitoring_node_in_the_inventory_is_a_usage_error(cluster, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _, config = cluster
    data = yaml.safe_load(config.read_text())
    data["monitoring"] = {}
    data["nodes"][2]["labels"] = {}
    config.write_text(yaml.safe_dump(data))
    code, _, err = run_cli(capsys, monkeypatch, "-c", str(config), "monitoring", "install")
    assert code == 2
    assert "cannot tell which node runs monitoring" in err and "monitoring: {node: raspberrypi}" in err
