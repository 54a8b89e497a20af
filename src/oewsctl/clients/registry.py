"""Image references, registry credentials, and the registry HTTP API for manifests.

The Docker engine pushes layers; this module talks to the registry itself only
for what Debian's engine (no buildx) cannot do: read each per-platform manifest
and put a manifest list joining them under one tag, so the arm64 Pi and the
amd64 nodes pull the same reference.

Credentials come from ``$GHCR_TOKEN`` (for ghcr.io) or from ``docker login``
state; they are never taken from a flag, printed, or put in argv.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import httpx

from oewsctl.core.errors import OewsctlError
from oewsctl.core.image_ref import ImageRef

TOKEN_ENV = "GHCR_TOKEN"
USER_ENV = "GHCR_USER"
GHCR = "ghcr.io"

MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"

@dataclass(frozen=True)
class Credentials:
    username: str
    secret: str

    def __repr__(self) -> str:  # never show the secret
        return f"Credentials(username={self.username!r}, secret=<withheld>)"


def is_loopback(registry: str) -> bool:
    """Registries on loopback speak plain HTTP (as the docker engine allows by default)."""
    host = registry.rsplit(":", 1)[0] if not registry.startswith("[") else registry.split("]")[0] + "]"
    return host in ("localhost", "[::1]") or host.startswith("127.")


def credentials(ref: ImageRef) -> Credentials | None:
    """$GHCR_TOKEN for ghcr.io, else what ``docker login`` stored (file or credential helper)."""
    token = os.environ.get(TOKEN_ENV)
    if ref.registry == GHCR and token:
        owner = ref.repository.split("/", 1)[0]
        return Credentials(os.environ.get(USER_ENV) or owner, token)
    from docker import auth

    found = auth.load_config().resolve_authconfig(ref.registry) or {}
    username = found.get("username") or found.get("Username")
    secret = found.get("password") or found.get("Password") or found.get("identitytoken")
    return Credentials(username, secret) if username and secret else None


def login_hint(registry: str) -> str:
    if registry == GHCR:
        return f"log in with `docker login {GHCR}` or export {TOKEN_ENV} (a token with write:packages); never pass it as a flag"
    return f"log in with `docker login {registry}`"


def unreachable(registry: str, reason: object) -> OewsctlError:
    return OewsctlError(
        f"registry {registry} is unreachable: {reason}",
        hint=f"check the address and that the registry is running and reachable (curl {'http' if is_loopback(registry) else 'https'}://{registry}/v2/)",
    )


class RegistryDenied(OewsctlError):
    """The registry refused the request for lack of (valid) credentials."""


def denied(registry: str, what: str, reason: object) -> RegistryDenied:
    return RegistryDenied(f"registry {registry} denied {what}: {reason}", hint=login_hint(registry))


def _challenge(header: str) -> dict[str, str]:
    """The parameters of a ``WWW-Authenticate: Bearer realm=...,service=...`` header."""
    return dict(re.findall(r'(\w+)="([^"]*)"', header))


class RegistryClient:
    """The few registry HTTP API v2 calls oewsctl needs, with token or basic auth."""

    def __init__(self, registry: str, creds: Credentials | None = None, *, timeout: float = 30.0) -> None:
        scheme = "http" if is_loopback(registry) else "https"
        self.registry = registry
        self._creds = creds
        self._http = httpx.Client(base_url=f"{scheme}://{registry}", timeout=timeout)
        self._auth: dict[str, str] = {}

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _token(self, header: str, scope: str) -> str:
        params = _challenge(header)
        if "realm" not in params:
            raise denied(self.registry, "access", f"unexpected challenge {header!r}")
        query = {"service": params.get("service", ""), "scope": scope}
        basic = (self._creds.username, self._creds.secret) if self._creds else None
        response = self._http.get(params["realm"], params=query, auth=basic)
        if response.status_code in (401, 403):
            raise denied(self.registry, f"a token for {scope}", f"HTTP {response.status_code}")
        response.raise_for_status()
        body = response.json()
        return str(body.get("token") or body.get("access_token"))

    def _send(self, method: str, path: str, scope: str, headers: dict[str, str], content: bytes | None = None) -> httpx.Response:
        """One request; on a 401 challenge, authenticate (Bearer token or Basic) and retry once."""
        try:
            response = self._http.request(method, path, headers={**headers, **self._auth}, content=content)
            if response.status_code == 401:
                self._auth = self._answer(response.headers.get("www-authenticate", ""), scope, f"{method} {path}")
                response = self._http.request(method, path, headers={**headers, **self._auth}, content=content)
        except httpx.TransportError as exc:
            raise unreachable(self.registry, exc) from exc
        if response.status_code in (401, 403):
            raise denied(self.registry, f"{method} {path}", f"HTTP {response.status_code} {response.text[:200]}")
        return response

    def _answer(self, challenge: str, scope: str, what: str) -> dict[str, str]:
        if challenge.lower().startswith("bearer"):
            return {"Authorization": f"Bearer {self._token(challenge, scope)}"}
        if self._creds is None:
            raise denied(self.registry, what, "authentication required")
        pair = base64.b64encode(f"{self._creds.username}:{self._creds.secret}".encode()).decode()
        return {"Authorization": f"Basic {pair}"}

    def get_manifest(self, repository: str, reference: str) -> tuple[bytes, str]:
        """The manifest bytes and media type of ``repository:reference``."""
        accept = ", ".join((MANIFEST_LIST, OCI_INDEX, MANIFEST_V2, OCI_MANIFEST))
        response = self._send("GET", f"/v2/{repository}/manifests/{reference}", f"repository:{repository}:pull", headers={"Accept": accept})
        if response.status_code == 404:
            raise OewsctlError(f"{self.registry}/{repository}:{reference} is not in the registry", hint="push it first: oewsctl image push")
        response.raise_for_status()
        return response.content, response.headers.get("content-type", "").split(";")[0]

    def can_pull(self, repository: str, reference: str) -> bool:
        """True when these credentials (or none) may read ``repository``; False when the registry denies it.

        A missing tag (404) still counts as allowed: the question is whether pulls need a login.
        """
        try:
            self._send("HEAD", f"/v2/{repository}/manifests/{reference}", f"repository:{repository}:pull",
                       headers={"Accept": ", ".join((MANIFEST_LIST, OCI_INDEX, MANIFEST_V2, OCI_MANIFEST))})
        except RegistryDenied:
            return False
        return True

    def has_blob(self, repository: str, digest: str) -> bool:
        """True when the registry already holds blob ``digest`` in ``repository`` (its upload can be skipped)."""
        response = self._send("HEAD", f"/v2/{repository}/blobs/{digest}", f"repository:{repository}:pull,push", headers={})
        return response.status_code == 200

    def push_blob(self, repository: str, digest: str, path: Path) -> None:
        """Upload the file ``path`` as blob ``digest``: POST to start (authenticating if asked), then one
        streamed PUT (a single-request POST upload is ignored by Distribution 2.8)."""
        scope = f"repository:{repository}:pull,push"
        started = self._send("POST", f"/v2/{repository}/blobs/uploads/", scope, headers={"Content-Length": "0"})
        location = started.headers.get("location")
        if started.status_code != 202 or not location:
            raise OewsctlError(f"{self.registry} refused to start an upload to {repository}: HTTP {started.status_code} {started.text[:200]}")
        url = httpx.URL(str(self._http.base_url)).join(location)
        url = url.copy_merge_params({"digest": digest})
        size = path.stat().st_size
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size), **self._auth}
        try:
            with path.open("rb") as body:
                response = self._http.put(url, headers=headers, content=iter(lambda: body.read(1 << 20), b""))
        except httpx.TransportError as exc:
            raise unreachable(self.registry, exc) from exc
        if response.status_code in (401, 403):
            raise denied(self.registry, f"the upload to {repository}", f"HTTP {response.status_code}")
        if response.status_code != 201:
            raise OewsctlError(f"{self.registry} refused blob {digest[:19]}… for {repository}: HTTP {response.status_code} {response.text[:300]}")

    def put_manifest(self, repository: str, reference: str, body: bytes, media_type: str) -> str:
        """Put a manifest (or list) under ``reference``; returns its digest."""
        response = self._send(
            "PUT", f"/v2/{repository}/manifests/{reference}", f"repository:{repository}:pull,push",
            headers={"Content-Type": media_type}, content=body,
        )
        if response.status_code >= 400:
            raise OewsctlError(f"{self.registry} refused the manifest for {repository}:{reference}: HTTP {response.status_code} {response.text[:300]}")
        digest = f"sha256:{hashlib.sha256(body).hexdigest()}"
        served = response.headers.get("docker-content-digest")
        if served and served != digest:
            raise OewsctlError(f"{self.registry} stored {repository}:{reference} as {served}, expected {digest}")
        return digest


def manifest_list(entries: list[tuple[str, bytes, str]]) -> bytes:
    """A Docker manifest list from ``(platform, manifest bytes, media type)`` per platform."""
    manifests = []
    for platform, body, media_type in entries:
        parts = platform.split("/")
        described = {"architecture": parts[1], "os": parts[0], **({"variant": parts[2]} if len(parts) > 2 else {})}
        manifests.append({
            "mediaType": media_type, "size": len(body),
            "digest": f"sha256:{hashlib.sha256(body).hexdigest()}", "platform": described,
        })
    document = {"schemaVersion": 2, "mediaType": MANIFEST_LIST, "manifests": manifests}
    return json.dumps(document, indent=3).encode()


def dockerconfigjson(ref: ImageRef) -> bytes | None:
    """The ``.dockerconfigjson`` of a ``kubernetes.io/dockerconfigjson`` pull Secret for ``ref``'s registry.

    Built from the same credentials as a push ($GHCR_TOKEN or docker login); None
    when there are none (a public image needs no pull secret).
    """
    creds = credentials(ref)
    if creds is None:
        return None
    pair = base64.b64encode(f"{creds.username}:{creds.secret}".encode()).decode()
    auths = {ref.registry: {"username": creds.username, "password": creds.secret, "auth": pair}}
    return json.dumps({"auths": auths}).encode()
