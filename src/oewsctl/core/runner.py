"""The one runner: executes, dry-runs or serialises any Plan.

It stops at the first failed step with the step, node, stderr tail and a
remediation hint. Mutating plans take the cluster lock and leave an audit line.
Without a TTY there are no colors or spinners; ``--output json`` prints one JSON
document on stdout and nothing else there.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from rich.markup import escape

from oewsctl.core.audit import record_run
from oewsctl.core.console import err_console, interactive, out_console
from oewsctl.core.context import RunContext
from oewsctl.core.errors import OewsctlError
from oewsctl.core.plan import Plan, Step
from oewsctl.core.preflight import preflight_steps

StepStatus = Literal["ok", "unchanged", "failed", "planned", "not run"]


class StepFailed(OewsctlError):
    """A step failed; the message names the step and node, the hint the remediation."""


@dataclass
class StepRecord:
    step: Step
    status: StepStatus
    seconds: float = 0.0
    message: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {**self.step.as_dict(), "status": self.status, "seconds": round(self.seconds, 3), "message": self.message}


@dataclass
class PlanResult:
    plan: Plan
    records: list[StepRecord]
    dry_run: bool = False
    error: OewsctlError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def changed(self) -> bool:
        return any(r.status == "ok" for r in self.records)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "command": self.plan.title,
            "ok": self.ok,
            "dry_run": self.dry_run,
            "changed": self.changed,
            "steps": [r.as_dict() for r in self.records],
        }
        if self.error is not None:
            out["error"] = self.error.message
            out["hint"] = self.error.hint
        return out


def _named(step: Step, text: str) -> str:
    """``machine1: text`` for a step on a node, ``text`` otherwise."""
    return f"{step.node}: {text}" if step.node else text


def _label(step: Step, index: int, total: int) -> str:
    return f"[{index}/{total}] {_named(step, step.description)}"


def _tail(text: str, lines: int = 8) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def run_step(step: Step, ctx: RunContext) -> tuple[StepStatus, str | None]:
    """Run one step (skip check, SSH command or action) and return its status and result line.

    Public so that a step can wrap another one (e.g. uncordon a node if an upgrade step fails).
    """
    if step.skip_if is not None:
        reason = step.skip_if(ctx)
        if reason:
            return "unchanged", reason
    if step.command is not None:
        if step.node is None:
            raise ValueError(f"command step {step.description!r} has no node")
        result = ctx.ssh.run(step.node, step.command, sudo=step.sudo, stdin=step.stdin)
        if result.exit_code != 0:
            detail = _tail(result.stderr or result.stdout) or "(no output)"
            raise StepFailed(
                f"{step.node}: {step.description} failed (exit {result.exit_code}): {detail}",
                hint=step.remediation,
            )
        return "ok", None
    assert step.action is not None
    outcome = step.action(ctx)
    return "ok", (str(outcome) if outcome is not None else None)


def _as_failure(exc: Exception, step: Step) -> StepFailed:
    """Any exception from a step as a StepFailed naming the node and step."""
    if isinstance(exc, StepFailed):
        return exc
    message = exc.message if isinstance(exc, OewsctlError) else str(exc) or type(exc).__name__
    hint = (exc.hint if isinstance(exc, OewsctlError) else None) or step.remediation
    failure = StepFailed(_named(step, f"{step.description} failed: {message}"), hint=hint)
    if isinstance(exc, OewsctlError):
        failure.exit_code = exc.exit_code  # a usage problem found mid-plan still exits 2
    return failure


def print_plan(plan: Plan) -> None:
    """The dry-run listing: the checks made first, then every step, its node, and what it would run."""
    checks = preflight_steps(plan.needs)
    if checks:
        err_console.print("Checked first, before any change:", highlight=False)
        for step in checks:
            err_console.print(f"  {_named(step, step.description.removeprefix('check: '))}", markup=False)
    err_console.print(f"Plan for [bold]{escape(plan.title)}[/bold] ({len(plan.steps)} steps, nothing changed):")
    for index, step in enumerate(plan.steps, 1):
        err_console.print(f"  {_label(step, index, len(plan.steps))}", markup=False)
        shown = step.shown()
        if shown:
            err_console.print(f"      $ {shown}" if step.command is not None else f"      {shown}", markup=False)


def _preflight(plan: Plan, ctx: RunContext) -> PlanResult | None:
    """Run the plan's checks (see core.preflight); a result with the error when one fails, else None."""
    text = ctx.options.output == "text"
    for step in preflight_steps(plan.needs):
        label = _named(step, step.description)
        try:
            _status, message = run_step(step, ctx)
        except Exception as exc:  # noqa: BLE001 - any check error ends the run before its first change
            found = _as_failure(exc, step)
            failure = StepFailed(f"{found.message} (checked before any change: nothing was changed)", hint=found.hint)
            failure.exit_code = found.exit_code
            if text:
                err_console.print(f"[red]✗[/red] {escape(label)}", highlight=False)
            return PlanResult(plan, [StepRecord(s, "not run") for s in plan.steps], error=failure)
        if text:
            err_console.print(f"[dim]✓ {escape(label)}{escape(f' — {message}' if message else '')}[/dim]", highlight=False)
    return None


