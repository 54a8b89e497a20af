"""The oews-api image: build and push plans over the Docker SDK, digests recorded for deploy.

One platform is one SDK build. Several platforms use ``docker buildx`` when the
plugin is installed; otherwise each platform is built with the SDK (foreign
architectures run through qemu binfmt), pushed under a per-architecture tag,
and a manifest list joining them is put under every requested tag, so the arm64
Pi and the amd64 nodes pull the same reference. Tags default to the package
VERSION, the git short SHA and ``latest``. A dirty work tree is refused unless
allowed (its SHA tag then says ``-dirty``).
"""

from __future__ import annotations

import fnmatch
import json
import os
import platform as host_platform
import re
import shlex
import shutil
import subprocess
import tempfile
import time
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oewsctl.clients.docker_engine import BuildRequest, build_image, push_failure, push_image, tag_image
from oewsctl.clients.registry import MANIFEST_LIST, RegistryClient, credentials, manifest_list
from oewsctl.core.image_ref import ImageRef
from oewsctl.core.audit import withhold_secret_build_args
from oewsctl.core.errors import OewsctlError, UsageError
from oewsctl.core.plan import Needs, Plan, Step
from oewsctl.core.state import state_dir

if TYPE_CHECKING:
    from oewsctl.core.context import RunContext

IMAGES_FILE = "images.json"
QEMU_HANDLERS = {"linux/amd64": "qemu-x86_64", "linux/arm64": "qemu-aarch64", "linux/arm/v7": "qemu-arm"}
KNOWN_PLATFORMS = tuple(QEMU_HANDLERS)
BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")
_MACHINE_TO_PLATFORM = {"x86_64": "linux/amd64", "amd64": "linux/amd64", "aarch64": "linux/arm64", "arm64": "linux/arm64"}


# ---------------------------------------------------------------- inputs (checked before any plan)


@dataclass(frozen=True)
class Source:
    """What the build context says about itself: version, commit, and where it lives."""

    context: Path
    version: str
    revision: str | None = None
    short_sha: str | None = None
    dirty: bool = False
    url: str | None = None


