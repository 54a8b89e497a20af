"""The values for k3s's bundled Traefik keep client IPs: the per-client-IP rate limit needs them.

With ServiceLB and the chart's default ``externalTrafficPolicy: Cluster``, every request reaches
Traefik from a svclb address and all visitors share one rate-limit bucket. The Service the chart
builds from these values (type LoadBalancer plus ``service.spec``, as traefik-helm-chart's
``traefik.service-spec`` template does) must say ``Local``, and Traefik must be pinned to the
server node, whose ``kubernetes.io/hostname`` label is the inventory name oewsctl gives k3s.
"""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import yaml

from oewsctl.configuration.loading import parse_config
from oewsctl.runbooks.cluster import _k3s_config
from oewsctl.runbooks.render import render
from tests.conftest import DATA_DIR

EXAMPLE = DATA_DIR / "deploy" / "oewsctl.yaml"


def _traefik_values(server: str) -> dict[str, Any]:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["cluster"]["server"] = server
    for node in data["nodes"]:
        node["role"] = "server" if node["name"] == server else "agent"
    (chart,) = [o for o in render(parse_config(yaml.safe_dump(data))) if o["kind"] == "HelmChartConfig" and o["metadata"]["name"] == "traefik"]
    values: dict[str, Any] = yaml.safe_load(chart["spec"]["valuesContent"])
    return values


def test_the_traefik_service_keeps_client_ips() -> None:
    values = _traefik_values("machine1")
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "traefik", "namespace": "kube-system"},
        "spec": {"type": "LoadBalancer", "selector": {"app.kubernetes.io/name": "traefik"},
                 "ports": [{"name": "websecure", "port": 443, "targetPort": "websecure"}], **values["service"]["spec"]},
    }
    kubernetes_validate.validate(service, "1.31.0", strict=True)
    assert service["spec"]["externalTrafficPolicy"] == "Local"


def test_traefik_runs_on_the_server_node_by_its_hostname_label() -> None:
    for server in ("machine1", "machine2"):  # follows cluster.server
        assert _traefik_values(server)["nodeSelector"] == {"kubernetes.io/hostname": server}
    config = parse_config(EXAMPLE.read_text())
    # k3s registers the node (and its kubernetes.io/hostname label) under the name oewsctl gives it
    assert yaml.safe_load(_k3s_config(config, config.server_node, None))["node-name"] == config.cluster.server
