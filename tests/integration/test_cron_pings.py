"""The dead-man's switch: `backup run` and `secrets status --reconcile` ping a Healthchecks-style URL.

A real HTTP server on loopback records every ping (method, path, rid, body). Each run sends
``/start`` then exactly one of the success URL or ``/fail`` (with the error line, nothing else),
all with the same ``rid``; Ctrl-C (SIGINT to a real `oewsctl backup run` process) sends ``/fail``
too; a ping server that is down or slow changes nothing about the backup's outcome.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from oewsctl.core.audit import audit_path
from tests.fixtures.dbnodes import CliRun, DbCluster, DbFiles
from tests.fixtures.http_servers import serving
from tests.fixtures.keyvault import CliResult

CHECK = "/ping/0f8e2a86-3f61-4a8e-9d53-5b0c2c7e1a11"


@dataclass(frozen=True)
class Ping:
    method: str
    kind: str  # start | success | fail
    rid: str
    body: str


class PingServer(ThreadingHTTPServer):
    """Healthchecks' ping API on loopback: 200 OK for the check's URLs, 404 for any other."""

    def __init__(self, delay: float = 0.0) -> None:
        self.pings: list[Ping] = []
        self.delay = delay
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                url = urlsplit(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                kind = {CHECK: "success", f"{CHECK}/start": "start", f"{CHECK}/fail": "fail"}.get(url.path)
                time.sleep(recorder.delay)
                if kind is not None:
                    recorder.pings.append(Ping(self.command, kind, parse_qs(url.query).get("rid", [""])[0], body))
                self.send_response(200 if kind else 404)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"OK")

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out (the slow-server test) is expected, not a test failure

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{CHECK}"

    def runs(self) -> list[list[str]]:
        """The pings grouped by rid, in arrival order: [["start", "success"], ...]."""
        grouped: dict[str, list[str]] = {}
        for ping in self.pings:
            grouped.setdefault(ping.rid, []).append(ping.kind)
        return list(grouped.values())


@pytest.fixture()
def pings() -> Iterator[PingServer]:
    with serving(PingServer()) as server:
        yield server


def set_backup_ping(config: Path, url: str) -> None:
    data = yaml.safe_load(config.read_text())
    data.setdefault("backup", {})["ping_url"] = url
    config.write_text(yaml.safe_dump(data, sort_keys=False))


def test_backup_pings_start_then_fail_or_success_and_fail_on_ctrl_c(
    db_cluster: DbCluster, big_db: Path, cli: CliRun, pings: PingServer, tmp_path: Path
) -> None:
    dest = tmp_path / "backups"
    set_backup_ping(db_cluster.config, pings.url)

    failed = cli(db_cluster.config, "backup", "run", "--dest", dest)  # no database on the nodes yet
    assert failed.returncode == 1
    assert pings.runs() == [["start", "fail"]]
    fail = pings.pings[-1]
    assert fail.method == "POST" and "cannot read /opt/k3s/storage/oews.db" in fail.body and "\n" not in fail.body
    uuid.UUID(fail.rid)  # one canonical UUID per run pairs start and end

    assert cli(db_cluster.config, "db", "push", big_db).returncode == 0
    run = subprocess.Popen([sys.executable, "-m", "oewsctl.cli", "--config", str(db_cluster.config), "backup", "run", "--dest", str(dest)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "TERM": "dumb"})
    deadline = time.monotonic() + 60
    while run.poll() is None and time.monotonic() < deadline and not list(dest.glob(".*.partial/*")):
        time.sleep(0.005)
    assert run.poll() is None, "the backup finished before it could be interrupted"
    run.send_signal(signal.SIGINT)
    run.communicate(timeout=30)
    assert run.returncode != 0
    assert pings.runs()[1:] == [["start", "fail"]]
    assert pings.pings[-1].body == "interrupted (Ctrl-C)"

    done = cli(db_cluster.config, "backup", "run", "--dest", dest)
    assert done.returncode == 0, done.stderr
    assert pings.runs()[2:] == [["start", "success"]]
    assert pings.pings[-1].body == ""
    assert len({p.rid for p in pings.pings}) == 3


def test_a_dead_or_slow_ping_server_never_fails_or_holds_up_the_backup(
    db_cluster: DbCluster, db_files: DbFiles, cli: CliRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from oewsctl.clients import healthchecks

    assert cli(db_cluster.config, "db", "push", db_files.new).returncode == 0
    dead = "http://127.0.0.1:9/ping/abc"  # nothing listens on the discard port
    done = cli(db_cluster.config, "backup", "run", "--dest", tmp_path / "a", "--ping-url", dead, "--quiet")
    assert done.returncode == 0, done.stderr
    assert "warning: ping/start to 127.0.0.1:9 failed (ConnectError); the job itself is not affected" in done.stderr
    assert "/ping/abc" not in done.stderr  # the check's key stays out of logs
    (audited,) = [json.loads(line) for line in audit_path().read_text().splitlines() if '"backup run"' in line]
    assert audited["argv"][-3:] == ["--ping-url", "<redacted>", "--quiet"] and "/ping/abc" not in json.dumps(audited)

    monkeypatch.setattr(healthchecks, "PING_TIMEOUT", 0.3)
    with serving(PingServer(delay=5)) as slow:
        started = time.monotonic()
        late = cli(db_cluster.config, "backup", "run", "--dest", tmp_path / "b", "--ping-url", slow.url)
        took = time.monotonic() - started
    assert late.returncode == 0, late.stderr
    assert "ReadTimeout" in late.stderr
    assert took < 20


def test_secrets_reconcile_pings_its_own_check(oewsctl: Any, azure: Path, pings: PingServer) -> None:
    ok: CliResult = oewsctl("--config", str(azure), "--yes", "secrets", "status", "--reconcile", "--ping-url", pings.url)
    assert ok.code == 0, ok.err
    assert pings.runs() == [["start", "success"]]
    plain = oewsctl("--config", str(azure), "secrets", "status", "--ping-url", pings.url)
    assert plain.code == 0 and len(pings.pings) == 2  # only the cron form (--reconcile) pings


def test_secrets_reconcile_failure_sends_only_the_error_line(
    oewsctl: Any, kube_cluster: Any, pings: PingServer, tmp_path: Path
) -> None:
    config = kube_cluster.write_config(tmp_path / "oewsctl.yaml")
    data = yaml.safe_load(config.read_text())
    data["secrets"]["ping_url"] = pings.url
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    failed: CliResult = oewsctl("--config", str(config), "--yes", "secrets", "status", "--reconcile")
    assert failed.code == 1
    assert pings.runs() == [["start", "fail"]]
    assert pings.pings[-1].body == "ExternalSecret oews/oews-api-secrets not found"
