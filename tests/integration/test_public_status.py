"""`oewsctl status --public` against a real local HTTPS server with a certificate from a test CA.

The CA reaches oewsctl the way an operator's would: ``SSL_CERT_FILE`` (read by OpenSSL's default
verify paths). ``--resolve api.example.com:127.0.0.1`` replaces only the DNS answer; the
certificate is still verified for api.example.com, so an untrusted CA or a wrong name fails.
"""

from __future__ import annotations

import datetime
import json
import ssl
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme

from tests.conftest import DATA_DIR
from tests.fixtures.cli import CliRunner
from tests.fixtures.http_servers import serving

DOMAIN = "api.example.com"  # app.domain of tests/data/monitoring/oewsctl.yaml
HEALTH = {"status": "ok", "database": {"release": "May 2025", "sha256": "0" * 64}}


def handler(answer: Callable[[BaseHTTPRequestHandler], tuple[int, dict[str, str], bytes]]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            status, headers, body = answer(self)
            self.send_response(status)
            for key, value in {**headers, "Content-Length": str(len(body))}.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


class Site:
    """The public site: HTTPS with a test-CA certificate, and plain HTTP that redirects (or not)."""

    def __init__(self, tmp: Path, servers: ExitStack, *, days_left: float, redirect: bool, name: str = DOMAIN) -> None:
        self.ca = trustme.CA(organization_name="Test Home CA")
        not_after = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=days_left)
        cert = self.ca.issue_cert(name, not_after=not_after)
        self.ca_file = tmp / f"ca-{len(list(tmp.glob('ca-*.pem')))}.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        self.seen_hosts: list[str] = []

        def health(request: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], bytes]:
            self.seen_hosts.append(request.headers["Host"])
            return 200, {"Content-Type": "application/json"}, json.dumps(HEALTH).encode()

        def plain(request: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], bytes]:
            if redirect:
                return 308, {"Location": f"https://{DOMAIN}{request.path}"}, b""
            return 200, {"Content-Type": "application/json"}, json.dumps(HEALTH).encode()

        https = ThreadingHTTPServer(("127.0.0.1", 0), handler(health))
        https.socket = context.wrap_socket(https.socket, server_side=True)
        self.https = servers.enter_context(serving(https))
        self.http = servers.enter_context(serving(ThreadingHTTPServer(("127.0.0.1", 0), handler(plain))))

    def args(self) -> list[str]:
        return ["--resolve", f"{DOMAIN}:127.0.0.1", "--https-port", str(self.https.server_address[1]), "--http-port", str(self.http.server_address[1])]


@pytest.fixture()
def site_factory(tmp_path: Path) -> Iterator[Callable[..., Site]]:
    with ExitStack() as servers:
        yield lambda **kwargs: Site(tmp_path, servers, **kwargs)


CONFIG = DATA_DIR / "monitoring" / "oewsctl.yaml"


def test_public_status_reports_issuer_days_left_and_a_missing_redirect(
    site_factory: Callable[..., Site], run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = site_factory(days_left=45.2, redirect=False)
    monkeypatch.setenv("SSL_CERT_FILE", str(site.ca_file))
    done = run_cli("-c", CONFIG, "status", "--public", "--public-ip", "127.0.0.1", *site.args())
    assert done.returncode == 1, done.stderr  # a problem was found: the redirect
    out = done.stdout
    assert f"{DOMAIN} --resolve (DNS not asked) -> 127.0.0.1" in out and "matches the public IP 127.0.0.1" in out
    assert f"https://{DOMAIN}:{site.https.server_address[1]}/health: 200 ok (database May 2025)" in out
    assert "issuer: organizationName=Test Home CA" in out
    assert "(45 days left)" in out
    assert f"PROBLEM: http://{DOMAIN}:{site.http.server_address[1]}/health answered 200 instead of redirecting to https://" in out
    assert site.seen_hosts == [f"{DOMAIN}:{site.https.server_address[1]}"]  # asked by name, one request for /health and the certificate


def test_public_status_all_good_exits_zero_and_warns_under_14_days(
    site_factory: Callable[..., Site], run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = site_factory(days_left=60.5, redirect=True)
    monkeypatch.setenv("SSL_CERT_FILE", str(site.ca_file))
    done = run_cli("-c", CONFIG, "-o", "json", "status", "--public", *site.args())
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["redirect"]["data"]["status"] == 308 and report["redirect"]["data"]["ok"] is True
    assert report["certificate"]["data"]["issuer"]["organizationName"] == "Test Home CA"
    assert 60 <= report["certificate"]["data"]["days_left"] <= 61
    assert report["https"]["data"]["health"] == "ok"

    soon = site_factory(days_left=9.5, redirect=True)
    monkeypatch.setenv("SSL_CERT_FILE", str(soon.ca_file))
    warned = run_cli("-c", CONFIG, "status", "--public", *soon.args())
    assert warned.returncode == 1
    assert "(9 days left)" in warned.stdout and "PROBLEM: expires in under 14 days" in warned.stdout


def test_public_status_never_trusts_an_unknown_ca_or_a_wrong_name(
    site_factory: Callable[..., Site], run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    site = site_factory(days_left=45, redirect=True)
    other = trustme.CA()
    other_file = tmp_path / "other-ca.pem"
    other.cert_pem.write_to_path(str(other_file))
    monkeypatch.setenv("SSL_CERT_FILE", str(other_file))
    untrusted = run_cli("-c", CONFIG, "status", "--public", *site.args())
    assert untrusted.returncode == 1
    assert "https: unknown (" in untrusted.stdout and "certificate not trusted" in untrusted.stdout
    assert site.seen_hosts == []  # nothing was sent over an unverified connection

    wrong = site_factory(days_left=45, redirect=True, name="other.example.com")
    monkeypatch.setenv("SSL_CERT_FILE", str(wrong.ca_file))
    mismatch = run_cli("-c", CONFIG, "status", "--public", *wrong.args())
    assert mismatch.returncode == 1 and "certificate not trusted: Hostname mismatch" in mismatch.stdout


def test_resolve_must_name_the_configured_domain(run_cli: CliRunner) -> None:
    bad = run_cli("-c", CONFIG, "status", "--public", "--resolve", "evil.example.net:127.0.0.1")
    assert bad.returncode == 2 and "--resolve 'evil.example.net:127.0.0.1' must be api.example.com:ADDRESS" in bad.stderr
