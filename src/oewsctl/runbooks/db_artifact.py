"""The database release as an OCI artifact: its name, its format, and what the pod template says about it.

Naming: the artifact lives beside the app image, in repository ``<app.image>-db``
(``ghcr.io/you/oews-api`` -> ``ghcr.io/you/oews-api-db``), tagged ``<release>-<sha256[:12]>``
(``may-2025-728c973c4c2d``) unless ``--tag`` says otherwise, and always referenced by digest.
A repository of its own keeps ``image`` tags and database tags apart (a ``latest`` can never
mean both), and GHCR gives it the same owner, so the same token pushes it and the same pull
Secret reads it.

Format (OCI image-spec 1.1 artifact, what ``oews_api.fetch_db`` reads): ``artifactType``
``application/vnd.oews.db.v1``; a config blob ``application/vnd.oews.db.config.v1+json`` with
release, sha256, size, years, row counts, built_by; one layer, the SQLite file
(``application/vnd.oews.db.sqlite.v1``, or ``+zstd``). Not a container image: a runtime would
never try to unpack it.

``db publish`` records the newest reference on this machine (state dir, ``db-artifacts.json``):
``render`` and a first ``deploy`` with ``database.delivery: image`` use it; later deploys keep the
reference the Deployment already runs (only ``db update``/``db rollback``/``rollout undo`` change it).
Only the Deployment template needs a reference. Without a record here (another operator's machine,
a cron host) it is rendered with the placeholder :data:`UNRESOLVED`: ``render`` prints it, ``backup``
compares objects by kind, namespace and name only, and ``deploy`` replaces it with the live
Deployment's reference, or stops before any change when there is none (run ``db publish`` first).
"""

from __future__ import annotations

import getpass
import hashlib
import json
import math
import re
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oewsctl.core.state import state_dir

if TYPE_CHECKING:
    from oewsctl.configuration.schema import Config
    from oewsctl.core.image_ref import ImageRef

ARTIFACT_SUFFIX = "-db"
ARTIFACTS_FILE = "db-artifacts.json"
FETCH_CONTAINER = "fetch-db"
AUTH_DIR = "/var/run/oews/registry"
AUTH_FILE = f"{AUTH_DIR}/.dockerconfigjson"
REF_ANNOTATION = "oews/db-ref"
SHA_ANNOTATION = "oews/db-sha256"
RELEASE_ANNOTATION = "oews/db-release"
ZSTD_LEVEL = 3


@dataclass
class Published:
    """One database artifact in the registry, as the pod template and the state file name it."""

    ref: str
    """``registry/repository@sha256:<manifest digest>``."""
    sha256: str
    release: str | None
    size: int

    @property
    def annotations(self) -> dict[str, str]:
        """Pod template annotations: what ``db status`` reads back, and what makes each release its own revision."""
        return {REF_ANNOTATION: self.ref, SHA_ANNOTATION: self.sha256, RELEASE_ANNOTATION: self.release or "unknown"}

    @classmethod
    def from_annotations(cls, annotations: dict[str, str]) -> Published | None:
        if REF_ANNOTATION not in annotations:
            return None
        release = annotations.get(RELEASE_ANNOTATION)
        return cls(annotations[REF_ANNOTATION], annotations.get(SHA_ANNOTATION, ""), None if release == "unknown" else release, 0)


def fetched_ref(pod_spec: dict[str, Any]) -> str | None:
    """The ``--ref`` a pod's fetch-db init container pulls (what it actually ran), or None (hostpath)."""
    for container in pod_spec.get("initContainers") or []:
        args = list(container.get("args") or [])
        if container.get("name") == FETCH_CONTAINER and "--ref" in args[:-1]:
            return str(args[args.index("--ref") + 1])
    return None


def artifact_repository(config: Config) -> ImageRef:
    """``<app.image>-db`` on the same registry, without tag or digest."""
    from oewsctl.core.image_ref import ImageRef

    image = ImageRef.parse(config.app.image)
    return ImageRef(image.registry, image.repository + ARTIFACT_SUFFIX)


def default_tag(release: str | None, sha256: str) -> str:
    """``may-2025-728c973c4c2d``: readable in the registry's UI, unique per file."""
    slug = re.sub(r"[^a-z0-9]+", "-", (release or "oews-db").lower()).strip("-") or "oews-db"
    return f"{slug[:100]}-{sha256[:12]}"


