"""``oewsctl deploy``: apply the rendered manifests, wait for the rollout, roll back on failure, smoke check.

Plan: one step per object in dependency order (server-side apply, ``unchanged`` when the
live object already matches); before the Deployment, the Secrets its pods need (the pull
Secret ``app.image_pull_secret`` from local registry credentials, and ``oews-api-secrets``:
created empty with provider kubernetes, awaited from ESO with azure-keyvault), and the
Deployment carries the Secret's data hash as a pod annotation (and, with ``database.delivery: image``,
the database the live one fetches: :func:`~oewsctl.runbooks.db_image.keep_live_database`); then the
rollout wait (on a stalled rollout the previous revision is restored automatically unless
``--no-rollback``), then ``/health``
through the Service via the API server's proxy, expecting the database SHA-256 if given.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from oewsctl.clients.kube import Kube, apply_order, diff, wait_until
from oewsctl.clients.kube_secrets import ClusterSecrets, Condition
from oewsctl.clients.registry import TOKEN_ENV, RegistryClient, dockerconfigjson, login_hint
from oewsctl.core.image_ref import ImageRef
from oewsctl.core.errors import OewsctlError, UsageError
from oewsctl.core.plan import Needs, Plan, Step
from oewsctl.runbooks.db_image import keep_live_database, planned_deployment
from oewsctl.runbooks.images import recorded_image
from oewsctl.runbooks.kube_steps import apply_step
from oewsctl.runbooks.render import render
from oewsctl.runbooks.rollout import Echo, RolloutFailed, Target, echo_for, failure_report, newest_replicaset, undo, wait_rollout
from oewsctl.runbooks.secrets import APP_SECRET, HASH_ANNOTATION, secret_data_hash

if TYPE_CHECKING:
    from oewsctl.configuration.schema import Config
    from oewsctl.core.context import RunContext

SMOKE_TIMEOUT = 60.0
SECRET_TIMEOUT = 120.0
"""How long deploy waits for External Secrets Operator to create the app Secret."""


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


def manifests(config: Config, image: str | None = None, templates: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    """The rendered objects (all, or those of ``templates``) in apply order, with the resolved image and change cause filled in."""
    chosen = resolve_image(config, image)
    return apply_order(render(config, image=chosen, change_cause=change_cause(chosen), templates=templates))


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


def with_secret_hash(ctx: RunContext, config: Config, deployment: Mapping[str, Any]) -> dict[str, Any]:
    """The Deployment with the pod annotation ``oews/secrets-sha256`` = the live Secret's data hash.

    The same annotation ``secrets rotate`` writes: a deploy after ESO synced new values on its
    own rolls the pods once; a deploy with nothing changed leaves them alone.
    """
    data = ClusterSecrets(ctx.kube, config.app.namespace).secret_data(APP_SECRET)
    obj = copy.deepcopy(dict(deployment))
    if data is not None:
        pod_meta = obj["spec"]["template"].setdefault("metadata", {})
        pod_meta["annotations"] = {**(pod_meta.get("annotations") or {}), HASH_ANNOTATION: secret_data_hash(data)}
    return obj


def app_secret_step(config: Config) -> Step:
    """The Secret the pods need (envFrom) must exist, or the first rollout stalls.

    provider kubernetes: create it empty (values come from ``secrets set``); azure-keyvault:
    ESO creates it from the ExternalSecret applied just before, so wait for it.
    """
    namespace = config.app.namespace
    where = f"Secret {namespace}/{APP_SECRET}"

    def exists(ctx: RunContext) -> str | None:
        data = ClusterSecrets(ctx.kube, namespace).secret_data(APP_SECRET)
        return None if data is None else f"exists ({len(data)} key(s))"

    if config.secrets.provider == "kubernetes":
        def create(ctx: RunContext) -> str:
            ClusterSecrets(ctx.kube, namespace).write_secret_keys(APP_SECRET, {})
            wanted = f" for {', '.join(config.secrets.keys)}" if config.secrets.keys else ""
            return f"created empty: fill it with `oewsctl secrets set NAME --from-stdin`{wanted}"

        return Step(f"{where}: create it empty if missing (the pods read it)", action=create, skip_if=exists,
                    detail=f"POST secrets {APP_SECRET} with no data when absent; values are set with `oewsctl secrets set`")

    def wait(ctx: RunContext) -> str:
        def check() -> tuple[bool, str]:
            found = exists(ctx)
            return found is not None, found or f"not created yet by External Secrets Operator ({Condition.of(ClusterSecrets(ctx.kube, namespace).external_secret(APP_SECRET) or {}, 'Ready').message})"

        try:
            return wait_until(check, what=f"External Secrets Operator to create {where}", timeout=SECRET_TIMEOUT, echo=echo_for(ctx))
        except OewsctlError as exc:
            raise OewsctlError(exc.message, hint="the Deployment was not touched. Check `oewsctl secrets status` (SecretStore "
                               "credentials, vault role, ESO installed by `oewsctl secrets bootstrap`), then deploy again") from None

    return Step(f"wait for External Secrets Operator to create {where} (timeout {SECRET_TIMEOUT:.0f}s)", action=wait, skip_if=exists,
                detail=f"GET secrets/{APP_SECRET} until it exists (ESO syncs it from Key Vault)")


def pull_secret(config: Config, ref: ImageRef) -> dict[str, Any] | None:
    """The ``kubernetes.io/dockerconfigjson`` Secret ``app.image_pull_secret`` from local credentials; None without any."""
    body = dockerconfigjson(ref)
    if body is None:
        return None
    return {
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
        "metadata": {"name": config.app.image_pull_secret, "namespace": config.app.namespace,
                     "labels": {"app.kubernetes.io/part-of": "oews", "app.kubernetes.io/managed-by": "oewsctl"}},
        "data": {".dockerconfigjson": base64.b64encode(body).decode()},
    }


def pull_secret_step(config: Config, image: str) -> Step:
    """Create or update the pull Secret from $GHCR_TOKEN or ``docker login``; the value is never shown."""
    ref = ImageRef.parse(image)
    where = f"Secret {config.app.namespace}/{config.app.image_pull_secret}"

    def missing() -> OewsctlError:
        return OewsctlError(
            f"{ref.registry} needs a login to pull {ref.repository}, and no credentials were found to write {where} (app.image_pull_secret)",
            hint=login_hint(ref.registry) + "; or remove app.image_pull_secret if the image is public",
        )

    def unneeded(ctx: RunContext) -> str | None:
        secret = pull_secret(config, ref)
        if secret is not None:
            return "unchanged" if ctx.kube.is_unchanged(secret) else None
        with RegistryClient(ref.registry) as client:
            if client.can_pull(ref.repository, ref.tag or ref.digest or "latest"):
                return f"no local credentials, and {ref.registry} serves {ref.repository} without one: nothing to write"
        raise missing()

    def write(ctx: RunContext) -> str:
        secret = pull_secret(config, ref)
        if secret is None:
            raise missing()
        return ctx.kube.apply(secret)

    return Step(
        f"{where}: pull credentials for {ref.registry} (from ${TOKEN_ENV} or docker login)",
        action=write,
        skip_if=unneeded,
        detail="server-side apply v1 Secret type kubernetes.io/dockerconfigjson, data .dockerconfigjson <withheld>",
        remediation=login_hint(ref.registry),
    )


def secret_steps(config: Config, image: str) -> list[Step]:
    """What the Deployment's pods need before they can start: the pull Secret (if configured) and the app Secret."""
    steps = [pull_secret_step(config, image)] if config.app.image_pull_secret else []
    return [*steps, app_secret_step(config)]


