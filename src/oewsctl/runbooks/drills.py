"""Drills: make a change to the cluster while load runs, then report what users would have seen.

A drill is one plan (lock, audit, ``--dry-run``) of the form::

    record restarts and the desired state -> start the load
    -> [change step(s) -> wait until back to the desired state] per phase
    -> keep the load a few seconds more, then stop it

The change steps are the same steps the runbook commands run (``rollout restart``/``undo``,
``db update``/``rollback``, ``secrets`` roll, a pod deletion, a drain through the Eviction API,
k3s stopped over SSH). "Back to the desired state" means: the rollout is done (kubectl's
rules), ``spec.replicas`` API pods are Ready and none is terminating; the time from the start
of the change to that moment is the phase's recovery time.

Every drill also has restore steps (idempotent, skipped when nothing needs restoring). The
command runs them when the drill fails or is interrupted (Ctrl-C), then writes the report
anyway: ``<state dir>/drills/<UTC stamp>-<name>/`` with ``report.md``, ``report.json`` and
``latency.png``. The verdict uses the load test's thresholds (p95 < 2 s, no failed request,
no pod restart).
"""

from __future__ import annotations

import datetime
import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oewsctl.clients.kube import Kube, is_ready, merge_patch, wait_until
from oewsctl.core.errors import OewsctlError, UsageError
from oewsctl.core.plan import Plan, Step
from oewsctl.core.state import state_dir
from oewsctl.runbooks import loadtest, nodes
from oewsctl.runbooks.render import APP_NAME
from oewsctl.runbooks.rollout import Target, echo_for, get_deployment, restart, rollout_state, undo

if TYPE_CHECKING:
    from oewsctl.configuration.schema import Config
    from oewsctl.core.context import RunContext
    from oewsctl.runbooks.secrets import SecretsEnv

SELECTOR = {"app.kubernetes.io/name": APP_NAME}
REPORTS = "drills"

Outcome = str
"""``passed``, ``failed`` (a threshold missed), ``error`` (a step failed) or ``interrupted``."""


# -- the load, in the background --------------------------------------------------------------
class BackgroundLoad:
    """The load generator on its own thread while the plan's steps run on this one."""

    def __init__(self, spec: loadtest.LoadSpec, progress: loadtest.Progress | None = None) -> None:
        self.spec = spec
        self._stop = threading.Event()
        self._progress = progress
        self._result: loadtest.LoadResult | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="oewsctl-load", daemon=True)
        self.started = 0.0

    def _run(self) -> None:
        try:
            self._result = loadtest.run_load(self.spec, stop=self._stop, progress=self._progress)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread by stop()
            self._error = exc

    def start(self) -> None:
        self.started = time.monotonic()
        self._thread.start()

    def elapsed(self) -> float:
        return time.monotonic() - self.started if self.started else 0.0

    def stop(self) -> loadtest.LoadResult | None:
        """Stop sending (in-flight requests finish); None when it never started."""
        if not self.started:
            return None
        self._stop.set()
        self._thread.join()
        if self._error is not None:
            raise OewsctlError(f"the load generator failed: {self._error!r}")
        return self._result


# -- what one drill run records (shared by its steps) ----------------------------------------
@dataclass
class Phase:
    name: str
    started: float
    """Seconds since the load started."""
    recovered: float | None = None
    """Seconds from ``started`` until the desired state was back."""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "started_at_seconds": round(self.started, 2),
                "recovery_seconds": None if self.recovered is None else round(self.recovered, 2)}


@dataclass
class DrillRun:
    """The state of one drill: its load, phases and what restore needs (typed, shared by the steps)."""

    name: str
    config: Config
    load: BackgroundLoad
    settle: float = 5.0
    timeout: float = 600.0
    target: Target = field(init=False)
    phases: list[Phase] = field(default_factory=list)
    restarts_before: dict[str, int] = field(default_factory=dict)
    restarts_after: dict[str, int] = field(default_factory=dict)
    placement: dict[str, str] = field(default_factory=dict)
    """API pod -> node, before the drill."""
    placement_after: dict[str, str] = field(default_factory=dict)
    original_template: dict[str, Any] | None = None
    original_sha256: str | None = None
    notes: list[str] = field(default_factory=list)
    started_wall: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        self.target = Target.of(self.config)

    @property
    def namespace(self) -> str:
        return self.config.app.namespace


