"""The schema of the inventory file ``oewsctl.yaml`` (pydantic models); loading it is in ``loading``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from oewsctl.core.errors import UsageError


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
