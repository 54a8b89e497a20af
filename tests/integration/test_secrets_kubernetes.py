"""`secrets.provider: kubernetes` end to end (no cloud account), run as a real process: values
reach the Secret, pods roll once, and the value is in no process's command line while it runs.
Also `secrets bootstrap`: ESO's HelmChart and the service principal Secret."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.fixtures.eso import assert_no_leak, b64, deploy_secret_objects, pod_hash, replicasets, rolled_out, secret_data
from tests.fixtures.keyvault import CliResult, write_config
from tests.fixtures.kube import KubeCluster

NEW = "sk-test-DO-NOT-LEAK-k8s-provider-61"
OTHER = "second-value-DO-NOT-LEAK-88"
Cli = Callable[..., CliResult]


def _process_lines_with(needle: str) -> list[str]:
    """Command lines of running processes that contain ``needle``."""
    hits = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle in cmdline:
            hits.append(cmdline)
    return hits


def _run_watching_process_list(args: list[str], stdin: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run the real `oewsctl` entry point; scan every process's argv while it runs."""
    proc = subprocess.Popen([sys.executable, "-m", "oewsctl.cli", *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    assert proc.stdin is not None
    proc.stdin.write(stdin)
    proc.stdin.close()
    seen: list[str] = []
    while proc.poll() is None:
        seen += _process_lines_with(NEW)
        time.sleep(0.05)
    out, err = proc.stdout.read() if proc.stdout else "", proc.stderr.read() if proc.stderr else ""
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), seen


def test_kubernetes_provider_rotate_set_status_list(oewsctl: Cli, kube_cluster: KubeCluster, tmp_path: Path, oewsctl_state: Path) -> None:
    config = write_config(tmp_path / "oewsctl.yaml", kubeconfig=kube_cluster.kubeconfig, provider="kubernetes")
    deploy_secret_objects(kube_cluster, config, azure=False)
    kube_cluster.wait_for(lambda: rolled_out(kube_cluster))
    before = replicasets(kube_cluster)
    values = tmp_path / "new.env"
    values.write_text(f"OPENAI_API_KEY={NEW}\nAZURE_AI_API_KEY={OTHER}\n")

    done, seen = _run_watching_process_list(
        ["--config", str(config), "secrets", "rotate", "OPENAI_API_KEY", "AZURE_AI_API_KEY", "--from-file", str(values)], "")
    assert done.returncode == 0, done.stderr
    assert seen == []
    data = secret_data(kube_cluster)
    assert data == {"OPENAI_API_KEY": b64(NEW), "AZURE_AI_API_KEY": b64(OTHER)}
    assert len(replicasets(kube_cluster)) == len(before) + 1 and rolled_out(kube_cluster)
    assert "created the Secret" in done.stderr and "wait for the rollout" in done.stderr

    changed = oewsctl("--config", str(config), "secrets", "set", "AZURE_AI_API_KEY", "--from-stdin", stdin="v2")
    assert changed.code == 0, changed.err
    assert secret_data(kube_cluster)["AZURE_AI_API_KEY"] == b64("v2")
    assert len(replicasets(kube_cluster)) == len(before) + 1  # set never restarts
    status = oewsctl("--config", str(config), "secrets", "status")
    assert "pods started with an OLDER Secret" in status.out
    listing = oewsctl("--config", str(config), "secrets", "list")
    assert "AZURE_AI_API_KEY" in listing.out and "OPENAI_API_KEY" in listing.out

    piped = oewsctl("--config", str(config), "secrets", "rotate", "AZURE_AI_API_KEY", "--from-stdin", stdin="v2\n")
    assert piped.code == 0, piped.err
    assert "already holds these values" in piped.err
    assert len(replicasets(kube_cluster)) == len(before) + 2 and pod_hash(kube_cluster) is not None
    audit = (oewsctl_state / "audit.jsonl").read_text()
    assert_no_leak(kube_cluster, NEW, done.stdout, done.stderr, changed.err, status.out, listing.out, piped.err, audit)


def test_kubernetes_provider_without_deployment_says_deploy_first(oewsctl: Cli, kube_cluster: KubeCluster, tmp_path: Path) -> None:
    config = write_config(tmp_path / "oewsctl.yaml", kubeconfig=kube_cluster.kubeconfig, provider="kubernetes")
    result = oewsctl("--config", str(config), "secrets", "rotate", "OPENAI_API_KEY", "--from-stdin", stdin=NEW)
    assert result.code == 1
    assert "Deployment oews/oews-api not found" in result.err and "oewsctl deploy" in result.err
    assert kube_cluster.get("v1/secrets", "oews", "oews-api-secrets") is None
    bootstrap = oewsctl("--config", str(config), "secrets", "bootstrap", "--from-stdin", stdin=f"ClientSecret={NEW}\n")
    assert bootstrap.code == 2 and "secrets.provider is kubernetes" in bootstrap.err


def test_bootstrap_installs_eso_and_the_service_principal_secret(oewsctl: Cli, kube_cluster: KubeCluster, tmp_path: Path) -> None:
    config = write_config(tmp_path / "oewsctl.yaml", kubeconfig=kube_cluster.kubeconfig)
    stdin = f"ClientID=11111111-2222-3333-4444-555555555555\nClientSecret={NEW}\n"
    result = oewsctl("--config", str(config), "secrets", "bootstrap", "--from-stdin", stdin=stdin)
    assert result.code == 0, result.err
    chart = kube_cluster.get("helm.cattle.io/v1/helmcharts", "kube-system", "external-secrets")
    assert chart is not None and chart["spec"]["chart"] == "external-secrets" and chart["spec"]["targetNamespace"] == "external-secrets"
    sp = kube_cluster.get("v1/secrets", "oews", "azure-sp-credentials")
    assert sp is not None and sp["data"]["ClientSecret"] == b64(NEW)
    assert kube_cluster.get("v1/namespaces", None, "oews") is not None
    again = oewsctl("--config", str(config), "secrets", "bootstrap", "--from-stdin", stdin=stdin)
    assert again.code == 0 and "already holds these credentials" in again.err and "already installed" in again.err
    bad = oewsctl("--config", str(config), "secrets", "bootstrap", "--from-stdin", stdin=f"ClientSecret={NEW}\n")
    assert bad.code == 2 and "no NAME=value line for ClientID" in bad.err
    assert_no_leak(kube_cluster, NEW, result.out, result.err, again.err, bad.err)
