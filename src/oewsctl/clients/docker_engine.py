"""The local Docker engine through the SDK: build one platform, tag, push one tag.

Progress goes to stderr: build ``Step`` lines and one line per pushed layer
always (text mode), the full build output on a TTY or with ``-v``. Engine errors
become one-line OewsctlErrors that say what to do (start dockerd, log in, check
the registry address, build first).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oewsctl.clients.registry import credentials, denied, unreachable
from oewsctl.core.image_ref import ImageRef
from oewsctl.core.console import err_console, interactive
from oewsctl.core.errors import OewsctlError

if TYPE_CHECKING:
    import docker

    from oewsctl.core.context import RunContext

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_AUTH_WORDS = ("denied", "unauthorized", "authentication required", "no basic auth credentials", "forbidden")
_NETWORK_WORDS = ("connection refused", "no such host", "i/o timeout", "dial tcp", "connect: ", "http response to https client", "tls:")
_LAYER_DONE = {"Pushed": "pushed", "Layer already exists": "already in the registry"}


@dataclass(frozen=True)
class BuildRequest:
    """One SDK build: the context, the tag it gets, and the platform it is for."""

    context: Path
    tag: ImageRef
    platform: str
    build_args: dict[str, str] = field(default_factory=dict)
    network: str | None = None
    dockerfile: str = "Dockerfile"

    def argv(self) -> list[str]:
        """The docker CLI equivalent (what --dry-run shows)."""
        argv = ["docker", "build", "--platform", self.platform, "--file", self.dockerfile, "--tag", str(self.tag)]
        if self.network:
            argv += ["--network", self.network]
        for key, value in self.build_args.items():
            argv += ["--build-arg", f"{key}={value}"]
        return [*argv, str(self.context)]


def docker_client(ctx: RunContext) -> docker.DockerClient:
    """The engine client, opened once per run, with a clear error when dockerd is not there."""
    if ctx.docker is not None:
        return ctx.docker
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
    ctx.docker = client
    return client


def _say(ctx: RunContext, line: str, *, always: bool = False) -> None:
    """Progress for people: on a TTY or with -v (``always`` lines also in plain text logs)."""
    if ctx.options.output == "text" and (always or ctx.options.verbose or interactive()):
        err_console.print(line, markup=False, highlight=False)


def _stream_build(ctx: RunContext, request: BuildRequest, *, nocache: bool) -> str:
    """Run one SDK build, streaming its output; returns the image id."""
    stream = docker_client(ctx).api.build(
        path=str(request.context), dockerfile=request.dockerfile, tag=str(request.tag), buildargs=request.build_args,
        network_mode=request.network, platform=request.platform, rm=True, forcerm=True, nocache=nocache, decode=True,
    )
    image_id: str | None = None
    lines: list[str] = []
    pending = ""
    for chunk in stream:
        if "error" in chunk:
            tail = "\n".join(lines[-6:])
            raise OewsctlError(
                f"docker build for {request.platform} failed: {_ANSI.sub('', chunk['error']).strip()}" + (f"\n{tail}" if tail else ""),
                hint="run with -v to see the whole build; builds that install packages may need --network host",
            )
        # The engine sends output in fragments (and colours RUN stderr): show whole lines, plain.
        *complete, pending = (pending + _ANSI.sub("", chunk.get("stream", ""))).split("\n")
        for line in filter(str.strip, complete):
            lines.append(line)
            _say(ctx, f"  {line}", always=line.startswith("Step "))
        image_id = (chunk.get("aux") or {}).get("ID", image_id)
    if image_id is None:
        raise OewsctlError(f"docker build for {request.platform} ended without an image", hint="run with -v to see the build output")
    return image_id


def _arch_matches(attrs: dict[str, Any], platform: str) -> bool:
    wanted = platform.split("/")
    variant = wanted[2] if len(wanted) > 2 else None
    return attrs.get("Os") == wanted[0] and attrs.get("Architecture") == wanted[1] and (variant is None or attrs.get("Variant") == variant)


def build_image(ctx: RunContext, request: BuildRequest) -> str:
    """Build for ``request.platform``; returns the image id.

    The classic builder's cache ignores the platform when two platforms share a
    parent (``FROM scratch``), so a build that comes back with the wrong
    architecture is rebuilt once without the cache; if it is still wrong, the
    base image has no variant for that platform.
    """
    client = docker_client(ctx)
    image_id = _stream_build(ctx, request, nocache=False)
    if not _arch_matches(client.images.get(image_id).attrs, request.platform):
        image_id = _stream_build(ctx, request, nocache=True)
        attrs = client.images.get(image_id).attrs
        if not _arch_matches(attrs, request.platform):
            raise OewsctlError(
                f"the image built for {request.platform} is {attrs.get('Os')}/{attrs.get('Architecture')}",
                hint="the base image has no variant for that platform; use a multi-arch BASE_IMAGE",
            )
    return image_id


def tag_image(ctx: RunContext, source: ImageRef, refs: list[ImageRef]) -> str:
    image = docker_client(ctx).images.get(str(source))
    for ref in refs:
        image.tag(ref.name, ref.tag)
    return "tagged " + ", ".join(ref.tag or "" for ref in refs)


def push_failure(ref: ImageRef, message: str) -> OewsctlError:
    """An engine or buildx push error as auth denied / unreachable / other, each with its fix."""
    lowered = message.lower()
    if any(word in lowered for word in _AUTH_WORDS):
        return denied(ref.registry, f"the push of {ref}", message)
    if any(word in lowered for word in _NETWORK_WORDS):
        return unreachable(ref.registry, message)
    return OewsctlError(f"pushing {ref} failed: {message}", hint="run with -v for the engine's output")


def _auth_config(ref: ImageRef) -> dict[str, str] | None:
    """$GHCR_TOKEN or docker login state, handed to the engine (never printed, never argv)."""
    creds = credentials(ref)
    return {"username": creds.username, "password": creds.secret} if creds else None


def push_image(ctx: RunContext, ref: ImageRef) -> str:
    """Push one tag with a line per layer; returns the manifest digest the registry stored."""
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
                raise push_failure(ref, chunk["error"].strip())
            layer, status = chunk.get("id", ""), chunk.get("status", "")
            total = (chunk.get("progressDetail") or {}).get("total")
            if layer and total:
                sizes[layer] = total
            if layer and (status in _LAYER_DONE or status.startswith("Mounted from")):
                size = f" ({sizes[layer] / 1e6:.1f} MB)" if layer in sizes else ""
                _say(ctx, f"  {ref.name}: layer {layer} {_LAYER_DONE.get(status, status.lower())}{size}", always=True)
            digest = (chunk.get("aux") or {}).get("Digest", digest)
    except APIError as exc:
        raise push_failure(ref, str(exc.explanation or exc)) from exc
    if digest is None:
        raise OewsctlError(f"the engine pushed {ref} but reported no digest", hint="run with -v; check the registry's log")
    return digest
