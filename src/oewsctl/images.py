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

import hashlib
import json
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

from oewsctl.console import err_console, interactive
from oewsctl.errors import OewsctlError, UsageError
from oewsctl.lock import state_dir
from oewsctl.plan import Plan, Step
from oewsctl.registry import MANIFEST_LIST, Credentials, ImageRef, RegistryClient, credentials, denied, unreachable

if TYPE_CHECKING:
    import docker

    from oewsctl.runner import RunContext

IMAGES_FILE = "images.json"
KNOWN_PLATFORMS = ("linux/amd64", "linux/arm64", "linux/arm/v7")
_MACHINE_TO_PLATFORM = {"x86_64": "linux/amd64", "amd64": "linux/amd64", "aarch64": "linux/arm64", "arm64": "linux/arm64"}
_AUTH_WORDS = ("denied", "unauthorized", "authentication required", "no basic auth credentials", "forbidden")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_NETWORK_WORDS = ("connection refused", "no such host", "i/o timeout", "dial tcp", "connect: ", "http response to https client", "tls:")


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
    """The repository URL for the OCI source label, never with credentials in it."""
    if not url:
        return None
    url = re.sub(r"^(https?://)[^/@]*@", r"\1", url)
    ssh = re.match(r"^(?:ssh://)?git@([^:/]+)[:/](.+?)(?:\.git)?$", url)
    if ssh:
        return f"https://{ssh.group(1)}/{ssh.group(2)}"
    return url.removesuffix(".git")


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
    changes = _git(context, "status", "--porcelain", "--untracked-files=no") or ""
    dirty = bool(changes)
    if dirty and not allow_dirty:
        count = len(changes.splitlines())
        raise OewsctlError(
            f"the work tree {context} has {count} uncommitted change(s); the image would not match commit {revision[:7]}",
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

    @property
    def all_build_args(self) -> dict[str, str]:
        """The OCI label values from the source, then the operator's --build-arg (which win)."""
        labels = {"VERSION": self.source.version, "REVISION": self.source.revision or "unknown"}
        if self.source.url:
            labels["SOURCE"] = self.source.url
        return {**labels, **self.build_args}


# ---------------------------------------------------------------- the docker engine


def docker_client(ctx: RunContext) -> docker.DockerClient:
    """The engine client, opened once per run, with a clear error when dockerd is not there."""
    cached = ctx.results.get("docker.client")
    if cached is not None:
        return cached
    import docker
    from docker.errors import DockerException

    try:
        client = docker.from_env(timeout=900)
        client.ping()
    except DockerException as exc:
        raise OewsctlError(
            f"cannot reach the Docker engine: {exc}",
            hint="start it (systemctl start docker, or dockerd &) or point DOCKER_HOST at it",
        ) from exc
    ctx.results["docker.client"] = client
    return client


def _say(ctx: RunContext, line: str, *, always: bool = False) -> None:
    """Progress for people: on a TTY or with -v (``always`` lines also in plain text logs)."""
    if ctx.options.output != "text":
        return
    if always or ctx.options.verbose or interactive():
        err_console.print(line, markup=False, highlight=False)


def _build_argv(spec: BuildSpec, ref: ImageRef, platform: str) -> list[str]:
    """The docker CLI equivalent of one SDK build (shown by --dry-run)."""
    argv = ["docker", "build", "--platform", platform, "--file", spec.dockerfile, "--tag", str(ref)]
    if spec.network:
        argv += ["--network", spec.network]
    for key, value in spec.all_build_args.items():
        argv += ["--build-arg", f"{key}={value}"]
    return [*argv, str(spec.source.context)]


def _stream_build(ctx: RunContext, spec: BuildSpec, ref: ImageRef, platform: str, *, nocache: bool) -> str:
    """Run one SDK build, streaming its output; returns the image id."""
    client = docker_client(ctx)
    image_id: str | None = None
    lines: list[str] = []
    stream = client.api.build(
        path=str(spec.source.context), dockerfile=spec.dockerfile, tag=str(ref), buildargs=spec.all_build_args,
        network_mode=spec.network, platform=platform, rm=True, forcerm=True, nocache=nocache, decode=True,
    )
    pending = ""
    for chunk in stream:
        if "error" in chunk:
            tail = "\n".join(lines[-6:])
            raise OewsctlError(
                f"docker build for {platform} failed: {_ANSI.sub('', chunk['error']).strip()}" + (f"\n{tail}" if tail else ""),
                hint="run with -v to see the whole build; builds that install packages may need --network host",
            )
        # The engine sends output in fragments (and colours RUN stderr): show whole lines, plain.
        *complete, pending = (pending + _ANSI.sub("", chunk.get("stream", ""))).split("\n")
        for line in filter(str.strip, complete):
            lines.append(line)
            _say(ctx, f"  {line}", always=line.startswith("Step "))
        image_id = (chunk.get("aux") or {}).get("ID", image_id)
    if image_id is None:
        raise OewsctlError(f"docker build for {platform} ended without an image", hint="run with -v to see the build output")
    return image_id


def _arch_matches(attrs: dict[str, Any], platform: str) -> bool:
    wanted = platform.split("/")
    variant = wanted[2] if len(wanted) > 2 else None
    return attrs.get("Os") == wanted[0] and attrs.get("Architecture") == wanted[1] and (variant is None or attrs.get("Variant") == variant)


def build_image(ctx: RunContext, spec: BuildSpec, ref: ImageRef, platform: str) -> str:
    """Build ``ref`` for ``platform``; returns the image id.

    The classic builder's cache ignores the platform when two platforms share a
    parent (``FROM scratch``), so a build that comes back with the wrong
    architecture is rebuilt once without the cache; if it is still wrong, the
    base image has no variant for that platform.
    """
    client = docker_client(ctx)
    image_id = _stream_build(ctx, spec, ref, platform, nocache=False)
    if not _arch_matches(client.images.get(image_id).attrs, platform):
        image_id = _stream_build(ctx, spec, ref, platform, nocache=True)
        attrs = client.images.get(image_id).attrs
        if not _arch_matches(attrs, platform):
            raise OewsctlError(
                f"the image built for {platform} is {attrs.get('Os')}/{attrs.get('Architecture')}",
                hint="the base image has no variant for that platform; use a multi-arch BASE_IMAGE",
            )
    ctx.results[f"image:{platform}"] = image_id
    return image_id


def _tag_step(ctx: RunContext, source: ImageRef, refs: list[ImageRef]) -> str:
    image = docker_client(ctx).images.get(str(source))
    for ref in refs:
        image.tag(ref.name, ref.tag)
    return "tagged " + ", ".join(ref.tag or "" for ref in refs)


# ---------------------------------------------------------------- pushing


def _push_failure(ref: ImageRef, message: str) -> OewsctlError:
    lowered = message.lower()
    if any(word in lowered for word in _AUTH_WORDS):
        return denied(ref.registry, f"the push of {ref}", message)
    if any(word in lowered for word in _NETWORK_WORDS):
        return unreachable(ref.registry, message)
    return OewsctlError(f"pushing {ref} failed: {message}", hint="run with -v for the engine's output")


def _auth_config(ref: ImageRef) -> dict[str, str] | None:
    creds: Credentials | None = credentials(ref)
    return {"username": creds.username, "password": creds.secret} if creds else None


def _layer_line(ref: ImageRef, layer: str, status: str, sizes: dict[str, int]) -> str:
    size = sizes.get(layer)
    shown = f" ({size / 1e6:.1f} MB)" if size else ""
    return f"  {ref.name}: layer {layer} {status.lower()}{shown}"


def push_image(ctx: RunContext, ref: ImageRef) -> str:
    """Push one tag with per-layer progress; returns the manifest digest the registry stored."""
    from docker.errors import APIError, ImageNotFound

    client = docker_client(ctx)
    try:
        client.images.get(str(ref))
    except ImageNotFound:
        raise OewsctlError(f"there is no local image {ref} to push", hint=f"build it first: oewsctl image build --tag {ref}") from None
    sizes: dict[str, int] = {}
    digest: str | None = None
    try:
        for chunk in client.api.push(ref.name, tag=ref.tag, stream=True, decode=True, auth_config=_auth_config(ref)):
            if "error" in chunk:
                raise _push_failure(ref, chunk["error"].strip())
            layer, status = chunk.get("id", ""), chunk.get("status", "")
            total = (chunk.get("progressDetail") or {}).get("total")
            if layer and total:
                sizes[layer] = total
            if layer and (status in ("Pushed", "Layer already exists") or status.startswith("Mounted from")):
                _say(ctx, _layer_line(ref, layer, status, sizes), always=True)
            digest = (chunk.get("aux") or {}).get("Digest", digest)
    except APIError as exc:
        raise _push_failure(ref, str(exc.explanation or exc)) from exc
    if digest is None:
        raise OewsctlError(f"the engine pushed {ref} but reported no digest", hint="run with -v; check the registry's log")
    ctx.results.setdefault("digests", {})[str(ref)] = digest
    return digest


def arch_tag(ref: ImageRef, platform: str) -> ImageRef:
    """Where one platform's image is pushed before the manifest list joins them (``0.1.0-arm64``)."""
    return ref.with_tag(f"{ref.tag}-{'-'.join(platform.split('/')[1:])}")


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


def push_manifest_list(ctx: RunContext, refs: list[ImageRef], platforms: list[str]) -> str:
    """Join the per-platform images under every tag in ``refs``; returns the list's digest."""
    first = refs[0]
    with RegistryClient(first.registry, credentials(first)) as registry:
        entries = []
        for platform in platforms:
            pushed = ctx.results["digests"][str(arch_tag(first, platform))]
            body, media_type = registry.get_manifest(first.repository, pushed)
            entries.append((platform, body, media_type))
        document = manifest_list(entries)
        digests = {registry.put_manifest(first.repository, ref.tag or "latest", document, MANIFEST_LIST) for ref in refs}
    digest = digests.pop()
    for ref in refs:
        ctx.results.setdefault("digests", {})[str(ref)] = digest
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


def _record_step(refs: list[ImageRef], platforms: list[str], source: Source | None) -> Step:
    def record(ctx: RunContext) -> str:
        digest = ctx.results["digests"][str(refs[0])]
        entry = record_digest(refs[0].name, digest, tags=[ref.tag or "" for ref in refs], platforms=platforms, source=source)
        ctx.results["pushed"] = entry["ref"]
        return entry["ref"]

    return Step(f"record the pushed digest for deploy ({IMAGES_FILE})", action=record, detail=f"write {images_path()}")


# ---------------------------------------------------------------- plans


def _push_steps(refs: list[ImageRef]) -> Iterator[Step]:
    for ref in refs:
        yield Step(
            f"push {ref}", action=lambda ctx, ref=ref: push_image(ctx, ref), detail=f"docker push {ref}",
            remediation=f"check the registry login for {ref.registry} and retry: oewsctl image push --tag {ref}",
        )


def _build_step(spec: BuildSpec, ref: ImageRef, platform: str) -> Step:
    return Step(
        f"build {ref} for {platform}", action=lambda ctx: build_image(ctx, spec, ref, platform),
        detail=shlex.join(_build_argv(spec, ref, platform)),
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


def _buildx_step(spec: BuildSpec) -> Step:
    metadata = Path(tempfile.gettempdir()) / f"oewsctl-buildx-{spec.source.version}.json"
    argv = _buildx_argv(spec, metadata)

    def run(ctx: RunContext) -> str:
        quiet = ctx.options.output != "text"
        done = subprocess.run(argv, cwd=spec.source.context, capture_output=quiet, text=True)
        if done.returncode != 0:
            raise _push_failure(spec.refs[0], (done.stderr or "").strip()[-500:] or f"docker buildx exited {done.returncode}")
        digest = json.loads(metadata.read_text())["containerimage.digest"]
        for ref in spec.refs:
            ctx.results.setdefault("digests", {})[str(ref)] = digest
        return digest

    return Step(f"build and push {spec.refs[0]} for {', '.join(spec.platforms)} with docker buildx", action=run, detail=shlex.join(argv))


def build_plan(spec: BuildSpec, *, buildx: bool = False) -> Plan:
    """The `image build` plan: build (per platform), tag, and with --push push and record."""
    refs, first = spec.refs, spec.refs[0]
    plan = Plan("image build", mutating=spec.push)
    if len(spec.platforms) > 1 and buildx:
        plan.add(_buildx_step(spec))
    elif len(spec.platforms) > 1:
        for platform in spec.platforms:
            plan.add(_build_step(spec, arch_tag(first, platform), platform))
        plan.extend(list(_push_steps([arch_tag(first, platform) for platform in spec.platforms])))
        plan.add(Step(
            f"push the manifest list ({', '.join(spec.platforms)}) as {', '.join(ref.tag or '' for ref in refs)}",
            action=lambda ctx: push_manifest_list(ctx, refs, spec.platforms),
            detail=f"PUT {first.registry}/v2/{first.repository}/manifests/<tag> ({MANIFEST_LIST})",
        ))
    else:
        plan.add(_build_step(spec, first, spec.platforms[0]))
        if len(refs) > 1:
            plan.add(Step(f"tag {first} as {', '.join(ref.tag or '' for ref in refs[1:])}", action=lambda ctx: _tag_step(ctx, first, refs[1:]), detail="docker tag"))
        if spec.push:
            plan.extend(list(_push_steps(refs)))
    if spec.push:
        plan.add(_record_step(refs, spec.platforms, spec.source))
    return plan


def push_plan(refs: list[ImageRef], source: Source | None = None) -> Plan:
    """The `image push` plan: push tags already built here, then record the digest."""
    plan = Plan("image push", mutating=True)
    plan.extend(list(_push_steps(refs)))
    plan.add(_record_step(refs, [], source))
    return plan