def _execute(plan: Plan, ctx: RunContext) -> PlanResult:
    records: list[StepRecord] = []
    total = len(plan.steps)
    text = ctx.options.output == "text"
    for index, step in enumerate(plan.steps, 1):
        label = _label(step, index, total)
        started = time.monotonic()
        try:
            if text and interactive():
                with err_console.status(escape(label), spinner="dots"):
                    status, message = run_step(step, ctx)
            else:
                status, message = run_step(step, ctx)
        except Exception as exc:  # noqa: BLE001 - any step error ends the plan cleanly
            failure = _as_failure(exc, step)
            records.append(StepRecord(step, "failed", time.monotonic() - started, failure.message))
            records.extend(StepRecord(s, "not run") for s in plan.steps[index:])
            if text:
                err_console.print(f"[red]✗[/red] {escape(label)}", highlight=False)
            return PlanResult(plan, records, error=failure)
        seconds = time.monotonic() - started
        records.append(StepRecord(step, status, seconds, message))
        if text:
            mark = "[green]✓[/green]" if status == "ok" else "[dim]=[/dim]"
            suffix = f" — {message}" if message else ""
            err_console.print(f"{mark} {escape(label + suffix)} ({seconds:.1f}s)", highlight=False)
    return PlanResult(plan, records)


@contextmanager
def _guarded(plan: Plan, ctx: RunContext) -> Iterator[None]:
    """Lock for mutating plans (exit 3 when held)."""
    if not plan.mutating:
        yield
        return
    from oewsctl.core.lock import cluster_lock  # loads the Kubernetes client: only for a run that changes something

    with cluster_lock(ctx, plan.title):
        yield


def _audit(plan: Plan, ctx: RunContext, outcome: str, started: float, error: OewsctlError | None) -> None:
    if plan.mutating:
        record_run(ctx, plan.title, result=outcome, seconds=time.monotonic() - started, error=error)


def run_plan(plan: Plan, ctx: RunContext) -> PlanResult:
    """Dry-run or execute ``plan``; raise the step's error after reporting it."""
    if ctx.options.dry_run:
        result = PlanResult(plan, [StepRecord(s, "planned") for s in plan.steps], dry_run=True)
        if ctx.options.output == "json":
            checks = [step.as_dict() for step in preflight_steps(plan.needs)]
            out_console.print_json(json.dumps({**result.as_dict(), "checks": checks}))
        else:
            print_plan(plan)
        return result
    started = time.monotonic()
    with _guarded(plan, ctx):
        try:
            result = _preflight(plan, ctx) or _execute(plan, ctx)
        except BaseException:  # Ctrl-C, SIGTERM from cron's timeout: the partial run is still audited
            _audit(plan, ctx, "interrupted", started, None)
            raise
    _audit(plan, ctx, "ok" if result.ok else "failed", started, result.error)
    if ctx.options.output == "json":
        out_console.print_json(json.dumps(result.as_dict()))
    if result.error is not None:
        raise result.error
    if ctx.options.output == "text" and not result.changed and result.records:
        err_console.print("Nothing to change: everything was already in place.")
    return result
