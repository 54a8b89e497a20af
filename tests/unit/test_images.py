"""Image build/push plans, references, tags, credentials and the digest record (no engine needed)."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from oewsctl.clients.registry import MANIFEST_LIST, MANIFEST_V2, credentials, manifest_list
from oewsctl.core.image_ref import ImageRef
from oewsctl.core.errors import OewsctlError, UsageError
from oewsctl.runbooks import images
from tests.fixtures.cli import CliRunner

REPO = "127.0.0.1:5000/oews-api"


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                          check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A committed build context: Dockerfile + pyproject.toml (version 9.8.7) + an origin with a token in it."""
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "9.8.7"\n')
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "remote", "add", "origin", "https://someone:ghp_secret@github.com/example/oews-api.git")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "init")
    return tmp_path


def _spec(
    repo: Path, *, tags: list[str] | None = None, platforms: str | None = "linux/amd64", push: bool = False, build_args: dict[str, str] | None = None
) -> images.BuildSpec:
    source = images.read_source(repo, allow_dirty=False)
    return images.BuildSpec(source, images.resolve_refs(tags or [REPO], None, source), images.parse_platforms(platforms),
                            {"BASE_IMAGE": "oews-test-base:bookworm", **(build_args or {})}, "host", push)


# ------------------------------------------------------------------ references and inputs

@pytest.mark.parametrize(("text", "registry", "repository", "tag"), [
    ("ghcr.io/example/oews-api:0.1.0", "ghcr.io", "example/oews-api", "0.1.0"),
    ("127.0.0.1:5000/oews-api", "127.0.0.1:5000", "oews-api", None),
    ("localhost/a/b:latest", "localhost", "a/b", "latest"),
    ("python:3.14-slim", "docker.io", "library/python", "3.14-slim"),
])
def test_parse_reference(text: str, registry: str, repository: str, tag: str | None) -> None:
    ref = ImageRef.parse(text)
    assert (ref.registry, ref.repository, ref.tag) == (registry, repository, tag)


@pytest.mark.parametrize("bad", ["ghcr.io/Example/API:1", "ghcr.io/x/y:bad tag", "ghcr.io/x/y@sha256:abc"])
def test_bad_reference_is_a_usage_error(bad: str) -> None:
    with pytest.raises(UsageError):
        ImageRef.parse(bad)


def test_default_tags_are_version_sha_latest(repo: Path) -> None:
    source = images.read_source(repo, allow_dirty=False)
    sha = _git(repo, "rev-parse", "--short", "HEAD")
    refs = images.resolve_refs([], REPO, source)
    assert [str(r) for r in refs] == [f"{REPO}:9.8.7", f"{REPO}:{sha}", f"{REPO}:latest"]
    assert source.url == "https://github.com/example/oews-api"  # the token in the remote URL never reaches a label


def test_bare_tag_applies_to_app_image_and_one_repository_only(repo: Path) -> None:
    source = images.read_source(repo, allow_dirty=False)
    assert [str(r) for r in images.resolve_refs(["rc1"], "ghcr.io/example/oews-api:old", source)] == ["ghcr.io/example/oews-api:rc1"]
    with pytest.raises(UsageError, match="2 repositories"):
        images.resolve_refs(["ghcr.io/a/x:1", "ghcr.io/b/x:1"], None, source)


def test_dirty_tree_is_refused_unless_allowed(repo: Path) -> None:
    (repo / "Dockerfile").write_text("FROM scratch\nENV X=1\n")
    with pytest.raises(OewsctlError, match="1 uncommitted change") as info:
        images.read_source(repo, allow_dirty=False)
    assert "--allow-dirty" in (info.value.hint or "")
    source = images.read_source(repo, allow_dirty=True)
    assert source.short_sha and source.short_sha.endswith("-dirty")
    assert source.revision and source.revision.endswith("-dirty")


def test_context_without_dockerfile_or_git(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no Dockerfile"):
        images.read_source(tmp_path, allow_dirty=True)
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "pyproject.toml").write_text('[project]\nversion = "1.0"\n')
    with pytest.raises(OewsctlError, match="not a git work tree"):
        images.read_source(tmp_path, allow_dirty=False)
    assert images.default_tags(images.read_source(tmp_path, allow_dirty=True)) == ["1.0", "latest"]


def test_platforms_and_build_args() -> None:
    assert images.parse_platforms("amd64, linux/arm64/v8") == ["linux/amd64", "linux/arm64"]
    assert images.parse_platforms(None) == [images.native_platform()]
    with pytest.raises(UsageError, match="'linux/x86'"):
        images.parse_platforms("linux/x86")
    with pytest.raises(UsageError, match="KEY=VALUE"):
        images.parse_build_args(["BASE_IMAGE"])


def test_several_platforms_need_push(repo: Path) -> None:
    with pytest.raises(UsageError, match="needs --push"):
        _spec(repo, platforms="linux/amd64,linux/arm64", push=False)


# ------------------------------------------------------------------ plans

