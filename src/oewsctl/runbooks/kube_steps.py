"""Plan steps on the Kubernetes API that several runbooks share."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from oewsctl.clients.kube import FIELD_MANAGER, ref
from oewsctl.core.context import RunContext
from oewsctl.core.plan import Step


def apply_step(
    obj: Mapping[str, Any],
    *,
    description: str | None = None,
    detail: str | None = None,
    unchanged_reason: str = "unchanged",
    remediation: str | None = None,
    finish: Callable[[RunContext, Mapping[str, Any]], Mapping[str, Any]] | None = None,
) -> Step:
    """A plan step that creates or applies one rendered object; skipped when the live one matches.

    ``finish(ctx, obj)``, if given, completes the object from live state when the step runs
    (``deploy`` adds the Secret's data hash to the Deployment's pod template).
    """

    def final(ctx: RunContext) -> Mapping[str, Any]:
        return finish(ctx, obj) if finish is not None else obj

    def unchanged(ctx: RunContext) -> str | None:
        return unchanged_reason if ctx.kube.is_unchanged(final(ctx)) else None

    return Step(
        description or f"apply {ref(obj)}",
        action=lambda ctx: ctx.kube.apply(final(ctx)),
        skip_if=unchanged,
        detail=detail or f"server-side apply {obj['apiVersion']} {obj['kind']} (field manager {FIELD_MANAGER})",
        remediation=remediation or "check the object with kubectl describe; `oewsctl render` shows what is applied",
    )
