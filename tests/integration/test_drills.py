"""`oewsctl drill NAME|report` against the Kubernetes stand-in: real API pods, probes, endpoints lag, an ingress.

Each test deploys 2 replicas with the real `oewsctl deploy` (fixture ``standin``), runs one drill
through the ingress and checks what an operator reads: the exit code, the report (Markdown,
JSON, a PNG chart), zero failed requests, and that the cluster is as it was. One test removes
the preStop wait from the live Deployment and checks the drill then fails, naming the errors.
Short drills (a few seconds of load, 4 users) keep the module quick.
"""

from __future__ import annotations

import _thread
import json
import threading
from pathlib import Path
from typing import Any


from tests.fixtures.cli import CliRunner
from tests.fixtures.standin import APP_NAMESPACE, StandIn

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
LOAD = ("--users", "2", "--settle", "1s")


def drill(run_cli: CliRunner, standin: StandIn, *args: str) -> Any:
    assert standin.config is not None
    return run_cli("--config", standin.config, "drill", *args, "--url", standin.url, *LOAD)


def only_report(state: Path) -> tuple[Path, dict[str, Any]]:
    folders = sorted((state / "drills").iterdir())
    assert len(folders) == 1, folders
    return folders[0], json.loads((folders[0] / "report.json").read_text())


def assert_valid_png(path: Path) -> None:
    from matplotlib import image

    assert path.read_bytes()[:8] == PNG_MAGIC
    height, width, _ = image.imread(path).shape
    assert width >= 600 and height >= 400


def template(standin: StandIn) -> dict[str, Any]:
    deployment = standin.kube.get("apps/v1/deployments", APP_NAMESPACE, "oews-api")
    assert deployment is not None
    return deployment["spec"]["template"]


def test_rollout_drill_drops_no_request_and_restores_the_template(standin: StandIn, run_cli: CliRunner, oewsctl_state: Path) -> None:
    before = template(standin)

    done = drill(run_cli, standin, "rollout")

    assert done.returncode == 0, done.stderr
    assert "drill rollout: passed" in done.stdout
    folder, report = only_report(oewsctl_state)
    summary = report["load"]["summary"]
    assert summary["failed"] == 0 and summary["requests"] > 100
    assert [p["name"] for p in report["phases"]] == ["new revision", "rollout undo"]
    assert all(p["recovery_seconds"] > 0 for p in report["phases"])
    assert {c["name"]: c["ok"] for c in report["checks"]} == {"p95 latency": True, "failed requests": True, "pod restarts": True}
    assert "| new revision |" in (folder / "report.md").read_text()
    assert_valid_png(folder / "latency.png")
    assert template(standin) == before
    assert standin.restarts() == 0

    listed = run_cli("-o", "json", "drill", "report")
    assert [(r["drill"], r["outcome"], r["failed_requests"]) for r in json.loads(listed.stdout)] == [("rollout", "passed", 0)]


def test_pod_kill_drill_moves_traffic_to_the_other_replica(standin: StandIn, run_cli: CliRunner, oewsctl_state: Path) -> None:
    victim = sorted(p["metadata"]["name"] for p in standin.pods())[0]

    assert standin.config is not None
    done = run_cli("--config", standin.config, "-o", "json", "drill", "pod-kill", "--pod", victim, "--url", standin.url, *LOAD)

    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)  # -o json: the report on stdout, progress on stderr
    folder, report = only_report(oewsctl_state)
    assert printed["report"] == str(folder) and printed["outcome"] == report["outcome"] == "passed"
    assert report["load"]["summary"]["failed"] == 0
    assert report["steps"][2]["message"].startswith(f"deleted pod {victim}")
    assert victim not in {p["metadata"]["name"] for p in standin.pods()}
    assert len(standin.ready_pods()) == 2


def test_node_drain_waits_for_the_pdb_and_uncordons(standin: StandIn, run_cli: CliRunner, oewsctl_state: Path) -> None:
    # both replicas on machine2 (as after a pod kill): the PodDisruptionBudget (minAvailable 1) lets one go at a time
    standin.kube.put("v1/nodes", {"metadata": {"name": "machine1"}, "spec": {"unschedulable": True}})
    for pod in standin.pods():
        if pod["spec"]["nodeName"] == "machine1":
            standin.kube.delete("v1/pods", APP_NAMESPACE, pod["metadata"]["name"])
    standin.kube.wait_for(lambda: standin.settled() and {p["spec"]["nodeName"] for p in standin.pods()} == {"machine2"}, timeout=60)
    standin.kube.put("v1/nodes", {"metadata": {"name": "machine1"}, "spec": {"unschedulable": None}})

    done = drill(run_cli, standin, "node-drain", "machine2")

    assert done.returncode == 0, done.stderr
    assert "eviction refused by its PodDisruptionBudget, retrying" in done.stderr
    _, report = only_report(oewsctl_state)
    assert report["outcome"] == "passed" and report["load"]["summary"]["failed"] == 0
    drained = next(s for s in report["steps"] if s["node"] == "machine2" and s["description"].startswith("cordon the node"))
    assert drained["message"] == "2 pod(s) evicted from machine2"
    assert set(report["placement"]["after"].values()) == {"machine1"}
    assert any("every API pod now runs on machine1" in note for note in report["notes"])
    node = standin.kube.get("v1/nodes", None, "machine2")
    assert node is not None and not node["spec"].get("unschedulable")
    assert len(standin.ready_pods()) == 2


