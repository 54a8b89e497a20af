"""The inventory file ``oewsctl.yaml``: schema, loading and validation.

Path resolution: ``--config PATH``, then ``$OEWSCTL_CONFIG``, then ``./oewsctl.yaml``.
Every problem is reported with its path (``nodes[1].role: must be server or agent``)
and the command exits 2.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from oewsctl.errors import UsageError

DEFAULT_CONFIG_NAME = "oewsctl.yaml"
CONFIG_ENV = "OEWSCTL_CONFIG"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClusterConfig(_Model):
    name: str = "home"
    k3s_version: str = ""
    server: str
    kubeconfig: str = "~/.kube/config"
    firewall: bool = False

    @property
    def kubeconfig_path(self) -> Path:
        return Path(self.kubeconfig).expanduser()


class NodeConfig(_Model):
    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    host: str
    user: str = "root"
    port: int | None = Field(default=None, ge=1, le=65535)
    role: str
    arch: str = "amd64"
    labels: dict[str, str] = Field(default_factory=dict)
    taints: list[str] = Field(default_factory=list)

    @field_validator("role")
    @classmethod
    def _role(cls, value: str) -> str:
        if value not in ("server", "agent"):
            raise ValueError("must be server or agent")
        return value

    @field_validator("arch")
    @classmethod
    def _arch(cls, value: str) -> str:
        if value not in ("amd64", "arm64"):
            raise ValueError("must be amd64 or arm64")
        return value


class SSHConfig(_Model):
    key: str | None = "~/.ssh/id_ed25519"
    port: int = Field(default=22, ge=1, le=65535)
    known_hosts: str = "~/.ssh/known_hosts"
    strict_host_keys: bool = True
    connect_timeout: float = Field(default=10.0, gt=0)

    @field_validator("strict_host_keys")
    @classmethod
    def _strict(cls, value: bool) -> bool:
        if not value:
            raise ValueError("must be true: host keys are always verified (use `oewsctl doctor --accept-new-host-keys` for new nodes)")
        return value

    @property
    def key_path(self) -> Path | None:
        return Path(self.key).expanduser() if self.key else None

    @property
    def known_hosts_path(self) -> Path:
        return Path(self.known_hosts).expanduser()


class ResourceAmounts(_Model):
    cpu: str
    memory: str


class Resources(_Model):
    requests: ResourceAmounts = ResourceAmounts(cpu="250m", memory="512Mi")
    limits: ResourceAmounts = ResourceAmounts(cpu="1", memory="2Gi")


class AppConfig(_Model):
    namespace: str = "oews"
    domain: str
    acme_email: str
    image: str
    replicas: int = Field(default=2, ge=1)
    cors_origins: list[str] = Field(default_factory=list)
    resources: Resources = Resources()
    image_pull_secret: str | None = None
    """Secret (type dockerconfigjson) the pods pull the image with, e.g. ``ghcr-credentials`` for a private GHCR image."""


class DatabaseConfig(_Model):
    path: str = "/opt/k3s/storage/oews.db"
    keep_versions: int = Field(default=3, ge=1)

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must be an absolute path on the nodes")
        return value


class SecretsConfig(_Model):
    provider: Literal["azure-keyvault", "kubernetes"] = "kubernetes"
    vault_url: str | None = None
    tenant_id: str | None = None
    keys: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _vault(self) -> "SecretsConfig":
        if self.provider == "azure-keyvault" and not self.vault_url:
            raise ValueError("vault_url is required when provider is azure-keyvault")
        return self


class BackupConfig(_Model):
    dest: str = "/mnt/backup/oews"
    keep: int = Field(default=6, ge=1)


class MonitoringConfig(_Model):
    node: str | None = None


class Config(_Model):
    cluster: ClusterConfig
    nodes: list[NodeConfig] = Field(min_length=1)
    ssh: SSHConfig = SSHConfig()
    app: AppConfig
    database: DatabaseConfig = DatabaseConfig()
    secrets: SecretsConfig = SecretsConfig()
    backup: BackupConfig = BackupConfig()
    monitoring: MonitoringConfig = MonitoringConfig()

    @model_validator(mode="after")
    def _cross_checks(self) -> "Config":
        names = [n.name for n in self.nodes]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"node names must be unique (repeated: {', '.join(dupes)})")
        if self.cluster.server not in names:
            raise ValueError(f"cluster.server {self.cluster.server!r} is not one of the nodes ({', '.join(names)})")
        if self.node(self.cluster.server).role != "server":
            raise ValueError(f"cluster.server {self.cluster.server!r} must have role server")
        if self.monitoring.node and self.monitoring.node not in names:
            raise ValueError(f"monitoring.node {self.monitoring.node!r} is not one of the nodes")
        return self

    def node(self, name: str) -> NodeConfig:
        """The node called ``name``; a UsageError naming the known nodes otherwise."""
        for node in self.nodes:
            if node.name == name:
                return node
        raise UsageError(f"no node named {name!r} in the inventory", hint=f"known nodes: {', '.join(n.name for n in self.nodes)}")

    @property
    def server_node(self) -> NodeConfig:
        return self.node(self.cluster.server)

    @property
    def db_nodes(self) -> list[NodeConfig]:
        """Nodes that keep a copy of the database (label ``oews/db=true``)."""
        return [n for n in self.nodes if n.labels.get("oews/db") == "true"]

    def ssh_port(self, node: NodeConfig) -> int:
        return node.port or self.ssh.port


def resolve_config_path(explicit: Path | None) -> Path:
    """Where the config is read from: flag, then environment, then the working directory."""
    if explicit is not None:
        return explicit
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    return Path(DEFAULT_CONFIG_NAME)


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def format_validation_error(error: ValidationError) -> list[str]:
    """One line per problem: ``nodes[1].role: must be server or agent``."""
    lines = []
    for item in error.errors():
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key (check the spelling)"
        lines.append(f"{_location(tuple(item['loc']))}: {message}")
    return lines


def parse_config(text: str, source: str = DEFAULT_CONFIG_NAME) -> Config:
    """Parse and validate config text; UsageError with every problem on one line each."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise UsageError(f"{source}:{where} is not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise UsageError(f"{source}: expected a mapping with cluster, nodes, app, ...", hint="run `oewsctl init` to write a commented example")
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        problems = format_validation_error(exc)
        raise UsageError(f"{source}: {len(problems)} problem(s)\n" + "\n".join(problems)) from None


def load_config(explicit: Path | None = None) -> Config:
    """Load the inventory from the resolved path (see module docstring)."""
    path = resolve_config_path(explicit)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UsageError(f"config file {path} not found", hint="run `oewsctl init` to create one, or pass --config PATH") from None
    except OSError as exc:
        raise UsageError(f"cannot read config file {path}: {exc.strerror}") from None
    return parse_config(text, source=str(path))
