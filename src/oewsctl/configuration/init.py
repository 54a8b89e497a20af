"""``oewsctl init``: write a commented ``oewsctl.yaml`` from flags or answers to prompts.

The text is validated with the same loader every command uses before it is written;
an existing file is only replaced with ``--force``, and then kept as ``<file>.bak-<time>``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from oewsctl.configuration.loading import parse_config
from oewsctl.core.constants import NODE_SPEC_HELP
from oewsctl.core.errors import UsageError
from oewsctl.core.files import replace_with_backup

NODE_SPEC = re.compile(r"^(?P<name>[^=\s]+)=(?:(?P<user>[^@\s]+)@)?(?P<host>[^/\s]+)(?:/(?P<arch>amd64|arm64))?$")


@dataclass
class NodeSpec:
    name: str
    host: str
    user: str
    arch: str = "amd64"

    @classmethod
    def parse(cls, text: str, default_user: str) -> "NodeSpec":
        match = NODE_SPEC.match(text.strip())
        if match is None:
            raise UsageError(f"--node {text!r}: expected {NODE_SPEC_HELP}")
        return cls(match["name"], match["host"], match["user"] or default_user, match["arch"] or "amd64")


@dataclass
class InitAnswers:
    nodes: list[NodeSpec]
    domain: str
    acme_email: str
    image: str
    cluster_name: str = "home"
    server: str | None = None
    k3s_version: str = ""
    kubeconfig: str = "~/.kube/config"
    ssh_key: str = "~/.ssh/id_ed25519"
    known_hosts: str = "~/.ssh/known_hosts"
    monitoring_node: str | None = None
    secrets_provider: str = "kubernetes"
    vault_url: str | None = None

    @property
    def server_name(self) -> str:
        return self.server or self.nodes[0].name

    @property
    def monitoring(self) -> str | None:
        """The monitoring node: as given, else the first arm64 agent (the Pi in the runbook)."""
        if self.monitoring_node:
            return self.monitoring_node
        return next((n.name for n in self.nodes if n.arch == "arm64" and n.name != self.server_name), None)


def _q(value: str) -> str:
    """A YAML scalar (JSON strings are valid YAML and quote everything that needs it)."""
    return json.dumps(value)


def _node_line(answers: InitAnswers, node: NodeSpec) -> str:
    role = "server" if node.name == answers.server_name else "agent"
    labels = []
    if role == "server":
        labels.append('oews/db: "true"')
    if node.name == answers.monitoring:
        labels.append("oews/role: monitoring")
    label_text = f", labels: {{{', '.join(labels)}}}" if labels else ""
    return f"  - {{name: {node.name}, host: {_q(node.host)}, user: {_q(node.user)}, role: {role}, arch: {node.arch}{label_text}}}"


def render(answers: InitAnswers) -> str:
    """The commented oewsctl.yaml text."""
    nodes = "\n".join(_node_line(answers, n) for n in answers.nodes)
    vault = f"\n  vault_url: {_q(answers.vault_url)}" if answers.vault_url else ""
    monitoring = f"{{node: {answers.monitoring}}}" if answers.monitoring else "{}"
    return f"""\
# oewsctl inventory: which machines make the cluster and how the app runs on them.
# Every oewsctl command reads this file (--config PATH, $OEWSCTL_CONFIG, or ./oewsctl.yaml).
# Check it with `oewsctl doctor`. No secret values belong here.

cluster:
  name: {_q(answers.cluster_name)}        # kubeconfig context name
  k3s_version: {_q(answers.k3s_version)}  # pinned k3s release, e.g. v1.31.4+k3s1; empty = installer default
  server: {answers.server_name}              # runs the k3s server and holds the database
  kubeconfig: {_q(answers.kubeconfig)}    # `oewsctl cluster kubeconfig` merges the cluster here

# One line per machine. role: server|agent, arch: amd64|arm64; user needs passwordless sudo.
# labels: oews/db=true where the database file lives, oews/role=monitoring for Prometheus/Grafana.
nodes:
{nodes}

# Host keys are always checked against known_hosts; new nodes: `oewsctl doctor --accept-new-host-keys`.
ssh: {{key: {_q(answers.ssh_key)}, port: 22, known_hosts: {_q(answers.known_hosts)}}}

app:
  namespace: oews
  domain: {_q(answers.domain)}          # public name served by Traefik with Let's Encrypt
  acme_email: {_q(answers.acme_email)}  # Let's Encrypt account e-mail
  image: {_q(answers.image)}            # image repository, e.g. ghcr.io/you/oews-api
  replicas: 2
  cors_origins: []
  resources: {{requests: {{cpu: 250m, memory: 512Mi}}, limits: {{cpu: "1", memory: 2Gi}}}}
  public_docs: false        # true: /docs, /redoc and /openapi.json are served and routed publicly
  rate_limit: {{average: 20, burst: 40, in_flight: 16}}   # per client IP at Traefik: req/s, burst, open at once

database: {{path: /opt/k3s/storage/oews.db, keep_versions: 3}}   # path on the nodes; versions kept for rollback
# with `delivery: image` in database: the pods pull each release from the registry (`db publish`), no hostPath: any cluster

secrets:
  provider: {answers.secrets_provider}   # azure-keyvault (External Secrets) or kubernetes (plain Secret){vault}
  keys: {{}}                   # ENV_NAME: vault-secret-name

backup: {{dest: /mnt/backup/oews, keep: 6}}   # add ping_url: https://hc-ping.com/<uuid> for a dead-man's switch
monitoring: {monitoring}
"""


def refuse_existing(path: Path, force: bool) -> None:
    """Exit 2 before anything is asked or written when ``path`` exists and ``--force`` was not given."""
    if path.exists() and not force:
        raise UsageError(f"{path} already exists; nothing written", hint="pass --force to replace it (the old file is kept as <file>.bak-<time>), or --config to write elsewhere")


def write(path: Path, answers: InitAnswers) -> Path | None:
    """Validate and write the file (callers check ``refuse_existing`` first); return the backup
    path when an old file was replaced."""
    text = render(answers)
    parse_config(text, source=str(path))
    return replace_with_backup(path, text, 0o644)