def test_without_the_prestop_wait_the_drill_catches_failed_requests(standin: StandIn, run_cli: CliRunner, oewsctl_state: Path) -> None:
    container = {k: v for k, v in template(standin)["spec"]["containers"][0].items() if k != "lifecycle"}
    standin.kube.put("apps/v1/deployments", {"metadata": {"name": "oews-api", "namespace": APP_NAMESPACE},
                                             "spec": {"template": {"spec": {"containers": [container]}}}})
    standin.kube.wait_for(lambda: all("lifecycle" not in p["spec"]["containers"][0] for p in standin.pods()) and standin.settled(), timeout=60)

    done = drill(run_cli, standin, "pod-kill")

    assert done.returncode == 1
    assert "drill pod-kill failed: failed requests" in done.stderr
    folder, report = only_report(oewsctl_state)
    summary = report["load"]["summary"]
    assert report["outcome"] == "failed" and summary["failed"] > 0
    assert summary["first_error"]["error"] in ("HTTP 502", "HTTP 503")
    assert "| failed requests | 0 |" in (folder / "report.md").read_text() and "FAIL" in (folder / "report.md").read_text()


def test_ctrl_c_mid_drill_restores_the_template_and_reports_interrupted(standin: StandIn, run_cli: CliRunner, oewsctl_state: Path) -> None:
    before = template(standin)
    changed = threading.Event()

    def interrupt_once_changed() -> None:  # what Ctrl-C does: KeyboardInterrupt in the main thread
        standin.kube.wait_for(lambda: template(standin) != before, timeout=60)
        changed.set()
        _thread.interrupt_main()

    threading.Thread(target=interrupt_once_changed, daemon=True).start()
    done = drill(run_cli, standin, "rollout")

    assert changed.is_set()
    assert done.returncode == 130, done.stderr
    folder, report = only_report(oewsctl_state)
    assert report["outcome"] == "interrupted" and "interrupted (Ctrl-C)" in report["error"]
    assert any("pod template" in line and "restored" in line for line in report["restored"]), report["restored"]
    assert "Restored after the interruption" in (folder / "report.md").read_text()
    assert template(standin) == before
    standin.wait_settled()


def test_bad_input_unknown_node_lock_held_unreachable_url(standin: StandIn, run_cli: CliRunner, oewsctl_state: Path) -> None:
    assert standin.config is not None
    unknown = drill(run_cli, standin, "node-drain", "machine9")
    assert unknown.returncode == 2
    assert "unknown node 'machine9': the inventory has machine1, machine2, raspberrypi" in unknown.stderr

    lock = oewsctl_state / "home.lock"
    lock.write_text(json.dumps({"holder": "ops@laptop", "pid": 4242, "command": "deploy", "started": "2026-12-01T21:00:00+0000"}))
    held = drill(run_cli, standin, "pod-kill")
    assert held.returncode == 3
    assert "locked by ops@laptop (pid 4242) running `oewsctl deploy`" in held.stderr
    lock.unlink()
    assert len(standin.pods()) == 2 and not (oewsctl_state / "drills").exists()

    from tests.fixtures.api import free_port

    nowhere = run_cli("--config", standin.config, "drill", "pod-kill", "--url", f"http://127.0.0.1:{free_port()}", *LOAD)
    assert nowhere.returncode == 1
    assert "does not answer (connect error" in nowhere.stderr
    assert len(standin.ready_pods()) == 2


def test_secret_rotation_drill_rolls_the_new_value_out_without_errors(standin: StandIn, run_cli: CliRunner, oewsctl_state: Path) -> None:
    assert standin.config is not None
    done = run_cli("--config", standin.config, "drill", "secret-rotation", "EXAMPLE_API_TOKEN", "--from-stdin",
                   "--url", standin.url, *LOAD, stdin="rotated-token-1\n")

    assert done.returncode == 0, done.stderr
    _, report = only_report(oewsctl_state)
    assert report["outcome"] == "passed" and report["load"]["summary"]["failed"] == 0
    assert "rotated-token-1" not in done.stdout + done.stderr + json.dumps(report)
    serving = {c.name: c.env.get("EXAMPLE_API_TOKEN") for c in standin.kubelet.containers.values() if c.running()}
    assert sorted(serving) == sorted(p["metadata"]["name"] for p in standin.pods())
    assert set(serving.values()) == {"rotated-token-1"}
