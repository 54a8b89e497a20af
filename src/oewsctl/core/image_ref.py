"""Image references (``registry/repository[:tag][@digest]``): parsing only, no HTTP client.

Kept apart from :mod:`oewsctl.clients.registry` so that loading a config (which checks
``app.image``) does not import httpx.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from oewsctl.core.errors import UsageError

DOCKER_HUB = "docker.io"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class ImageRef:
    """``registry/repository[:tag][@digest]`` split the way docker splits it."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> ImageRef:
        """Parse an image reference; a bad one is a usage error naming what is wrong."""
        rest, _, digest = text.strip().partition("@")
        slash = rest.rfind("/")
        colon = rest.rfind(":")
        tag = rest[colon + 1 :] if colon > slash else None
        name = rest[:colon] if tag is not None else rest
        first, sep, remainder = name.partition("/")
        if sep and ("." in first or ":" in first or first == "localhost"):
            registry, repository = first, remainder
        else:
            registry, repository = DOCKER_HUB, name if "/" in name else f"library/{name}"
        if not _REPOSITORY.match(repository):
            raise UsageError(
                f"image reference {text!r}: repository {repository!r} must be lowercase letters, digits and . _ - separated by /",
                hint="example: ghcr.io/you/oews-api:0.1.0",
            )
        if tag is not None and not _TAG.match(tag):
            raise UsageError(f"image reference {text!r}: tag {tag!r} is not a valid tag", hint="tags are letters, digits, _ . - (at most 128)")
        if digest and not _DIGEST.match(digest):
            raise UsageError(f"image reference {text!r}: {digest!r} is not a sha256 digest")
        return cls(registry, repository, tag, digest or None)

    @property
    def name(self) -> str:
        """The repository as docker names it (``ghcr.io/you/oews-api``)."""
        return f"{self.registry}/{self.repository}"

    def with_tag(self, tag: str) -> ImageRef:
        return replace(self, tag=tag, digest=None)

    def with_digest(self, digest: str) -> ImageRef:
        return replace(self, tag=None, digest=digest)

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text
