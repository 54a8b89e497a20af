"""Check before change: the steps that prove a plan's :class:`~oewsctl.core.plan.Needs` are met.

The runner runs them after taking the lock and before the plan's first step; each one reaches
its target with the run's real credentials (an authenticated API call, an SSH login plus
``sudo -n true``, a registry manifest request, a Key Vault listing). The first that fails ends
the run with its error (a missing kubeconfig stays exit 2) and the note that nothing was changed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from oewsctl.core.plan import Needs, Step

if TYPE_CHECKING:
    from collections.abc import Callable

    from oewsctl.core.context import RunContext


def _kube(ctx: RunContext) -> str:
    kube = ctx.kube
    with kube.errors("check the Kubernetes API"):
        kube.get("v1", "Namespace", "kube-system")
    return f"context {kube.context!r} at {kube.host}"


def _node(node: str) -> Callable[[RunContext], str]:
    def check(ctx: RunContext) -> str:
        ctx.ssh.check(node, ["true"], sudo=True, what="passwordless sudo (sudo -n true)")
        return "login and sudo ok"

    return check


def _registry(reference: str) -> Callable[[RunContext], str]:
    def check(ctx: RunContext) -> str:
        from oewsctl.clients.registry import RegistryClient, credentials, denied
        from oewsctl.core.image_ref import ImageRef

        ref = ImageRef.parse(reference)
        found = credentials(ref)
        with RegistryClient(ref.registry, found) as registry:
            if not registry.can_pull(ref.repository, ref.tag or ref.digest or "latest"):
                raise denied(ref.registry, ref.repository, "the credentials were refused" if found else "no credentials (docker login or $GHCR_TOKEN)")
        return f"{ref.registry} answers"

    return check


def _keyvault(make: Callable[[], Any]) -> Callable[[RunContext], str]:
    def check(ctx: RunContext) -> str:
        vault = make()
        vault.list()
        return f"{vault.host} answers"

    return check


def preflight_steps(needs: Needs) -> list[Step]:
    """One read-only check step per target the plan will reach."""
    steps = []
    if needs.kube:
        steps.append(Step("check: the Kubernetes API accepts the kubeconfig's credentials", action=_kube,
                          detail="GET /api/v1/namespaces/kube-system (cluster.kubeconfig, context cluster.name)"))
    steps += [Step("check: SSH login and passwordless sudo", node=node, action=_node(node), detail="ssh, then sudo -n true")
              for node in needs.nodes]
    if needs.registry:
        steps.append(Step(f"check: the registry accepts the credentials for {needs.registry}", action=_registry(needs.registry),
                          detail="HEAD /v2/<repository>/manifests/<tag> with $GHCR_TOKEN or the docker login"))
    if needs.keyvault is not None:
        steps.append(Step("check: Azure Key Vault answers and the credential may list secrets", action=_keyvault(needs.keyvault),
                          detail="list secret properties (names only, never values)"))
    return steps
