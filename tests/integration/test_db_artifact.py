"""The database as an OCI artifact, end to end: `db publish` to real Debian docker-registry servers,
`python -m oews_api.fetch_db` pulling it back (as the init container does), and `db update` /
`rollout undo` / `db rollback` with database.delivery image on the Kubernetes API emulator, whose
pods serve on /health the SHA-256 of what fetch_db really pulled for them.

What an operator notices: the printed reference, the bytes and mode of the fetched file, the one
line and exit code of every refusal with no file left behind, and which database each pod serves.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from oewsctl.clients.registry import OCI_MANIFEST, RegistryClient
from oewsctl.runbooks.db_artifact import fetched_ref
from tests.conftest import DATA_DIR
from tests.fixtures.cli import CliRunner
from tests.fixtures.dbnodes import DbFiles, sha256
from tests.fixtures.docker import serve_registry
from tests.fixtures.kube import KubeCluster

pytestmark = pytest.mark.docker

EXAMPLE = DATA_DIR / "deploy" / "oewsctl.yaml"


def inventory(path: Path, image: str, kubeconfig: Path | None = None) -> Path:
    """The example inventory with delivery image, plain Kubernetes secrets and no pull secret."""
    data = yaml.safe_load(EXAMPLE.read_text())
    data["app"]["image"] = image
    data["app"].pop("image_pull_secret")
    data["secrets"] = {"provider": "kubernetes"}
    data["database"]["delivery"] = "image"
    if kubeconfig is not None:
        data["cluster"]["kubeconfig"] = str(kubeconfig)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def operator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean state dir and docker login state (no credentials) for the CLI runs of one test."""
    monkeypatch.setenv("OEWSCTL_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    monkeypatch.delenv("GHCR_TOKEN", raising=False)
    return tmp_path


def fetch_db(ref: str, out: Path, auth_file: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The init container's command, in its own process."""
    args = [sys.executable, "-m", "oews_api.fetch_db", "--ref", ref, "--out", str(out)]
    args += ["--auth-file", str(auth_file or out.parent / "no-such-auth-file")]
    return subprocess.run(args, capture_output=True, text=True, timeout=60)


def publish(run_cli: CliRunner, config: Path, file: Path, *extra: str) -> str:
    done = run_cli("--config", config, "db", "publish", file, *extra)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.fixture
def storage_registry(registry: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A registry of this test's own whose blobs on disk the test can damage: (address, storage root)."""
    with serve_registry(tmp_path / "reg") as address:
        yield address, tmp_path / "reg" / "data"


def blob_file(storage: Path, digest: str) -> Path:
    hex_digest = digest.removeprefix("sha256:")
    return storage / "docker/registry/v2/blobs/sha256" / hex_digest[:2] / hex_digest / "data"


def test_publish_then_fetch_is_byte_identical_read_only_and_republishing_sends_nothing(
        registry: str, operator: Path, run_cli: CliRunner, db_files: DbFiles) -> None:
    config = inventory(operator / "oewsctl.yaml", f"{registry}/t{operator.name[-8:].lower()}/oews-api")
    ref = publish(run_cli, config, db_files.new)
    assert re.fullmatch(rf"{registry}/t[^@]+/oews-api-db@sha256:[0-9a-f]{{64}}", ref), ref

    repository, digest = ref.split("/", 1)[1].split("@")
    with RegistryClient(registry) as client:
        body, media_type = client.get_manifest(repository, digest)
    manifest = json.loads(body)
    assert media_type == OCI_MANIFEST and manifest["artifactType"] == "application/vnd.oews.db.v1"
    assert [layer["mediaType"] for layer in manifest["layers"]] == ["application/vnd.oews.db.sqlite.v1+zstd"]
    assert manifest["layers"][0]["size"] < db_files.new.stat().st_size / 2  # compressed

    out = operator / "data" / "oews.db"
    out.parent.mkdir()
    done = fetch_db(ref, out)
    assert done.returncode == 0, done.stderr
    assert f"sha256 {sha256(db_files.new)}" in done.stdout
    assert out.read_bytes() == db_files.new.read_bytes()
    assert out.stat().st_mode & 0o777 == 0o444
    assert sorted(p.name for p in out.parent.iterdir()) == ["oews.db"]
    again = fetch_db(ref, out)  # a restarted init container: the file is already right
    assert again.returncode == 0 and "already holds" in again.stdout

    republished = run_cli("--config", config, "db", "publish", db_files.new)
    assert republished.returncode == 0, republished.stderr
    assert republished.stdout.strip() == ref  # same bytes, same manifest, same digest
    assert "layer already there, config already there" in republished.stderr

    raw = publish(run_cli, config, db_files.old, "--compress", "none", "--tag", "plain")
    done = fetch_db(raw, out)  # another release over the first one
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == db_files.old.read_bytes()


def test_fetch_refuses_a_tampered_blob_and_a_wrong_digest_leaving_no_file(
        storage_registry: tuple[str, Path], operator: Path, run_cli: CliRunner, db_files: DbFiles) -> None:
    address, storage = storage_registry
    ref = publish(run_cli, inventory(operator / "oewsctl.yaml", f"{address}/oews-api"), db_files.new)
    digest = ref.split("@")[1]
    out = operator / "data" / "oews.db"
    out.parent.mkdir()

    missing = one_error_line(fetch_db(ref[:-4] + "0000", out))
    assert missing.startswith("fetch_db: error: registry") and "HTTP 404" in missing and f"{out} not written" in missing

    manifest = json.loads(blob_file(storage, digest).read_bytes())
    layer = blob_file(storage, manifest["layers"][0]["digest"])
    data = bytearray(layer.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one bit flipped at rest in the registry's storage
    layer.chmod(0o644)
    layer.write_bytes(bytes(data))
    tampered = one_error_line(fetch_db(ref, out))
    assert f"layer {manifest['layers'][0]['digest']} does not match its digest" in tampered and "tampered or truncated" in tampered
    assert list(out.parent.iterdir()) == []  # no partial file, no temp file

    forged = json.dumps({**manifest, "annotations": {"org.opencontainers.image.version": "forged"}}).encode()
    blob_file(storage, digest).write_bytes(forged)  # the manifest itself replaced under its digest
    wrong = one_error_line(fetch_db(ref, out))
    assert f"manifest {digest} from {address} does not match its digest (tampered or corrupted)" in wrong
    assert list(out.parent.iterdir()) == []


def test_fetch_from_a_login_registry_needs_the_pull_secrets_credentials(
        auth_registry: str, operator: Path, run_cli: CliRunner, db_files: DbFiles) -> None:
    (operator / "docker").mkdir()
    pair = base64.b64encode(b"ops:right-password").decode()
    (operator / "docker" / "config.json").write_text(json.dumps({"auths": {auth_registry: {"auth": pair}}}))  # docker login state
    ref = publish(run_cli, inventory(operator / "oewsctl.yaml", f"{auth_registry}/oews-api"), db_files.new)
    out = operator / "data" / "oews.db"
    out.parent.mkdir()

    refused = one_error_line(fetch_db(ref, out))
    assert f"registry {auth_registry} requires a login to pull oews-api-db, and there are no credentials in" in refused
    assert "(file missing)" in refused and list(out.parent.iterdir()) == []

    wrong = operator / "wrong.json"
    wrong.write_text(json.dumps({"auths": {f"https://{auth_registry}/v1/": {"username": "ops", "password": "wrong"}}}))
    denied = one_error_line(fetch_db(ref, out, wrong))
    assert f"registry {auth_registry} denied the credentials of 'ops' in {wrong}" in denied
    assert list(out.parent.iterdir()) == []

    from oewsctl.clients.registry import dockerconfigjson
    from oewsctl.core.image_ref import ImageRef

    secret = operator / ".dockerconfigjson"  # exactly what `deploy` writes into the pull Secret
    secret.write_bytes(dockerconfigjson(ImageRef.parse(ref)) or b"")
    done = fetch_db(ref, out, secret)
    assert done.returncode == 0, done.stderr
    assert hashlib.sha256(out.read_bytes()).hexdigest() == sha256(db_files.new)
    assert "right-password" not in done.stdout + done.stderr


class FetchingPods:
    """Each new pod runs its fetch-db init container for real (oews_api.fetch_db against the registry)
    and then reports on /health the SHA-256 of the file it fetched."""

    def __init__(self, kube: KubeCluster, workdir: Path) -> None:
        self.workdir = workdir
        self.serves: dict[str, str] = {}
        self._by_uid: dict[str, str] = {}
        kube.add_controller(self._observe)
        (kube.emulator ** 5)["get", re.compile(r"/api/v1/namespaces/[^/]+/pods/[^/]+/proxy/health")] << self._health

    def _observe(self, kube: KubeCluster) -> None:
        from oews_api.fetch_db import main

        serves = {}
        for pod in kube._list("v1/pods"):
            uid = pod["metadata"]["uid"]
            if uid not in self._by_uid:
                ref = fetched_ref(pod["spec"])
                out = self.workdir / uid / "oews.db"
                out.parent.mkdir(parents=True)
                assert ref is not None and main(["--ref", ref, "--out", str(out), "--auth-file", str(out.parent / "none")]) == 0
                self._by_uid[uid] = hashlib.sha256(out.read_bytes()).hexdigest()
            serves[pod["metadata"]["name"]] = self._by_uid[uid]
        self.serves = serves

    def _health(self, request: Any) -> dict[str, Any]:
        pod = request.url.path.split("/pods/")[1].split("/")[0].split(":")[0]
        return {"status": "ok", "database": {"path": "/data/oews.db", "sha256": self.serves.get(pod, ""), "release": "May 2025"}}


def deployed_with(registry: str, operator: Path, run_cli: CliRunner, kube_cluster: KubeCluster, first: Path) -> tuple[Path, FetchingPods, str]:
    """Delivery image on the emulator: ``first`` published, then deployed (smoke check on its SHA-256)."""
    config = inventory(operator / "oewsctl.yaml", f"{registry}/t{operator.name[-8:].lower()}/oews-api", kube_cluster.kubeconfig)
    pods = FetchingPods(kube_cluster, operator / "pods")
    ref = publish(run_cli, config, first)
    kube_cluster.health = {"status": "ok", "database": {"sha256": sha256(first), "release": "May 2025"}}
    deployed = run_cli("--config", config, "deploy", "--image", f"{registry}/oews-api:1.0", "--expect-db-sha256", sha256(first))
    assert deployed.returncode == 0, deployed.stderr
    return config, pods, ref


def test_db_update_in_image_mode_switches_every_pod_and_rollout_undo_brings_the_old_release_back(
        registry: str, operator: Path, run_cli: CliRunner, db_files: DbFiles, kube_cluster: KubeCluster) -> None:
    config, pods, old_ref = deployed_with(registry, operator, run_cli, kube_cluster, db_files.old)

    updated = run_cli("--config", config, "db", "update", db_files.new)
    assert updated.returncode == 0, updated.stderr
    assert f"2/2 ready pods serve sha256 {sha256(db_files.new)[:12]}" in updated.stderr
    deployment = kube_cluster.get("apps/v1/deployments", "oews", "oews-api")
    assert deployment is not None
    new_ref = fetched_ref(deployment["spec"]["template"]["spec"])
    assert new_ref != old_ref and new_ref is not None and new_ref.split("@")[0] == old_ref.split("@")[0]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == f"{registry}/oews-api:1.0"  # image untouched

    status = json.loads(run_cli("--config", config, "--output", "json", "db", "status").stdout)
    assert status["deployment"]["ref"] == new_ref and status["deployment"]["sha256"] == sha256(db_files.new)
    assert [(r["ref"], r["current"]) for r in status["revisions"]] == [(old_ref, False), (new_ref, True)]
    assert {(p["sha256"], p["ref"]) for p in status["pods"] if p["ready"]} == {(sha256(db_files.new), new_ref)}

    redeployed = run_cli("--config", config, "deploy", "--image", f"{registry}/oews-api:1.0")  # a deploy keeps the live release
    assert redeployed.returncode == 0, redeployed.stderr
    assert fetched_ref(kube_cluster.get("apps/v1/deployments", "oews", "oews-api")["spec"]["template"]["spec"]) == new_ref  # type: ignore[index]

    undone = run_cli("--config", config, "rollout", "undo")
    assert undone.returncode == 0, undone.stderr
    kube_cluster.wait_for(lambda: set(pods.serves.values()) == {sha256(db_files.old)} and len(pods.serves) >= 2)
    back = json.loads(run_cli("--config", config, "--output", "json", "db", "status").stdout)
    assert back["deployment"]["ref"] == old_ref
    assert {p["sha256"] for p in back["pods"] if p["ready"]} == {sha256(db_files.old)}

    forward = run_cli("--config", config, "db", "rollback")  # the newest earlier revision with another database
    assert forward.returncode == 0, forward.stderr
    assert f"2/2 ready pods serve sha256 {sha256(db_files.new)[:12]}" in forward.stderr


def test_backup_records_the_artifact_and_restore_points_the_pods_back_at_it(
        registry: str, operator: Path, run_cli: CliRunner, db_files: DbFiles, kube_cluster: KubeCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    config, pods, old_ref = deployed_with(registry, operator, run_cli, kube_cluster, db_files.old)

    monkeypatch.setenv("OEWSCTL_STATE_DIR", str(operator / "cron-host"))  # backups run where `db publish` never ran
    backed = run_cli("--config", config, "backup", "run", "--dest", operator / "backups")
    assert backed.returncode == 0, backed.stderr
    (folder,) = (operator / "backups").iterdir()
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["artifact"] == old_ref and manifest["database"]["sha256"] == sha256(db_files.old)
    assert (folder / "oews.db").read_bytes() == db_files.old.read_bytes()  # the bytes too: the backup outlives the registry's copy
    assert not any("auth" in p.name for p in folder.rglob("*"))  # registry credentials never land in a backup

    assert run_cli("--config", config, "db", "update", db_files.new).returncode == 0
    restored = run_cli("--config", config, "restore", folder.name, "--dest", operator / "backups")
    assert restored.returncode == 0, restored.stderr
    assert f"2/2 ready pods serve sha256 {sha256(db_files.old)[:12]}" in restored.stderr
    deployment = kube_cluster.get("apps/v1/deployments", "oews", "oews-api")
    assert deployment is not None and fetched_ref(deployment["spec"]["template"]["spec"]) == old_ref
    assert set(pods.serves.values()) == {sha256(db_files.old)}
