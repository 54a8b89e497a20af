"""A real Prometheus (Debian package) scraping a real running oews-api.

Proves the names the alert rules and the dashboard use exist on the real /metrics:
the request and database-info series come back through Prometheus's HTTP API, every
dashboard PromQL expression evaluates without error (and the request panels return
data), and Prometheus loads the shipped rules file and evaluates every rule healthily.
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from oewsctl.runbooks import monitoring
from oewsctl.runbooks.report import probe
from oewsctl.runbooks.status import alerts
from tests.conftest import DATA_DIR
from tests.fixtures.api import ServerFactory
from tests.fixtures.keyvault import CliResult
from tests.fixtures.kube import KubeCluster
from tests.fixtures.prometheus import PrometheusFactory, PrometheusServer

pytestmark = pytest.mark.prometheus


@pytest.fixture
def oews_api_url(api_server: ServerFactory) -> str:
    """A real ``python -m oews_api`` serving the bundled sample database."""
    return api_server()[1]

TRAFFIC = [
    ("GET", "/health"),
    ("GET", "/api/v1/occupations?q=software"),
    ("GET", "/api/v1/wages?occupation=15-1252&area=WA"),
    ("GET", "/api/v1/wages?occupation=nonexistent-job-title&area=Nowhere"),
    ("GET", "/no/such/page"),
]
PANELS_WITH_DATA = {"Requests per second by route", "Latency p50 / p95 / p99 by route", "Database release and SHA-256 per pod"}


def send_traffic(url: str, rounds: int = 3) -> None:
    with httpx.Client(base_url=url, timeout=10) as client:
        for _ in range(rounds):
            for method, path in TRAFFIC:
                client.request(method, path)


def test_prometheus_scrapes_the_api_evaluates_every_dashboard_query_and_the_shipped_rules(
    oews_api_url: str, prometheus_server: PrometheusFactory
) -> None:
    send_traffic(oews_api_url)
    prometheus = prometheus_server([oews_api_url.removeprefix("http://")], [monitoring.RULES_FILE])

    requests = prometheus.wait_for('oews_api_requests_total{route="/api/v1/wages"}')
    assert {r["metric"]["status"] for r in requests} >= {"200"}
    assert prometheus.wait_for('oews_api_request_duration_seconds_bucket{route="/api/v1/occupations",le="+Inf"}')
    (info,) = prometheus.wait_for("oews_api_database_info")
    health = httpx.get(f"{oews_api_url}/health").json()
    assert info["metric"]["sha256"] == health["database"]["sha256"]
    assert info["metric"]["release"] == health["database"]["release"]

    # rate() needs two scrapes after the traffic: send more, wait for a few 1 s scrapes.
    send_traffic(oews_api_url)
    time.sleep(3)
    send_traffic(oews_api_url, rounds=1)
    time.sleep(2)
    for title, expr in monitoring.dashboard_expressions():
        result = prometheus.query(expr)  # fails the test on a PromQL error
        if title in PANELS_WITH_DATA:
            assert result, f"dashboard panel {title!r} returned no data: {expr}"

    # The shipped rules file loads into a real Prometheus and every rule evaluates cleanly.
    rules = [rule for group in prometheus.api("rules")["groups"] for rule in group["rules"]]
    assert sorted(rule["name"] for rule in rules) == sorted(monitoring.alert_names())
    assert {rule["name"]: rule.get("lastError") for rule in rules if rule["health"] != "ok"} == {}
    # The API is up and scraped: "API down" is quiet on live data.
    assert not [a for a in prometheus.api("alerts")["alerts"] if a["labels"]["alertname"] == "OewsApiDown"]


def api_down_now(prometheus_server: PrometheusFactory, tmp_path: Path) -> PrometheusServer:
    """A real Prometheus whose only target is dead, with the shipped rules minus ``for``:
    OewsApiDown fires within seconds."""
    groups = copy.deepcopy(monitoring.rule_groups())
    for group in groups:
        for rule in group["rules"]:
            rule.pop("for", None)
    rules = tmp_path / "rules-now.yaml"
    rules.write_text(yaml.safe_dump({"groups": groups}))
    prometheus = prometheus_server(["127.0.0.1:9"], [rules])
    prometheus.wait_for('up{job="oews-api"} == 0')  # the target is scraped (and down), not just absent
    deadline = time.monotonic() + 30
    while not [a for a in prometheus.api("alerts")["alerts"] if a["state"] == "firing" and "job" not in a["labels"]]:
        assert time.monotonic() < deadline, "OewsApiDown never fired"
        time.sleep(0.5)
    return prometheus


def test_status_shows_alerts_firing_in_a_real_prometheus(prometheus_server: PrometheusFactory, tmp_path: Path) -> None:
    prometheus = api_down_now(prometheus_server, tmp_path)
    lines, firing = alerts(monitoring.Prometheus(url=prometheus.url))
    assert lines == ["critical OewsApiDown: oews-api is down (no pod answers /metrics)"]
    assert firing[0]["annotations"]["runbook"].startswith("Run `oewsctl status`")


def test_status_reaches_prometheus_through_the_api_server_service_proxy(
    prometheus_server: PrometheusFactory, kube_cluster: KubeCluster, tmp_path: Path, oewsctl: Callable[..., CliResult]
) -> None:
    """No --prometheus: oewsctl asks the API server's service proxy for the chart's Prometheus
    Service; the emulator forwards that path to the real Prometheus."""
    prometheus = api_down_now(prometheus_server, tmp_path)
    proxy = rf"/api/v1/namespaces/monitoring/services/{monitoring.PROMETHEUS_SERVICE}:{monitoring.PROMETHEUS_PORT}/proxy/api/v1/(.+)"

    def forward(request: Any) -> Any:
        tail = re.fullmatch(proxy, str(request.url.path))
        assert tail is not None
        return httpx.get(f"{prometheus.url}/api/v1/{tail.group(1)}", params=dict(request.params), timeout=10).json()

    kube_cluster.serve(proxy, forward)
    config = kube_cluster.write_config(tmp_path / "oewsctl.yaml", source=DATA_DIR / "monitoring" / "oewsctl.yaml")
    overview = oewsctl("-c", str(config), "status")
    assert overview.code == 0, overview.err
    assert "alerts:\n  critical OewsApiDown: oews-api is down (no pod answers /metrics)" in overview.out
    scrape = oewsctl("-c", str(config), "monitoring", "status")
    assert "oews-api targets up: 0/1" in scrape.out and "alerts firing: 1" in scrape.out


def test_unreachable_prometheus_is_one_clear_reason() -> None:
    section = probe("alerts", lambda: alerts(monitoring.Prometheus(url="http://127.0.0.1:9")))
    assert section.unknown is not None and section.unknown.startswith("Prometheus at http://127.0.0.1:9 is not reachable")
