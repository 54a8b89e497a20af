"""The alert rules that ship, checked and unit-tested by the real promtool (Debian prometheus).

``tests/data/promtool/oews-rules.test.yaml`` loads ``templates/monitoring/rules.yaml``
directly and makes every alert fire (with its exact summary, numbers and runbook hint)
and stay quiet on recorded series; the PrometheusRule oewsctl renders is checked too,
so promtool sees exactly what is applied to the cluster.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from oewsctl.configuration.loading import load_config
from oewsctl.runbooks import monitoring
from tests.conftest import DATA_DIR, require

pytestmark = pytest.mark.prometheus

PROMTOOL_DIR = DATA_DIR / "promtool"
RULE_TESTS = PROMTOOL_DIR / "oews-rules.test.yaml"
REQUIRED_ALERTS = {
    "OewsApiDown", "OewsApiNoReadyReplica", "OewsApiHighErrorRatio", "OewsApiSlowP95", "OewsPodRestarting",
    "OewsNodeNotReady", "OewsNodeHighCpu", "OewsNodeHighMemory", "OewsDbNodeDiskFull", "OewsTlsCertExpiring",
    "OewsDatabaseReleaseOld", "OewsPublicEndpointDown", "OewsPublicRedirectBroken", "OewsCertificateExpiresSoon",
}


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    require(binary is not None, "promtool (Debian package prometheus)")
    assert binary is not None
    return subprocess.run([binary, *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_shipped_rule_file_passes_promtool_check() -> None:
    result = promtool("check", "rules", str(monitoring.RULES_FILE))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(monitoring.alert_names())} rules found" in result.stdout


def test_every_alert_fires_and_stays_quiet_in_promtool_unit_tests() -> None:
    result = promtool("test", "rules", RULE_TESTS.name, cwd=PROMTOOL_DIR)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_unit_tests_load_the_shipped_file_and_cover_every_alert() -> None:
    spec = yaml.safe_load(RULE_TESTS.read_text())
    assert [(PROMTOOL_DIR / f).resolve() for f in spec["rule_files"]] == [monitoring.RULES_FILE.resolve()]
    firing = {case["alertname"] for test in spec["tests"] for case in test["alert_rule_test"] if case["exp_alerts"]}
    quiet = {case["alertname"] for test in spec["tests"] for case in test["alert_rule_test"] if not case["exp_alerts"]}
    assert set(monitoring.alert_names()) == REQUIRED_ALERTS
    assert firing == REQUIRED_ALERTS, f"never made to fire: {REQUIRED_ALERTS - firing}"
    # Quiet cases: every alert whose input has a healthy neighbour series is asserted silent too.
    assert {"OewsApiDown", "OewsApiHighErrorRatio", "OewsApiSlowP95", "OewsPodRestarting", "OewsNodeNotReady",
            "OewsPublicEndpointDown", "OewsPublicRedirectBroken", "OewsCertificateExpiresSoon"} <= quiet


def test_every_alert_has_summary_description_and_an_oewsctl_runbook_hint() -> None:
    for group in monitoring.rule_groups():
        for rule in group["rules"]:
            notes = rule["annotations"]
            assert notes["summary"] and notes["description"], rule["alert"]
            assert "`oewsctl " in notes["runbook"], f"{rule['alert']}: runbook names no oewsctl command"
            assert rule["labels"]["severity"] in {"critical", "warning", "info"}


def test_rendered_prometheusrule_is_the_rule_file_and_passes_promtool(tmp_path: Path) -> None:
    config = load_config(DATA_DIR / "monitoring" / "oewsctl.yaml")
    (rule,) = [o for o in monitoring.render_crd_objects(config) if o["kind"] == "PrometheusRule"]
    assert rule["spec"]["groups"] == monitoring.rule_groups()
    shipped = tmp_path / "prometheusrule-spec.yaml"
    shipped.write_text(yaml.safe_dump(rule["spec"]))
    result = promtool("check", "rules", str(shipped))
    assert result.returncode == 0, result.stdout + result.stderr
