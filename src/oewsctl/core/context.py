"""What a running plan's steps can reach: the global options, the inventory, and the clients.

Clients (SSH connections, the Kubernetes API, the Docker engine) are opened on first use
and shared by every step of the run; their libraries load only then, so that
``oewsctl --help`` stays fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from oewsctl.core.errors import OewsctlError

if TYPE_CHECKING:
    import docker

    from oewsctl.clients.kube import Kube
    from oewsctl.clients.ssh import SSHPool
    from oewsctl.configuration.schema import Config

OutputMode = Literal["text", "json"]


@dataclass
class Options:
    """Global flags from the root callback (``oewsctl --dry-run --yes --output json -v``)."""

    config_path: Any = None
    dry_run: bool = False
    yes: bool = False
    output: OutputMode = "text"
    verbose: bool = False
    break_lock: bool = False


@dataclass
class RunContext:
    """The inventory, the options, and the clients every step of one run shares."""

    config: "Config | None"
    options: Options = field(default_factory=Options)
    docker: "docker.DockerClient | None" = None
    """The Docker engine client, set by ``clients.docker_engine.docker_client`` on first use."""
    _ssh: "SSHPool | None" = None
    _kube: "Kube | None" = None

    def _inventory(self, what: str) -> "Config":
        if self.config is None:
            raise OewsctlError(f"this step needs the inventory (oewsctl.yaml){what}")
        return self.config

    @property
    def ssh(self) -> "SSHPool":
        """SSH connections to inventory nodes, opened on first use and reused."""
        if self._ssh is None:
            from oewsctl.clients.ssh import SSHPool

            self._ssh = SSHPool(self._inventory(""), verbose=self.options.verbose)
        return self._ssh

    @property
    def kube(self) -> "Kube":
        """The cluster's API client, made on first use and shared by every step."""
        if self._kube is None:
            from oewsctl.clients.kube import Kube

            self._kube = Kube.from_config(self._inventory(" to reach the cluster"))
        return self._kube

    def close(self) -> None:
        if self._ssh is not None:
            self._ssh.close()
            self._ssh = None
