"""`oewsctl ui install | token | open` and `oewsctl port-forward` against the Kubernetes API emulator.

The port-forward runs as a real `oewsctl` process: bytes go from an HTTP client to its local
listener, over the API's port-forward WebSocket (tests/fixtures/kube_front.py speaks the API
server's channel protocol) to a real HTTP server standing in for the pod, and back; Ctrl-C
(SIGINT) ends it with exit 0.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from oewsctl.core.audit import audit_path
from tests.conftest import DATA_DIR
from tests.fixtures.cli import CliRunner
from tests.fixtures.http_servers import serving
from tests.fixtures.kube import KubeCluster
from tests.fixtures.kube_front import KubeFront

HEADLAMP_LABELS = {"app.kubernetes.io/name": "headlamp", "app.kubernetes.io/instance": "headlamp"}


class PodServer(ThreadingHTTPServer):
    """A real HTTP server standing in for a pod's port: GET answers its name, POST echoes the SHA-256 of the body."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.paths: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                server.paths.append(self.path)
                self._send(f"<title>{server.name}</title> {self.path}".encode())

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                self._send(hashlib.sha256(body).hexdigest().encode())

            def _send(self, body: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        server = self
        super().__init__(("127.0.0.1", 0), Handler)


@pytest.fixture()
def pod_server() -> Iterator[PodServer]:
    with serving(PodServer("Headlamp")) as server:
        yield server


def config_for(cluster: KubeCluster, tmp_path: Path) -> Path:
    return cluster.write_config(tmp_path / "oewsctl.yaml", source=DATA_DIR / "monitoring" / "oewsctl.yaml")


def add_pod(cluster: KubeCluster, namespace: str, name: str, labels: dict[str, str], port: int, *, port_name: str | None = None, ready: bool = True) -> None:
    container_port = {"containerPort": port, **({"name": port_name} if port_name else {})}
    cluster.put("v1/pods", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"containers": [{"name": "main", "image": "example", "ports": [container_port]}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    })


def add_service(cluster: KubeCluster, namespace: str, name: str, selector: dict[str, str], port: int, target_port: int | str) -> None:
    cluster.put("v1/services", {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": selector, "ports": [{"name": "http", "port": port, "targetPort": target_port}]},
    })


def test_ui_install_binds_view_by_default_and_admin_only_when_asked(kube_front: KubeFront, run_cli: CliRunner, tmp_path: Path) -> None:
    cluster = kube_front.cluster
    cluster.put("v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "raspberrypi", "labels": {}}})
    config = config_for(cluster, tmp_path)

    done = run_cli("-c", config, "ui", "install")
    assert done.returncode == 0, done.stderr
    chart = cluster.get("helm.cattle.io/v1/helmcharts", "kube-system", "headlamp")
    assert chart is not None and chart["spec"]["version"] == "0.45.0" and chart["spec"]["chart"] == "headlamp"
    assert yaml.safe_load(chart["spec"]["valuesContent"])["clusterRoleBinding"] == {"create": False}
    binding = cluster.get("rbac.authorization.k8s.io/v1/clusterrolebindings", None, "headlamp-viewer")
    assert binding is not None and binding["roleRef"]["name"] == "view"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "headlamp-viewer", "namespace": "monitoring"}]
    assert cluster.get("v1/serviceaccounts", "monitoring", "headlamp-viewer") is not None
    assert cluster.get("rbac.authorization.k8s.io/v1/clusterrolebindings", None, "headlamp-admin") is None
    assert cluster.get("v1/nodes", None, "raspberrypi")["metadata"]["labels"]["oews/role"] == "monitoring"

    admin = run_cli("-c", config, "ui", "install", "--admin")
    assert admin.returncode == 0, admin.stderr
    assert "WARNING: --admin binds ServiceAccount monitoring/headlamp-admin to cluster-admin" in admin.stderr
    assert cluster.get("rbac.authorization.k8s.io/v1/clusterrolebindings", None, "headlamp-admin")["roleRef"]["name"] == "cluster-admin"
    admin_token = run_cli("-c", config, "ui", "token", "--admin", "--ttl", "30m")
    assert admin_token.returncode == 0 and "(cluster-admin)" in admin_token.stderr
    assert kube_front.token_requests[-1]["name"] == "headlamp-admin"
    assert kube_front.token_requests[-1]["body"]["spec"]["expirationSeconds"] == 1800

    back = run_cli("-c", config, "ui", "install")
    assert back.returncode == 0, back.stderr
    assert cluster.get("rbac.authorization.k8s.io/v1/clusterrolebindings", None, "headlamp-admin") is None
    assert cluster.get("v1/serviceaccounts", "monitoring", "headlamp-admin") is None
    assert cluster.get("rbac.authorization.k8s.io/v1/clusterrolebindings", None, "headlamp-viewer") is not None


