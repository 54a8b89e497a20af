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


@dataclass(frozen=True)
class Needs:
    """What a plan's steps will reach. The runner checks each one (reachable, credentials accepted)
    before the first step, so a missing kubeconfig or an unreachable node stops a run that has
    changed nothing yet (``db update`` never switches the nodes' files and then finds no cluster)."""

    kube: bool = False
    """The Kubernetes API (cluster.kubeconfig, context cluster.name)."""
    nodes: tuple[str, ...] = ()
    """Nodes reached over SSH: login and passwordless sudo."""
    registry: str | None = None
    """An image reference whose registry must answer and accept the credentials."""
    keyvault: Callable[[], Any] | None = field(default=None, repr=False)
    """Makes the run's Azure Key Vault client: the vault must answer and the credential may list secrets."""


@dataclass
class Plan:
    """An ordered list of steps for one command (``title`` is e.g. ``cluster install``)."""

    title: str
    steps: list[Step] = field(default_factory=list)
    mutating: bool = True
    """State-changing plans take the cluster lock and write an audit line."""
    needs: Needs = field(default_factory=Needs)
    """Checked by the runner before the first step (see :class:`Needs`)."""

    def add(self, step: Step) -> Step:
        self.steps.append(step)
        return step

    def extend(self, steps: Sequence[Step]) -> None:
        self.steps.extend(steps)
