"""Init-container entry point: pull a database release (an OCI artifact) and write it read-only.

    python -m oews_api.fetch_db --ref ghcr.io/you/oews-api-db@sha256:... --out /data/oews.db

The artifact (pushed by ``oewsctl db publish``) is one OCI manifest whose config
(``application/vnd.oews.db.config.v1+json``) names the release, the database's SHA-256
and size, and whose one layer is the SQLite file, raw or zstd-compressed. Nothing from the
registry is trusted: the manifest must hash to the digest in ``--ref``, each blob to its
descriptor (digest and size), and the written file to the config's SHA-256. The file is
written beside ``--out`` under a temp name, fsynced, made 0444, then renamed over ``--out``
(and the directory fsynced). On any failure: one line on stderr, the temp file removed,
exit 1, so the pod does not start on a wrong or partial database.

Credentials: the ``kubernetes.io/dockerconfigjson`` pull Secret mounted as a file
(``--auth-file``); a missing file is fine for a public artifact. Standard library plus
httpx; zstd via ``compression.zstd`` (Python 3.14+) or the ``zstandard`` package.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ARTIFACT_TYPE = "application/vnd.oews.db.v1"
CONFIG_TYPE = "application/vnd.oews.db.config.v1+json"
LAYER_TYPE = "application/vnd.oews.db.sqlite.v1"
LAYER_ZSTD = f"{LAYER_TYPE}+zstd"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DEFAULT_AUTH_FILE = "/var/run/oews/registry/.dockerconfigjson"
CHUNK = 1 << 20
MAX_SMALL = 4 << 20
"""Largest manifest or config accepted (the registry's own manifest limit)."""
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


class FetchError(Exception):
    """Why the database was not written (one line)."""


@dataclass(frozen=True)
class Reference:
    """``registry/repository@sha256:...``: only digests, a tag could move under a running Deployment."""

    registry: str
    repository: str
    digest: str

    @classmethod
    def parse(cls, text: str) -> Reference:
        name, _, digest = text.partition("@")
        registry, _, repository = name.partition("/")
        if not _DIGEST.match(digest) or not repository or not ("." in registry or ":" in registry or registry == "localhost"):
            raise FetchError(f"--ref {text!r} must be REGISTRY/REPOSITORY@sha256:<64 hex digits> (as `oewsctl db publish` prints it)")
        return cls(registry, repository.rsplit(":", 1)[0] if ":" in repository else repository, digest)

    @property
    def base_url(self) -> str:
        host = self.registry.rsplit(":", 1)[0]
        plain = host in ("localhost", "[::1]") or host.startswith("127.")
        return f"{'http' if plain else 'https'}://{self.registry}"

    def __str__(self) -> str:
        return f"{self.registry}/{self.repository}@{self.digest}"


def credentials(auth_file: Path, registry: str) -> tuple[str, str] | None:
    """(username, password) for ``registry`` from a ``.dockerconfigjson``; None when there is none.

    Accepts keys written ``ghcr.io``, ``https://ghcr.io`` or ``https://ghcr.io/v1/`` and either
    ``auth`` (base64 ``user:password``) or ``username`` + ``password``.
    """
    try:
        auths = json.loads(auth_file.read_text()).get("auths") or {}
    except FileNotFoundError:
        return None
    except (OSError, ValueError, AttributeError) as exc:
        raise FetchError(f"cannot read the registry credentials {auth_file}: {exc}") from None
    for key, entry in auths.items():
        if re.sub(r"^[a-z]+://", "", key).split("/", 1)[0] != registry or not isinstance(entry, dict):
            continue
        if entry.get("username") and entry.get("password"):
            return str(entry["username"]), str(entry["password"])
        if entry.get("auth"):
            user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            return user, password
    return None


class Registry:
    """Pull-only registry HTTP API v2 client: Bearer token (GHCR) or Basic auth, answered once per 401."""

    def __init__(self, ref: Reference, auth_file: Path, timeout: float = 60.0) -> None:
        self.ref = ref
        self.auth_file = auth_file
        self.creds = credentials(auth_file, ref.registry)
        # httpx drops Authorization on a redirect to another host (GHCR sends blobs to storage).
        self.http = httpx.Client(base_url=ref.base_url, timeout=timeout, follow_redirects=True)
        self.headers: dict[str, str] = {}

    def close(self) -> None:
        self.http.close()

    def _login(self, challenge: str) -> None:
        where = f"{self.auth_file} ({'no entry for ' + self.ref.registry if self.auth_file.exists() else 'file missing'})"
        if self.creds is None and not challenge.lower().startswith("bearer"):
            raise FetchError(f"registry {self.ref.registry} requires a login to pull {self.ref.repository}, and there are no credentials in {where}")
        if challenge.lower().startswith("bearer"):
            params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
            scope = f"repository:{self.ref.repository}:pull"
            answer = self.http.get(params.get("realm", ""), params={"service": params.get("service", ""), "scope": scope}, auth=self.creds)
            if answer.status_code in (401, 403):
                who = f"the credentials of {self.creds[0]!r} in {self.auth_file}" if self.creds else f"an anonymous token (no credentials in {where})"
                raise FetchError(f"registry {self.ref.registry} refused {who} for {scope} (HTTP {answer.status_code})")
            answer.raise_for_status()
            body = answer.json()
            self.headers = {"Authorization": f"Bearer {body.get('token') or body.get('access_token')}"}
        else:
            assert self.creds is not None
            pair = base64.b64encode(f"{self.creds[0]}:{self.creds[1]}".encode()).decode()
            self.headers = {"Authorization": f"Basic {pair}"}

    def _open(self, path: str, accept: str) -> httpx.Response:
        for attempt in (1, 2):
            request = self.http.build_request("GET", path, headers={"Accept": accept, **self.headers})
            response = self.http.send(request, stream=True)
            if response.status_code != 401 or attempt == 2:
                break
            response.close()
            self._login(response.headers.get("www-authenticate", ""))
        if response.status_code in (401, 403):
            response.close()
            who = f"the credentials of {self.creds[0]!r} in {self.auth_file}" if self.creds else f"a pull without credentials ({self.auth_file} has none)"
            raise FetchError(f"registry {self.ref.registry} denied {who}: HTTP {response.status_code} for {path}")
        if response.status_code != 200:
            response.close()
            raise FetchError(f"registry {self.ref.registry} answered HTTP {response.status_code} for {path} (is {self.ref} published?)")
        return response

    def small(self, kind: str, digest: str, accept: str) -> bytes:
        """A manifest or blob of at most 4 MiB, checked against ``digest``."""
        path = f"/v2/{self.ref.repository}/{kind}/{digest}"
        with closing(self._open(path, accept)) as response:
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_SMALL:
                    raise FetchError(f"{path} is larger than {MAX_SMALL >> 20} MiB: not an oews database artifact")
        if f"sha256:{hashlib.sha256(body).hexdigest()}" != digest:
            raise FetchError(f"{kind[:-1]} {digest} from {self.ref.registry} does not match its digest (tampered or corrupted)")
        return bytes(body)

    def blob(self, digest: str) -> Iterator[bytes]:
        with closing(self._open(f"/v2/{self.ref.repository}/blobs/{digest}", "application/octet-stream")) as response:
            yield from response.iter_bytes(CHUNK)


@dataclass(frozen=True)
class Artifact:
    """What the manifest and config say the database is."""

    layer_digest: str
    layer_size: int
    compressed: bool
    sha256: str
    size: int
    release: str

    @classmethod
    def read(cls, registry: Registry) -> Artifact:
        manifest = _json(registry.small("manifests", registry.ref.digest, OCI_MANIFEST), "manifest")
        config = manifest.get("config") or {}
        layers = manifest.get("layers") or []
        if config.get("mediaType") != CONFIG_TYPE or len(layers) != 1 or layers[0].get("mediaType") not in (LAYER_TYPE, LAYER_ZSTD):
            raise FetchError(f"{registry.ref} is not an oews database artifact (config {config.get('mediaType')!r}, "
                             f"{len(layers)} layer(s)); publish one with `oewsctl db publish`")
        body = registry.small("blobs", str(config.get("digest")), CONFIG_TYPE)
        if len(body) != config.get("size"):
            raise FetchError(f"config blob of {registry.ref} is {len(body)} bytes, the manifest says {config.get('size')}")
        facts = _json(body, "config")
        layer = layers[0]
        if not _DIGEST.match(str(layer.get("digest"))) or not _DIGEST.match(f"sha256:{facts.get('sha256')}"):
            raise FetchError(f"{registry.ref}: the manifest or config names no valid sha256")
        return cls(str(layer["digest"]), int(layer["size"]), layer["mediaType"] == LAYER_ZSTD, str(facts["sha256"]),
                   int(facts["size"]), str(facts.get("release") or "unknown release"))


def _json(body: bytes, what: str) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise FetchError(f"the {what} is not a JSON object")
    return data


def _decompressor() -> Callable[[bytes], bytes]:
    try:
        from compression import zstd  # type: ignore[import-not-found]  # Python 3.14+

        return zstd.ZstdDecompressor().decompress  # type: ignore[no-any-return]
    except ImportError:
        pass
    try:
        import zstandard
    except ImportError:
        raise FetchError("the layer is zstd-compressed but this Python has neither compression.zstd (3.14+) nor zstandard; "
                         "publish with `oewsctl db publish --compress none`") from None
    return zstandard.ZstdDecompressor().decompressobj().decompress


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _already(out: Path, artifact: Artifact) -> bool:
    """The file is there from an earlier run of this init container (a restarted pod keeps its emptyDir)."""
    try:
        if out.stat().st_size != artifact.size:
            return False
        with out.open("rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest() == artifact.sha256
    except OSError:
        return False


def write(registry: Registry, artifact: Artifact, out: Path) -> None:
    """Stream the layer to a temp file beside ``out``, checking every size and digest, then rename."""
    tmp = out.with_name(f".{out.name}.fetch-part")
    layer_hash, file_hash = hashlib.sha256(), hashlib.sha256()
    received = written = 0
    expand = _decompressor() if artifact.compressed else None
    broken: str | None = None
    """Why the zstd stream could not be expanded; reported after the layer's digest (the likelier cause)."""
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            for chunk in registry.blob(artifact.layer_digest):
                received += len(chunk)
                if received > artifact.layer_size:
                    raise FetchError(f"layer {artifact.layer_digest} is larger than the {artifact.layer_size} bytes its descriptor says (tampered)")
                layer_hash.update(chunk)
                if broken is not None:
                    continue  # keep hashing: a damaged layer is reported as such, below
                try:
                    data = expand(chunk) if expand is not None else chunk
                except Exception as exc:  # noqa: BLE001 - zstandard.ZstdError or compression.zstd.ZstdError
                    broken = str(exc) or type(exc).__name__
                    continue
                written += len(data)
                if written > artifact.size:
                    raise FetchError(f"the database is larger than the {artifact.size} bytes the release config says (tampered)")
                file_hash.update(data)
                handle.write(data)
            if received != artifact.layer_size or f"sha256:{layer_hash.hexdigest()}" != artifact.layer_digest:
                raise FetchError(f"layer {artifact.layer_digest} does not match its digest (got sha256:{layer_hash.hexdigest()[:12]}…, "
                                 f"{received} of {artifact.layer_size} bytes): tampered or truncated")
            if broken is not None:
                raise FetchError(f"layer {artifact.layer_digest} is not a valid zstd stream ({broken}); republish it with `oewsctl db publish`")
            if written != artifact.size or file_hash.hexdigest() != artifact.sha256:
                raise FetchError(f"the database's SHA-256 {file_hash.hexdigest()[:12]}… ({written} bytes) is not the release's "
                                 f"{artifact.sha256[:12]}… ({artifact.size} bytes)")
            handle.flush()
            os.fsync(handle.fileno())
            os.fchmod(handle.fileno(), 0o444)
        os.replace(tmp, out)
        _fsync_dir(out.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def fetch(ref: Reference, out: Path, auth_file: Path) -> str:
    """Pull ``ref`` into ``out``; returns the line to log."""
    started = time.monotonic()
    registry = Registry(ref, auth_file)
    try:
        artifact = Artifact.read(registry)
        if _already(out, artifact):
            return f"{out} already holds {artifact.release} (sha256 {artifact.sha256}); nothing fetched"
        write(registry, artifact, out)
    finally:
        registry.close()
    return (f"{out} <- {ref}: {artifact.release}, sha256 {artifact.sha256}, {artifact.size / 1048576:.1f} MiB "
            f"({artifact.layer_size / 1048576:.1f} MiB transferred) in {time.monotonic() - started:.1f}s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m oews_api.fetch_db", description=__doc__.split("\n\n")[0])
    parser.add_argument("--ref", required=True, help="REGISTRY/REPOSITORY@sha256:... (oewsctl db publish prints it)")
    parser.add_argument("--out", required=True, type=Path, help="where the database goes, e.g. /data/oews.db")
    parser.add_argument("--auth-file", type=Path, default=Path(DEFAULT_AUTH_FILE), help="a .dockerconfigjson (the mounted pull Secret)")
    args = parser.parse_args(argv)
    try:
        line = fetch(Reference.parse(args.ref), args.out, args.auth_file)
    except FetchError as exc:
        print(f"fetch_db: error: {exc}; {args.out} not written", file=sys.stderr, flush=True)
        return 1
    except httpx.HTTPError as exc:
        print(f"fetch_db: error: registry unreachable or the transfer broke ({type(exc).__name__}: {exc}); {args.out} not written",
              file=sys.stderr, flush=True)
        return 1
    except OSError as exc:
        print(f"fetch_db: error: cannot write {args.out}: {exc}; nothing left behind", file=sys.stderr, flush=True)
        return 1
    except Exception as exc:  # noqa: BLE001 - the init container's log must still be one line
        print(f"fetch_db: error: {type(exc).__name__}: {exc}; {args.out} not written", file=sys.stderr, flush=True)
        return 1
    print(f"fetch_db: {line}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
