"""``oewsctl deploy``: apply the rendered manifests, wait for the rollout, roll back on failure, smoke check.

Plan: one step per object in dependency order (create or server-side apply, ``unchanged``
when the live object already matches), then the rollout wait (on a stalled rollout the
previous revision is restored automatically unless ``--no-rollback``), then ``/health``
through the Service via the API server's proxy, expecting the database SHA-256 if given.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from oewsctl.errors import OewsctlError, UsageError
from oewsctl.images import recorded_image
from oewsctl.kube import Kube, apply_order, apply_step, diff, kube_for, ref, wait_until
from oewsctl.plan import Plan, Step
from oewsctl.registry import ImageRef
from oewsctl.render import render
from oewsctl.rollout import Echo, RolloutFailed, Target, echo_for, failure_report, newest_replicaset, undo, wait_rollout

if TYPE_CHECKING:
    from oewsctl.config import Config
    from oewsctl.runner import RunContext

SMOKE_TIMEOUT = 60.0


@dataclass(frozen=True)
class DeployOptions:
    image: str | None = None
    wait: bool = True
    rollback: bool = True
    expect_sha256: str | None = None


def change_cause(image: str) -> str:
    """What ``rollout history`` shows for this deploy."""
    return f"oewsctl deploy --image {image}"


def resolve_image(config: Config, image: str | None = None) -> str:
    """``--image`` as given; else ``app.image``, pinned to the digest ``image push`` recorded
    here when ``app.image`` names no tag (so every node runs exactly the pushed build)."""
    if image:
        ImageRef.parse(image)
        return image
    ref = ImageRef.parse(config.app.image)
    if ref.tag is None and ref.digest is None:
        return recorded_image(config.app.image) or config.app.image
    return config.app.image


def manifests(config: Config, image: str | None = None) -> list[dict[str, Any]]:
    """The rendered objects in apply order, with the resolved image and change cause filled in."""
    chosen = resolve_image(config, image)
    return apply_order(render(config, image=chosen, change_cause=change_cause(chosen)))


def wait_or_roll_back(kube: Kube, target: Target, image: str, *, rollback: bool, echo: Echo | None = None) -> str:
    """Wait for the rollout; on failure restore the previous revision (unless told not to) and fail."""
    try:
        return wait_rollout(kube, target, echo=echo)
    except RolloutFailed as failed:
        report = failure_report(kube, target, newest_replicaset(kube, target))
        details = "".join(f"\n  {line}" for line in report)
        if not rollback:
            raise RolloutFailed(f"rollout of {image} failed: {failed.message}{details}",
                                hint="left as is (--no-rollback); go back with: oewsctl rollout undo") from None
        try:
            outcome = undo(kube, target, 0)
        except OewsctlError as exc:
            raise RolloutFailed(f"rollout of {image} failed: {failed.message}{details}",
                                hint=f"automatic rollback impossible: {exc.message}") from None
        if echo is not None:
            echo(f"rollout failed; {outcome}")
        try:
            wait_rollout(kube, target, echo=echo)
        except RolloutFailed as again:
            raise RolloutFailed(f"{image} never became ready ({failed.message}); {outcome}, but that rollout failed too: {again.message}{details}",
                                hint="the API may be down: check `oewsctl rollout status` and `kubectl -n "
                                f"{target.namespace} get pods` now") from None
        raise RolloutFailed(f"{image} never became ready ({failed.message}); {outcome}{details}",
                            hint="the previous version is serving again; fix the image (see the pod lines above) and deploy again") from None


def smoke_check(kube: Kube, target: Target, expect_sha256: str | None) -> str:
    """``/health`` through the Service proxy: status ok and, if given, the expected database SHA-256."""
    seen: dict[str, Any] = {}

    def check() -> tuple[bool, str]:
        try:
            body = json.loads(kube.proxy_get("services", target.name, target.namespace, "/health", port="http"))
        except (OewsctlError, ValueError) as exc:
            return False, f"/health not answering yet ({getattr(exc, 'message', exc)})"
        seen.update(body if isinstance(body, dict) else {})
        status = seen.get("status")
        return status == "ok", f"/health status {status!r}"

    wait_until(check, what=f"/health on service {target.namespace}/{target.name}", timeout=SMOKE_TIMEOUT)
    sha = str((seen.get("database") or {}).get("sha256", ""))
    if expect_sha256 and sha.lower() != expect_sha256.lower():
        raise OewsctlError(
            f"/health reports database sha256 {sha or '(none)'}, expected {expect_sha256}",
            hint="the pods serve another database file: run `oewsctl db status` and `oewsctl db update FILE`",
        )
    return f"/health ok, database sha256 {sha[:16]}…" if sha else "/health ok"


def deploy_plan(config: Config, options: DeployOptions) -> Plan:
    """Every step of a deploy, built without touching the cluster."""
    if options.expect_sha256 and len(options.expect_sha256) != 64:
        raise UsageError(f"--expect-db-sha256 must be 64 hex digits, got {len(options.expect_sha256)} characters")
    image = resolve_image(config, options.image)
    target = Target.of(config)
    plan = Plan("deploy")
    plan.extend([apply_step(obj) for obj in manifests(config, image)])
    if not options.wait:
        return plan
    plan.add(Step(
        f"wait for the rollout of {target} ({image})",
        action=lambda ctx: wait_or_roll_back(kube_for(ctx), target, image, rollback=options.rollback, echo=echo_for(ctx)),
        detail="until every replica is updated and available; a stalled rollout is "
        + ("rolled back to the previous revision" if options.rollback else "left as is (--no-rollback)"),
    ))
    plan.add(Step(
        f"smoke check: GET /health through service {target.namespace}/{target.name}",
        action=lambda ctx: smoke_check(kube_for(ctx), target, options.expect_sha256),
        detail="via the API server's service proxy; expects status ok"
        + (f" and database sha256 {options.expect_sha256}" if options.expect_sha256 else ""),
    ))
    return plan


def live_diff(config: Config, image: str | None = None) -> str:
    """The diff of every rendered object against the live one (``--dry-run``)."""
    kube = Kube.from_config(config)
    try:
        parts = [diff(kube.live(obj), obj) for obj in manifests(config, image)]
    finally:
        kube.close()
    changed = [part for part in parts if part]
    return "\n".join(changed) if changed else "(no differences: the live objects already match)"