def _git(context: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(context), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _public_url(url: str | None) -> str | None:
    """The repository URL for the OCI source label, never with credentials in it.

    A clone of a local path (``/srv/git/oews``) has no public URL: None, so the Dockerfile's default stays.
    """
    if not url:
        return None
    url = re.sub(r"^(https?://)[^/@]*@", r"\1", url)
    ssh = re.match(r"^(?:ssh://)?git@([^:/]+)[:/](.+?)(?:\.git)?$", url)
    if ssh:
        return f"https://{ssh.group(1)}/{ssh.group(2)}"
    return url.removesuffix(".git") if re.match(r"^https?://", url) else None


def _dockerignore(context: Path) -> tuple[list[str], list[str]]:
    """``.dockerignore`` as (allow-listed paths after ``*``, exclusion patterns); ``(["."], [])`` without one."""
    try:
        lines = [line.strip() for line in (context / ".dockerignore").read_text().splitlines()]
    except OSError:
        return ["."], []
    patterns = [line for line in lines if line and not line.startswith("#")]
    if "*" not in patterns:
        return ["."], [p for p in patterns if not p.startswith("!")]
    allowed = [p[1:].strip("/") for p in patterns if p.startswith("!")]
    return allowed, [p for p in patterns if p != "*" and not p.startswith("!")]


def _ignored(path: str, patterns: list[str]) -> bool:
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(fnmatch.fnmatch(prefix, pattern.removeprefix("**/")) or fnmatch.fnmatch(prefix, pattern)
               for pattern in patterns for prefix in prefixes)


def untracked_in_build(context: Path) -> list[str]:
    """Untracked (not git-ignored) files the image build would copy: the ``.dockerignore``
    allow-list minus its exclusions. They make a "clean" commit tag lie just like an edit."""
    allowed, excluded = _dockerignore(context)
    listed = _git(context, "ls-files", "--others", "--exclude-standard", "--", *allowed) or ""
    return [path for path in listed.splitlines() if path and not _ignored(path, excluded)]


def read_source(context: Path, *, allow_dirty: bool) -> Source:
    """Read the package version and git state of the build context (read-only)."""
    context = context.resolve()
    if not (context / "Dockerfile").is_file():
        raise UsageError(f"no Dockerfile in {context}", hint="run from the repository root or pass --context DIR")
    try:
        version = tomllib.loads((context / "pyproject.toml").read_text())["project"]["version"]
    except (OSError, KeyError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"cannot read the package version from {context / 'pyproject.toml'}: {exc}") from exc
    revision = _git(context, "rev-parse", "HEAD")
    if revision is None:
        if not allow_dirty:
            raise OewsctlError(
                f"{context} is not a git work tree, so the image could not name its commit",
                hint="build from a git clone, or pass --allow-dirty to build without the SHA tag",
            )
        return Source(context, version)
    changes = (_git(context, "status", "--porcelain", "--untracked-files=no") or "").splitlines()
    untracked = untracked_in_build(context)
    dirty = bool(changes or untracked)
    if dirty and not allow_dirty:
        extra = f" and {len(untracked)} untracked file(s) the build copies ({', '.join(untracked[:3])}{', …' if len(untracked) > 3 else ''})" if untracked else ""
        raise OewsctlError(
            f"the work tree {context} has {len(changes)} uncommitted change(s){extra}; the image would not match commit {revision[:7]}",
            hint="commit (or stash) them first, or pass --allow-dirty (the SHA tag then ends in -dirty)",
        )
    suffix = "-dirty" if dirty else ""
    short = _git(context, "rev-parse", "--short", "HEAD") or revision[:7]
    url = _public_url(_git(context, "config", "--get", "remote.origin.url"))
    return Source(context, version, revision + suffix, short + suffix, dirty, url)


def default_tags(source: Source) -> list[str]:
    """VERSION, git short SHA (when known) and latest."""
    tags = [source.version]
    if source.short_sha:
        tags.append(source.short_sha)
    return [*tags, "latest"]


def _is_bare_tag(text: str) -> bool:
    return "/" not in text and ":" not in text


def needs_default_tags(tags: list[str]) -> bool:
    """True when some reference gets the default tags (so the work tree must be read)."""
    return not tags or any(not _is_bare_tag(text) and ImageRef.parse(text).tag is None for text in tags)


def resolve_refs(tags: list[str], default_image: str | None, source: Source | None) -> list[ImageRef]:
    """The references to build and push.

    Each ``--tag`` is a full reference (``ghcr.io/you/oews-api:1.2``), a repository
    without a tag (gets the default tags) or a bare tag (applied to ``app.image``).
    Without ``--tag``: ``app.image`` with the default tags.
    """
    refs: list[ImageRef] = []
    for text in tags or [None]:
        if text is not None and _is_bare_tag(text):
            refs.append(_default_ref(default_image).with_tag(text))
            continue
        ref = ImageRef.parse(text) if text is not None else _default_ref(default_image)
        if ref.tag is None and source is None:
            raise UsageError(f"{ref} has no tag", hint="give a tag (REPO:TAG) or run from the repository root for VERSION, SHA and latest")
        refs.extend([ref] if ref.tag else [ref.with_tag(tag) for tag in default_tags(source)])  # type: ignore[arg-type]
    names = {ref.name for ref in refs}
    if len(names) > 1:
        raise UsageError(f"--tag values name {len(names)} repositories ({', '.join(sorted(names))}); use one", hint="tags of one build share a repository")
    return list(dict.fromkeys(refs))


def needs_inventory(tags: list[str]) -> bool:
    """True when app.image from oewsctl.yaml is needed (no --tag, or a bare tag)."""
    return not tags or any(_is_bare_tag(text) for text in tags)


def _default_ref(default_image: str | None) -> ImageRef:
    if not default_image:
        raise UsageError("no image repository: app.image is not set", hint="pass --tag REGISTRY/OWNER/oews-api or set app.image in oewsctl.yaml")
    ref = ImageRef.parse(default_image)
    return ImageRef(ref.registry, ref.repository)


def native_platform() -> str:
    return _MACHINE_TO_PLATFORM.get(host_platform.machine().lower(), "linux/amd64")


def parse_platforms(text: str | None) -> list[str]:
    """``linux/amd64,linux/arm64`` (or ``amd64,arm64``) to a checked list; default: this machine's."""
    if not text:
        return [native_platform()]
    found: list[str] = []
    for item in (part.strip().lower() for part in text.split(",") if part.strip()):
        name = item if "/" in item else f"linux/{item}"
        name = "linux/arm64" if name == "linux/arm64/v8" else name
        if name not in KNOWN_PLATFORMS:
            raise UsageError(f"--platform: {item!r} is not a platform this image is built for", hint=f"use one or more of {', '.join(KNOWN_PLATFORMS)}, comma-separated")
        found.append(name)
    return list(dict.fromkeys(found))


def parse_build_args(items: Iterable[str]) -> dict[str, str]:
    args: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
            raise UsageError(f"--build-arg {item!r}: expected KEY=VALUE", hint="example: --build-arg BASE_IMAGE=python:3.14-slim")
        args[key] = value
    return args


def buildx_available() -> bool:
    """True when the docker CLI has the buildx plugin."""
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "buildx", "version"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@dataclass(frozen=True)
class BuildSpec:
    """Everything one `image build` needs, checked; plans are built from it."""

    source: Source
    refs: list[ImageRef]
    platforms: list[str]
    build_args: dict[str, str] = field(default_factory=dict)
    network: str | None = None
    push: bool = False
    dockerfile: str = "Dockerfile"

    def __post_init__(self) -> None:
        if len(self.platforms) > 1 and not self.push:
            raise UsageError(
                f"building for {', '.join(self.platforms)} needs --push: the docker engine cannot hold a multi-platform image locally",
                hint="add --push, or build one platform at a time with --platform",
            )

    def request(self, ref: ImageRef, platform: str) -> BuildRequest:
        """The engine build of ``ref`` for one platform."""
        return BuildRequest(self.source.context, ref, platform, self.all_build_args, self.network, self.dockerfile)

    @property
    def all_build_args(self) -> dict[str, str]:
        """The OCI label values from the source, then the operator's --build-arg (which win)."""
        labels = {"VERSION": self.source.version, "REVISION": self.source.revision or "unknown"}
        if self.source.url:
            labels["SOURCE"] = self.source.url
        return {**labels, **self.build_args}


# ---------------------------------------------------------------- steps' bodies


@dataclass
class Pushed:
    """What an image plan's steps hand on: the digest of every pushed ref, then the ref recorded for deploy."""

    digests: dict[str, str] = field(default_factory=dict)
    pinned: str | None = None
    """``repository@sha256:...`` once the record step ran (printed by ``image build --push``)."""


@dataclass
class ImagePlan(Plan):
    """An ``image build`` / ``image push`` plan and what its steps hand on."""

    pushed: Pushed = field(default_factory=Pushed)


def _push(ctx: RunContext, ref: ImageRef, pushed: Pushed) -> str:
    digest = pushed.digests[str(ref)] = push_image(ctx, ref)
    return digest


def arch_tag(ref: ImageRef, platform: str) -> ImageRef:
    """Where one platform's image is pushed before the manifest list joins them (``0.1.0-arm64``)."""
    return ref.with_tag(f"{ref.tag}-{'-'.join(platform.split('/')[1:])}")


def push_manifest_list(refs: list[ImageRef], platforms: list[str], pushed: Pushed) -> str:
    """Join the per-platform images under every tag in ``refs``; returns the list's digest."""
    first = refs[0]
    with RegistryClient(first.registry, credentials(first)) as registry:
        entries = []
        for platform in platforms:
            body, media_type = registry.get_manifest(first.repository, pushed.digests[str(arch_tag(first, platform))])
            entries.append((platform, body, media_type))
        document = manifest_list(entries)
        digests = {registry.put_manifest(first.repository, ref.tag or "latest", document, MANIFEST_LIST) for ref in refs}
    digest = digests.pop()
    pushed.digests.update({str(ref): digest for ref in refs})
    return digest


# ---------------------------------------------------------------- digests recorded for deploy


def images_path() -> Path:
    return state_dir() / IMAGES_FILE


def record_digest(repository: str, digest: str, *, tags: list[str], platforms: list[str], source: Source | None) -> dict[str, Any]:
    """Remember the last pushed digest per repository (``deploy`` pins ``repository@digest``)."""
    path = images_path()
    try:
        known = json.loads(path.read_text()) if path.exists() else {}
    except ValueError:
        known = {}
    entry = {
        "ref": f"{repository}@{digest}", "digest": digest, "tags": tags, "platforms": platforms,
        "version": source.version if source else None, "revision": source.revision if source else None,
        "pushed": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    known[repository] = entry
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(known, indent=2) + "\n")
    tmp.replace(path)
    return entry


def recorded_image(repository: str) -> str | None:
    """``repository@sha256:...`` of the last image pushed to ``repository`` from this machine."""
    name = ImageRef.parse(repository).name
    try:
        entry = json.loads(images_path().read_text()).get(name)
    except (OSError, ValueError):
        return None
    return entry["ref"] if entry else None


def _record_step(refs: list[ImageRef], platforms: list[str], source: Source | None, pushed: Pushed) -> Step:
    def record(ctx: RunContext) -> str:
        entry = record_digest(refs[0].name, pushed.digests[str(refs[0])], tags=[ref.tag or "" for ref in refs], platforms=platforms, source=source)
        pushed.pinned = entry["ref"]
        return pushed.pinned

    return Step(f"record the pushed digest for deploy ({IMAGES_FILE})", action=record, detail=f"write {IMAGES_FILE} in the oewsctl state dir")


# ---------------------------------------------------------------- plans


def _push_steps(refs: list[ImageRef], pushed: Pushed) -> Iterator[Step]:
    for ref in refs:
        yield Step(
            f"push {ref}", action=lambda ctx, ref=ref: _push(ctx, ref, pushed), detail=f"docker push {ref}",
            remediation=f"check the registry login for {ref.registry} and retry: oewsctl image push --tag {ref}",
        )


def _build_step(spec: BuildSpec, ref: ImageRef, platform: str) -> Step:
    request = spec.request(ref, platform)
    return Step(
        f"build {ref} for {platform}", action=lambda ctx: build_image(ctx, request), detail=shlex.join(withhold_secret_build_args(request.argv())),
        remediation="fix the Dockerfile or context and re-run; cached layers make the retry fast",
    )


def _buildx_argv(spec: BuildSpec, metadata: Path) -> list[str]:
    argv = ["docker", "buildx", "build", "--platform", ",".join(spec.platforms), "--file", spec.dockerfile]
    for ref in spec.refs:
        argv += ["--tag", str(ref)]
    if spec.network:
        argv += ["--network", spec.network]
    for key, value in spec.all_build_args.items():
        argv += ["--build-arg", f"{key}={value}"]
    return [*argv, "--push", "--metadata-file", str(metadata), str(spec.source.context)]


def _buildx_step(spec: BuildSpec, pushed: Pushed) -> Step:
    metadata = Path(tempfile.gettempdir()) / f"oewsctl-buildx-{os.getpid()}.json"
    argv = _buildx_argv(spec, metadata)

    def run(ctx: RunContext) -> str:
        quiet = ctx.options.output != "text"
        done = subprocess.run(argv, cwd=spec.source.context, capture_output=quiet, text=True)
        if done.returncode != 0:
            raise push_failure(spec.refs[0], (done.stderr or "").strip()[-500:] or f"docker buildx exited {done.returncode}")
        digest = json.loads(metadata.read_text())["containerimage.digest"]
        pushed.digests.update({str(ref): digest for ref in spec.refs})
        return digest

    return Step(
        f"build and push {spec.refs[0]} for {', '.join(spec.platforms)} with docker buildx", action=run, detail=shlex.join(withhold_secret_build_args(argv))
    )


def _emulation_steps(spec: BuildSpec) -> Iterator[Step]:
    """Foreign platforms need qemu binfmt when the Dockerfile RUNs anything: check before building."""
    dockerfile = (spec.source.context / spec.dockerfile).read_text()
    if not re.search(r"^\s*RUN\s", dockerfile, re.MULTILINE):
        return
    for platform in spec.platforms:
        if platform != native_platform():
            yield Step(f"check qemu emulation for {platform}", action=lambda ctx, p=platform: check_emulation(p), detail=f"read {BINFMT_DIR}/{QEMU_HANDLERS[platform]}")


def check_emulation(platform: str) -> str:
    """The kernel runs ``platform`` binaries through qemu (binfmt_misc handler enabled)."""
    handler = BINFMT_DIR / QEMU_HANDLERS[platform]
    try:
        enabled = handler.read_text().splitlines()[0].strip() == "enabled"
    except OSError:
        enabled = False
    if not enabled:
        raise OewsctlError(
            f"{platform} binaries cannot run here: {handler} is missing or disabled, so RUN steps would fail",
            hint=("sudo apt install qemu-user-static binfmt-support && sudo mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc; "
                  f"sudo update-binfmts --enable {QEMU_HANDLERS[platform]}"),
        )
    return f"{QEMU_HANDLERS[platform]} enabled"


def build_plan(spec: BuildSpec, *, buildx: bool = False) -> ImagePlan:
    """The `image build` plan: build (per platform), tag, and with --push push and record."""
    refs, first = spec.refs, spec.refs[0]
    plan = ImagePlan("image build", mutating=spec.push, needs=Needs(registry=str(first)) if spec.push else Needs())
    pushed = plan.pushed
    plan.extend(list(_emulation_steps(spec)))
    if len(spec.platforms) > 1 and buildx:
        plan.add(_buildx_step(spec, pushed))
    elif len(spec.platforms) > 1:
        for platform in spec.platforms:
            plan.add(_build_step(spec, arch_tag(first, platform), platform))
        plan.extend(list(_push_steps([arch_tag(first, platform) for platform in spec.platforms], pushed)))
        plan.add(Step(
            f"push the manifest list ({', '.join(spec.platforms)}) as {', '.join(ref.tag or '' for ref in refs)}",
            action=lambda ctx: push_manifest_list(refs, spec.platforms, pushed),
            detail=f"PUT {first.registry}/v2/{first.repository}/manifests/<tag> ({MANIFEST_LIST})",
        ))
    else:
        plan.add(_build_step(spec, first, spec.platforms[0]))
        if len(refs) > 1:
            plan.add(Step(f"tag {first} as {', '.join(ref.tag or '' for ref in refs[1:])}", action=lambda ctx: tag_image(ctx, first, refs[1:]), detail="docker tag"))
        if spec.push:
            plan.extend(list(_push_steps(refs, pushed)))
    if spec.push:
        plan.add(_record_step(refs, spec.platforms, spec.source, pushed))
    return plan


def push_plan(refs: list[ImageRef], source: Source | None = None) -> ImagePlan:
    """The `image push` plan: push tags already built here, then record the digest."""
    plan = ImagePlan("image push", mutating=True, needs=Needs(registry=str(refs[0])))
    plan.extend(list(_push_steps(refs, plan.pushed)))
    plan.add(_record_step(refs, [], source, plan.pushed))
    return plan