def deploy_plan(config: Config, options: DeployOptions) -> Plan:
    """Every step of a deploy, built without touching the cluster (except to read the live Deployment's
    database reference with delivery image when no ``db publish`` is recorded here)."""
    if options.expect_sha256 and len(options.expect_sha256) != 64:
        raise UsageError(f"--expect-db-sha256 must be 64 hex digits, got {len(options.expect_sha256)} characters")
    image = resolve_image(config, options.image)
    target = Target.of(config)
    plan = Plan("deploy", needs=Needs(kube=True))
    for obj in manifests(config, image):
        if obj["kind"] == "Deployment":
            deployment, description = planned_deployment(config, obj)
            plan.extend(secret_steps(config, image))
            plan.add(apply_step(deployment, description=description,
                                finish=lambda ctx, o: keep_live_database(ctx.kube, with_secret_hash(ctx, config, o))))
        else:
            plan.add(apply_step(obj))
    if not options.wait:
        return plan
    plan.add(Step(
        f"wait for the rollout of {target} ({image})",
        action=lambda ctx: wait_or_roll_back(ctx.kube, target, image, rollback=options.rollback, echo=echo_for(ctx)),
        detail="until every replica is updated and available; a stalled rollout is "
        + ("rolled back to the previous revision" if options.rollback else "left as is (--no-rollback)"),
    ))
    plan.add(Step(
        f"smoke check: GET /health through service {target.namespace}/{target.name}",
        action=lambda ctx: smoke_check(ctx.kube, target, options.expect_sha256),
        detail="via the API server's service proxy; expects status ok"
        + (f" and database sha256 {options.expect_sha256}" if options.expect_sha256 else ""),
    ))
    return plan


def live_diff(config: Config, image: str | None = None) -> str:
    """The diff of every rendered object against the live one (``--dry-run``; the Deployment keeps the live database)."""
    kube = Kube.from_config(config)
    try:
        objects = [keep_live_database(kube, obj) if obj["kind"] == "Deployment" else obj for obj in manifests(config, image)]
        parts = [diff(kube.live(obj), obj) for obj in objects]
    finally:
        kube.close()
    changed = [part for part in parts if part]
    return "\n".join(changed) if changed else "(no differences: the live objects already match)"
