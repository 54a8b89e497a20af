"""A real Prometheus (Debian package) scraping a real running oews-api.

Proves the names the alert rules and the dashboard use exist on the real /metrics:
the request and database-info series come back through Prometheus's HTTP API, every
dashboard PromQL expression evaluates without error (and the request panels return
data), and Prometheus loads the shipped rules file and evaluates every rule healthily.
"""

from __future__ import annotations

import time

import httpx
import pytest

from oewsctl import monitoring
from oewsctl.status import alerts
from tests.fixtures.api import ServerFactory
from tests.fixtures.prometheus import PrometheusFactory

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


def test_prometheus_scrapes_requests_and_db_info_and_every_dashboard_query_evaluates(
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


def test_real_prometheus_loads_the_shipped_rules_and_evaluates_them(
    oews_api_url: str, prometheus_server: PrometheusFactory
) -> None:
    prometheus = prometheus_server([oews_api_url.removeprefix("http://")], [monitoring.RULES_FILE])
    deadline = time.monotonic() + 20
    while True:
        groups = prometheus.api("rules")["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        if rules and all(rule.get("lastEvaluation", "").startswith("20") for rule in rules) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert sorted(rule["name"] for rule in rules) == sorted(monitoring.alert_names())
    unhealthy = {rule["name"]: rule.get("lastError") for rule in rules if rule["health"] != "ok"}
    assert not unhealthy
    # The API is up and scraped: once the first scrape is in, "API down" must be quiet on live data.
    prometheus.wait_for('up{job="oews-api"} == 1')
    time.sleep(2)
    assert not [a for a in prometheus.api("alerts")["alerts"] if a["labels"]["alertname"] == "OewsApiDown"]


def test_status_alerts_section_reads_firing_alerts_from_a_real_prometheus(prometheus_server: PrometheusFactory) -> None:
    """Nothing answers at the scraped address: OewsApiDown fires (for: 2m is too long for a test,
    so the section is checked on what Prometheus reports: pending alerts are not shown as firing)."""
    prometheus = prometheus_server(["127.0.0.1:9"], [monitoring.RULES_FILE])
    source = monitoring.Prometheus(url=prometheus.url)
    deadline = time.monotonic() + 20
    while not [a for a in prometheus.api("alerts")["alerts"] if a["labels"]["alertname"] == "OewsApiDown"]:
        assert time.monotonic() < deadline, "OewsApiDown never became pending"
        time.sleep(0.5)
    lines, firing = alerts(source)
    assert lines == ["none firing"] and firing == []