def app_pods(kube: Kube, namespace: str) -> list[dict[str, Any]]:
    return loadtest.labelled_pods(kube, namespace, SELECTOR)


def placement(kube: Kube, namespace: str) -> dict[str, str]:
    """API pod -> its node (pods not yet scheduled: ``?``)."""
    return {p["metadata"]["name"]: p["spec"].get("nodeName") or "?" for p in app_pods(kube, namespace) if not p["metadata"].get("deletionTimestamp")}


def desired_state(kube: Kube, target: Target) -> tuple[bool, str]:
    """Rollout done, ``spec.replicas`` API pods ready, none terminating (and a line saying where it stands)."""
    deployment = get_deployment(kube, target)
    state = rollout_state(deployment)
    desired = int(deployment.get("spec", {}).get("replicas", 1))
    pods = app_pods(kube, target.namespace)
    terminating = [p for p in pods if p["metadata"].get("deletionTimestamp")]
    ready = [p for p in pods if is_ready(p) and not p["metadata"].get("deletionTimestamp")]
    done = state.done and len(ready) == desired and not terminating
    return done, f"{len(ready)}/{desired} API pods ready, {len(terminating)} terminating; {state.message}"


def _record_step(run: DrillRun) -> Step:
    def record(ctx: RunContext) -> str:
        kube = ctx.kube
        done, line = desired_state(kube, run.target)
        if not done:
            raise OewsctlError(f"the cluster is not in its desired state before the drill: {line}",
                               hint="wait for it (oewsctl rollout status) so the drill measures its own change")
        run.restarts_before = loadtest.pod_restarts(kube, run.namespace, SELECTOR)
        run.original_template = get_deployment(kube, run.target)["spec"]["template"]
        run.placement = placement(kube, run.namespace)
        return f"{len(run.restarts_before)} API pods, {sum(run.restarts_before.values())} restarts so far"

    return Step("check the desired state and record pod restarts", action=record,
                detail=f"GET deployment {run.target.namespace}/{run.target.name} and its pods")


def _start_load_step(run: DrillRun) -> Step:
    def start(ctx: RunContext) -> str:
        loadtest.probe(run.load.spec.target)
        run.load.start()
        time.sleep(run.settle)
        return f"{run.settle:g}s of baseline before the change"

    return Step(f"start the load ({run.load.spec.describe()}), a baseline first", action=start,
                detail="async HTTP requests until the drill ends")


def _change(run: DrillRun, name: str, step: Step) -> Step:
    """``step``, recorded as the start of phase ``name`` (a marker on the chart)."""
    body = _plain(step).action
    assert body is not None

    def act(ctx: RunContext) -> Any:
        run.phases.append(Phase(name, run.load.elapsed()))
        return body(ctx)

    return replace(_plain(step), action=act)


def _wait_recovered_step(run: DrillRun, phase_name: str) -> Step:
    def wait(ctx: RunContext) -> str:
        kube = ctx.kube
        phase = next(p for p in reversed(run.phases) if p.name == phase_name)
        wait_until(lambda: desired_state(kube, run.target), what="the desired state", timeout=run.timeout)
        phase.recovered = run.load.elapsed() - phase.started
        return f"back after {phase.recovered:.1f}s"

    return Step("wait until back to the desired state", action=wait,
                detail="rollout done, spec.replicas API pods ready, none terminating; the time it took is the recovery time")


def _stop_step(run: DrillRun) -> Step:
    def keep(ctx: RunContext) -> str:
        time.sleep(run.settle)
        run.restarts_after = loadtest.pod_restarts(ctx.kube, run.namespace, SELECTOR)
        run.placement_after = placement(ctx.kube, run.namespace)
        nodes_used = sorted(set(run.placement_after.values()))
        if len(run.placement_after) > 1 and len(nodes_used) == 1:
            run.notes.append(f"every API pod now runs on {nodes_used[0]}: `oewsctl rollout restart` spreads them again "
                             "(the anti-affinity is preferred, not required, so that a rolling update can surge)")
        return f"kept the load {run.settle:g}s more; pods on {', '.join(nodes_used)}"

    return Step(f"keep the load {run.settle:g}s more, record pod restarts", action=keep, detail="then the load stops")


