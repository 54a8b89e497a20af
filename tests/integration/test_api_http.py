"""The service over real HTTP: `python -m oews_api` per environment variables, SIGTERM draining, `oewsctl serve`."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.fixtures.api import ServerFactory, free_port


def test_python_m_oews_api_serves_per_environment(api_server: ServerFactory, api_db: Path) -> None:
    _, url = api_server(SQLITE_DB_PATH=str(api_db), CORS_ORIGINS="https://a.example,https://b.example")
    health = httpx.get(url + "/health").json()
    assert health["database"]["sha256"] == hashlib.sha256(api_db.read_bytes()).hexdigest()
    answer = httpx.post(url + "/api/v1/query", json={"query": "how many customer service reps work in Texas?"}).json()["answer"]
    assert "337,170" in answer
    preflight = httpx.options(url + "/api/v1/query", headers={"origin": "https://b.example", "access-control-request-method": "POST"})
    assert preflight.headers["access-control-allow-origin"] == "https://b.example"
    assert [httpx.get(url + path).status_code for path in ("/docs", "/redoc", "/openapi.json")] == [404, 404, 404]  # off unless PUBLIC_DOCS


def test_missing_database_keeps_serving_503_so_probes_see_it(api_server: ServerFactory, tmp_path: Path) -> None:
    _, url = api_server(SQLITE_DB_PATH=str(tmp_path / "gone.db"))
    response = httpx.get(url + "/health")
    assert response.status_code == 503
    assert "gone.db does not exist" in response.json()["detail"]


def test_sigterm_lets_the_in_flight_request_finish(api_server: ServerFactory, api_db: Path) -> None:
    proc, url = api_server(SQLITE_DB_PATH=str(api_db))
    port = int(url.rsplit(":", 1)[1])
    body = json.dumps({"query": "median salary for web developers in Seattle"}).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        head = f"POST /api/v1/query HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        conn.sendall(head.encode() + body[:10])  # the request is now in flight, its body half sent
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        assert _stops_accepting(url), "the server kept accepting new connections after SIGTERM"
        conn.sendall(body[10:])
        response = b""
        while chunk := conn.recv(65536):
            response += chunk
    assert response.startswith(b"HTTP/1.1 200"), response[:200]
    assert b"$130,440" in response
    assert proc.wait(timeout=30) in (0, -signal.SIGTERM)  # uvicorn re-raises SIGTERM after a clean shutdown


def _stops_accepting(url: str, seconds: float = 20) -> bool:
    """True once new connections are refused (shutdown began), polling for up to ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/health", timeout=2)
        except httpx.TransportError:
            return True
        time.sleep(0.2)
    return False


def test_oewsctl_serve_serves_the_bundled_sample_by_default(tmp_path: Path) -> None:
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "oewsctl.cli", "serve", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).json()
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
                time.sleep(0.2)
        assert health["database"]["path"] == "oews-sample.db"
        assert health["database"]["release"] == "May 2025"
        assert httpx.get(f"http://127.0.0.1:{port}/docs", timeout=5).status_code == 200  # locally the docs are on
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.parametrize("content", [None, b"not a database at all"])
def test_oewsctl_serve_refuses_a_missing_or_bad_file_with_a_hint(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "oews.db"
    if content is not None:
        path.write_bytes(content)
    result = subprocess.run(
        [sys.executable, "-m", "oewsctl.cli", "serve", "--db", str(path), "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert result.returncode == 2
    assert f"error: {path}" in result.stderr or f"error: database file {path}" in result.stderr
    assert "hint: build one with `oewsctl db build" in result.stderr


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_honours_the_settings_it_is_given_not_the_environment(tmp_path: Path, api_db: Path, workers: int) -> None:
    port = free_port()
    program = (
        "from pathlib import Path; from oews_api.__main__ import serve; from oews_api.settings import Settings; "
        f"serve(Settings(sqlite_db_path=Path({str(api_db)!r}), api_port={port}, api_workers={workers}, "
        "cors_origins=['https://given.example'], log_level='warning'))"
    )
    environment = {**os.environ, "SQLITE_DB_PATH": str(tmp_path / "elsewhere.db"), "CORS_ORIGINS": "https://env.example"}
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-c", program], env=environment, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                health = httpx.get(url + "/health", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
                time.sleep(0.2)
        assert health.status_code == 200, health.text
        assert health.json()["database"]["path"] == api_db.name  # the file by name only: /health is public
        assert health.json()["database"]["sha256"] == hashlib.sha256(api_db.read_bytes()).hexdigest()
        preflight = httpx.options(url + "/api/v1/query", headers={"origin": "https://given.example", "access-control-request-method": "POST"})
        assert preflight.headers["access-control-allow-origin"] == "https://given.example"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
