"""The real Dockerfile, built and pushed by `oewsctl image build`, run the way the cluster runs it.

Real parts: dockerd, the Debian docker-registry on 127.0.0.1:5000, a locally made
Debian base image (python3 at /usr/bin/python3) passed as BASE_IMAGE, and the
sample database bundled with the package mounted read-only.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
import tomllib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import httpx
import pytest

from oewsctl.clients.registry import MANIFEST_V2, OCI_MANIFEST
from tests.conftest import require
from tests.fixtures.docker import free_port, oewsctl

pytestmark = [pytest.mark.docker, pytest.mark.timeout(3600)]  # the first build on vfs takes minutes

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_DB = ROOT / "src" / "oews_api" / "sample" / "oews-sample.db"
REPOSITORY = "oews-api-test"


@dataclass(frozen=True)
class Built:
    pinned: str  # what stdout printed: REPO@sha256:...
    stderr: str
    state: Path
    tag: str  # the VERSION tag, as a full ref


@pytest.fixture(scope="module")
def built(registry: str, base_image: str, tmp_path_factory: pytest.TempPathFactory) -> Built:
    """`oewsctl image build --push` of the real Dockerfile, once for this module."""
    state = tmp_path_factory.mktemp("image-state")
    repo = f"{registry}/{REPOSITORY}"
    done = oewsctl(
        "image", "build", "--tag", repo, "--allow-dirty", "--network", "host",
        "--build-arg", f"BASE_IMAGE={base_image}", "--push", "--context", str(ROOT), state=state, cwd=ROOT, timeout=3000,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    return Built(done.stdout.strip(), done.stderr, state, f"{repo}:{version}")


@pytest.fixture(scope="module")
def api_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def container(docker_client: docker.DockerClient, built: Built, api_port: int) -> Iterator[docker.models.containers.Container]:
    """The image run as the Deployment runs it: read-only root, tmpfs /tmp, DB mounted read-only."""
    require(SAMPLE_DB.is_file(), f"the bundled sample database {SAMPLE_DB}")
    running = docker_client.containers.run(
        built.tag, detach=True, read_only=True, tmpfs={"/tmp": "rw,size=16m"}, network_mode="host",
        environment={"API_PORT": str(api_port), "API_HOST": "127.0.0.1"},
        volumes={str(SAMPLE_DB): {"bind": "/data/oews.db", "mode": "ro"}},
        name=f"oews-api-test-{uuid.uuid4().hex[:8]}",
    )
    try:
        yield running
    finally:
        running.remove(force=True)


def _wait_for_health(port: int, seconds: float = 120) -> httpx.Response:
    deadline = time.monotonic() + seconds
    while True:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_build_push_prints_and_records_the_digest(built: Built, registry: str) -> None:
    assert built.pinned.startswith(f"{registry}/{REPOSITORY}@sha256:")
    recorded = json.loads((built.state / "images.json").read_text())[f"{registry}/{REPOSITORY}"]
    assert recorded["ref"] == built.pinned
    assert "Step 1/" in built.stderr  # build progress reaches the operator
    assert f"{registry}/{REPOSITORY}: layer " in built.stderr  # per-layer push progress
    audit = [json.loads(line) for line in (built.state / "audit.jsonl").read_text().splitlines()]
    assert audit[-1]["command"] == "image build" and audit[-1]["result"] == "ok"


def test_image_config_is_safe_by_default(docker_client: docker.DockerClient, built: Built) -> None:
    config = docker_client.images.get(built.tag).attrs["Config"]
    assert config["User"] == "1000:1000"
    assert "8000/tcp" in config["ExposedPorts"]
    assert config["Cmd"] == ["python", "-m", "oews_api"]
    assert "urllib" in " ".join(config["Healthcheck"]["Test"]) and "curl" not in " ".join(config["Healthcheck"]["Test"])
    labels = config["Labels"]
    version = built.tag.rsplit(":", 1)[1]
    assert labels["org.opencontainers.image.version"] == version
    revision = labels["org.opencontainers.image.revision"]
    recorded = json.loads((built.state / "images.json").read_text())
    assert revision == next(iter(recorded.values()))["revision"]
    if (ROOT / ".git").exists():  # the label names a real commit of this repository
        commit = revision.removesuffix("-dirty")
        assert subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e", f"{commit}^{{commit}}"]).returncode == 0
    assert labels["org.opencontainers.image.source"].startswith("http")


def test_no_database_tests_or_secrets_baked_in(container: docker.models.containers.Container) -> None:
    """Only the mounted /data/oews.db: no database, test file or config inside the image itself."""
    script = (
        "import pathlib, sys; roots = ['/opt/venv', '/build', '/tmp'];"
        "found = [str(p) for r in roots if pathlib.Path(r).exists() for p in pathlib.Path(r).rglob('*')"
        " if p.suffix in ('.db', '.sqlite') or p.name in ('oewsctl.yaml', 'conftest.py', '.env', 'uv.lock')];"
        "print('\\n'.join(found)); sys.exit(1 if found else 0)"
    )
    result = container.exec_run(["python", "-c", script])
    assert result.exit_code == 0, result.output.decode()


def test_container_serves_health_read_only_as_uid_1000(container: docker.models.containers.Container, api_port: int) -> None:
    response = _wait_for_health(api_port)
    assert response.status_code == 200, response.text
    assert response.json()["database"]["sha256"] == hashlib.sha256(SAMPLE_DB.read_bytes()).hexdigest()
    uid = container.exec_run(["python", "-c", "import os; print(os.getuid(), os.getgid())"])
    assert uid.output.decode().split() == ["1000", "1000"]
    write = container.exec_run(["python", "-c", "open('/opt/venv/x', 'w')"])
    assert write.exit_code != 0 and b"Read-only file system" in write.output
    assert container.exec_run(["python", "-c", "open('/tmp/x', 'w').write('ok')"]).exit_code == 0


def test_healthcheck_command_passes_inside_the_container(docker_client: docker.DockerClient, container: docker.models.containers.Container,
                                                         built: Built, api_port: int) -> None:
    _wait_for_health(api_port)
    test = docker_client.images.get(built.tag).attrs["Config"]["Healthcheck"]["Test"]
    assert test[0] == "CMD"
    result = container.exec_run(test[1:])
    assert result.exit_code == 0, result.output


def test_registry_holds_the_image_and_it_pulls_back_by_digest(docker_client: docker.DockerClient, built: Built, registry: str) -> None:
    digest = built.pinned.split("@", 1)[1]
    manifest = httpx.get(f"http://{registry}/v2/{REPOSITORY}/manifests/{digest}",
                         headers={"Accept": f"{MANIFEST_V2}, {OCI_MANIFEST}"}, timeout=30)
    assert manifest.status_code == 200
    assert manifest.headers["docker-content-digest"] == digest
    local = docker_client.images.get(built.tag)
    assert manifest.json()["config"]["digest"] == local.id  # the registry holds exactly this image
    pulled = docker_client.images.pull(built.pinned)
    assert pulled.id == local.id


def test_push_of_a_missing_image_says_build_first(tmp_path: Path, registry: str) -> None:
    done = oewsctl("image", "push", "--tag", f"{registry}/never-built:1.0", state=tmp_path)
    assert done.returncode == 1
    assert "there is no local image" in done.stderr and "oewsctl image build" in done.stderr


def test_push_to_an_unreachable_registry_is_clear(docker_client: docker.DockerClient, built: Built, tmp_path: Path) -> None:
    ref = f"127.0.0.1:{free_port()}/{REPOSITORY}:unreachable"
    docker_client.images.get(built.tag).tag(ref)
    try:
        done = oewsctl("image", "push", "--tag", ref, state=tmp_path, timeout=120)
    finally:
        docker_client.images.remove(ref)
    assert done.returncode == 1
    assert "is unreachable" in done.stderr and "hint:" in done.stderr
    assert not (tmp_path / "images.json").exists()  # nothing recorded for a failed push


def test_push_without_login_is_denied_clearly(docker_client: docker.DockerClient, built: Built, auth_registry: str, tmp_path: Path) -> None:
    ref = f"{auth_registry}/{REPOSITORY}:denied"
    docker_client.images.get(built.tag).tag(ref)
    try:
        done = oewsctl("image", "push", "--tag", ref, state=tmp_path, env={"DOCKER_CONFIG": str(tmp_path)}, timeout=120)
    finally:
        docker_client.images.remove(ref)
    assert done.returncode == 1
    assert f"registry {auth_registry} denied" in done.stderr and "docker login" in done.stderr
