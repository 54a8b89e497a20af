"""`image build --platform linux/amd64,linux/arm64 --push` without buildx (Debian's engine).

Each platform is built with the SDK, pushed under a per-architecture tag, and a
manifest list is put under the requested tags; the real registry must then serve
one tag that resolves to both platforms, and the engine must pull the arm64 image
from it as the Pi would.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import docker
import httpx
import pytest

from oewsctl.clients.registry import MANIFEST_LIST, MANIFEST_V2, OCI_INDEX, OCI_MANIFEST
from tests.fixtures.docker import oewsctl

pytestmark = pytest.mark.docker


@pytest.fixture
def small_context(tmp_path: Path) -> Path:
    """A committed build context whose image is one static file on scratch."""
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /hello.txt\n")
    (context / "hello.txt").write_text(f"hello {uuid.uuid4()}\n")  # a fresh layer every run
    (context / "pyproject.toml").write_text('[project]\nname = "tiny"\nversion = "0.0.1"\n')
    git = ["git", "-C", str(context), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "tiny"]):
        subprocess.run([*git, *args], check=True, capture_output=True)
    return context


def _manifest(registry: str, repository: str, reference: str) -> httpx.Response:
    accept = ", ".join((MANIFEST_LIST, OCI_INDEX, MANIFEST_V2, OCI_MANIFEST))
    response = httpx.get(f"http://{registry}/v2/{repository}/manifests/{reference}", headers={"Accept": accept}, timeout=30)
    assert response.status_code == 200, response.text
    return response


def _config(registry: str, repository: str, manifest: dict[str, object]) -> dict[str, object]:
    digest = manifest["config"]["digest"]  # type: ignore[index]
    return httpx.get(f"http://{registry}/v2/{repository}/blobs/{digest}", timeout=30, follow_redirects=True).json()


def test_one_tag_serves_amd64_and_arm64(docker_client: docker.DockerClient, registry: str, small_context: Path, tmp_path: Path) -> None:
    repository = "oews-multiarch-test"
    tag = f"t{uuid.uuid4().hex[:8]}"
    done = oewsctl("image", "build", "--platform", "linux/amd64,linux/arm64", "--tag", f"{registry}/{repository}:{tag}",
                   "--push", "--context", str(small_context), state=tmp_path, cwd=small_context, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    listed = _manifest(registry, repository, tag)
    document = listed.json()
    assert document["mediaType"] == MANIFEST_LIST
    assert done.stdout.strip() == f"{registry}/{repository}@{listed.headers['docker-content-digest']}"
    platforms = {(m["platform"]["os"], m["platform"]["architecture"]): m["digest"] for m in document["manifests"]}
    assert set(platforms) == {("linux", "amd64"), ("linux", "arm64")}
    for (_, arch), digest in platforms.items():
        child = _manifest(registry, repository, digest).json()
        assert _config(registry, repository, child)["architecture"] == arch  # each image really is that architecture

    recorded = json.loads((tmp_path / "images.json").read_text())[f"{registry}/{repository}"]
    assert recorded["platforms"] == ["linux/amd64", "linux/arm64"]

    pulled = docker_client.images.pull(f"{registry}/{repository}", tag=tag, platform="linux/arm64")
    assert pulled.attrs["Architecture"] == "arm64"  # what the Pi gets from the shared tag
    for leftover in (f"{tag}-amd64", f"{tag}-arm64", tag):
        docker_client.images.remove(f"{registry}/{repository}:{leftover}", force=True)
