"""Read-only reports made of sections (``oewsctl status``, ``oewsctl monitoring status``).

Each section comes from one source (the Kubernetes API, Prometheus, a TLS handshake, a
folder). A source that fails shows ``unknown (why)``; the others still show.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from oewsctl.core.errors import OewsctlError, UsageError

if TYPE_CHECKING:
    from oewsctl.clients.kube import Kube


@dataclass
class Section:
    """One block of the screen: its lines, its data for ``--output json``, or why it is unknown."""

    title: str
    lines: list[str] = field(default_factory=list)
    data: Any = None
    unknown: str | None = None

    def as_dict(self) -> dict[str, Any]:
        if self.unknown is not None:
            return {"status": "unknown", "reason": self.unknown}
        return {"status": "ok", "data": self.data}


Source = Callable[[], tuple[list[str], Any]]


def reason(exc: Exception) -> str:
    if isinstance(exc, OewsctlError):
        return exc.message
    return str(exc) or type(exc).__name__


def probe(title: str, source: Source) -> Section:
    """Run one source; any failure becomes ``unknown (reason)`` instead of ending the command."""
    try:
        lines, data = source()
    except Exception as exc:  # noqa: BLE001 - every source degrades to "unknown", by design
        return Section(title, unknown=reason(exc))
    return Section(title, lines, data)


def render_text(sections: list[Section]) -> str:
    """The screen: a title per section, indented lines, or ``unknown (why)``."""
    out: list[str] = []
    for section in sections:
        if section.unknown is not None:
            out.append(f"{section.title}: unknown ({section.unknown})")
            continue
        out.append(f"{section.title}:")
        out.extend(f"  {line}" for line in section.lines or ["(none)"])
    return "\n".join(out)


def as_json(sections: list[Section]) -> str:
    return json.dumps({s.title: s.as_dict() for s in sections}, indent=2)


class KubeOnce:
    """The cluster connection for a report's sections, made on first use.

    Once the API is found unreachable or unconfigured, later sections show the same
    reason at once instead of each waiting for its own timeout.
    """

    UNREACHABLE = "cannot reach the Kubernetes API"  # oewsctl.clients.kube's wording for a dead connection

    def __init__(self, factory: "Callable[[], Kube]") -> None:
        self._factory = factory
        self._kube: "Kube | None" = None
        self._down: str | None = None

    def get(self) -> "Kube":
        if self._kube is None:
            self._kube = self._factory()
        return self._kube

    def source(self, body: "Callable[[Kube], tuple[list[str], Any]]") -> Source:
        """A section source that runs ``body`` with the Kube, or fails fast once the API is down."""

        def run() -> tuple[list[str], Any]:
            if self._down is not None:
                raise OewsctlError(self._down)
            try:
                return body(self.get())
            except OewsctlError as exc:
                if isinstance(exc, UsageError) or self.UNREACHABLE in exc.message:
                    self._down = exc.message
                raise

        return run
