"""The Healthchecks pinger's own rules, against a real HTTP server on loopback: the server's
``Ping-Body-Limit`` is honoured, an unknown check (404) is not retried, no URL means no traffic;
and the inventory accepts only http(s) ping URLs."""

from __future__ import annotations

from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import yaml

from oewsctl.clients.healthchecks import Pinger, failure_line, pinged
from oewsctl.configuration.loading import parse_config
from oewsctl.core.errors import OewsctlError
from tests.conftest import DATA_DIR
from tests.fixtures.http_servers import serving


class Recorder(ThreadingHTTPServer):
    def __init__(self) -> None:
        self.seen: list[tuple[str, bytes]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                recorder.seen.append((self.path.split("?")[0], body))
                known = self.path.startswith("/check")
                self.send_response(200 if known else 404)
                self.send_header("Ping-Body-Limit", "20")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


@pytest.fixture()
def recorder() -> Iterator[Recorder]:
    with serving(Recorder()) as server:
        yield server


def test_the_server_body_limit_is_honoured_after_the_first_answer(recorder: Recorder) -> None:
    warnings: list[str] = []
    with pytest.raises(OewsctlError), pinged(recorder.url("/check/"), warnings.append):
        raise OewsctlError("copy failed: cannot read /opt/k3s/storage/oews.db on machine1 (no such file)\nsecond line")
    # the error's first line only, cut to the 20 bytes the server's first answer allowed
    assert recorder.seen == [("/check/start", b""), ("/check/fail", b"copy failed: cannot ")]
    assert warnings == []


def test_an_unknown_check_warns_once_without_retrying(recorder: Recorder) -> None:
    warnings: list[str] = []
    Pinger(recorder.url("/nope"), warnings.append).success()
    assert recorder.seen == [("/nope", b"")]
    assert warnings == [f"warning: ping (success) to 127.0.0.1:{recorder.server_address[1]} failed (HTTP 404); the job itself is not affected"]


def test_no_url_sends_nothing(recorder: Recorder) -> None:
    with pinged(None, lambda line: pytest.fail(line)) as pinger:
        pinger.fail("x")
    assert recorder.seen == []


def test_failure_lines_name_ctrl_c_and_sigterm() -> None:
    assert failure_line(KeyboardInterrupt()) == "interrupted (Ctrl-C)"
    assert failure_line(SystemExit(143)) == "exited with code 143 (terminated by SIGTERM)"
    assert failure_line(ValueError("one\ntwo")) == "one"


def test_ping_urls_in_the_inventory_must_be_http_urls() -> None:
    data = yaml.safe_load((DATA_DIR / "monitoring" / "oewsctl.yaml").read_text())
    data["backup"] = {"ping_url": "https://hc-ping.com/0f8e2a86-3f61-4a8e-9d53-5b0c2c7e1a11"}
    data["secrets"] = {"ping_url": "http://127.0.0.1:8000/ping/abc"}
    config = parse_config(yaml.safe_dump(data))
    assert config.backup.ping_url and config.secrets.ping_url
    data["backup"] = {"ping_url": "hc-ping.com/uuid"}
    with pytest.raises(OewsctlError, match=r"backup\.ping_url"):
        parse_config(yaml.safe_dump(data))
