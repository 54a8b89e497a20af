"""CLI wiring for `oewsctl loadtest` (logic in oewsctl.runbooks.loadtest); the load options `drill` shares."""

from __future__ import annotations

import json
import signal
import threading
import time
from typing import TYPE_CHECKING, Annotated

import typer

from oewsctl.commands._common import run_context
from oewsctl.core.console import err_console, interactive, out_console
from oewsctl.core.errors import OewsctlError, UsageError

if TYPE_CHECKING:
    from oewsctl.core.context import RunContext
    from oewsctl.runbooks.loadtest import LoadSpec

Url = Annotated[str | None, typer.Option("--url", help="Target base URL (default https://<app.domain>). Not the domain and not loopback: also needs --yes.", show_default=False)]
Users = Annotated[int, typer.Option("--users", min=1, max=1000, help="Concurrent users, each sending its next request when the last one answered.")]
Rate = Annotated[str | None, typer.Option("--rate", help="Open model instead of users: requests per second, e.g. 50/s.", show_default=False)]
Mix = Annotated[str, typer.Option("--mix", help="Request kinds, in turn: wages (GET /api/v1/wages), query (POST /api/v1/query), health.")]
ViaApi = Annotated[bool, typer.Option("--via-api", help="Go through the Kubernetes API server's service proxy (kubeconfig credentials) instead of the public URL.")]
MaxRequests = Annotated[int | None, typer.Option("--requests", min=1, help="Stop after this many requests (the duration still bounds the run).", show_default=False)]


def load_spec(rc: RunContext, *, url: str | None, users: int, rate: str | None, mix: str, via_api: bool, duration: float,
              max_requests: int | None = None) -> LoadSpec:
    """The load from the shared options, with the target safety rule applied (exit 2 when refused)."""
    from oewsctl.runbooks import loadtest
    from oewsctl.runbooks.render import APP_NAME

    assert rc.config is not None
    if url and via_api:
        raise UsageError("--url and --via-api choose two different targets: pass one of them")
    if via_api:
        target = loadtest.via_api_target(rc.kube, rc.config.app.namespace, APP_NAME)
    else:
        chosen = url or f"https://{rc.config.app.domain}"
        target = loadtest.Target(loadtest.check_target(chosen, rc.config.app.domain, explicit=url is not None, yes=rc.options.yes))
    return loadtest.LoadSpec(target, duration=duration, users=users, rate=loadtest.parse_rate(rate) if rate else None,
                             mix=loadtest.parse_mix(mix), max_requests=max_requests)


def _restarts(rc: RunContext) -> tuple[dict[str, int] | None, str | None]:
    """API pod restart counts, or None and why they cannot be read (no kubeconfig, API down)."""
    from oewsctl.runbooks import loadtest
    from oewsctl.runbooks.drills import SELECTOR

    assert rc.config is not None
    if not rc.config.cluster.kubeconfig_path.is_file():
        return None, f"no kubeconfig at {rc.config.cluster.kubeconfig_path}"
    try:
        return loadtest.pod_restarts(rc.kube, rc.config.app.namespace, SELECTOR), None
    except OewsctlError as exc:
        return None, exc.message


def loadtest_cmd(
    ctx: typer.Context,
    url: Url = None,
    duration: Annotated[str, typer.Option("--duration", help="How long: 30s, 2m, 1m30s (at most 1h).")] = "30s",
    users: Users = 10,
    rate: Rate = None,
    mix: Mix = "wages,query,health",
    via_api: ViaApi = False,
    max_requests: MaxRequests = None,
) -> None:
    """Send load to the API and check the runbook's thresholds: p95 < 2 s, no failed request, no pod restart.

    Changes nothing in the cluster. Live progress (req/s, p50/p95/p99, errors by kind), then a summary;
    a JSON report and a latency-over-time chart (PNG) go to <state dir>/loadtests/<UTC time>/. Exit 1 when a threshold fails.
    Ctrl-C stops the load early and still reports what was measured. --dry-run prints the load and the
    thresholds, sends nothing and writes nothing.

    Targets: https://<app.domain> by default, a loopback URL, --via-api (the Service through the Kubernetes API),
    or any other --url together with --yes.

    Example: oewsctl loadtest --duration 30s --users 10
    """
    from oewsctl.runbooks import loadtest

    rc = run_context(ctx)
    spec = load_spec(rc, url=url, users=users, rate=rate, mix=mix, via_api=via_api, duration=loadtest.parse_duration(duration), max_requests=max_requests)
    if rc.options.dry_run:
        _print_dry_run(rc, spec)
        return
    loadtest.probe(spec.target)
    before, why = _restarts(rc)
    text = rc.options.output == "text"
    if text:
        err_console.print(f"load: {spec.describe()}", markup=False)
    progress, close = loadtest.live_progress(interactive()) if text else (None, lambda: None)
    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())  # Ctrl-C ends the load early; the report still comes
    try:
        result = loadtest.run_load(spec, stop=stop, progress=progress)
    finally:
        signal.signal(signal.SIGINT, previous)
        close()
    after, why_after = _restarts(rc) if before is not None else (None, why)
    restarts = loadtest.restarts_between(before, after) if before is not None and after is not None else None
    summary = result.summary
    checks = loadtest.thresholds(summary, restarts)
    document = {**result.as_dict(), "checks": [c.as_dict() for c in checks], "restarts_not_checked": why or why_after}
    report, chart = loadtest.write_report(document, document["timeline"], loadtest.report_dir("loadtests", time.time()), "loadtest",
                                          title=f"oewsctl loadtest: {spec.describe()}")
    if text:
        out_console.print(loadtest.summary_table(summary, checks))
        err_console.print(f"report: {report}\nchart:  {chart}", markup=False)
    else:
        out_console.print_json(json.dumps({**document, "report": str(report), "chart": str(chart)}))
    failed = [c.name for c in checks if c.ok is False]
    if failed:
        raise OewsctlError(f"load test failed: {', '.join(failed)} (see {report})", hint="; ".join(summary.hints) or None)


def _print_dry_run(rc: RunContext, spec: LoadSpec) -> None:
    """What the run would send and check (nothing is sent, nothing written)."""
    from oewsctl.runbooks.loadtest import LIMITS

    if rc.options.output == "json":
        out_console.print_json(json.dumps({"dry_run": True, "target": spec.target.url, "load": spec.describe(),
                                           "checks": [{"name": name, "limit": limit} for name, limit in LIMITS]}))
        return
    checks = ", ".join(f"{name} {limit}" for name, limit in LIMITS)
    err_console.print(f"Would send: {spec.describe()}\nThen check: {checks}\n(dry run: nothing sent, no report written)", markup=False)


def register(app: typer.Typer) -> None:
    """Add `loadtest` to the root app."""
    app.command("loadtest")(loadtest_cmd)
