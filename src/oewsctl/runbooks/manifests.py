"""Everything oewsctl applies to the cluster, in three groups: what ``oewsctl render`` lists
(``--only GROUP``) and what ``backup run`` saves from the live cluster.

- ``app``: namespace, Traefik config, Service, Deployment, PDB, Middlewares, Ingress, NetworkPolicy
- ``secrets``: the External Secrets Operator chart, SecretStore and ExternalSecret
  (``secrets.provider: azure-keyvault``; nothing with plain Kubernetes Secrets)
- ``monitoring``: its namespace, the kube-prometheus-stack chart, ServiceMonitor, PrometheusRule
  (the alert rules), the Grafana dashboard and the public probes (``monitoring install``), and the
  Headlamp chart with its read-only login account (``ui install``)

Secrets' values are never rendered: Secrets are written by ``secrets set`` and ``deploy``.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from oewsctl.configuration.schema import Config
from oewsctl.core.errors import UsageError
from oewsctl.runbooks import monitoring, ui
from oewsctl.runbooks.deploy import manifests
from oewsctl.runbooks.render import APP_TEMPLATES, secrets_templates

Group = Literal["app", "secrets", "monitoring"]
GROUPS: tuple[Group, ...] = get_args(Group)


def _has_monitoring(config: Config) -> bool:
    try:
        monitoring.monitoring_node(config)
    except UsageError:
        return False
    return True


def group_objects(config: Config, group: Group, image: str | None = None) -> list[dict[str, Any]]:
    """One group's objects in apply order (``image`` as ``render --image``/``deploy --image``)."""
    if group == "app":
        return manifests(config, image, APP_TEMPLATES)
    if group == "secrets":
        return manifests(config, image, secrets_templates(config))
    return [monitoring.namespace_object(), *monitoring.render_all(config), *ui.render_all(config)]


def listing(config: Config, *, image: str | None = None, only: Group | None = None) -> list[dict[str, Any]]:
    """Everything, or one group. The full listing leaves monitoring out while no node is chosen for it
    (``--only monitoring`` then says why); app and secrets come in the order ``deploy`` applies them."""
    if only is not None:
        return group_objects(config, only, image)
    objects = manifests(config, image)
    if _has_monitoring(config):
        objects += group_objects(config, "monitoring")
    return objects
