"""`oewsctl deploy` and `oewsctl rollout ...` as an operator runs them, against the API emulator.

Each command goes through the CLI entry point (exit codes, stdout/stderr as a person sees them); the
emulator's Deployment controller moves rollouts like kube-controller-manager, including a
stall (CrashLoopBackOff, ProgressDeadlineExceeded) for images in ``stall_images``.
"""

from __future__ import annotations

import base64
import datetime
import http.server
import json
import threading
import time
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from oewsctl.runbooks.secrets import secret_data_hash
from tests.fixtures.cli import invoke
from tests.fixtures.kube import KubeCluster

IMAGE = "ghcr.io/example/oews-api"
DB_SHA = "3f1a" * 16
TOKEN = "ghp_test-DO-NOT-LEAK-9c1e"


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


class Operator:
    """Runs oewsctl's entry point (argv in, exit code and output out) against one emulated cluster."""

    def __init__(self, cluster: KubeCluster, config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
        self.cluster = cluster
        self.config = config
        self._capsys = capsys
        self._monkeypatch = monkeypatch

    def __call__(self, *args: str) -> Result:
        done = invoke(["--config", self.config, *args], capsys=self._capsys, monkeypatch=self._monkeypatch)
        return Result(done.returncode, done.stdout, done.stderr)

    def ok(self, *args: str) -> Result:
        result = self(*args)
        assert result.returncode == 0, result.stderr
        return result

    def deployment(self) -> dict[str, Any]:
        found = self.cluster.get("apps/v1/deployments", "oews", "oews-api")
        assert found is not None
        return found

    def image(self) -> str:
        return str(self.deployment()["spec"]["template"]["spec"]["containers"][0]["image"])


def synced_secret(values: dict[str, str]) -> dict[str, Any]:
    """The app Secret as External Secrets Operator would have written it (no ESO runs in these tests)."""
    data = {key: base64.b64encode(value.encode()).decode() for key, value in values.items()}
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": {"name": "oews-api-secrets", "namespace": "oews"}, "data": data}


@pytest.fixture()
def oewsctl(kube_cluster: KubeCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Operator:
    kube_cluster.health = {"status": "ok", "database": {"sha256": DB_SHA, "release": "May 2025"}}
    monkeypatch.setenv("GHCR_TOKEN", TOKEN)  # app.image_pull_secret is set: deploy writes the pull Secret from it
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-login"))
    kube_cluster.put("v1/secrets", synced_secret({"OPENAI_API_KEY": "sk-1"}))
    return Operator(kube_cluster, kube_cluster.write_config(tmp_path / "oewsctl.yaml"), capsys, monkeypatch)


def test_deploy_rolls_out_smoke_checks_and_is_idempotent(oewsctl: Operator) -> None:
    first = oewsctl.ok("deploy", "--image", f"{IMAGE}:1.4.0", "--expect-db-sha256", DB_SHA)
    assert "apply Deployment oews/oews-api — created" in first.stderr
    assert 'deployment "oews-api" successfully rolled out' in first.stderr
    assert f"/health ok, database sha256 {DB_SHA[:16]}" in first.stderr
    deployment = oewsctl.deployment()
    assert deployment["status"]["availableReplicas"] == 2
    assert deployment["metadata"]["annotations"]["kubernetes.io/change-cause"] == f"oewsctl deploy --image {IMAGE}:1.4.0"

    again = oewsctl.ok("--output", "json", "deploy", "--image", f"{IMAGE}:1.4.0")
    doc = json.loads(again.stdout)
    applies = [s for s in doc["steps"] if s["description"].startswith("apply ")]
    assert len(applies) == 12 and all(s["status"] == "unchanged" for s in applies)
    assert len(oewsctl.cluster.list("apps/v1/replicasets", "oews")) == 1


def test_smoke_check_fails_on_the_wrong_database(oewsctl: Operator) -> None:
    result = oewsctl("deploy", "--expect-db-sha256", "ab" * 32)
    assert result.returncode == 1
    assert f"/health reports database sha256 {DB_SHA}, expected {'ab' * 32}" in result.stderr
    assert "oewsctl db update" in result.stderr


def test_stalled_rollout_is_rolled_back_and_exits_1_saying_why(oewsctl: Operator) -> None:
    oewsctl.ok("deploy", "--image", f"{IMAGE}:1.4.0")
    oewsctl.cluster.deployments.stall_images.add(f"{IMAGE}:broken")
    result = oewsctl("deploy", "--image", f"{IMAGE}:broken")
    assert result.returncode == 1
    err = result.stderr
    assert f"{IMAGE}:broken never became ready" in err
    assert "exceeded its progress deadline" in err
    assert f"rolled back to revision 1 ({IMAGE}:1.4.0)" in err
    assert "CrashLoopBackOff (last exit code 1, restarts 5)" in err
    assert "log: sqlite3.OperationalError: unable to open database file" in err
    assert "event oews-api-" in err and "Back-off restarting failed container api" in err
    assert oewsctl.image() == f"{IMAGE}:1.4.0"
    status = oewsctl.deployment()["status"]
    assert status["availableReplicas"] == 2 and status["updatedReplicas"] == 2
    history = json.loads(oewsctl.ok("--output", "json", "rollout", "history").stdout)
    assert [(r["number"], r["image"], r["current"]) for r in history] == [(2, f"{IMAGE}:broken", False), (3, f"{IMAGE}:1.4.0", True)]


def test_no_rollback_leaves_the_failed_rollout(oewsctl: Operator) -> None:
    oewsctl.ok("deploy", "--image", f"{IMAGE}:1.4.0")
    oewsctl.cluster.deployments.stall_images.add(f"{IMAGE}:broken")
    result = oewsctl("deploy", "--image", f"{IMAGE}:broken", "--no-rollback")
    assert result.returncode == 1
    assert "left as is (--no-rollback)" in result.stderr
    assert oewsctl.image() == f"{IMAGE}:broken"
    status = oewsctl("rollout", "status", "--no-wait")
    assert "exceeded its progress deadline" in status.stdout


def test_history_then_undo_to_a_named_revision(oewsctl: Operator) -> None:
    for tag in ("1.4.0", "1.5.0", "1.6.0"):
        oewsctl.ok("deploy", "--image", f"{IMAGE}:{tag}")
    table = oewsctl.ok("rollout", "history").stdout
    lines = [line.split() for line in table.splitlines()[2:]]
    assert [(cols[0], cols[1]) for cols in lines] == [("1", f"{IMAGE}:1.4.0"), ("2", f"{IMAGE}:1.5.0"), ("3", f"{IMAGE}:1.6.0")]
    assert f"oewsctl deploy --image {IMAGE}:1.5.0" in table and table.rstrip().endswith("(current)")

    undone = oewsctl.ok("rollout", "undo", "--to-revision", "1")
    assert f"rolled back to revision 1 ({IMAGE}:1.4.0)" in undone.stderr
    assert 'deployment "oews-api" successfully rolled out' in undone.stderr
    assert oewsctl.image() == f"{IMAGE}:1.4.0"
    deployment = oewsctl.deployment()
    assert deployment["metadata"]["annotations"]["kubernetes.io/change-cause"] == f"oewsctl deploy --image {IMAGE}:1.4.0"
    assert "pod-template-hash" not in deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "4"

    same = oewsctl.ok("rollout", "undo", "--to-revision", "4", "--no-wait")
    assert "skipped rollback (current template already matches revision 4)" in same.stderr

    missing = oewsctl("rollout", "undo", "--to-revision", "9")
    assert missing.returncode == 1
    assert "unable to find revision 9" in missing.stderr and "revisions: 2, 3, 4" in missing.stderr
    assert oewsctl.image() == f"{IMAGE}:1.4.0"


def test_undo_without_history_says_so(oewsctl: Operator) -> None:
    oewsctl.ok("deploy")
    result = oewsctl("rollout", "undo")
    assert result.returncode == 1
    assert "no rollout history found" in result.stderr


def test_restart_sets_restarted_at_and_rolls_new_pods(oewsctl: Operator) -> None:
    oewsctl.ok("deploy")
    pods_before = {p["metadata"]["name"] for p in oewsctl.cluster.list("v1/pods", "oews")}
    result = oewsctl.ok("rollout", "restart")
    assert "successfully rolled out" in result.stderr
    template = oewsctl.deployment()["spec"]["template"]
    stamp = template["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
    assert stamp.endswith("Z") and stamp in result.stderr
    cause = oewsctl.deployment()["metadata"]["annotations"]["kubernetes.io/change-cause"]
    assert cause == f"oewsctl deploy --image {IMAGE}:1.4.0"  # like kubectl: only restartedAt changes
    assert oewsctl.image() == f"{IMAGE}:1.4.0"
    pods_after = {p["metadata"]["name"] for p in oewsctl.cluster.list("v1/pods", "oews")}
    assert len(pods_after) == 2 and not pods_before & pods_after


def test_two_restarts_in_one_second_both_roll_new_pods(oewsctl: Operator, monkeypatch: pytest.MonkeyPatch) -> None:
    """kubectl's restartedAt has whole seconds: `db update` then `db rollback` from a script restarted nothing the second time."""
    frozen = datetime.datetime(2026, 12, 2, 1, 30, 0, 250000, tzinfo=datetime.UTC)

    class Clock(datetime.datetime):
        @classmethod
        def now(cls, tz: datetime.tzinfo | None = None) -> datetime.datetime:  # type: ignore[override]
            return frozen

    monkeypatch.setattr("oewsctl.runbooks.rollout.datetime", types.SimpleNamespace(datetime=Clock, UTC=datetime.UTC))
    oewsctl.ok("deploy")
    oewsctl.ok("rollout", "restart")
    pods_first = {p["metadata"]["name"] for p in oewsctl.cluster.list("v1/pods", "oews")}
    first = oewsctl.deployment()["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
    oewsctl.ok("rollout", "restart")
    second = oewsctl.deployment()["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
    pods_second = {p["metadata"]["name"] for p in oewsctl.cluster.list("v1/pods", "oews")}
    assert (first, second) == ("2026-12-02T01:30:00Z", "2026-12-02T01:30:00.250000Z")
    assert len(pods_second) == 2 and not pods_first & pods_second


def test_dry_run_prints_plan_and_diff_and_changes_nothing(oewsctl: Operator) -> None:
    oewsctl.ok("deploy", "--image", f"{IMAGE}:1.4.0")
    before = oewsctl.deployment()
    result = oewsctl.ok("--dry-run", "deploy", "--image", f"{IMAGE}:1.5.0")
    assert "Plan for deploy (16 steps, nothing changed)" in result.stderr
    assert f"-        image: {IMAGE}:1.4.0" in result.stderr
    assert f"+        image: {IMAGE}:1.5.0" in result.stderr
    assert "Service oews/oews-api" not in result.stderr.split("Diff against the live cluster:")[1]
    assert oewsctl.deployment()["spec"] == before["spec"]


def test_unreachable_cluster_is_one_clear_line(oewsctl: Operator) -> None:
    oewsctl.cluster.close_server()
    result = oewsctl("rollout", "status")
    assert result.returncode == 1
    assert "cannot reach the Kubernetes API at http://127.0.0.1:" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_input_exits_2_and_changes_nothing(oewsctl: Operator, tmp_path: Path) -> None:
    bad_sha = oewsctl("deploy", "--expect-db-sha256", "abc")
    assert bad_sha.returncode == 2 and "--expect-db-sha256 must be 64 hex digits" in bad_sha.stderr
    bad_image = oewsctl("deploy", "--image", "ghcr.io/Example/OEWS:1.0")
    assert bad_image.returncode == 2 and "must be lowercase" in bad_image.stderr
    bad_revision = oewsctl("rollout", "undo", "--to-revision", "-1")
    assert bad_revision.returncode == 2
    assert oewsctl.cluster.list("apps/v1/deployments") == []

    oewsctl.config.write_text(oewsctl.config.read_text().replace(str(oewsctl.cluster.kubeconfig), str(tmp_path / "nope")))
    missing = oewsctl("deploy")
    assert missing.returncode == 2
    assert f"kubeconfig {tmp_path / 'nope'} not found" in missing.stderr
    assert "oewsctl cluster kubeconfig" in missing.stderr


def test_deploy_writes_the_pull_secret_without_ever_showing_the_token(oewsctl: Operator) -> None:
    dry = oewsctl.ok("--dry-run", "deploy")
    assert "Secret oews/ghcr-credentials: pull credentials for ghcr.io" in dry.stderr and "<withheld>" in dry.stderr
    first = oewsctl.ok("deploy")
    secret = oewsctl.cluster.get("v1/secrets", "oews", "ghcr-credentials")
    assert secret is not None and secret["type"] == "kubernetes.io/dockerconfigjson"
    auths = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))["auths"]
    assert auths["ghcr.io"]["password"] == TOKEN and auths["ghcr.io"]["username"] == "example"
    assert TOKEN not in json.dumps(secret["metadata"])  # the last-applied record holds a hash only
    again = oewsctl.ok("--output", "json", "deploy")
    step = next(s for s in json.loads(again.stdout)["steps"] if "ghcr-credentials" in s["description"])
    assert step["status"] == "unchanged"
    for text in (dry.stdout, dry.stderr, first.stdout, first.stderr, again.stdout, again.stderr):
        assert TOKEN not in text


def stub_registry(status: int, headers: dict[str, str]) -> Iterator[str]:
    """A registry on loopback answering every request with ``status`` and ``headers`` (no body)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status)
            for key, value in {**headers, "Content-Length": "0"}.items():
                self.send_header(key, value)
            self.end_headers()

        do_HEAD = do_GET

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture()
def login_only_registry() -> Iterator[str]:
    """A private registry: every request gets a Basic login challenge."""
    yield from stub_registry(401, {"WWW-Authenticate": 'Basic realm="registry"'})


@pytest.fixture()
def public_registry() -> Iterator[str]:
    """A public registry: manifests are served without a login."""
    yield from stub_registry(200, {"Content-Type": "application/vnd.oci.image.index.v1+json"})


def test_public_registry_without_credentials_needs_no_pull_secret(oewsctl: Operator, public_registry: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GHCR_TOKEN")
    result = oewsctl.ok("deploy", "--image", f"{public_registry}/oews-api:1.0")
    assert f"no local credentials, and {public_registry} serves oews-api without one: nothing to write" in result.stderr
    assert oewsctl.cluster.get("v1/secrets", "oews", "ghcr-credentials") is None


def test_private_registry_without_credentials_fails_before_the_deployment(oewsctl: Operator, login_only_registry: str,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GHCR_TOKEN")
    result = oewsctl("deploy", "--image", f"{login_only_registry}/oews-api:1.0")
    assert result.returncode == 1
    assert f"{login_only_registry} needs a login to pull oews-api, and no credentials were found to write Secret oews/ghcr-credentials" in result.stderr
    assert f"docker login {login_only_registry}" in result.stderr
    assert oewsctl.cluster.list("apps/v1/deployments", "oews") == []


def test_first_deploy_with_provider_kubernetes_creates_the_secret_empty(oewsctl: Operator) -> None:
    data = yaml.safe_load(oewsctl.config.read_text())
    data["secrets"] = {"provider": "kubernetes", "keys": {"OPENAI_API_KEY": "OPENAI_API_KEY"}}
    oewsctl.config.write_text(yaml.safe_dump(data))
    oewsctl.cluster.delete("v1/secrets", "oews", "oews-api-secrets")
    result = oewsctl.ok("deploy")
    assert "Secret oews/oews-api-secrets: create it empty if missing" in result.stderr
    assert "fill it with `oewsctl secrets set NAME --from-stdin`" in result.stderr
    assert 'deployment "oews-api" successfully rolled out' in result.stderr
    secret = oewsctl.cluster.get("v1/secrets", "oews", "oews-api-secrets")
    assert secret is not None and not secret.get("data")


def test_azure_deploy_waits_for_eso_to_create_the_secret(oewsctl: Operator, monkeypatch: pytest.MonkeyPatch) -> None:
    oewsctl.cluster.delete("v1/secrets", "oews", "oews-api-secrets")
    monkeypatch.setattr("oewsctl.runbooks.deploy.SECRET_TIMEOUT", 1.0)
    result = oewsctl("deploy")
    assert result.returncode == 1
    assert "timed out after 1s waiting for External Secrets Operator to create Secret oews/oews-api-secrets" in result.stderr
    assert "oewsctl secrets status" in result.stderr
    assert oewsctl.cluster.list("apps/v1/deployments", "oews") == []


def test_deploy_after_an_eso_self_sync_rolls_once_then_is_a_noop(oewsctl: Operator) -> None:
    oewsctl.ok("deploy")
    secret = oewsctl.cluster.get("v1/secrets", "oews", "oews-api-secrets")
    annotations = oewsctl.deployment()["spec"]["template"]["metadata"]["annotations"]
    assert annotations["oews/secrets-sha256"] == secret_data_hash(secret["data"])
    oewsctl.cluster.put("v1/secrets", synced_secret({"OPENAI_API_KEY": "sk-2"}))  # ESO synced a new value on its own

    rolled = oewsctl.ok("deploy")
    assert "apply Deployment oews/oews-api — configured" in rolled.stderr
    new = oewsctl.cluster.get("v1/secrets", "oews", "oews-api-secrets")
    assert oewsctl.deployment()["spec"]["template"]["metadata"]["annotations"]["oews/secrets-sha256"] == secret_data_hash(new["data"])
    assert len(oewsctl.cluster.list("apps/v1/replicasets", "oews")) == 2
    again = json.loads(oewsctl.ok("--output", "json", "deploy").stdout)
    assert all(s["status"] == "unchanged" for s in again["steps"] if s["description"].startswith("apply "))
    assert len(oewsctl.cluster.list("apps/v1/replicasets", "oews")) == 2


def test_rollout_status_honours_timeout_and_fails_on_a_stalled_rollout(oewsctl: Operator) -> None:
    oewsctl.ok("deploy", "--image", f"{IMAGE}:1.4.0")
    oewsctl.cluster.deployments.stall_images.add(f"{IMAGE}:broken")
    oewsctl.cluster.deployments.stall_after = 5.0
    oewsctl("deploy", "--image", f"{IMAGE}:broken", "--no-rollback", "--no-wait")
    started = time.monotonic()
    waited = oewsctl("rollout", "status", "--timeout", "0.5")
    assert waited.returncode == 1 and time.monotonic() - started < 30
    assert "timed out after 0s waiting for the rollout" in waited.stderr
    oewsctl.cluster.deployments.stall_after = 0.1
    oewsctl.cluster.wait_for(lambda: "ProgressDeadlineExceeded" in json.dumps(oewsctl.deployment()["status"]))
    failed = oewsctl("rollout", "status", "--no-wait")
    assert failed.returncode == 1 and "exceeded its progress deadline" in failed.stdout
