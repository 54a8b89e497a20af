"""`oewsctl loadtest` against real servers: its counts against the server's own /metrics, the stand-in, bad targets."""

from __future__ import annotations

import _thread
import json
import re
import threading
from pathlib import Path

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import yaml

from tests.fixtures.api import ServerFactory, free_port
from tests.fixtures.http_servers import serving
from tests.fixtures.cli import CliRunner
from tests.fixtures.kube import EXAMPLE_CONFIG
from tests.fixtures.standin import StandIn

ROUTES = {"wages": ("GET", "/api/v1/wages"), "query": ("POST", "/api/v1/query"), "health": ("GET", "/health")}


def offline_config(tmp_path: Path) -> Path:
    """The example inventory with no reachable cluster (restart counts cannot be read)."""
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    data["cluster"]["kubeconfig"] = str(tmp_path / "no-kubeconfig")
    path = tmp_path / "oewsctl.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def served(metrics: str) -> dict[tuple[str, str], int]:
    counts = {}
    for method, route, value in re.findall(r'oews_api_requests_total\{method="(\w+)",route="([^"]+)",status="200"\} ([\d.]+)', metrics):
        counts[(method, route)] = int(float(value))
    return counts


def test_counts_match_the_servers_own_metrics(api_server: ServerFactory, run_cli: CliRunner, tmp_path: Path, oewsctl_state: Path) -> None:
    _, url = api_server()
    before = served(httpx.get(url + "/metrics").text)

    done = run_cli("--config", offline_config(tmp_path), "-o", "json", "loadtest", "--url", url, "--duration", "2s", "--users", "4")

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    summary = report["summary"]
    assert summary["failed"] == 0 and summary["requests"] > 50
    counts = served(httpx.get(url + "/metrics").text)
    probe = {"health": 1}  # the reachability check before the load
    assert {kind: counts[ROUTES[kind]] - before.get(ROUTES[kind], 0) for kind in ROUTES} == {kind: summary["by_kind"][kind] + probe.get(kind, 0) for kind in ROUTES}
    assert {c["name"]: c["ok"] for c in report["checks"]} == {"p95 latency": True, "failed requests": True, "pod restarts": None}
    assert report["restarts_not_checked"].startswith("no kubeconfig at")
    assert Path(report["report"]).parent.parent == oewsctl_state / "loadtests"
    assert Path(report["chart"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rate_mode_and_request_bound(api_server: ServerFactory, run_cli: CliRunner, tmp_path: Path) -> None:
    _, url = api_server()

    done = run_cli("--config", offline_config(tmp_path), "-o", "json", "loadtest", "--url", url, "--rate", "40/s", "--duration", "5s",
                   "--requests", "30", "--mix", "wages")

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["stopped_by"] == "count" and report["summary"]["by_kind"] == {"wages": 30}
    assert report["summary"]["seconds"] < 1.5  # 30 requests at 40/s


def test_through_the_standin_ingress_and_the_api_proxy_with_restarts_checked(standin: StandIn, run_cli: CliRunner) -> None:
    assert standin.config is not None
    done = run_cli("--config", standin.config, "loadtest", "--url", standin.url, "--duration", "2s", "--users", "4")
    assert done.returncode == 0, done.stderr
    assert re.search(r"pod restarts\s+✓ 0", done.stdout), done.stdout
    assert "report: " in done.stderr and "chart:  " in done.stderr

    via_api = run_cli("--config", standin.config, "-o", "json", "loadtest", "--via-api", "--duration", "1s", "--users", "2")
    assert via_api.returncode == 0, via_api.stderr
    report = json.loads(via_api.stdout)
    assert report["target"].endswith("/api/v1/namespaces/oews/services/oews-api:http/proxy")
    assert report["summary"]["failed"] == 0 and report["summary"]["requests"] > 5


def test_bad_targets(run_cli: CliRunner, tmp_path: Path) -> None:
    config = offline_config(tmp_path)
    nowhere = run_cli("--config", config, "loadtest", "--url", f"http://127.0.0.1:{free_port()}", "--duration", "1s")
    assert nowhere.returncode == 1
    assert "does not answer (connect error" in nowhere.stderr

    refused = run_cli("--config", config, "loadtest", "--url", "https://shop.example.org", "--duration", "1s")
    assert refused.returncode == 2
    assert "refusing to send load to shop.example.org" in refused.stderr and "--yes" in refused.stderr

    both = run_cli("--config", config, "loadtest", "--url", "http://127.0.0.1:9", "--via-api")
    assert both.returncode == 2 and "--url and --via-api" in both.stderr


def test_ctrl_c_stops_the_load_early_and_still_reports(api_server: ServerFactory, run_cli: CliRunner, tmp_path: Path) -> None:
    _, url = api_server()
    threading.Timer(1.5, _thread.interrupt_main).start()  # what Ctrl-C does

    done = run_cli("--config", offline_config(tmp_path), "-o", "json", "loadtest", "--url", url, "--duration", "60s", "--users", "2")

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["stopped_by"] == "stopped" and report["summary"]["seconds"] < 10 and report["summary"]["requests"] > 0


def test_dry_run_prints_the_load_and_thresholds_and_sends_nothing(run_cli: CliRunner, tmp_path: Path, oewsctl_state: Path) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens: any request (even the reachability probe) would fail the run

    done = run_cli("--config", offline_config(tmp_path), "--dry-run", "loadtest", "--url", nowhere, "--duration", "2s", "--users", "4")

    assert done.returncode == 0, done.stderr
    assert f"Would send: 4 users for 2s, mix wages,query,health -> {nowhere}" in done.stderr
    assert "Then check: p95 latency < 2 s, failed requests 0, pod restarts 0" in done.stderr
    as_json = run_cli("--config", offline_config(tmp_path), "--dry-run", "-o", "json", "loadtest", "--url", nowhere, "--rate", "5/s")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["load"] == f"5 req/s for 30s, mix wages,query,health -> {nowhere}"
    assert not (oewsctl_state / "loadtests").exists()


class RateLimited(BaseHTTPRequestHandler):
    """An edge whose rate limit refuses everything (as Traefik's middleware answers)."""

    def do_GET(self) -> None:
        self.send_response(429)
        self.send_header("Retry-After", "1")
        self.send_header("Content-Length", "17")
        self.end_headers()
        self.wfile.write(b"Too Many Requests")

    def log_message(self, *args: object) -> None:
        pass


def test_a_429_is_its_own_error_kind_with_the_rate_limit_hint(run_cli: CliRunner, tmp_path: Path) -> None:
    with serving(ThreadingHTTPServer(("127.0.0.1", 0), RateLimited)) as edge:
        url = f"http://127.0.0.1:{edge.server_address[1]}"
        done = run_cli("--config", offline_config(tmp_path), "-o", "json", "loadtest", "--url", url, "--requests", "6", "--mix", "wages,health")

    assert done.returncode == 1  # still failed requests
    summary = json.loads(done.stdout)["summary"]
    assert summary["errors"] == {"HTTP 429 (rate limited)": 6}
    assert summary["hints"] == ["the edge rate limit (app.rate_limit) answered 429: raise it for the test or use --via-api"]
    assert "load test failed: failed requests" in done.stderr and "raise it for the test or use --via-api" in done.stderr