# -- the drills ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class PhaseSteps:
    name: str
    steps: list[Step]
    wait: bool = True
    """Wait for the desired state after the steps (not while a node is down: it cannot come back then)."""


@dataclass
class DrillSteps:
    phases: list[PhaseSteps]
    restore: list[Step]
    """Idempotent steps that undo what the phases changed (run after a failure or Ctrl-C)."""


def _template_back_step(run: DrillRun) -> Step:
    def differs(ctx: RunContext) -> str | None:
        live = get_deployment(ctx.kube, run.target)["spec"]["template"]
        return "the pod template is the one from before the drill" if run.original_template in (None, live) else None

    def put_back(ctx: RunContext) -> str:
        assert run.original_template is not None
        live = get_deployment(ctx.kube, run.target)["spec"]["template"]
        ctx.kube.patch("apps/v1", "Deployment", run.target.name, run.target.namespace, {"spec": {"template": merge_patch(live, run.original_template)}})
        return "pod template restored"

    return Step(f"put the pod template of {run.target} from before the drill back", action=put_back, skip_if=differs,
                detail="PATCH the Deployment's spec.template to what was recorded at the start")


def rollout_steps(run: DrillRun) -> DrillSteps:
    target = run.target
    return DrillSteps(
        phases=[
            PhaseSteps("new revision", [Step(f"roll out a new revision of {target} (rollout restart: new pods, same image)",
                                             action=lambda ctx: restart(ctx.kube, target), detail="patch spec.template annotation kubectl.kubernetes.io/restartedAt")]),
            PhaseSteps("rollout undo", [Step(f"roll {target} back to the revision before (rollout undo)", action=lambda ctx: undo(ctx.kube, target),
                                             detail="copy the previous ReplicaSet's pod template into the Deployment")]),
        ],
        restore=[_template_back_step(run)],
    )


def pod_kill_steps(run: DrillRun, pod: str | None = None) -> DrillSteps:
    def kill(ctx: RunContext) -> str:
        pods = [p for p in app_pods(ctx.kube, run.namespace) if is_ready(p)]
        names = sorted(p["metadata"]["name"] for p in pods)
        victim = pod or (names[0] if names else None)
        if victim is None or victim not in {p["metadata"]["name"] for p in app_pods(ctx.kube, run.namespace)}:
            raise OewsctlError(f"no API pod {victim or ''} to delete (pods: {', '.join(names) or 'none'})")
        ctx.kube.delete("v1", "Pod", victim, run.namespace)
        return f"deleted pod {victim} (on {run.placement.get(victim, '?')})"

    return DrillSteps(phases=[PhaseSteps("pod deleted", [Step(f"delete {'pod ' + pod if pod else 'one ready API pod'} (graceful: preStop, SIGTERM)", action=kill,
                                                   detail=f"DELETE pod in {run.namespace}; its ReplicaSet makes a new one")])],
                      restore=[])


def _outage_risks_step(run: DrillRun, node: str) -> Step:
    """A warning (in the output and the report) for pods on ``node`` that cannot move without an outage."""
    def look(ctx: RunContext) -> str:
        risks = nodes.outage_risks(ctx.kube, node)
        if not risks:
            return "none: every pod on it can run elsewhere"
        warning = f"draining {node} may take the public site down until these run again: {'; '.join(risks)}"
        run.notes.append(warning)
        echo = echo_for(ctx)
        if echo:
            echo(f"WARNING: {warning}")
        return f"{len(risks)} pod(s) that cannot move without an outage (see the report's note)"

    return Step("look for pods on the node whose eviction takes the site down (local-path/hostPath volumes, Traefik)", node=node, action=look,
                detail=f"GET pods on {node}, their PersistentVolumeClaims and PersistentVolumes; a warning, not a refusal")