def test_ui_token_asks_token_request_for_the_ttl_and_stores_nothing(kube_front: KubeFront, run_cli: CliRunner, tmp_path: Path) -> None:
    cluster = kube_front.cluster
    config = config_for(cluster, tmp_path)
    missing = run_cli("-c", config, "ui", "token")
    assert missing.returncode == 1 and "headlamp-viewer: the ServiceAccount does not exist" in missing.stderr
    assert "oewsctl ui install" in missing.stderr

    cluster.put("v1/serviceaccounts", {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "headlamp-viewer", "namespace": "monitoring"}})
    issued = run_cli("-c", config, "ui", "token", "--ttl", "2h")
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip()
    assert token.startswith("eyJ.test.") and "\n" not in token  # stdout is the token alone, ready to paste
    assert token not in issued.stderr and "token for monitoring/headlamp-viewer (view), expires" in issued.stderr
    request = kube_front.token_requests[-1]
    assert (request["namespace"], request["name"]) == ("monitoring", "headlamp-viewer")
    assert request["body"] == {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"audiences": [], "expirationSeconds": 7200}}

    audit = [json.loads(line) for line in audit_path().read_text().splitlines()]
    assert [(a["command"], a["result"]) for a in audit[-2:]] == [
        ("ui token for monitoring/headlamp-viewer (view), valid 3600s", "failed"),
        ("ui token for monitoring/headlamp-viewer (view), valid 7200s", "ok")]  # who got a token, for how long
    assert token not in audit_path().read_text()

    default = run_cli("-c", config, "-o", "json", "ui", "token")
    assert default.returncode == 0 and kube_front.token_requests[-1]["body"]["spec"]["expirationSeconds"] == 3600
    answer = json.loads(default.stdout)
    assert answer["service_account"] == "headlamp-viewer" and answer["cluster_role"] == "view" and answer["token"].startswith("eyJ.test.")
    assert answer["expires"].endswith("+00:00")

    asked = len(kube_front.token_requests)
    planned = run_cli("-c", config, "--dry-run", "ui", "token", "--admin")
    assert planned.returncode == 0 and planned.stdout == ""
    assert "would ask the TokenRequest API for a token of monitoring/headlamp-admin (cluster-admin) valid 3600s" in planned.stderr
    assert len(kube_front.token_requests) == asked

    asked = len(kube_front.token_requests)
    short = run_cli("-c", config, "ui", "token", "--ttl", "5m")
    assert short.returncode == 2 and "shorter than 10 minutes" in short.stderr
    assert len(kube_front.token_requests) == asked  # refused before asking the API
    assert cluster.list("v1/secrets", "monitoring") == []  # never a long-lived token Secret


def _start(config: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    """A real `oewsctl` process forwarding; returns it and the URL it printed."""
    process = subprocess.Popen([sys.executable, "-m", "oewsctl.cli", "-c", str(config), *args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "TERM": "dumb"})
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    if not url:
        process.kill()
        pytest.fail(f"oewsctl printed no URL: {process.communicate(timeout=10)[1]}")
    return process, url


def _stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    return err


def test_ui_open_carries_real_bytes_through_the_api_port_forward(kube_front: KubeFront, pod_server: PodServer, tmp_path: Path) -> None:
    cluster = kube_front.cluster
    add_service(cluster, "monitoring", "headlamp", HEADLAMP_LABELS, 80, "http")
    add_pod(cluster, "monitoring", "headlamp-5d9c-old", HEADLAMP_LABELS, 4466, port_name="http", ready=False)
    add_pod(cluster, "monitoring", "headlamp-5d9c-x7k2", HEADLAMP_LABELS, 4466, port_name="http")
    kube_front.backends[("monitoring", "headlamp-5d9c-x7k2", 4466)] = pod_server.server_address[:2]
    process, url = _start(config_for(cluster, tmp_path), "ui", "open", "--port", "0")
    try:
        assert url.startswith("http://127.0.0.1:") and url.endswith("/")
        payload = os.urandom(1 << 20)  # 1 MiB up, its hash back
        with concurrent.futures.ThreadPoolExecutor(4) as pool:  # a browser opens several connections at once
            pages = list(pool.map(lambda i: httpx.get(f"{url}page{i}", timeout=10), range(4)))
        echoed = httpx.post(url, content=payload, timeout=20)
    finally:
        err = _stop(process)
    assert [p.status_code for p in pages] == [200] * 4
    assert {p.text for p in pages} == {f"<title>Headlamp</title> /page{i}" for i in range(4)}
    assert echoed.text == hashlib.sha256(payload).hexdigest()
    assert set(kube_front.forwards) == {("monitoring", "headlamp-5d9c-x7k2", 4466)}  # the ready pod, its named port
    assert len(kube_front.forwards) == 5  # one WebSocket per connection
    assert "log in with a token from `oewsctl ui token`" in err and "stopped" in err


def test_port_forward_api_numeric_target_port_and_errors(kube_front: KubeFront, pod_server: PodServer, run_cli: CliRunner, tmp_path: Path) -> None:
    cluster = kube_front.cluster
    config = config_for(cluster, tmp_path)
    absent = run_cli("-c", config, "port-forward", "grafana", "--port", "0")
    assert absent.returncode == 1 and "Service monitoring/kube-prometheus-stack-grafana does not exist" in absent.stderr
    assert "oewsctl monitoring install" in absent.stderr
    unknown = run_cli("-c", config, "port-forward", "dashboard")
    assert unknown.returncode == 2 and "unknown port-forward target 'dashboard'" in unknown.stderr

    selector = {"app.kubernetes.io/name": "oews-api"}
    add_service(cluster, "oews", "oews-api", selector, 80, 8000)
    not_ready = run_cli("-c", config, "port-forward", "api", "--port", "0")
    assert not_ready.returncode == 1 and "no ready pod behind Service oews/oews-api" in not_ready.stderr

    add_pod(cluster, "oews", "oews-api-1", selector, 8000)
    process, url = _start(config, "port-forward", "api", "--port", "0")
    try:
        with pytest.raises(httpx.RemoteProtocolError):  # no backend for this pod: the API reports the refused connection
            httpx.get(url, timeout=10)
        kube_front.backends[("oews", "oews-api-1", 8000)] = pod_server.server_address[:2]
        health = httpx.get(url, timeout=10)
    finally:
        err = _stop(process)
    assert url.endswith("/health")
    assert health.status_code == 200 and health.text == "<title>Headlamp</title> /health"
    assert "oews/oews-api-1 port 8000: error forwarding port 8000 to pod oews-api-1: connection refused" in err
