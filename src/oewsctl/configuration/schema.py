"""The schema of the inventory file ``oewsctl.yaml`` (pydantic models); loading it is in ``loading``.

Field rules live on the fields (names Kubernetes accepts, host names, e-mail, image
reference); rules that relate several sections are :func:`cross_field_problems`, which works
on the raw data so that ``loading.parse_config`` reports them together with the field
problems, in one go.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from oewsctl.core.errors import UsageError

_LABEL = r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?"
_DNS_LABEL = re.compile(_LABEL)
_DNS_SUBDOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")


def _dns_label(value: str) -> str:
    if not _DNS_LABEL.fullmatch(value):
        raise ValueError(f"{value!r} is not a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters")
    return value


def _dns_subdomain(value: str) -> str:
    if len(value) > 253 or not _DNS_SUBDOMAIN.fullmatch(value):
        raise ValueError(f"{value!r} is not a DNS-1123 name: lowercase letters, digits, '-' and '.', at most 253 characters")
    return value


def _host_name(value: str) -> str:
    if len(value) > 253 or "." not in value or not _DNS_SUBDOMAIN.fullmatch(value):
        raise ValueError(f"{value!r} is not a public host name (RFC 1123, lowercase, with a dot), e.g. api.example.com")
    return value


def _email(value: str) -> str:
    if not _EMAIL.fullmatch(value):
        raise ValueError(f"{value!r} is not an e-mail address, e.g. ops@example.com")
    return value


def _image(value: str) -> str:
    from oewsctl.core.image_ref import ImageRef  # the rule `image build/push` and `deploy` apply

    try:
        ImageRef.parse(value)
    except UsageError as exc:
        raise ValueError(exc.message) from None
    return value


DnsLabel = Annotated[str, AfterValidator(_dns_label)]
DnsSubdomain = Annotated[str, AfterValidator(_dns_subdomain)]
HostName = Annotated[str, AfterValidator(_host_name)]
Email = Annotated[str, AfterValidator(_email)]
ImageName = Annotated[str, AfterValidator(_image)]


PING_URL_PATTERN = r"^https?://(?:[^\s/?#@\[\]]+@)?(?:\[[0-9A-Fa-f:.]+\]|[^\s/?#:@\[\]]+)(?::\d{1,5})?(?:[/?#]\S*)?$"
"""A Healthchecks-style ping URL (``https://hc-ping.com/<uuid>``): http(s), a host (an IPv6 one
in brackets, closed), an optional port, no spaces."""


def ping_url_problem(value: str) -> str | None:
    """Why ``value`` is not a usable ping URL (None if it is): the pattern, then httpx's own parser
    (what the pinger will use). The message never repeats the URL: its path is the check's key."""
    import httpx  # lazy: loading a config must not pull in the HTTP client

    try:
        usable = re.fullmatch(PING_URL_PATTERN, value) is not None and bool(httpx.URL(value).host)
    except (httpx.InvalidURL, ValueError):
        usable = False
    return None if usable else "not an http(s) URL with a host, e.g. https://hc-ping.com/<uuid> (the value is not shown: it holds the check's key)"


def _ping_url(value: str) -> str:
    problem = ping_url_problem(value)
    if problem:
        raise ValueError(problem)
    return value


PingUrl = Annotated[str, AfterValidator(_ping_url)]


K3S_MIN_VERSION = (1, 30)
"""The API pods' ``preStop: sleep`` hook needs PodLifecycleSleepAction, on by default from Kubernetes 1.30."""
_K3S_VERSION = re.compile(r"v(\d+)\.(\d+)\.\d+(?:-rc\d+)?\+k3s\d+")


