"""`oewsctl drill NAME|report` against the Kubernetes stand-in: real API pods, probes, endpoints lag, an ingress.

Each test deploys 2 replicas with the real `oewsctl deploy` (fixture ``standin``), runs one drill
through the ingress and checks what an operator reads: the exit code, the report (Markdown,
JSON, a PNG chart), zero failed requests, and that the cluster is as it was. One test removes
the preStop wait from the live Deployment and checks the drill then fails, naming the errors.
Short drills (a few seconds of load, 4 users) keep the module quick.
"""

from __future__ import annotations

import _thread
import io
import json
import shutil
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from oews_api.sample import SAMPLE_DB

from tests.fixtures.cli import CliRunner
from tests.fixtures.kube import EXAMPLE_CONFIG, KubeCluster
from tests.fixtures.standin import APP_NAMESPACE, StandIn

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
LOAD = ("--users", "2", "--settle", "1s", "--yes")  # --yes: the disruptive drills ask first
NOWHERE = "http://127.0.0.1:9"  # checked, never loaded: these tests stop before the load starts


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


def test_ctrl_c_mid_node_drain_uncordons_the_node_and_reports_interrupted(standin: StandIn, run_cli: CliRunner, oewsctl_state: Path) -> None:
    cordoned = threading.Event()

    def interrupt_once_cordoned() -> None:  # Ctrl-C while the node is cordoned and its pods are being evicted
        standin.kube.wait_for(lambda: ((standin.kube.get("v1/nodes", None, "machine2") or {}).get("spec") or {}).get("unschedulable"), timeout=60)
        cordoned.set()
        _thread.interrupt_main()

    threading.Thread(target=interrupt_once_cordoned, daemon=True).start()
    done = drill(run_cli, standin, "node-drain", "machine2")

    assert cordoned.is_set()
    assert done.returncode == 130, done.stderr
    _, report = only_report(oewsctl_state)
    assert report["outcome"] == "interrupted" and "interrupted (Ctrl-C)" in report["error"]
    node = standin.kube.get("v1/nodes", None, "machine2")
    assert node is not None and not node["spec"].get("unschedulable")  # never left cordoned
    assert any("uncordon the node" in line for line in report["restored"]), report["restored"]
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


def example_config(tmp_path: Path, **database: str) -> Path:
    """The example inventory (no reachable cluster: the runs below must not need one)."""
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    data["cluster"]["kubeconfig"] = str(tmp_path / "no-kubeconfig")
    data["database"].update(database)
    path = tmp_path / "oewsctl.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("args", [("pod-kill",), ("node-drain", "machine2"), ("node-loss", "machine2")])
def test_disruptive_drills_ask_first(args: tuple[str, ...], run_cli: CliRunner, tmp_path: Path, oewsctl_state: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    config = example_config(tmp_path)

    unattended = run_cli("--config", config, "drill", *args, "--url", NOWHERE, stdin="")
    assert unattended.returncode == 2
    assert f"drill {args[0]} " in unattended.stderr and "confirm with --yes (no terminal to ask on)" in unattended.stderr

    monkeypatch.setattr(sys, "stdin", Terminal("n\n"))
    declined = run_cli("--config", config, "drill", *args, "--url", NOWHERE)
    assert declined.returncode == 1 and "Go on?" in declined.stdout + declined.stderr

    planned = run_cli("--config", config, "--dry-run", "drill", *args, "--url", NOWHERE, stdin="")  # a dry run asks nothing
    assert planned.returncode == 0, planned.stderr
    assert f"Plan for drill {args[0]}" in planned.stderr
    assert not (oewsctl_state / "drills").exists()


def test_node_loss_refuses_the_server(run_cli: CliRunner, tmp_path: Path) -> None:
    done = run_cli("--config", example_config(tmp_path), "--yes", "drill", "node-loss", "machine1", "--url", NOWHERE)

    assert done.returncode == 2
    assert "node machine1 is the k3s server: losing it stops the Kubernetes API" in done.stderr
    assert "oewsctl drill node-loss machine2" in done.stderr


def test_db_swap_with_delivery_image_plans_the_image_update_and_rollback(run_cli: CliRunner, tmp_path: Path) -> None:
    other = tmp_path / "oews-next.db"
    shutil.copyfile(SAMPLE_DB, other)

    done = run_cli("--config", example_config(tmp_path, delivery="image"), "--dry-run", "drill", "db-swap", str(other), "--url", NOWHERE)

    assert done.returncode == 0, done.stderr
    plan = done.stderr
    assert "point deployment oews/oews-api's fetch-db init container at the new digest" in plan
    assert "fetch-db init container back at the newest earlier revision with another database" in plan
    assert "machine1" not in plan and "machine2" not in plan  # no SSH step to the DB nodes


def test_node_drain_warns_about_pods_that_cannot_move(kube_cluster: KubeCluster, tmp_path: Path) -> None:
    from oewsctl.configuration.loading import load_config
    from oewsctl.core.context import Options, RunContext
    from oewsctl.runbooks import drills, loadtest

    def pod(namespace: str, name: str, node: str, claim: str | None = None, **labels: str) -> dict[str, Any]:
        volumes = [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}] if claim else []
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"namespace": namespace, "name": name, "labels": labels},
                "spec": {"nodeName": node, "containers": [{"name": "c", "image": "x"}], "volumes": volumes}, "status": {"phase": "Running"}}

    kube_cluster.put("v1/persistentvolumeclaims", {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"namespace": "kube-system", "name": "traefik"},
                                                  "spec": {"storageClassName": "local-path", "volumeName": "pvc-1"}})
    kube_cluster.put("v1/persistentvolumeclaims", {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"namespace": "tools", "name": "cache"}, "spec": {"volumeName": "pv-host"}})
    kube_cluster.put("v1/persistentvolumes", {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv-host"}, "spec": {"hostPath": {"path": "/srv/cache"}}})
    kube_cluster.put("v1/persistentvolumeclaims", {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"namespace": "tools", "name": "shared"}, "spec": {"storageClassName": "nfs"}})
    kube_cluster.put("v1/pods", pod("kube-system", "traefik-7d9f", "machine2", "traefik", **{"app.kubernetes.io/name": "traefik"}))
    kube_cluster.put("v1/pods", pod("tools", "cache-0", "machine2", "cache"))
    kube_cluster.put("v1/pods", pod("tools", "shared-0", "machine2", "shared"))  # network storage: moves
    kube_cluster.put("v1/pods", pod("tools", "cache-1", "machine1", "cache"))  # another node
    config = load_config(kube_cluster.write_config(tmp_path / "oewsctl.yaml"))
    run = drills.DrillRun("node-drain", config, drills.BackgroundLoad(loadtest.LoadSpec(loadtest.Target(NOWHERE))))
    look = drills.node_drain_steps(run, "machine2").phases[0].steps[0]
    context = RunContext(config=config, options=Options())

    assert look.action is not None
    assert look.action(context) == "2 pod(s) that cannot move without an outage (see the report's note)"
    context.close()

    (note,) = run.notes
    assert note.startswith("draining machine2 may take the public site down until these run again: ")
    assert "kube-system/traefik-7d9f: the cluster's Traefik (one replica: the public entry point), volume traefik is local-path" in note
    assert "tools/cache-0: volume cache is a hostPath PersistentVolume" in note
    assert "shared-0" not in note and "cache-1" not in note
    report = drills.DrillReport(run, "passed", None, [])
    assert f"Note: {note}" in drills.markdown(report.as_dict())
