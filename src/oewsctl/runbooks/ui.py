"""``oewsctl ui install|token|open``: Headlamp, the Kubernetes web UI, on the monitoring node.

The Kubernetes Dashboard project was archived in January 2026 and Kubernetes' docs point to
Headlamp (kubernetes-sigs). It is installed by a k3s HelmChart (pinned chart, Pi-sized, no
Ingress). Headlamp acts with the token its user logs in with, so access is a matter of which
ServiceAccount the token belongs to: ``headlamp-viewer`` (ClusterRole ``view``: everything but
Secrets, read-only) by default; ``headlamp-admin`` (``cluster-admin``) only with ``--admin``.
Tokens come from the TokenRequest API and expire (``ui token --ttl``); no token Secret exists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from oewsctl.clients.kube import Kube
from oewsctl.clients.kube_tokens import MIN_TTL_SECONDS, IssuedToken, request_token
from oewsctl.configuration.schema import Config
from oewsctl.core.errors import UsageError
from oewsctl.core.plan import Needs, Plan, Step
from oewsctl.runbooks import monitoring
from oewsctl.runbooks.kube_steps import apply_step
from oewsctl.runbooks.port_forward import HEADLAMP_RELEASE
from oewsctl.runbooks.render import render_template

if TYPE_CHECKING:
    from oewsctl.core.context import RunContext

CHART_VERSION = "0.45.0"
"""Headlamp chart (image ghcr.io/headlamp-k8s/headlamp:v0.45.0, multi-arch); bump deliberately."""
CHART_TEMPLATE = "monitoring/headlamp.yaml.j2"
ACCESS_TEMPLATE = "monitoring/headlamp-access.yaml.j2"
DEFAULT_TTL = "1h"


@dataclass(frozen=True)
class Access:
    account: str
    cluster_role: str


VIEWER = Access("headlamp-viewer", "view")
ADMIN = Access("headlamp-admin", "cluster-admin")


def access(admin: bool) -> Access:
    return ADMIN if admin else VIEWER


def context(config: Config, admin: bool) -> dict[str, Any]:
    return {
        **monitoring.context(config),
        "headlamp_release": HEADLAMP_RELEASE,
        "headlamp_chart_version": CHART_VERSION,
        "headlamp_access": [{"account": a.account, "cluster_role": a.cluster_role} for a in ((VIEWER, ADMIN) if admin else (VIEWER,))],
    }


def render_access(config: Config, *, admin: bool = False) -> list[dict[str, Any]]:
    """The login ServiceAccounts and their ClusterRoleBindings (viewer; admin too with ``admin``)."""
    return render_template(ACCESS_TEMPLATE, context(config, admin))


def render_chart(config: Config) -> list[dict[str, Any]]:
    """The Headlamp HelmChart (kube-system)."""
    return render_template(CHART_TEMPLATE, context(config, False))


def render_all(config: Config, *, admin: bool = False) -> list[dict[str, Any]]:
    return render_access(config, admin=admin) + render_chart(config)


def _remove_step(api_version: str, kind: str, name: str, namespace: str | None, why: str) -> Step:
    """Delete one object left by an earlier ``--admin`` install; skipped when it is not there."""

    def absent(ctx: "RunContext") -> str | None:
        return "not present" if ctx.kube.get(api_version, kind, name, namespace) is None else None

    where = f"{namespace}/{name}" if namespace else name
    return Step(
        description=f"remove {kind} {where} ({why})",
        action=lambda ctx: "deleted" if ctx.kube.delete(api_version, kind, name, namespace) else "already gone",
        skip_if=absent,
        detail=f"DELETE {api_version} {kind} {where}",
    )


def install_plan(config: Config, *, admin: bool = False) -> Plan:
    """Label the monitoring node, the login accounts, the chart. Without ``admin``, an admin
    account left by an earlier ``--admin`` install is removed (its tokens stop working)."""
    plan = Plan("ui install" + (" --admin" if admin else ""), needs=Needs(kube=True))
    plan.add(monitoring.label_node_step(monitoring.monitoring_node(config)))
    plan.add(apply_step(monitoring.namespace_object()))
    plan.extend([apply_step(obj) for obj in render_access(config, admin=admin)])
    if not admin:
        why = "cluster-admin access only with `ui install --admin`"
        plan.add(_remove_step("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", ADMIN.account, None, why))
        plan.add(_remove_step("v1", "ServiceAccount", ADMIN.account, monitoring.NAMESPACE, why))
    hint = f"kubectl -n kube-system get helmchart {HEADLAMP_RELEASE}; kubectl -n kube-system logs job/helm-install-{HEADLAMP_RELEASE}"
    plan.extend([apply_step(obj, remediation=hint) for obj in render_chart(config)])
    return plan


_TTL_PART = re.compile(r"(\d+)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_ttl(text: str) -> int:
    """``1h``, ``90m``, ``2h30m``, ``1d`` -> seconds; at least 10 minutes (the API server's floor)."""
    spec = text.strip().lower()
    parts = _TTL_PART.findall(spec)
    if not parts or "".join(n + u for n, u in parts) != spec:
        raise UsageError(f"--ttl {text!r} is not a duration", hint="write it like 1h, 90m, 2h30m or 1d")
    seconds = sum(int(n) * _UNIT_SECONDS[u] for n, u in parts)
    if seconds < MIN_TTL_SECONDS:
        raise UsageError(f"--ttl {text} is shorter than 10 minutes", hint="the Kubernetes API refuses tokens shorter than 10m")
    return seconds


def token(kube: Kube, ttl_seconds: int, *, admin: bool = False) -> IssuedToken:
    """A login token for Headlamp from the TokenRequest API, valid ``ttl_seconds``."""
    account = access(admin).account
    hint = "run `oewsctl ui install --admin` first (cluster-admin)" if admin else "run `oewsctl ui install` first"
    return request_token(kube, monitoring.NAMESPACE, account, ttl_seconds, missing_hint=hint)
