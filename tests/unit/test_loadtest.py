"""The load generator's arithmetic and rules (no network): parsing, the target rule, statistics, reports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from oewsctl.core.errors import UsageError
from oewsctl.runbooks import drills, loadtest
from oewsctl.runbooks.loadtest import Sample


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("2m", 120), ("1m30s", 90), ("45", 45), ("0.5s", 0.5)])
def test_durations(text: str, seconds: float) -> None:
    assert loadtest.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "s", "-3s", "0s", "2h", "61m", "ten"])
def test_bad_durations_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="--duration"):
        loadtest.parse_duration(text)


def test_rates_and_mixes() -> None:
    assert loadtest.parse_rate("20/s") == 20 and loadtest.parse_rate("600/m") == 10 and loadtest.parse_rate("5") == 5
    with pytest.raises(UsageError, match="--rate '0/s'"):
        loadtest.parse_rate("0/s")
    assert loadtest.parse_mix("wages, health") == ("wages", "health")
    with pytest.raises(UsageError, match="choose from wages, query, health"):
        loadtest.parse_mix("wages,login")


def test_targets_are_the_domain_loopback_or_an_explicit_url_with_yes() -> None:
    domain = "api.example.com"
    assert loadtest.check_target("https://api.example.com/", domain, explicit=False, yes=False) == "https://api.example.com"
    assert loadtest.check_target("http://127.0.0.1:8000", domain, explicit=True, yes=False) == "http://127.0.0.1:8000"
    assert loadtest.check_target("http://[::1]:8000", domain, explicit=True, yes=False) == "http://[::1]:8000"
    assert loadtest.check_target("http://localhost:8000", domain, explicit=True, yes=False) == "http://localhost:8000"
    with pytest.raises(UsageError, match=r"refusing to send load to shop\.example\.org: it is neither app\.domain \(api\.example\.com\)") as refused:
        loadtest.check_target("https://shop.example.org", domain, explicit=True, yes=False)
    assert "--yes" in (refused.value.hint or "")
    assert loadtest.check_target("https://staging.example.com", domain, explicit=True, yes=True) == "https://staging.example.com"
    with pytest.raises(UsageError, match="expected http"):
        loadtest.check_target("ftp://127.0.0.1", domain, explicit=True, yes=True)


def test_summary_percentiles_errors_and_the_outage_window() -> None:
    samples = [Sample(i / 100, "wages", (i + 1) / 1000) for i in range(100)]
    samples[40] = Sample(0.40, "query", 0.002, "HTTP 502", "POST /api/v1/query: Bad Gateway")
    samples[41] = Sample(0.41, "health", 0.001, "connect error", "GET /health: refused")
    samples[42] = Sample(0.42, "wages", 0.001, "HTTP 502", "GET /api/v1/wages: Bad Gateway")
    summary = loadtest.summarize(samples, seconds=1.0)
    assert (summary.requests, summary.ok, summary.failed) == (100, 97, 3)
    assert summary.errors == {"HTTP 502": 2, "connect error": 1}
    assert summary.examples == {"HTTP 502": "POST /api/v1/query: Bad Gateway", "connect error": "GET /health: refused"}
    assert summary.first_error == {"at_seconds": 0.4, "kind": "query", "error": "HTTP 502", "detail": "POST /api/v1/query: Bad Gateway"}
    assert summary.last_error_at == 0.42
    assert summary.p50 == 0.05 and summary.p99 == 0.099 and summary.max == 0.1
    assert summary.rps == 100


def test_timeline_buckets_by_send_time() -> None:
    samples = [Sample(0.1, "wages", 0.010), Sample(0.9, "wages", 0.030), Sample(1.5, "health", 0.002, "HTTP 503"), Sample(2.001, "wages", 0.004)]
    rows = loadtest.timeline(samples, seconds=2.004)
    assert [(r["t"], r["requests"], r["errors"]) for r in rows] == [(0.0, 2, 0), (1.0, 2, 1)]  # the last sliver joins the bucket before
    assert rows[0]["max"] == 0.03


def test_thresholds_are_the_runbooks() -> None:
    ok = loadtest.summarize([Sample(0.0, "wages", 0.1)], 1.0)
    assert [c.ok for c in loadtest.thresholds(ok, restarts=0)] == [True, True, True]
    slow = loadtest.summarize([Sample(0.0, "wages", 2.5), Sample(0.1, "wages", 0.1, "timeout")], 1.0)
    checks = {c.name: c for c in loadtest.thresholds(slow, restarts=None)}
    assert checks["p95 latency"].ok is False and checks["failed requests"].ok is False
    assert checks["pod restarts"].ok is None and checks["pod restarts"].value == "not checked"


def test_restarts_between_counts_new_pods_whole() -> None:
    assert loadtest.restarts_between({"a": 2, "b": 0}, {"a": 3, "c": 1}) == 2


def test_drill_markdown_and_the_report_list(tmp_path: Path) -> None:
    doc = {
        "drill": "pod-kill", "outcome": "failed", "error": None, "started": "2026-12-01T22:00:00+00:00", "cluster": "home",
        "deployment": "deployment oews/oews-api",
        "phases": [{"name": "pod deleted", "started_at_seconds": 1.0, "recovery_seconds": 6.2}],
        "recovery_seconds": 6.2,
        "checks": [{"name": "failed requests", "limit": "0", "value": "12 of 900", "ok": False}],
        "restored": [],
        "steps": [{"description": "delete one ready API pod", "node": None, "status": "ok", "seconds": 0.1, "message": "deleted pod oews-api-x"}],
        "load": {"load": "4 users until stopped", "timeline": [],
                 "summary": {"requests": 900, "rps": 90.0, "failed": 12, "errors": {"HTTP 502": 12}, "first_error": {"at_seconds": 1.1, "kind": "wages", "error": "HTTP 502", "detail": "GET /api/v1/wages: Bad Gateway"},
                             "last_error_at_seconds": 2.0, "latency_seconds": {"p50": 0.01, "p95": 0.05, "p99": 0.08, "max": 0.2}}},
    }
    text = drills.markdown(doc)
    assert "# Drill `pod-kill`: failed" in text
    assert "| pod deleted | 1.0 s | 6.2 s |" in text
    assert "| failed requests | 0 | 12 of 900 | FAIL |" in text
    assert "Failed requests from 1.1 s to 2.0 s; the first: HTTP 502 — GET /api/v1/wages: Bad Gateway" in text

    folder = tmp_path / "20261201-220000-pod-kill"
    folder.mkdir()
    (folder / "report.json").write_text(json.dumps(doc))
    (tmp_path / "20261201-210000-broken").mkdir()
    (tmp_path / "20261201-210000-broken" / "report.json").write_text("{not json")
    assert drills.list_reports(tmp_path) == [{"report": str(folder), "drill": "pod-kill", "started": "2026-12-01T22:00:00+00:00", "outcome": "failed",
                                              "recovery_seconds": 6.2, "failed_requests": 12, "requests": 900, "p95_seconds": 0.05}]


def test_chart_is_a_png(tmp_path: Path) -> None:
    rows = loadtest.timeline([Sample(t / 10, "wages", 0.01 + t / 1000, "HTTP 502" if t == 15 else None) for t in range(30)], 3.0)
    path = loadtest.write_chart(rows, tmp_path / "c.png", title="t", markers=[loadtest.Marker(1.0, "pod deleted")])
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_429_is_the_rate_limit_kind_and_reports_carry_its_hint() -> None:
    from rich.console import Console

    summary = loadtest.summarize([Sample(0.0, "wages", 0.01), Sample(0.1, "wages", 0.01, loadtest.RATE_LIMITED, "GET /api/v1/wages: Too Many Requests")], 1.0)
    assert summary.failed == 1 and summary.hints == [loadtest.RATE_LIMIT_HINT]
    assert loadtest.summarize([Sample(0.0, "wages", 0.01, "HTTP 503")], 1.0).hints == []
    console = Console(width=200, record=True)
    console.print(loadtest.summary_table(summary, loadtest.thresholds(summary, 0)))
    assert re.search(r"hint +the edge rate limit \(app\.rate_limit\) answered 429: raise it for the test or use --via-api", console.export_text())
    doc = {"drill": "rollout", "outcome": "failed", "error": None, "started": "2026-12-01T22:00:00+00:00", "cluster": "home",
           "deployment": "deployment oews/oews-api", "phases": [], "checks": [], "steps": [],
           "load": {"load": "2 users until stopped", "summary": summary.as_dict()}}
    assert f"Hint: {loadtest.RATE_LIMIT_HINT}" in drills.markdown(doc)