def node_drain_steps(run: DrillRun, node: str) -> DrillSteps:
    held = {"cordoned": False}

    def drain(ctx: RunContext) -> str:
        if nodes.is_cordoned(ctx.kube, node):
            raise OewsctlError(f"node {node} is already cordoned", hint=f"uncordon it first (kubectl uncordon {node}); the drill restores what it changes only")
        nodes.cordon(ctx.kube, node)
        held["cordoned"] = True
        return nodes.drain(ctx.kube, node, timeout=run.timeout, echo=echo_for(ctx))

    def uncordon(ctx: RunContext) -> str:
        held["cordoned"] = False
        return nodes.uncordon(ctx.kube, node)

    def not_held(ctx: RunContext) -> str | None:
        return None if held["cordoned"] else f"{node} is not cordoned by this drill"

    return DrillSteps(
        phases=[PhaseSteps("drain", [_outage_risks_step(run, node),
                                     Step("cordon the node and evict its pods (Eviction API, PodDisruptionBudget honoured)", node=node, action=drain,
                                          detail=f"PATCH node {node} unschedulable; POST pods/NAME/eviction for each pod on it")]),
                PhaseSteps("uncordon", [Step("uncordon the node", node=node, action=uncordon, detail=f"PATCH node {node} schedulable")])],
        restore=[Step("uncordon the node", node=node, action=uncordon, skip_if=not_held, detail=f"PATCH node {node} schedulable")],
    )


KILLALL = "/usr/local/bin/k3s-killall.sh"
AGENT_SERVICE = "k3s-agent"


def losable_node(config: Config, node: str) -> str:
    """``node``, unless it is the k3s server: stopping it stops the API server the drill itself needs (exit 2)."""
    if config.node(node).role == "server":
        agents = [n.name for n in config.nodes if n.role != "server"]
        raise UsageError(f"node {node} is the k3s server: losing it stops the Kubernetes API the drill watches and restores with",
                         hint=f"lose an agent instead ({', '.join(agents) or 'none in the inventory'}): oewsctl drill node-loss {agents[0] if agents else 'AGENT'}")
    return node


def node_loss_steps(run: DrillRun, node: str, down: float) -> DrillSteps:
    """k3s-killall.sh (k3s and every container on the node stop: the machine is gone for the cluster),
    ``down`` seconds, then ``systemctl start k3s-agent``; recovery is measured from the start.
    Agents only (:func:`losable_node`)."""
    service = AGENT_SERVICE
    stopped = {"down": False}

    def ssh(ctx: RunContext, argv: list[str], hint: str | None = None) -> None:
        result = ctx.ssh.run(node, argv, sudo=True)
        if result.exit_code != 0:
            raise OewsctlError(f"{node}: {' '.join(argv)} failed (exit {result.exit_code}): {(result.stderr or result.stdout).strip()[-300:]}", hint=hint)

    def stop(ctx: RunContext) -> str:
        ssh(ctx, [KILLALL])
        stopped["down"] = True
        time.sleep(down)
        return f"k3s and its containers stopped for {down:g}s"

    def start(ctx: RunContext) -> str:
        ssh(ctx, ["systemctl", "start", service], hint=f"start it by hand: ssh {node} sudo systemctl start {service}")
        stopped["down"] = False
        return f"{service} started"

    def running(ctx: RunContext) -> str | None:
        return None if stopped["down"] else f"{service} was not stopped by this drill"

    return DrillSteps(
        phases=[PhaseSteps("node lost", [Step(f"stop k3s and its containers for {down:g}s (the machine fails)", node=node, action=stop,
                                              detail=f"sudo {KILLALL}; wait {down:g}s")], wait=False),
                PhaseSteps("node back", [Step(f"start {service} again", node=node, action=start, detail=f"sudo systemctl start {service}")])],
        restore=[Step(f"start {service} again", node=node, action=start, skip_if=running, detail=f"sudo systemctl start {service}")],
    )


def _db_plans(config: Config, file: Path) -> tuple[str, Plan, Plan]:
    """The new file's SHA-256 and the `db update FILE` / `db rollback` plans of ``database.delivery``."""
    from oewsctl.runbooks import database

    if config.database.delivery == "image":
        from oewsctl.runbooks.db_image import rollback_image_plan, update_image_plan

        facts = database.validated_facts(file)
        return str(facts["sha256"]), update_image_plan(config, file, facts), rollback_image_plan(config)
    new = database.validate_local(file)
    return new.sha256, database.update_plan(config, file, new), database.rollback_plan(config)


