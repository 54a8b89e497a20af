"""Plans as data: what an operation will do, built without touching any machine.

Runbook modules (cluster, deploy, database, ...) only *build* plans; ``runner``
is the one place that executes, prints (``--dry-run``) or serialises them.
A step either runs an argv on a node over SSH (``command``) or calls a Python
``action`` (Kubernetes API calls, uploads, local work). Its ``description`` is
the human line shown in progress, dry runs and JSON output.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from oewsctl.core.context import RunContext

Action = Callable[["RunContext"], Any]
"""A Python step body. It returns a short result line (or None) and raises on failure."""

Check = Callable[["RunContext"], "str | None"]
"""Returns a reason such as ``already installed (v1.31.4+k3s1)`` when the step can be skipped."""


@dataclass(frozen=True)
class Step:
    """One ordered unit of work with its human description."""

    description: str
    node: str | None = None
    command: Sequence[str] | None = None
    sudo: bool = False
    stdin: bytes | None = field(default=None, repr=False)
    """Data fed to the remote command's stdin (secrets travel here, never in argv)."""
    action: Action | None = field(default=None, repr=False)
    skip_if: Check | None = field(default=None, repr=False)
    remediation: str | None = None
    detail: str | None = None
    """Extra text for dry runs when the step is an action (e.g. the API call it makes)."""

    def __post_init__(self) -> None:
        if (self.command is None) == (self.action is None):
            raise ValueError(f"step {self.description!r} needs exactly one of command or action")

    def shown(self) -> str:
        """What the step runs, as a dry run prints it (stdin is never shown)."""
        if self.command is not None:
            text = shlex.join(self.command)
            prefix = "sudo " if self.sudo else ""
            suffix = " < (stdin withheld)" if self.stdin is not None else ""
            return f"{prefix}{text}{suffix}"
        return self.detail or ""

    def as_dict(self) -> dict[str, Any]:
        return {"description": self.description, "node": self.node, "runs": self.shown()}


@dataclass
class Plan:
    """An ordered list of steps for one command (``title`` is e.g. ``cluster install``)."""

    title: str
    steps: list[Step] = field(default_factory=list)
    mutating: bool = True
    """State-changing plans take the cluster lock and write an audit line."""

    def add(self, step: Step) -> Step:
        self.steps.append(step)
        return step

    def extend(self, steps: Sequence[Step]) -> None:
        self.steps.extend(steps)
