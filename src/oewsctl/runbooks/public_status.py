"""``oewsctl status --public``: the API as a visitor sees it, from the operator's machine.

Four checks, each its own section (one failing does not hide the others):

- ``dns``: the domain's A records, compared with the server node's address and, with
  ``--public-ip``, the router's public address (behind a home router the A record is the
  public address, not the server's LAN address);
- ``https``: ``GET https://<domain>/health`` with certificate and hostname verification
  (the system trust store; ``SSL_CERT_FILE`` points OpenSSL at another CA bundle);
- ``certificate``: who issued the served certificate and how many days it has left (< 14: renew);
- ``redirect``: ``http://<domain>/health`` must answer a redirect to ``https://``.

``--resolve HOST:ADDR`` connects to ADDR instead of asking DNS (like curl's ``--resolve``); the
TLS check still verifies the certificate for HOST, so nothing is weakened.
The blackbox exporter (``monitoring install``) runs the same probes from inside the home
network, through the router's NAT loopback; this is the check from outside.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import ssl
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from oewsctl.configuration.schema import Config
from oewsctl.core.errors import OewsctlError, UsageError
from oewsctl.runbooks.report import Section, probe

TIMEOUT = 10.0
CERT_WARN_DAYS = 14
REDIRECTS = (301, 302, 307, 308)


@dataclass(frozen=True)
class Endpoint:
    """Where the public checks go: the domain, how it is reached, and what to compare it with."""

    domain: str
    server: str
    server_address: str
    resolve: str | None = None
    public_ip: str | None = None
    https_port: int = 443
    http_port: int = 80


def endpoint(config: Config, *, resolve: str | None = None, public_ip: str | None = None, https_port: int = 443, http_port: int = 80) -> Endpoint:
    """The checks' target from the inventory; ``resolve`` is ``HOST:ADDR`` (HOST must be app.domain)."""
    domain = config.app.domain
    address = None
    if resolve is not None:
        host, sep, address = resolve.rpartition(":")
        if not sep or host != domain or not _is_ip(address):
            raise UsageError(f"--resolve {resolve!r} must be {domain}:ADDRESS (an IPv4 address)", hint=f"e.g. --resolve {domain}:127.0.0.1")
    if public_ip is not None and not _is_ip(public_ip):
        raise UsageError(f"--public-ip {public_ip!r} is not an IPv4 address")
    server = config.node(config.cluster.server)
    return Endpoint(domain, server.name, server.host, address, public_ip, https_port, http_port)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def _a_records(domain: str) -> tuple[str, ...]:
    try:
        infos = socket.getaddrinfo(domain, None, socket.AF_INET, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OewsctlError(f"DNS: cannot resolve {domain}: {exc.strerror}") from None
    return tuple(sorted({str(info[4][0]) for info in infos}))


def addresses(target: Endpoint) -> tuple[str, ...]:
    """The domain's A records, or the ``--resolve`` address."""
    return (target.resolve,) if target.resolve else _a_records(target.domain)


def dns(target: Endpoint) -> tuple[list[str], Any]:
    found = addresses(target)
    source = "--resolve (DNS not asked)" if target.resolve else "A"
    lines = [f"{target.domain} {source} -> {', '.join(found)}"]
    server = _server_ips(target.server_address)
    problems: list[str] = []
    if set(found) & set(server):
        lines.append(f"matches server {target.server} ({target.server_address})")
    elif all(ipaddress.IPv4Address(ip).is_private for ip in server):
        lines.append(f"server {target.server} has the LAN address {target.server_address}: the A record should be the router's public address"
                     + ("" if target.public_ip else " (give --public-ip to check it)"))
    elif target.public_ip not in found:  # a public server address the record should carry (unless --public-ip says otherwise)
        problems.append(f"{target.domain} does not point at server {target.server} ({target.server_address}): fix the A record")
    if target.public_ip is not None:
        if target.public_ip in found:
            lines.append(f"matches the public IP {target.public_ip}")
        else:
            problems.append(f"{target.domain} does not point at the public IP {target.public_ip}: fix the A record (or the dynamic DNS client)")
    return lines + [f"PROBLEM: {p}" for p in problems], {"addresses": list(found), "server": target.server_address,
                                                         "public_ip": target.public_ip, "ok": not problems, "problems": problems}


def _server_ips(host: str) -> tuple[str, ...]:
    if _is_ip(host):
        return (host,)
    try:
        return _a_records(host)
    except OewsctlError:
        return ()


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """HTTP to ``address`` while naming ``host`` (Host header)."""

    def __init__(self, host: str, address: str, port: int) -> None:
        super().__init__(host, port, timeout=TIMEOUT)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to ``address`` while verifying the certificate for ``host`` (SNI and hostname check)."""

    def __init__(self, host: str, address: str, port: int, context: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=TIMEOUT, context=context)
        self.address = address
        self.tls_context = context

    def connect(self) -> None:
        raw = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self.tls_context.wrap_socket(raw, server_hostname=self.host)


@dataclass
class _Fetched:
    status: int
    location: str | None
    body: bytes
    cert: dict[str, Any] | None


def _fetch(conn: http.client.HTTPConnection, url: str) -> _Fetched:
    try:
        conn.connect()  # the certificate now: the socket is gone once a Connection: close answer is read
        cert = conn.sock.getpeercert() if isinstance(conn.sock, ssl.SSLSocket) else None
        conn.request("GET", "/health", headers={"User-Agent": "oewsctl status --public", "Accept": "application/json"})
        response = conn.getresponse()
        body = response.read(65536)
    except ssl.SSLCertVerificationError as exc:
        raise OewsctlError(f"{url}: certificate not trusted: {exc.verify_message}") from None
    except ssl.SSLError as exc:
        raise OewsctlError(f"{url}: TLS failed: {exc.reason or exc}") from None
    except OSError as exc:
        raise OewsctlError(f"{url}: {exc.strerror or exc}") from None
    except http.client.HTTPException as exc:
        raise OewsctlError(f"{url}: bad HTTP answer: {type(exc).__name__}") from None
    finally:
        conn.close()
    return _Fetched(response.status, response.getheader("Location"), body, cert)


def _url(scheme: str, domain: str, port: int, default: int) -> str:
    return f"{scheme}://{domain}{'' if port == default else f':{port}'}/health"


def fetch_https(target: Endpoint) -> _Fetched:
    """A verified GET of https://<domain>/health (trust store, SNI and hostname of the domain)."""
    url = _url("https", target.domain, target.https_port, 443)
    address = addresses(target)[0]
    return _fetch(_PinnedHTTPSConnection(target.domain, address, target.https_port, ssl.create_default_context()), url)


class _Once:
    """``fetch_https`` run once for the sections that share it; its error repeats for each."""

    def __init__(self, target: Endpoint) -> None:
        self.target = target
        self._result: _Fetched | OewsctlError | None = None

    def __call__(self) -> _Fetched:
        if self._result is None:
            try:
                self._result = fetch_https(self.target)
            except OewsctlError as exc:
                self._result = exc
        if isinstance(self._result, OewsctlError):
            raise self._result
        return self._result


def https(target: Endpoint, answer: _Fetched) -> tuple[list[str], Any]:
    url = _url("https", target.domain, target.https_port, 443)
    try:
        health = json.loads(answer.body)
    except ValueError:
        health = {}
    database = health.get("database") or {}
    ok = answer.status == 200 and health.get("status") == "ok"
    line = f"{url}: {answer.status} {health.get('status', '(no JSON status)')}"
    if database.get("release"):
        line += f" (database {database['release']})"
    lines = [line] if ok else [line, f"PROBLEM: {url} must answer 200 with status ok"]
    return lines, {"url": url, "status": answer.status, "health": health.get("status"), "ok": ok}


def _name(parts: Any) -> dict[str, str]:
    return {key: value for rdn in parts or () for key, value in rdn}


def certificate(answer: _Fetched, now: datetime | None = None) -> tuple[list[str], Any]:
    cert = answer.cert or {}
    issuer = _name(cert.get("issuer"))
    subject = _name(cert.get("subject"))
    expires = datetime.fromtimestamp(ssl.cert_time_to_seconds(str(cert["notAfter"])), tz=timezone.utc)
    days = (expires - (now or datetime.now(timezone.utc))).total_seconds() / 86400
    who = ", ".join(f"{key}={issuer[key]}" for key in ("organizationName", "commonName") if key in issuer) or "(unnamed)"
    lines = [f"issuer: {who}", f"subject: {subject.get('commonName', '(none)')}", f"expires {expires:%Y-%m-%d %H:%M} UTC ({days:.0f} days left)"]
    ok = days >= CERT_WARN_DAYS
    if not ok:
        lines.append(f"PROBLEM: expires in under {CERT_WARN_DAYS} days: renewal is failing (Traefik's ACME log)")
    return lines, {"issuer": issuer, "subject": subject, "not_after": expires.isoformat(), "days_left": round(days, 1), "ok": ok}


def redirect(target: Endpoint) -> tuple[list[str], Any]:
    url = _url("http", target.domain, target.http_port, 80)
    answer = _fetch(_PinnedHTTPConnection(target.domain, addresses(target)[0], target.http_port), url)
    location = answer.location or ""
    ok = answer.status in REDIRECTS and location.startswith("https://")
    if ok:
        lines = [f"{url} -> {answer.status} {location}"]
    else:
        to = f" to {location}" if location else ""
        lines = [f"PROBLEM: {url} answered {answer.status}{to} instead of redirecting to https:// "
                 "(Traefik's web entry point redirect: `oewsctl deploy` re-applies it)"]
    return lines, {"url": url, "status": answer.status, "location": answer.location, "ok": ok}


def sections(target: Endpoint) -> list[Section]:
    """The four public checks (see the module doc)."""
    answer = _Once(target)
    return [
        probe("dns", lambda: dns(target)),
        probe("https", lambda: https(target, answer())),
        probe("certificate", lambda: certificate(answer())),
        probe("redirect", lambda: redirect(target)),
    ]


def all_ok(found: list[Section]) -> bool:
    """True when every check answered and none found a problem."""
    return all(s.unknown is None and (s.data or {}).get("ok", True) for s in found)
