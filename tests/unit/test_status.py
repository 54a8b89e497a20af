"""`oewsctl status`: one screen from the Kubernetes API emulator, a real TLS server, a backup
folder and Prometheus; every source that cannot be reached shows "unknown (why)" and the
command still succeeds with the rest."""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
import trustme
import yaml

from oewsctl.clients.kube import Kube
from oewsctl.configuration.loading import load_config
from oewsctl.core.errors import OewsctlError
from oewsctl.runbooks import status
from oewsctl.runbooks.render import render
from tests.conftest import DATA_DIR
from tests.fixtures.keyvault import CliResult
from tests.fixtures.kube import KubeCluster

Cli = Callable[..., CliResult]

CONFIG = DATA_DIR / "monitoring" / "oewsctl.yaml"
SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def node(name: str, ready: bool, arch: str, labels: dict[str, str]) -> dict[str, object]:
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **labels}},
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                   "nodeInfo": {"kubeletVersion": "v1.31.4+k3s1", "architecture": arch}},
    }


@pytest.fixture
def live(kube_cluster: KubeCluster, tmp_path: Path) -> tuple[KubeCluster, Path]:
    """A cluster with the three nodes (the Pi not Ready), the API deployed on the DB nodes, a backup."""
    kube_cluster.put("v1/nodes", node("machine1", True, "amd64", {"oews/db": "true"}))
    kube_cluster.put("v1/nodes", node("machine2", True, "amd64", {"oews/db": "true"}))
    kube_cluster.put("v1/nodes", node("raspberrypi", False, "arm64", {"oews/role": "monitoring"}))
    kube_cluster.health = {"status": "ok", "database": {"release": "May 2025", "sha256": SHA}}
    backups = tmp_path / "backups"
    for stamp in ("2026-11-24T03:00:00+00:00", "2026-11-25T03:00:00+00:00"):
        folder = backups / stamp[:10]
        folder.mkdir(parents=True)
        (folder / "manifest.json").write_text(json.dumps({"time": stamp}))
    (backups / "2026-11-26.tmp").mkdir()  # an unfinished backup (no manifest) is not a backup
    path = kube_cluster.write_config(tmp_path / "oewsctl.yaml", source=CONFIG)
    data = yaml.safe_load(path.read_text())
    data["backup"] = {"dest": str(backups)}
    path.write_text(yaml.safe_dump(data))
    config = load_config(path)
    kube = Kube.from_config(config)
    for obj in render(config):
        kube.apply(obj)
    pods = kube_cluster.wait_for(lambda: len(kube_cluster.list("v1/pods", "oews")) == 2 and kube_cluster.list("v1/pods", "oews"))
    for pod, where in zip(sorted(pods, key=lambda p: p["metadata"]["name"]), ("machine1", "machine2")):
        kube_cluster.put("v1/pods", {"metadata": {"namespace": "oews", "name": pod["metadata"]["name"]}, "spec": {"nodeName": where}})
    # the rollout controller marks pods ready a tick after creating them: wait for it, not just for the pods
    kube_cluster.wait_for(lambda: ((kube_cluster.get("apps/v1/deployments", "oews", "oews-api") or {}).get("status") or {}).get("readyReplicas") == 2)
    return kube_cluster, path


def test_status_shows_every_section_and_unknown_with_the_reason(live: tuple[KubeCluster, Path], oewsctl: Cli) -> None:
    _, config = live
    result = oewsctl("-c", str(config), "status", "--prometheus", "http://127.0.0.1:9")
    assert result.code == 0, result.err
    out = result.out
    assert "machine1: Ready, v1.31.4+k3s1, amd64, db=true" in out
    assert "raspberrypi: NotReady, v1.31.4+k3s1, arm64, role=monitoring" in out
    assert "2/2 replicas ready, image ghcr.io/example/oews-api" in out
    assert f"machine1: May 2025, sha256 {SHA[:12]}…" in out and f"machine2: May 2025, sha256 {SHA[:12]}…" in out
    assert "certificate: unknown (cannot resolve api.example.com)" in out
    assert "2026-11-25: 2026-11-25 03:00 UTC" in out
    assert "alerts: unknown (Prometheus at http://127.0.0.1:9 is not reachable" in out


def test_status_json_is_one_document_for_scripts(live: tuple[KubeCluster, Path], oewsctl: Cli) -> None:
    _, config = live
    result = oewsctl("-c", str(config), "-o", "json", "status", "--prometheus", "http://127.0.0.1:9")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert doc["api"] == {"status": "ok", "data": {"ready": 2, "desired": 2, "images": ["ghcr.io/example/oews-api"]}}
    assert {d["node"]: d["release"] for d in doc["database"]["data"]} == {"machine1": "May 2025", "machine2": "May 2025"}
    assert doc["certificate"]["status"] == "unknown" and doc["alerts"]["status"] == "unknown"


def test_no_cluster_still_shows_what_it_can(tmp_path: Path, oewsctl: Cli) -> None:
    data = yaml.safe_load(CONFIG.read_text())
    data["cluster"]["kubeconfig"] = str(tmp_path / "missing-kubeconfig")
    data["backup"] = {"dest": str(tmp_path / "nothing-here")}
    path = tmp_path / "oewsctl.yaml"
    path.write_text(yaml.safe_dump(data))
    result = oewsctl("-c", str(path), "status")
    assert result.code == 0, result.err
    for title in ("nodes", "api", "database", "alerts"):
        assert f"{title}: unknown (kubeconfig {tmp_path / 'missing-kubeconfig'} not found" in result.out
    assert f"last backup: unknown (no backup folder {tmp_path / 'nothing-here'} on this machine)" in result.out


def test_unreachable_api_server_is_reported_once_not_waited_for_per_section(tmp_path: Path) -> None:
    calls = []

    def dead() -> Kube:
        calls.append(1)
        raise OewsctlError("list Node: cannot reach the Kubernetes API at https://127.0.0.1:6443 (context 'home'): MaxRetryError")

    config = load_config(CONFIG)
    sections = {s.title: s for s in status.overview(config, dead, prometheus_url=None)}
    assert len(calls) == 1
    assert sections["api"].unknown == sections["nodes"].unknown == sections["alerts"].unknown
    assert "cannot reach the Kubernetes API" in (sections["database"].unknown or "")


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, ssl.SSLContext, datetime]]:
    """A real TLS server on 127.0.0.1 presenting a certificate for `localhost` (trustme CA)."""
    ca = trustme.CA()
    not_after = datetime(2027, 1, 10, 12, 0, tzinfo=timezone.utc)
    cert = ca.issue_cert("localhost", not_after=not_after)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            try:
                with server_ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (OSError, ssl.SSLError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield port, client_ctx, not_after
    listener.close()


def test_certificate_expiry_comes_from_the_served_certificate(tls_server: tuple[int, ssl.SSLContext, datetime]) -> None:
    port, trusted, not_after = tls_server
    assert status.certificate_expiry("localhost", port, trusted) == not_after
    with pytest.raises(OewsctlError) as info:  # not trusted by the system store: said plainly, not a traceback
        status.certificate_expiry("localhost", port)
    assert info.value.message == f"localhost:{port}: unable to get local issuer certificate"


def test_database_release_age() -> None:
    assert status.release_age_months("May 2025", date(2026, 8, 1)) == 15
    assert status.release_age_months("May 2024", date(2026, 8, 1)) == 27
    assert status.release_age_months("not a release") is None