def db_swap_steps(run: DrillRun, file: Path) -> DrillSteps:
    """`db update FILE` then `db rollback` (SSH to the DB nodes, or with delivery image a new artifact
    the Deployment points at, then back at the revision before)."""
    from oewsctl.core.runner import run_step
    from oewsctl.runbooks import database

    new_sha256, update, rollback = _db_plans(run.config, file)

    def remember(ctx: RunContext) -> str:
        pods = [p for p in database.pods_serving(ctx.kube, run.config) if p.ready]
        shas = {p.sha256 for p in pods}
        if len(shas) != 1:
            raise OewsctlError(f"the API pods do not all serve the same database ({', '.join(p.line() for p in pods)})",
                               hint="finish the last db update first: oewsctl db status")
        run.original_sha256 = shas.pop()
        if run.original_sha256 == new_sha256:
            raise OewsctlError(f"the pods already serve {file.name} (sha256 {new_sha256[:12]}…): the drill would change nothing",
                               hint="pass a database file other than the live one")
        return f"pods serve sha256 {run.original_sha256[:12]}…"

    def swapped(ctx: RunContext) -> str | None:
        pods = [p for p in database.pods_serving(ctx.kube, run.config) if p.ready]
        return "the pods serve the database from before the drill" if pods and all(p.sha256 == run.original_sha256 for p in pods) else None

    def roll_back(ctx: RunContext) -> str:
        for step in rollback.steps:
            run_step(step, ctx)
        return "db rollback done"

    return DrillSteps(
        phases=[PhaseSteps("db update", [Step("record which database the pods serve", action=remember, detail="GET /health of each pod"), *update.steps]),
                PhaseSteps("db rollback", rollback.steps)],
        restore=[Step("db rollback to the database from before the drill", action=roll_back, skip_if=swapped,
                      detail="the db rollback plan, when the pods do not serve the original database")],
    )


def secret_rotation_steps(env: SecretsEnv, values: Mapping[str, tuple[str, str]]) -> DrillSteps:
    """``secrets rotate`` with the new values. They stay: restoring means completing the rotation
    (its steps skip what is already in sync), so the Secret and the pods agree."""
    from oewsctl.runbooks import secrets

    steps = secrets.rotate_plan(env, values).steps
    return DrillSteps(phases=[PhaseSteps("secret rotated", steps)], restore=steps)


# -- assembling and reporting ---------------------------------------------------------------
def drill_plan(run: DrillRun, steps: DrillSteps) -> Plan:
    plan = Plan(f"drill {run.name}")
    plan.add(_record_step(run))
    plan.add(_start_load_step(run))
    for phase in steps.phases:
        plan.extend([_change(run, phase.name, phase.steps[0]), *phase.steps[1:]])
        if phase.wait:
            plan.add(_wait_recovered_step(run, phase.name))
    plan.add(_stop_step(run))
    return plan


def restore_plan(run: DrillRun, steps: DrillSteps) -> Plan:
    plan = Plan(f"drill {run.name} (restore)")
    plan.extend(steps.restore)

    def settle(ctx: RunContext) -> str:
        return wait_until(lambda: desired_state(ctx.kube, run.target), what="the desired state", timeout=run.timeout)

    plan.add(Step("wait until back to the desired state", action=settle, detail="rollout done, every API pod ready, none terminating"))
    return plan


def report_dir(name: str, started: float) -> Path:
    folder = loadtest.report_dir(REPORTS, started)
    return folder.with_name(f"{folder.name}-{name}")


