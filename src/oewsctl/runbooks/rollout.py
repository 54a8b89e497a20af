"""Rollouts of the API Deployment with kubectl's semantics: status, history, undo, restart.

- status: ``kubectl rollout status`` (polymorphichelpers/rollout_status.go): not done until
  the controller observed the latest generation and every replica is updated and available;
  a Progressing condition with reason ProgressDeadlineExceeded is a failure.
- history: revisions are the ReplicaSets' ``deployment.kubernetes.io/revision``, each shown
  with its image and ``kubernetes.io/change-cause`` (which ``deploy`` records).
- undo (rollback.go): revision 0 = the previous one; skipped when the template already
  matches; otherwise the chosen ReplicaSet's template (minus ``pod-template-hash``) replaces
  the Deployment's and its annotations are restored.
- restart (objectrestarter.go): sets ``kubectl.kubernetes.io/restartedAt`` on the pod template.
"""

from __future__ import annotations

import copy
import datetime
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from oewsctl.clients.kube import Kube, merge_patch, wait_until
from oewsctl.clients.kube_secrets import Condition
from oewsctl.core.errors import OewsctlError
from oewsctl.core.plan import Needs, Plan, Step
from oewsctl.runbooks.render import APP_NAME, PROGRESS_DEADLINE_SECONDS

if TYPE_CHECKING:
    from oewsctl.configuration.schema import Config
    from oewsctl.core.context import RunContext

APPS = "apps/v1"
REVISION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
TIMED_OUT = "ProgressDeadlineExceeded"
ANNOTATIONS_TO_SKIP = frozenset({
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
})
"""rollback.go's annotationsToSkip: kept from the Deployment, never copied from the ReplicaSet."""

Echo = Callable[[str], None]


class RolloutFailed(OewsctlError):
    """The rollout stalled (progress deadline exceeded) or did not finish in time."""


@dataclass(frozen=True)
class Target:
    """Which Deployment: the API in the app namespace unless told otherwise."""

    namespace: str
    name: str = APP_NAME

    @classmethod
    def of(cls, config: Config) -> Target:
        return cls(config.app.namespace)

    def __str__(self) -> str:
        return f"deployment {self.namespace}/{self.name}"


@dataclass(frozen=True)
class Revision:
    number: int
    image: str
    change_cause: str | None
    replicaset: str
    current: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def get_deployment(kube: Kube, target: Target) -> dict[str, Any]:
    deployment = kube.get(APPS, "Deployment", target.name, target.namespace)
    if deployment is None:
        raise OewsctlError(f"{target} not found", hint="deploy it first: oewsctl deploy")
    return deployment


def _annotations(obj: dict[str, Any]) -> dict[str, str]:
    return dict(obj.get("metadata", {}).get("annotations") or {})


def revision_of(obj: dict[str, Any]) -> int:
    try:
        return int(_annotations(obj).get(REVISION, ""))
    except ValueError:
        return 0


def owned_replicasets(kube: Kube, deployment: dict[str, Any]) -> list[dict[str, Any]]:
    """The Deployment's ReplicaSets (controller owner reference), oldest revision first."""
    meta = deployment["metadata"]
    owned = [
        rs for rs in kube.list(APPS, "ReplicaSet", meta["namespace"])
        if any(o.get("controller") and o.get("uid") == meta.get("uid") for o in rs["metadata"].get("ownerReferences") or [])
    ]
    return sorted(owned, key=revision_of)


def _images(template: dict[str, Any]) -> str:
    return ", ".join(c.get("image", "?") for c in template.get("spec", {}).get("containers", []))


def _without_hash(template: dict[str, Any]) -> dict[str, Any]:
    clean = copy.deepcopy(template)
    labels = clean.get("metadata", {}).get("labels") or {}
    labels.pop("pod-template-hash", None)
    return clean


def history(kube: Kube, target: Target) -> list[Revision]:
    """Every revision the cluster still has (ReplicaSets), oldest first."""
    deployment = get_deployment(kube, target)
    current = revision_of(deployment)
    return [
        Revision(revision_of(rs), _images(rs["spec"]["template"]), _annotations(rs).get(CHANGE_CAUSE), rs["metadata"]["name"],
                 revision_of(rs) == current)
        for rs in owned_replicasets(kube, deployment) if revision_of(rs) > 0
    ]


@dataclass(frozen=True)
class RolloutState:
    done: bool
    failed: bool
    message: str