def size_limit(size: int) -> str:
    """The ``emptyDir`` sizeLimit for a database of ``size`` bytes: the file plus a quarter plus 32 MiB."""
    return f"{math.ceil((size * 1.25 + 32 * 1048576) / 1048576)}Mi"


def _artifacts_path() -> Path:
    return state_dir() / ARTIFACTS_FILE


def record_published(config: Config, published: Published) -> None:
    path = _artifacts_path()
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    known[artifact_repository(config).name] = {**asdict(published), "published": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(known, indent=1))
    tmp.replace(path)


def recorded_artifact(config: Config) -> Published | None:
    """The artifact ``db publish`` last pushed to this inventory's repository from this machine."""
    try:
        entry = json.loads(_artifacts_path().read_text()).get(artifact_repository(config).name)
        return Published(entry["ref"], entry["sha256"], entry.get("release"), int(entry["size"])) if entry else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


UNRESOLVED = Published("<unresolved: the live Deployment's, or run oewsctl db publish FILE>", "", None, 0)
"""The release the Deployment is rendered with when this machine recorded no ``db publish``: never
applied (``deploy`` takes the live Deployment's instead: :func:`oewsctl.runbooks.db_image.keep_live_database`)."""


def delivery_values(config: Config, out_file: str, artifact: Published | None = None) -> dict[str, Any] | None:
    """What the Deployment template needs for ``database.delivery: image`` (None for hostpath):
    ``artifact``, else the last ``db publish`` from this machine, else :data:`UNRESOLVED`."""
    if config.database.delivery != "image":
        return None
    chosen = artifact or recorded_artifact(config) or UNRESOLVED
    return {
        "container": FETCH_CONTAINER,
        "args": ["--ref", chosen.ref, "--out", out_file, "--auth-file", AUTH_FILE],
        "annotations": chosen.annotations,
        "size_limit": size_limit(chosen.size),
        "auth_dir": AUTH_DIR,
    }


# -- the artifact's bytes ----------------------------------------------------------------------


@dataclass(frozen=True)
class Blob:
    media_type: str
    digest: str
    size: int
    path: Path


def _file_blob(path: Path, media_type: str) -> Blob:
    with path.open("rb") as handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
    return Blob(media_type, f"sha256:{digest}", path.stat().st_size, path)


def built_by() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        ours = version("oews")
    except PackageNotFoundError:
        ours = "dev"
    return f"oewsctl {ours} by {getpass.getuser()}@{socket.gethostname()}"


@dataclass(frozen=True)
class Packed:
    layer: Blob
    config: Blob
    manifest: bytes


def pack(local: Path, facts: dict[str, Any], workdir: Path, *, compress: bool) -> Packed:
    """The layer (the file, or its zstd stream), the config and the manifest, written to ``workdir``."""
    from oews_api.fetch_db import ARTIFACT_TYPE, CONFIG_TYPE, LAYER_TYPE, LAYER_ZSTD, OCI_MANIFEST

    if compress:
        import zstandard

        layer_path = workdir / f"{local.name}.zst"
        with local.open("rb") as source, layer_path.open("wb") as target:
            zstandard.ZstdCompressor(level=ZSTD_LEVEL, threads=-1, write_content_size=True).copy_stream(source, target, size=facts["size"])
        layer = _file_blob(layer_path, LAYER_ZSTD)
    else:
        layer = _file_blob(local, LAYER_TYPE)
    config_path = workdir / "config.json"
    config_path.write_bytes(json.dumps({
        "release": facts.get("release"), "sha256": facts["sha256"], "size": facts["size"], "years": facts.get("years", []),
        "rows": facts.get("rows", {}), "schema_version": facts.get("schema_version"), "built_at": facts.get("built_at"),
        "built_by": built_by(),
    }, indent=1, sort_keys=True).encode())
    config = _file_blob(config_path, CONFIG_TYPE)
    title = layer.path.name if compress else "oews.db"
    manifest = {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": ARTIFACT_TYPE,
        "config": {"mediaType": config.media_type, "digest": config.digest, "size": config.size},
        "layers": [{"mediaType": layer.media_type, "digest": layer.digest, "size": layer.size,
                    "annotations": {"org.opencontainers.image.title": title}}],
        "annotations": {"org.opencontainers.image.version": facts.get("release") or "unknown",
                        "org.opencontainers.image.created": facts.get("built_at") or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
    }
    return Packed(layer, config, json.dumps(manifest, indent=1).encode())