@dataclass
class DrillReport:
    run: DrillRun
    outcome: Outcome
    load: loadtest.LoadResult | None
    steps: list[dict[str, Any]]
    error: str | None = None
    restored: list[str] = field(default_factory=list)

    @property
    def checks(self) -> list[loadtest.Threshold]:
        if self.load is None:
            return []
        restarts = loadtest.restarts_between(self.run.restarts_before, self.run.restarts_after) if self.run.restarts_after else None
        return loadtest.thresholds(self.load.summary, restarts)

    def as_dict(self) -> dict[str, Any]:
        run = self.run
        return {
            "drill": run.name, "outcome": self.outcome, "error": self.error,
            "started": datetime.datetime.fromtimestamp(run.started_wall, datetime.UTC).isoformat(timespec="seconds"),
            "cluster": run.config.cluster.name, "deployment": str(run.target),
            "phases": [p.as_dict() for p in run.phases],
            "recovery_seconds": max((round(p.recovered, 2) for p in run.phases if p.recovered is not None), default=None),
            "checks": [c.as_dict() for c in self.checks],
            "pod_restarts": {"before": run.restarts_before, "after": run.restarts_after},
            "placement": {"before": run.placement, "after": run.placement_after}, "restored": self.restored, "notes": run.notes,
            "steps": self.steps,
            "load": None if self.load is None else self.load.as_dict(),
        }


def write_drill_report(report: DrillReport, directory: Path | None = None) -> Path:
    """report.json, report.md and latency.png in a new dated directory; returns it."""
    folder = directory or report_dir(report.run.name, report.run.started_wall)
    folder.mkdir(parents=True, exist_ok=True)
    document = report.as_dict()
    markers = [loadtest.Marker(p.started, p.name) for p in report.run.phases]
    rows = document["load"]["timeline"] if document["load"] else []
    loadtest.write_report(document, rows, folder, "report", title=f"drill {report.run.name}: {report.outcome}", markers=markers)
    (folder / "report.png").rename(folder / "latency.png")
    (folder / "report.md").write_text(markdown(document))
    return folder


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} s"


def markdown(doc: dict[str, Any]) -> str:
    """The human report (what the runbook's "document the recovery time" asks for)."""
    lines = [f"# Drill `{doc['drill']}`: {doc['outcome']}", "",
             f"Started {doc['started']} on cluster `{doc['cluster']}`, {doc['deployment']}."]
    if doc["load"]:
        lines.append(f"Load: {doc['load']['load']}.")
    if doc["error"]:
        lines += ["", f"**Error:** {doc['error']}"]
    lines += ["", "| phase | started at | back to desired state after |", "|---|---|---|"]
    lines += [f"| {p['name']} | {_seconds(p['started_at_seconds'])} | {_seconds(p['recovery_seconds'])} |" for p in doc["phases"]]
    if doc["checks"]:
        lines += ["", "| check | limit | measured | verdict |", "|---|---|---|---|"]
        lines += [f"| {c['name']} | {c['limit']} | {c['value']} | {'pass' if c['ok'] else 'not checked' if c['ok'] is None else 'FAIL'} |" for c in doc["checks"]]
    if doc["load"]:
        summary = doc["load"]["summary"]
        latency = summary["latency_seconds"]
        lines += ["", f"Requests: {summary['requests']} ({summary['rps']:.1f}/s), failed {summary['failed']}"
                      + (f" ({', '.join(f'{k} ×{v}' for k, v in summary['errors'].items())})" if summary["errors"] else "") + ".",
                  f"Latency: p50 {latency['p50'] * 1000:.0f} ms, p95 {latency['p95'] * 1000:.0f} ms, p99 {latency['p99'] * 1000:.0f} ms, "
                  f"worst {latency['max'] * 1000:.0f} ms."]
        if summary["first_error"]:
            first = summary["first_error"]
            lines.append(f"Failed requests from {first['at_seconds']:.1f} s to {summary['last_error_at_seconds']:.1f} s; the first: {first['error']} — {first['detail']}")
        lines += [f"Hint: {hint}" for hint in summary.get("hints") or []]
        lines += ["", "![latency over time](latency.png)"]
    lines += [f"\nNote: {note}" for note in doc.get("notes") or []]
    if doc.get("restored"):
        lines += ["", "Restored after the " + ("interruption" if doc["outcome"] == "interrupted" else "failure") + ":"]
        lines += [f"- {line}" for line in doc["restored"]]
    lines += ["", "Steps:"] + [f"- [{s['status']}] {s['description']} ({s['seconds']} s){' — ' + s['message'] if s.get('message') else ''}" for s in doc["steps"]]
    return "\n".join(lines) + "\n"


