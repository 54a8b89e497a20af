"""The Healthchecks pinger's own rules, against a real HTTP server on loopback: the server's
``Ping-Body-Limit`` is honoured, an unknown check (404) is not retried, no URL means no traffic,
a URL httpx cannot use is a warning (never a crash) and warnings name only host and port;
the inventory and ``--ping-url`` accept only usable http(s) ping URLs (exit 2, URL not echoed)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import yaml

from oewsctl.clients.healthchecks import Pinger, failure_line, pinged
from oewsctl.configuration.loading import parse_config
from oewsctl.core.errors import OewsctlError
from tests.conftest import DATA_DIR
from tests.fixtures.http_servers import serving
from tests.fixtures.keyvault import CliResult

MALFORMED = "http://[::1/ping/0f8e2a86-3f61-4a8e-9d53-5b0c2c7e1a11"  # the IPv6 bracket never closes


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
    data["backup"] = {"ping_url": "http://[::1]:8000/ping/abc"}
    assert parse_config(yaml.safe_dump(data)).backup.ping_url == "http://[::1]:8000/ping/abc"
    for bad in ("hc-ping.com/uuid", MALFORMED, "http://xn--/ping/abc", "ftp://hc-ping.com/uuid"):
        data["backup"] = {"ping_url": bad}
        with pytest.raises(OewsctlError, match=r"backup\.ping_url: not an http\(s\) URL with a host") as info:
            parse_config(yaml.safe_dump(data))
        assert bad not in info.value.message  # the check's key is not repeated in the error


def test_a_url_httpx_cannot_use_is_a_warning_not_a_crash() -> None:
    warnings: list[str] = []
    with pinged(MALFORMED, warnings.append):
        done = True
    assert done
    assert warnings == [
        f"warning: ping{kind} to (malformed URL) failed (InvalidURL); the job itself is not affected" for kind in ("/start", " (success)")
    ]


def test_warnings_name_host_and_port_never_user_password_or_key(recorder: Recorder) -> None:
    warnings: list[str] = []
    port = recorder.server_address[1]
    Pinger(f"http://ops:hunter2@127.0.0.1:{port}/nope/key123", warnings.append).success()
    Pinger("http://ops:hunter2@[::1]:9/ping/key123", warnings.append, timeout=1).start()
    assert [w.split(" failed")[0] for w in warnings] == [f"warning: ping (success) to 127.0.0.1:{port}", "warning: ping/start to [::1]:9"]
    assert not any("hunter2" in w or "ops" in w or "key123" in w for w in warnings)


@pytest.mark.parametrize("command", [("backup", "run"), ("secrets", "status", "--reconcile")])
def test_a_malformed_ping_url_option_is_one_line_exit_2(command: tuple[str, ...], oewsctl: Callable[..., CliResult]) -> None:
    """Rejected before anything runs (no config read, no lock, no backup), the URL not echoed."""
    done = oewsctl("-c", str(DATA_DIR / "monitoring" / "oewsctl.yaml"), *command, "--ping-url", MALFORMED)
    assert done.code == 2
    assert done.err.splitlines()[0] == (
        "error: --ping-url: not an http(s) URL with a host, e.g. https://hc-ping.com/<uuid> (the value is not shown: it holds the check's key)"
    )
    assert "Traceback" not in done.err and "0f8e2a86" not in done.out + done.err