def rollout_state(deployment: dict[str, Any]) -> RolloutState:
    """kubectl's DeploymentStatusViewer, plus the replica counts and conditions on each line."""
    name = deployment["metadata"]["name"]
    spec, status = deployment.get("spec", {}), deployment.get("status", {})
    generation = deployment["metadata"].get("generation", 0)
    desired = spec.get("replicas", 1)
    updated = status.get("updatedReplicas", 0)
    total = status.get("replicas", 0)
    available = status.get("availableReplicas", 0)
    ready = status.get("readyReplicas", 0)
    conditions = ", ".join(f"{c['type']}={c.get('status')}/{c.get('reason', '')}" for c in status.get("conditions") or [])
    counts = f"(updated {updated}/{desired}, ready {ready}, available {available}{'; ' + conditions if conditions else ''})"
    if generation > status.get("observedGeneration", 0):
        return RolloutState(False, False, "Waiting for deployment spec update to be observed...")
    progressing = Condition.of(deployment, "Progressing")
    if progressing.reason == TIMED_OUT:
        return RolloutState(False, True, f'deployment "{name}" exceeded its progress deadline: {progressing.message}')
    if updated < desired:
        return RolloutState(False, False, f'Waiting for deployment "{name}" rollout to finish: {updated} out of {desired} new replicas have been updated... {counts}')
    if total > updated:
        return RolloutState(False, False, f'Waiting for deployment "{name}" rollout to finish: {total - updated} old replicas are pending termination... {counts}')
    if available < updated:
        return RolloutState(False, False, f'Waiting for deployment "{name}" rollout to finish: {available} of {updated} updated replicas are available... {counts}')
    return RolloutState(True, False, f'deployment "{name}" successfully rolled out {counts}')


def current_state(kube: Kube, target: Target) -> RolloutState:
    return rollout_state(get_deployment(kube, target))


def wait_rollout(kube: Kube, target: Target, *, echo: Echo | None = None, timeout: float | None = None) -> str:
    """Wait until the rollout is done; RolloutFailed when it stalls or runs out of time."""
    failure: list[RolloutState] = []

    def check() -> tuple[bool, str]:
        state = current_state(kube, target)
        if state.failed:
            failure.append(state)
        return state.done or state.failed, state.message

    limit = timeout if timeout is not None else PROGRESS_DEADLINE_SECONDS + 60
    try:
        message = wait_until(check, what=f"the rollout of {target}", timeout=limit, echo=echo)
    except OewsctlError as exc:
        raise RolloutFailed(exc.message, hint=f"see what the pods say: oewsctl rollout status; kubectl -n {target.namespace} describe pods") from None
    if failure:
        raise RolloutFailed(message)
    return message


def _pick_replicaset(replicasets: list[dict[str, Any]], target: Target, to_revision: int) -> dict[str, Any]:
    """rollback.go's rsForRevision: 0 means the revision before the latest."""
    numbered = [rs for rs in replicasets if revision_of(rs) > 0]
    if to_revision == 0:
        if len(numbered) <= 1:
            raise OewsctlError(f"no rollout history found for {target}: there is no previous revision to go back to")
        return sorted(numbered, key=revision_of)[-2]
    for rs in numbered:
        if revision_of(rs) == to_revision:
            return rs
    known = ", ".join(str(revision_of(rs)) for rs in numbered) or "none"
    raise OewsctlError(f"unable to find revision {to_revision} of {target} in history (revisions: {known})",
                       hint="list them with: oewsctl rollout history")


def undo(kube: Kube, target: Target, to_revision: int = 0) -> str:
    """Roll back to ``to_revision`` (0 = previous) exactly as ``kubectl rollout undo`` does."""
    deployment = get_deployment(kube, target)
    if deployment.get("spec", {}).get("paused"):
        raise OewsctlError(f"you cannot roll back a paused {target}", hint=f"resume it first: kubectl -n {target.namespace} rollout resume deployment/{target.name}")
    chosen = _pick_replicaset(owned_replicasets(kube, deployment), target, to_revision)
    number = revision_of(chosen)
    template = _without_hash(chosen["spec"]["template"])
    if template == _without_hash(deployment["spec"]["template"]):
        return f"skipped rollback (current template already matches revision {number})"
    current = _annotations(deployment)
    annotations = {k: v for k, v in current.items() if k in ANNOTATIONS_TO_SKIP}
    annotations.update({k: v for k, v in _annotations(chosen).items() if k not in ANNOTATIONS_TO_SKIP})
    patch = {
        "metadata": {"annotations": merge_patch(current, annotations)},
        "spec": {"template": merge_patch(deployment["spec"]["template"], template)},
    }
    kube.patch(APPS, "Deployment", target.name, target.namespace, patch)
    return f"rolled back to revision {number} ({_images(template)})"


