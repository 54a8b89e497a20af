"""`oewsctl loadtest` against real servers: its counts against the server's own /metrics, the stand-in, bad targets."""

from __future__ import annotations

import _thread
import json
import re
import threading
from pathlib import Path

import httpx
import yaml

from tests.fixtures.api import ServerFactory, free_port
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