def test_single_platform_plan_builds_tags_pushes_and_records(repo: Path) -> None:
    spec = _spec(repo, push=True)
    plan = images.build_plan(spec)
    lines = [s.description for s in plan.steps]
    assert lines[0] == f"build {REPO}:9.8.7 for linux/amd64"
    assert lines[1].startswith(f"tag {REPO}:9.8.7 as ")
    assert [line for line in lines if line.startswith("push ")] == [f"push {r}" for r in spec.refs]
    assert lines[-1].startswith("record the pushed digest")
    shown = plan.steps[0].shown()
    for part in ("--platform linux/amd64", "--network host", "--build-arg VERSION=9.8.7", "--build-arg BASE_IMAGE=oews-test-base:bookworm"):
        assert part in shown
    assert plan.mutating


def test_build_without_push_changes_no_registry(repo: Path) -> None:
    plan = images.build_plan(_spec(repo, tags=[f"{REPO}:dev"]))
    assert [s.description for s in plan.steps] == [f"build {REPO}:dev for linux/amd64"]
    assert not plan.mutating


def test_multi_platform_plan_without_buildx_joins_per_arch_images(repo: Path) -> None:
    spec = _spec(repo, tags=[f"{REPO}:1.0", f"{REPO}:latest"], platforms="linux/amd64,linux/arm64", push=True)
    lines = [s.description for s in images.build_plan(spec, buildx=False).steps]
    assert lines == [
        f"build {REPO}:1.0-amd64 for linux/amd64",
        f"build {REPO}:1.0-arm64 for linux/arm64",
        f"push {REPO}:1.0-amd64",
        f"push {REPO}:1.0-arm64",
        "push the manifest list (linux/amd64, linux/arm64) as 1.0, latest",
        "record the pushed digest for deploy (images.json)",
    ]


def test_foreign_platform_with_run_steps_checks_qemu_first(repo: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (repo / "Dockerfile").write_text("FROM scratch\nRUN true\n")
    _git(repo, "commit", "-qam", "run")
    foreign = "linux/arm64" if images.native_platform() == "linux/amd64" else "linux/amd64"
    plan = images.build_plan(_spec(repo, platforms=f"{images.native_platform()},{foreign}", push=True))
    assert [s.description for s in plan.steps][:2] == [f"check qemu emulation for {foreign}", f"build {REPO}:9.8.7-{images.native_platform().split('/')[1]} for {images.native_platform()}"]
    monkeypatch.setattr(images, "BINFMT_DIR", tmp_path)  # a kernel without the handler registered
    with pytest.raises(OewsctlError, match="cannot run here") as info:
        images.check_emulation(foreign)
    assert "update-binfmts --enable" in (info.value.hint or "")


def test_multi_platform_plan_with_buildx_is_one_command(repo: Path) -> None:
    spec = _spec(repo, tags=[f"{REPO}:1.0"], platforms="linux/amd64,linux/arm64", push=True)
    plan = images.build_plan(spec, buildx=True)
    shown = plan.steps[0].shown()
    assert shown.startswith("docker buildx build --platform linux/amd64,linux/arm64")
    assert f"--tag {REPO}:1.0" in shown and "--push" in shown


# ------------------------------------------------------------------ manifest list, record, credentials

def test_manifest_list_describes_each_platform() -> None:
    bodies = [("linux/amd64", b'{"a":1}', MANIFEST_V2), ("linux/arm64", b'{"b":2}', MANIFEST_V2)]
    doc = json.loads(manifest_list(bodies))
    assert doc["mediaType"] == MANIFEST_LIST
    assert [(m["platform"]["architecture"], m["size"]) for m in doc["manifests"]] == [("amd64", 7), ("arm64", 7)]
    assert doc["manifests"][1]["digest"] == "sha256:" + hashlib.sha256(b'{"b":2}').hexdigest()


def test_recorded_digest_is_what_deploy_pins() -> None:
    digest = "sha256:" + "a" * 64
    images.record_digest(REPO, digest, tags=["1.0"], platforms=["linux/amd64"], source=None)
    assert images.recorded_image(f"{REPO}:anything") == f"{REPO}@{digest}"
    assert images.recorded_image("ghcr.io/other/x") is None


def test_token_from_env_for_ghcr_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    monkeypatch.setenv("GHCR_TOKEN", "ghp_from_env")
    creds = credentials(ImageRef.parse("ghcr.io/example/oews-api:1"))
    assert creds is not None and creds.secret == "ghp_from_env" and creds.username == "example"
    assert "ghp_from_env" not in repr(creds)
    assert credentials(ImageRef.parse("registry.example.com/x:1")) is None


def test_docker_login_state_is_used(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("GHCR_TOKEN", raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    pair = base64.b64encode(b"ops:s3cret").decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {"registry.example.com": {"auth": pair}}}))
    creds = credentials(ImageRef.parse("registry.example.com/team/oews-api:1"))
    assert creds is not None and (creds.username, creds.secret) == ("ops", "s3cret")


# ------------------------------------------------------------------ the CLI a tired operator types

@dataclass
class Ran:
    code: int
    stdout: str
    stderr: str