def _k3s_version(value: str) -> str:
    if not value:
        return value  # the installer's default: the current stable release
    match = _K3S_VERSION.fullmatch(value)
    if match is None:
        raise ValueError(f"{value!r} is not a k3s release tag, e.g. v1.31.4+k3s1 (empty: the installer's default)")
    if (int(match[1]), int(match[2])) < K3S_MIN_VERSION:
        raise ValueError(
            f"{value} is too old: the API pods' preStop sleep hook needs Kubernetes v1.30 or later "
            "(PodLifecycleSleepAction); pin v1.30 or newer, e.g. v1.31.4+k3s1"
        )
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClusterConfig(_Model):
    name: str = "home"
    k3s_version: Annotated[str, AfterValidator(_k3s_version)] = ""
    """Pinned k3s release (INSTALL_K3S_VERSION), v1.30 or later; empty: the installer's default."""
    server: str
    kubeconfig: str = "~/.kube/config"
    firewall: bool = False

    @property
    def kubeconfig_path(self) -> Path:
        return Path(self.kubeconfig).expanduser()


class NodeConfig(_Model):
    name: DnsLabel
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


class RateLimit(_Model):
    """Traefik's limits per client IP, before a request reaches a pod (rendered as Middlewares)."""

    average: int = Field(default=20, ge=1)
    """Requests per second, sustained."""
    burst: int = Field(default=40, ge=1)
    in_flight: int = Field(default=16, ge=1)
    """Requests open at once."""


class AppConfig(_Model):
    namespace: DnsLabel = "oews"
    domain: HostName
    acme_email: Email
    image: ImageName
    replicas: int = Field(default=2, ge=1)
    cors_origins: list[str] = Field(default_factory=list)
    resources: Resources = Resources()
    image_pull_secret: DnsSubdomain | None = None
    """Secret (type dockerconfigjson) the pods pull the image with, e.g. ``ghcr-credentials`` for a private GHCR image."""
    public_docs: bool = False
    """Serve /docs, /redoc and /openapi.json publicly (the API's PUBLIC_DOCS)."""
    rate_limit: RateLimit = RateLimit()


class DatabaseConfig(_Model):
    path: str = "/opt/k3s/storage/oews.db"
    keep_versions: int = Field(default=3, ge=1)
    delivery: Literal["hostpath", "image"] = "hostpath"
    """hostpath: `db push` copies the file to the DB nodes over SSH (hostPath volume);
    image: `db publish` pushes it as an OCI artifact and an init container pulls it (any cluster)."""

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
    ping_url: PingUrl | None = None
    """Healthchecks-style URL pinged by ``secrets status --reconcile`` (its own check, not the backup's)."""

    @model_validator(mode="after")
    def _vault(self) -> "SecretsConfig":
        if self.provider == "azure-keyvault" and not self.vault_url:
            raise ValueError("vault_url is required when provider is azure-keyvault")
        return self


class BackupConfig(_Model):
    dest: str = "/mnt/backup/oews"
    keep: int = Field(default=6, ge=1)
    ping_url: PingUrl | None = None
    """Healthchecks-style dead-man's switch: ``backup run`` pings ``<url>/start``, ``<url>``, ``<url>/fail``."""


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


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _section(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = data.get(name)
    return value if isinstance(value, Mapping) else {}


def cross_field_problems(data: Mapping[str, Any]) -> list[str]:
    """Rules across sections, checked on the raw data (even when some fields are invalid)."""
    nodes = [n for n in _list(data.get("nodes")) if isinstance(n, Mapping)]
    names = [n.get("name") for n in nodes if isinstance(n.get("name"), str)]
    problems = []
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        problems.append(f"nodes: node names must be unique (repeated: {', '.join(dupes)})")
    server = _section(data, "cluster").get("server")
    roles = {n.get("name"): n.get("role") for n in nodes}
    if isinstance(server, str) and names and server not in names:
        problems.append(f"cluster.server: {server!r} is not one of the nodes ({', '.join(names)})")
    elif isinstance(server, str) and roles.get(server) not in (None, "server"):
        problems.append(f"cluster.server: {server!r} must have role server")
    monitoring = _section(data, "monitoring").get("node")
    if isinstance(monitoring, str) and names and monitoring not in names:
        problems.append(f"monitoring.node: {monitoring!r} is not one of the nodes")
    return problems