def restart(kube: Kube, target: Target, *, now: datetime.datetime | None = None) -> str:
    """Set ``kubectl.kubernetes.io/restartedAt`` on the pod template (new pods, same spec).

    kubectl stamps whole seconds, so two restarts in one second (``db update`` then ``db rollback``
    from a script) would leave the template unchanged and no pod would restart: the second one then
    stamps microseconds (still RFC 3339) so the template always changes."""
    deployment = get_deployment(kube, target)
    if deployment.get("spec", {}).get("paused"):
        raise OewsctlError(f"can't restart paused {target}", hint=f"resume it first: kubectl -n {target.namespace} rollout resume deployment/{target.name}")
    when = now or datetime.datetime.now(datetime.UTC)
    current = ((deployment["spec"]["template"].get("metadata") or {}).get("annotations") or {}).get(RESTARTED_AT)
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    if stamp == current:
        stamp = when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    kube.patch(APPS, "Deployment", target.name, target.namespace, {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}})
    return f"restartedAt {stamp}"


def _pod_lines(kube: Kube, pod: dict[str, Any]) -> list[str]:
    meta = pod["metadata"]
    lines = []
    for status in pod.get("status", {}).get("containerStatuses") or []:
        if status.get("ready"):
            continue
        waiting = (status.get("state") or {}).get("waiting") or {}
        terminated = (status.get("lastState") or {}).get("terminated") or {}
        what = waiting.get("reason") or "not ready"
        if terminated:
            what += f" (last exit code {terminated.get('exitCode')}, restarts {status.get('restartCount', 0)})"
        lines.append(f"pod {meta['name']} container {status['name']}: {what}")
        if terminated or status.get("restartCount"):
            lines.extend(f"    log: {line}" for line in _log_tail(kube, meta["namespace"], meta["name"], status["name"]))
    return lines


def _log_tail(kube: Kube, namespace: str, pod: str, container: str, lines: int = 10) -> list[str]:
    """The last log lines of a crashing container (its previous run); empty when unavailable."""
    try:
        text = kube.pod_log(namespace, pod, container, previous=True, tail_lines=lines)
    except OewsctlError:
        return []
    return text.strip().splitlines()[-lines:]


def failure_report(kube: Kube, target: Target, replicaset: str | None = None) -> list[str]:
    """What failed: not-ready containers of the rollout's pods, their warning events and log tails."""
    pods = [p for p in kube.list("v1", "Pod", target.namespace)
            if replicaset is None or any(o.get("name") == replicaset for o in p["metadata"].get("ownerReferences") or [])]
    names = {p["metadata"]["name"] for p in pods}
    lines = [line for pod in pods for line in _pod_lines(kube, pod)]
    for event in kube.list("v1", "Event", target.namespace):
        involved = event.get("involvedObject") or {}
        if involved.get("name") in names and event.get("type") == "Warning":
            lines.append(f"event {involved['name']}: {event.get('reason')}: {event.get('message')} (x{event.get('count', 1)})")
    return lines


def newest_replicaset(kube: Kube, target: Target) -> str | None:
    deployment = get_deployment(kube, target)
    current = revision_of(deployment)
    for rs in owned_replicasets(kube, deployment):
        if revision_of(rs) == current:
            return str(rs["metadata"]["name"])
    return None


def echo_for(ctx: RunContext) -> Echo | None:
    """Rollout progress lines go to stderr in text mode (stdout stays clean for JSON)."""
    if ctx.options.output != "text":
        return None
    from oewsctl.core.console import err_console

    return lambda line: err_console.print(f"    {line}", markup=False, highlight=False)


def wait_step(target: Target) -> Step:
    """The shared 'wait for the rollout' step (``db update`` can reuse it after a restart)."""
    return Step(f"wait for the rollout of {target}", action=lambda ctx: wait_rollout(ctx.kube, target, echo=echo_for(ctx)),
                detail="until every replica is updated and available, or the progress deadline passes",
                remediation="oewsctl rollout status shows the pods; oewsctl rollout undo goes back to the previous revision")


def undo_plan(config: Config, *, to_revision: int = 0, wait: bool = True) -> Plan:
    target = Target.of(config)
    which = f"revision {to_revision}" if to_revision else "the previous revision"
    plan = Plan(f"rollout undo{f' --to-revision {to_revision}' if to_revision else ''}", needs=Needs(kube=True))
    plan.add(Step(f"roll back {target} to {which}", action=lambda ctx: undo(ctx.kube, target, to_revision),
                  detail="copy that ReplicaSet's pod template into the Deployment (kubectl rollout undo)"))
    if wait:
        plan.add(wait_step(target))
    return plan


def restart_plan(config: Config, *, wait: bool = True) -> Plan:
    target = Target.of(config)
    plan = Plan("rollout restart", needs=Needs(kube=True))
    plan.add(Step(f"restart the pods of {target}", action=lambda ctx: restart(ctx.kube, target),
                  detail=f"patch spec.template annotation {RESTARTED_AT} (kubectl rollout restart)"))
    if wait:
        plan.add(wait_step(target))
    return plan