def list_reports(base: Path | None = None) -> list[dict[str, Any]]:
    """Every drill report under the state directory, oldest first (one line each)."""
    folder = base or state_dir() / REPORTS
    found = []
    for report in sorted(folder.glob("*/report.json")) if folder.is_dir() else []:
        try:
            doc = json.loads(report.read_text())
        except (OSError, ValueError):
            continue
        summary = (doc.get("load") or {}).get("summary") or {}
        found.append({"report": str(report.parent), "drill": doc.get("drill"), "started": doc.get("started"), "outcome": doc.get("outcome"),
                      "recovery_seconds": doc.get("recovery_seconds"), "failed_requests": summary.get("failed"),
                      "requests": summary.get("requests"), "p95_seconds": (summary.get("latency_seconds") or {}).get("p95")})
    return found


def verdict(report: DrillReport) -> Outcome:
    """passed when every threshold that could be checked holds."""
    return "passed" if all(c.ok is not False for c in report.checks) and report.checks else "failed"




# -- running a drill ----------------------------------------------------------------------------
def _logged(log: list[dict[str, Any]], step: Step) -> Step:
    """``step`` whose outcome (and time) also lands in the drill report."""
    assert step.action is not None
    body = step.action

    def act(ctx: RunContext) -> Any:
        started = time.monotonic()
        entry: dict[str, Any] = {"description": step.description, "node": step.node, "status": "failed", "seconds": 0.0, "message": None}
        log.append(entry)
        try:
            outcome = body(ctx)
        except BaseException as exc:
            entry["message"] = "interrupted" if isinstance(exc, KeyboardInterrupt) else getattr(exc, "message", None) or str(exc)
            raise
        finally:
            entry["seconds"] = round(time.monotonic() - started, 2)
        entry.update(status="ok", message=None if outcome is None else str(outcome))
        return outcome

    return replace(step, action=act)


def _plain(step: Step) -> Step:
    """An SSH command step as an action (so that every drill step can be timed and logged); shown as before in dry runs."""
    if step.action is not None:
        return step
    from oewsctl.core.runner import run_step

    return replace(step, command=None, stdin=None, sudo=False, action=lambda ctx: run_step(step, ctx)[1], detail=step.shown())


def execute(ctx: RunContext, run: DrillRun, steps: DrillSteps) -> DrillReport | None:
    """Run the drill plan; on failure or Ctrl-C stop the load and run the restore plan; report. None on --dry-run.

    The plans print their progress as text on stderr even with ``-o json``: stdout is kept for the report.
    """
    from oewsctl.core.errors import LockHeldError
    from oewsctl.core.runner import run_plan

    log: list[dict[str, Any]] = []
    plan = drill_plan(run, steps)
    plan.steps = [_logged(log, _plain(s)) for s in plan.steps]
    if ctx.options.dry_run:
        run_plan(plan, ctx)
        return None
    options = ctx.options
    ctx.options = replace(options, output="text")
    outcome: Outcome | None = None
    error: str | None = None
    try:
        try:
            run_plan(plan, ctx)
        except LockHeldError:
            raise
        except KeyboardInterrupt:
            outcome, error = "interrupted", "interrupted (Ctrl-C) during: " + (log[-1]["description"] if log else "the start")
        except OewsctlError as exc:
            outcome, error = "error", exc.message
        load = run.load.stop()
        restored: list[str] = []
        if outcome is not None and run.phases:
            try:
                result = run_plan(restore_plan(run, steps), ctx)
                restored = [f"{r.step.description}: {r.message or r.status}" for r in result.records]
                run.restarts_after = loadtest.pod_restarts(ctx.kube, run.namespace, SELECTOR)
            except OewsctlError as exc:  # the report must still say what happened (and what is left to fix)
                restored = [f"RESTORE FAILED: {exc.message}" + (f" ({exc.hint})" if exc.hint else "")]
    finally:
        ctx.options = options
    report = DrillReport(run, outcome or "passed", load, log, error, restored)
    if outcome is None:
        report.outcome = verdict(report)
    return report