@pytest.fixture
def oewsctl(run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Ran]:
    """Run the CLI entry point in-process (exit code, stdout, stderr as the operator sees them)."""
    def run(*args: str, cwd: Path) -> Ran:
        monkeypatch.chdir(cwd)
        done = run_cli(*args)
        return Ran(done.returncode, done.stdout, done.stderr)

    return run


def test_cli_dry_run_prints_the_plan_and_changes_nothing(repo: Path, oewsctl: Callable[..., Ran]) -> None:
    done = oewsctl("--dry-run", "image", "build", "--tag", REPO, "--push", "--network", "host", cwd=repo)
    assert done.code == 0, done.stderr
    assert f"build {REPO}:9.8.7 for {images.native_platform()}" in done.stderr
    assert f"push {REPO}:latest" in done.stderr
    assert done.stdout == ""
    assert not images.images_path().exists()


def test_dry_run_withholds_secret_looking_build_args(repo: Path, oewsctl: Callable[..., Ran]) -> None:
    """The plan shows BASE_IMAGE (useful) but not NPM_TOKEN / DB_PASSWORD / OPENAI_API_KEY (the audit log's rule)."""
    secrets = {"NPM_TOKEN": "npm_s3cr3t", "DB_PASSWORD": "hunter2", "OPENAI_API_KEY": "sk-abc123"}
    args = [arg for name, value in secrets.items() for arg in ("--build-arg", f"{name}={value}")]
    done = oewsctl("--dry-run", "image", "build", "--tag", REPO, "--build-arg", "BASE_IMAGE=python:3.14-slim", *args, cwd=repo)
    assert done.code == 0, done.stderr
    assert "--build-arg BASE_IMAGE=python:3.14-slim" in done.stderr
    for name, value in secrets.items():
        assert f"--build-arg '{name}=<redacted>'" in done.stderr
        assert value not in done.stderr + done.stdout
    buildx = images.build_plan(_spec(repo, tags=[f"{REPO}:1.0"], platforms="linux/amd64,linux/arm64", push=True, build_args=secrets), buildx=True)
    assert "sk-abc123" not in buildx.steps[0].shown() and "OPENAI_API_KEY=<redacted>" in buildx.steps[0].shown()


def test_cli_refuses_dirty_tree_and_bad_platform(repo: Path, oewsctl: Callable[..., Ran]) -> None:
    (repo / "Dockerfile").write_text("FROM scratch\nENV X=1\n")
    done = oewsctl("image", "build", "--tag", REPO, cwd=repo)
    assert done.code == 1
    assert "uncommitted change" in done.stderr and "hint:" in done.stderr and "--allow-dirty" in done.stderr
    done = oewsctl("image", "build", "--tag", REPO, "--allow-dirty", "--platform", "x86", cwd=repo)
    assert done.code == 2 and "'x86' is not a platform" in done.stderr


def test_pull_secret_payload_uses_the_same_token(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from oewsctl.clients.registry import dockerconfigjson

    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    monkeypatch.setenv("GHCR_TOKEN", "ghp_pull")
    payload = json.loads(dockerconfigjson(ImageRef.parse("ghcr.io/example/oews-api:1")) or b"{}")
    assert base64.b64decode(payload["auths"]["ghcr.io"]["auth"]) == b"example:ghp_pull"
    monkeypatch.delenv("GHCR_TOKEN")
    assert dockerconfigjson(ImageRef.parse("ghcr.io/example/oews-api:1")) is None


def test_untracked_files_the_build_copies_make_the_tree_dirty(repo: Path) -> None:
    """`.dockerignore` ships all of src: an untracked module there changes the image, so the SHA tag must not claim a clean commit."""
    (repo / ".dockerignore").write_text("*\n!pyproject.toml\n!src\n**/__pycache__\n**/*.db\n")
    (repo / "src").mkdir()
    (repo / "src" / "app.py").write_text("x = 1\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "src")
    (repo / "notes.txt").write_text("not in the image\n")
    (repo / "src" / "cache.db").write_text("excluded by .dockerignore\n")
    (repo / "src" / "__pycache__").mkdir()
    (repo / "src" / "__pycache__" / "app.pyc").write_text("")
    assert images.read_source(repo, allow_dirty=False).short_sha == _git(repo, "rev-parse", "--short", "HEAD")

    (repo / "src" / "extra.py").write_text("y = 2\n")
    with pytest.raises(OewsctlError, match=r"0 uncommitted change\(s\) and 1 untracked file\(s\) the build copies \(src/extra.py\)"):
        images.read_source(repo, allow_dirty=False)
    assert (images.read_source(repo, allow_dirty=True).short_sha or "").endswith("-dirty")


@pytest.mark.parametrize(
    ("origin", "label"),
    [
        ("https://someone:ghp_secret@github.com/example/oews-api.git", "https://github.com/example/oews-api"),
        ("git@github.com:example/oews-api.git", "https://github.com/example/oews-api"),
        ("/srv/git/oews-api", None),  # a clone of a local path: the Dockerfile's default source label stays
        (None, None),
    ],
)
def test_source_label_is_a_public_url_without_credentials(origin: str | None, label: str | None) -> None:
    assert images._public_url(origin) == label
