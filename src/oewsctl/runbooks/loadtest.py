"""A built-in load generator for the API (no k6 needed): async httpx, bounded in time and count.

Two models, as load tools name them: ``users`` closed-loop users (each sends its next request
when the last one answered) or an open ``rate`` (requests per second, whatever the latency).
The mix cycles through ``wages`` (GET /api/v1/wages), ``query`` (POST /api/v1/query) and
``health`` (GET /health) with answers the bundled sample database has too, so a non-2xx
answer is always an error (a 429 is its own kind, ``HTTP 429 (rate limited)``, with a hint:
the edge's rate limit answered, not the API). Every request becomes a :class:`Sample`; the
summary (p50/p95/p99, errors by kind), the per-second timeline and the chart are computed from them.

The engine knows nothing of Kubernetes: ``oewsctl loadtest`` and the drills give it a
:class:`Target` and read pod restarts themselves (:func:`pod_restarts`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import json
import math
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from oewsctl.core.errors import UsageError

if TYPE_CHECKING:
    from oewsctl.clients.kube import Kube

KINDS = ("wages", "query", "health")
P95_LIMIT_SECONDS = 2.0
LIMITS = (("p95 latency", f"< {P95_LIMIT_SECONDS:g} s"), ("failed requests", "0"), ("pod restarts", "0"))
"""The runbook's acceptance (name, limit), as :func:`thresholds` checks it."""
RATE_LIMITED = "HTTP 429 (rate limited)"
"""Its own error kind: the edge's rate limit, not the API, refused the request."""
RATE_LIMIT_HINT = "the edge rate limit (app.rate_limit) answered 429: raise it for the test or use --via-api"
MAX_DURATION_SECONDS = 3600.0
PROGRESS_SECONDS = 0.5

REQUESTS: dict[str, tuple[tuple[str, str, dict[str, Any]], ...]] = {
    "wages": (
        ("GET", "/api/v1/wages", {"params": {"occupation": "15-1252", "area": "California"}}),
        ("GET", "/api/v1/wages", {"params": {"occupation": "29-1141", "area": "TX"}}),
        ("GET", "/api/v1/wages", {"params": {"occupation": "11-1021", "area": "US"}}),
    ),
    "query": (
        ("POST", "/api/v1/query", {"json": {"query": "median wage of registered nurses in Texas", "enable_charts": False}}),
        ("POST", "/api/v1/query", {"json": {"query": "how much do software developers make in California", "enable_charts": False}}),
    ),
    "health": (("GET", "/health", {}),),
}
"""What each kind sends, in turn (answers exist in the full and the sample database)."""


# -- parsing the command line -----------------------------------------------------------------
def parse_duration(text: str) -> float:
    """``30s``, ``2m``, ``1m30s`` or plain seconds, up to an hour."""
    match = re.fullmatch(r"\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*", text)
    if not text.strip() or match is None or not any(match.groups()):
        raise UsageError(f"--duration {text!r}: expected seconds such as 30s, 2m or 1m30s")
    seconds = float(match.group(1) or 0) * 60 + float(match.group(2) or 0)
    if not 0 < seconds <= MAX_DURATION_SECONDS:
        raise UsageError(f"--duration {text!r}: must be more than 0 and at most {MAX_DURATION_SECONDS:.0f}s")
    return seconds


def parse_rate(text: str) -> float:
    """``20/s``, ``20`` (per second) or ``600/m``."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(?:/\s*(s|m))?\s*", text)
    if match is None or float(match.group(1)) <= 0:
        raise UsageError(f"--rate {text!r}: expected requests per second such as 20/s (or 600/m)")
    return float(match.group(1)) / (60.0 if match.group(2) == "m" else 1.0)


def parse_mix(text: str) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise UsageError(f"--mix {text!r}: choose from {', '.join(KINDS)} (comma-separated)")
    return kinds


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_target(url: str, domain: str | None, *, explicit: bool, yes: bool) -> str:
    """The safety rule: load only the configured domain, a loopback address, or ``--url`` + ``--yes``."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--url {url!r}: expected http(s)://HOST[:PORT][/PATH]")
    host = parts.hostname
    if host == domain or is_loopback(host) or (explicit and yes):
        return url.rstrip("/")
    raise UsageError(f"refusing to send load to {host}: it is neither app.domain ({domain or 'unset'}) nor a loopback address",
                     hint=f"if {host} is yours, confirm with --yes: oewsctl --yes loadtest --url {url}")


# -- what runs --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """Where requests go, and how to authenticate there (the API server's service proxy needs both)."""

    url: str
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    verify: str | bool = True
    cert: tuple[str, str] | None = None


@dataclass(frozen=True)
class LoadSpec:
    target: Target
    duration: float = 30.0
    users: int = 10
    rate: float | None = None
    """Open model: requests per second (then ``users`` only caps the requests in flight x 10)."""
    mix: tuple[str, ...] = KINDS
    max_requests: int | None = None
    timeout: float = 10.0

    def describe(self) -> str:
        load = f"{self.rate:g} req/s" if self.rate else f"{self.users} users"
        bound = f", at most {self.max_requests} requests" if self.max_requests else ""
        length = "until stopped" if self.duration >= MAX_DURATION_SECONDS else f"for {self.duration:g}s"
        return f"{load} {length}{bound}, mix {','.join(self.mix)} -> {self.target.url}"


@dataclass(frozen=True)
class Sample:
    at: float
    """Seconds since the start when the request was sent."""
    kind: str
    seconds: float
    error: str | None = None
    """None when answered 2xx; else ``HTTP 503``, ``connect error``, ``timeout`` ..."""
    detail: str | None = None


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass
class Summary:
    requests: int
    ok: int
    errors: dict[str, int]
    seconds: float
    p50: float
    p95: float
    p99: float
    max: float
    by_kind: dict[str, int]
    first_error: dict[str, Any] | None
    last_error_at: float | None = None
    """Seconds since the start when the last failed request was sent (with ``first_error``: the outage window)."""
    examples: dict[str, str] = field(default_factory=dict)
    """The first failed request of each error kind (what was sent, what came back)."""

    @property
    def failed(self) -> int:
        return sum(self.errors.values())

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def hints(self) -> list[str]:
        """What to do about the errors seen (429s from the edge are the test's setup, not the API)."""
        return [RATE_LIMIT_HINT] if RATE_LIMITED in self.errors else []

    def as_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "ok": self.ok, "failed": self.failed, "errors": self.errors,
                "seconds": round(self.seconds, 3), "rps": round(self.rps, 2),
                "latency_seconds": {"p50": round(self.p50, 4), "p95": round(self.p95, 4), "p99": round(self.p99, 4), "max": round(self.max, 4)},
                "by_kind": self.by_kind, "first_error": self.first_error,
                "last_error_at_seconds": None if self.last_error_at is None else round(self.last_error_at, 3), "examples": self.examples,
                "hints": self.hints}


def summarize(samples: Sequence[Sample], seconds: float) -> Summary:
    latencies = sorted(s.seconds for s in samples)
    errors = Counter(s.error for s in samples if s.error)
    first = next((s for s in samples if s.error), None)
    last = next((s for s in reversed(samples) if s.error), None)
    return Summary(
        requests=len(samples), ok=len(samples) - sum(errors.values()), errors=dict(errors), seconds=seconds,
        p50=percentile(latencies, 50), p95=percentile(latencies, 95), p99=percentile(latencies, 99),
        max=latencies[-1] if latencies else 0.0, by_kind=dict(Counter(s.kind for s in samples)),
        first_error=None if first is None else {"at_seconds": round(first.at, 3), "kind": first.kind, "error": first.error, "detail": first.detail},
        last_error_at=None if last is None else last.at,
        examples={kind: next(s.detail or "" for s in samples if s.error == kind) for kind in errors},
    )


def timeline(samples: Sequence[Sample], seconds: float, bucket: float = 1.0) -> list[dict[str, Any]]:
    """Per ``bucket`` seconds (by send time): requests, errors, p50/p95/max latency."""
    count = max(1, math.ceil(round(seconds / bucket, 1)))  # a last sliver of a bucket joins the one before
    buckets: list[list[Sample]] = [[] for _ in range(count)]
    for sample in samples:
        buckets[min(int(sample.at / bucket), len(buckets) - 1)].append(sample)
    rows = []
    for index, group in enumerate(buckets):
        latencies = sorted(s.seconds for s in group)
        rows.append({"t": round(index * bucket, 3), "requests": len(group), "errors": sum(1 for s in group if s.error),
                     "p50": round(percentile(latencies, 50), 4), "p95": round(percentile(latencies, 95), 4),
                     "max": round(latencies[-1], 4) if latencies else 0.0})
    return rows


@dataclass
class LoadResult:
    spec: LoadSpec
    samples: list[Sample]
    started: float
    """Wall-clock start (Unix time)."""
    seconds: float
    stopped_by: str
    """``duration``, ``count`` or ``stopped`` (the caller asked: a drill finished, or Ctrl-C)."""

    @property
    def summary(self) -> Summary:
        return summarize(self.samples, self.seconds)

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.spec.target.url, "load": self.spec.describe(), "started": self.started,
                "stopped_by": self.stopped_by, "summary": self.summary.as_dict(),
                "timeline": timeline(self.samples, self.seconds)}


Progress = Callable[[Summary, float], None]
"""Called about twice a second with the summary so far and the seconds elapsed."""


def _error_kind(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return "connect error"
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "connection closed"
    if isinstance(exc, httpx.ReadError | httpx.WriteError):
        return "connection reset"
    return type(exc).__name__


class _Run:
    """One load run's state inside its event loop."""

    def __init__(self, spec: LoadSpec, stop: threading.Event) -> None:
        self.spec = spec
        self.stop = stop
        self.samples: list[Sample] = []
        self.sent = 0
        self.t0 = time.monotonic()
        self.stopped_by = "duration"
        self._turn = itertools.count()

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def more(self) -> bool:
        """Whether another request may start (and why not, in ``stopped_by``)."""
        if self.stop.is_set():
            self.stopped_by = "stopped"
            return False
        if self.spec.max_requests is not None and self.sent >= self.spec.max_requests:
            self.stopped_by = "count"
            return False
        return self.elapsed() < self.spec.duration

    async def one(self, client: httpx.AsyncClient) -> None:
        turn = next(self._turn)
        kind = self.spec.mix[turn % len(self.spec.mix)]
        choices = REQUESTS[kind]
        method, path, extra = choices[(turn // len(self.spec.mix)) % len(choices)]
        self.sent += 1
        at = self.elapsed()
        started = time.perf_counter()
        try:
            response = await client.request(method, path, **extra)
        except httpx.HTTPError as exc:
            self.samples.append(Sample(at, kind, time.perf_counter() - started, _error_kind(exc), f"{method} {path}: {exc!s}"[:300]))
            return
        error = None if response.is_success else RATE_LIMITED if response.status_code == 429 else f"HTTP {response.status_code}"
        detail = None if error is None else f"{method} {path}: {response.text[:200]}"
        self.samples.append(Sample(at, kind, time.perf_counter() - started, error, detail))

    async def user(self, client: httpx.AsyncClient) -> None:
        while self.more():
            await self.one(client)

    async def open_model(self, client: httpx.AsyncClient) -> None:
        assert self.spec.rate is not None
        interval = 1.0 / self.spec.rate
        cap = max(1, self.spec.users) * 10
        tasks: set[asyncio.Task[None]] = set()
        due = 0.0
        while self.more():
            await asyncio.sleep(max(0.0, due - self.elapsed()))
            due += interval
            if len(tasks) >= cap or not self.more():
                continue  # the target is far behind: shed rather than queue without bound
            task = asyncio.create_task(self.one(client))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)

    async def report(self, progress: Progress) -> None:
        while True:
            await asyncio.sleep(PROGRESS_SECONDS)
            progress(summarize(self.samples, self.elapsed()), self.elapsed())


async def generate(spec: LoadSpec, *, stop: threading.Event | None = None, progress: Progress | None = None) -> LoadResult:
    """Run the load until ``spec.duration``, ``spec.max_requests`` or ``stop`` (in-flight requests finish)."""
    run = _Run(spec, stop or threading.Event())
    wall = time.time()
    concurrency = spec.users * 10 if spec.rate else spec.users
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=spec.target.url, headers=dict(spec.target.headers), verify=spec.target.verify,
                                 cert=spec.target.cert, timeout=spec.timeout, limits=limits, follow_redirects=False) as client:
        reporter = asyncio.create_task(run.report(progress)) if progress else None
        try:
            if spec.rate:
                await run.open_model(client)
            else:
                await asyncio.gather(*(run.user(client) for _ in range(spec.users)))
        finally:
            if reporter is not None:
                reporter.cancel()
    return LoadResult(spec, sorted(run.samples, key=lambda s: s.at), wall, run.elapsed(), run.stopped_by)


def run_load(spec: LoadSpec, *, stop: threading.Event | None = None, progress: Progress | None = None) -> LoadResult:
    """:func:`generate` from synchronous code (its own event loop; a drill runs it in a thread)."""
    return asyncio.run(generate(spec, stop=stop, progress=progress))


def probe(target: Target, timeout: float = 5.0) -> None:
    """Fail fast (exit 1, one line) when the target does not answer at all: nothing to load."""
    try:
        with httpx.Client(base_url=target.url, headers=dict(target.headers), verify=target.verify, cert=target.cert, timeout=timeout) as client:
            client.get("/health")
    except httpx.HTTPError as exc:
        from oewsctl.core.errors import OewsctlError

        raise OewsctlError(f"{target.url} does not answer ({_error_kind(exc)}: {exc})",
                           hint="check the URL; oewsctl status --public shows what the public endpoint answers") from None


# -- cluster facts and thresholds -----------------------------------------------------------
def labelled_pods(kube: Kube, namespace: str, selector: Mapping[str, str]) -> list[dict[str, Any]]:
    """The pods carrying every label of ``selector`` (also checked here, whatever the server did with the selector)."""
    pods = kube.list("v1", "Pod", namespace, label_selector=",".join(f"{k}={v}" for k, v in selector.items()))
    return [pod for pod in pods if all((pod["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())]


def pod_restarts(kube: Kube, namespace: str, selector: Mapping[str, str]) -> dict[str, int]:
    """Container restarts per API pod (label ``selector``), as the kubelet counts them."""
    return {pod["metadata"]["name"]: sum(int(c.get("restartCount", 0)) for c in (pod.get("status") or {}).get("containerStatuses") or [])
            for pod in labelled_pods(kube, namespace, selector)}


def restarts_between(before: Mapping[str, int], after: Mapping[str, int]) -> int:
    """Restarts that happened in between (a pod that appeared counts all of its restarts)."""
    return sum(max(0, count - before.get(pod, 0)) for pod, count in after.items())


@dataclass(frozen=True)
class Threshold:
    name: str
    limit: str
    value: str
    ok: bool | None
    """None: could not be checked (e.g. no cluster API for restart counts)."""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "limit": self.limit, "value": self.value, "ok": self.ok}


def thresholds(summary: Summary, restarts: int | None) -> list[Threshold]:
    """The runbook's acceptance: p95 < 2 s, no failed request, no pod restart."""
    (p95, p95_limit), (failed, failed_limit), (restart, restart_limit) = LIMITS
    return [
        Threshold(p95, p95_limit, f"{summary.p95:.3f} s", summary.p95 < P95_LIMIT_SECONDS),
        Threshold(failed, failed_limit, f"{summary.failed} of {summary.requests}", summary.failed == 0 and summary.requests > 0),
        Threshold(restart, restart_limit, "not checked" if restarts is None else str(restarts), None if restarts is None else restarts == 0),
    ]


# -- output ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Marker:
    """A moment on the chart (a drill step starting), seconds since the load started."""

    at: float
    label: str


def write_chart(rows: Sequence[Mapping[str, Any]], path: Path, *, title: str, markers: Sequence[Marker] = ()) -> Path:
    """Latency (p50/p95/max) and requests/errors per second, with markers, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    times = [row["t"] for row in rows]
    fig, (latency, volume) = plt.subplots(2, 1, sharex=True, figsize=(10, 6), height_ratios=(2, 1))
    try:
        for key, style in (("p50", "-"), ("p95", "-"), ("max", ":")):
            latency.plot([t + 0.5 for t in times], [row[key] * 1000 if row["requests"] else math.nan for row in rows], style, label=key)
        latency.axhline(P95_LIMIT_SECONDS * 1000, color="grey", linewidth=0.8, linestyle="--", label="p95 limit")
        latency.set_yscale("log")
        latency.set_ylabel("latency (ms)")
        latency.set_title(title)
        latency.legend(loc="upper right", fontsize="small")
        volume.bar(times, [row["requests"] - row["errors"] for row in rows], width=0.9, align="edge", color="tab:green", label="ok")
        volume.bar(times, [row["errors"] for row in rows], width=0.9, align="edge", color="tab:red",
                   bottom=[row["requests"] - row["errors"] for row in rows], label="failed")
        volume.set_ylabel("requests / s")
        volume.set_xlabel("seconds since start")
        volume.legend(loc="upper right", fontsize="small")
        for marker in markers:
            for axis in (latency, volume):
                axis.axvline(marker.at, color="tab:purple", linewidth=0.8)
            latency.annotate(marker.label, (marker.at, 1.0), xycoords=("data", "axes fraction"), rotation=90,
                             fontsize="x-small", va="top", ha="right", color="tab:purple")
        fig.tight_layout()
        fig.savefig(path, format="png", dpi=100)
    finally:
        plt.close(fig)
    return path


def write_report(document: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], directory: Path, stem: str, *,
                 title: str, markers: Sequence[Marker] = ()) -> tuple[Path, Path]:
    """``STEM.json`` (the document) and ``STEM.png`` (the chart) in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    report = directory / f"{stem}.json"
    report.write_text(json.dumps(document, indent=2) + "\n")
    return report, write_chart(rows, directory / f"{stem}.png", title=title, markers=markers)


def summary_table(summary: Summary, checks: Sequence[Threshold]) -> Any:
    """A rich Table of the summary and the thresholds (for the end of a run)."""
    from rich.table import Table

    table = Table(show_header=False, box=None)
    table.add_row("requests", f"{summary.requests} ({summary.rps:.1f}/s), failed {summary.failed}")
    table.add_row("latency", f"p50 {summary.p50 * 1000:.0f} ms · p95 {summary.p95 * 1000:.0f} ms · p99 {summary.p99 * 1000:.0f} ms · max {summary.max * 1000:.0f} ms")
    if summary.errors:
        table.add_row("errors", ", ".join(f"{kind} ×{count}" for kind, count in sorted(summary.errors.items())))
    if summary.first_error:
        first = summary.first_error
        table.add_row("first error", f"at {first['at_seconds']:.1f}s: {first['error']} ({first['detail']})")
    for hint in summary.hints:
        table.add_row("hint", hint)
    for check in checks:
        mark = {True: "[green]✓[/green]", False: "[red]✗[/red]", None: "[dim]?[/dim]"}[check.ok]
        table.add_row(check.name, f"{mark} {check.value} (limit {check.limit})")
    return table


def progress_line(summary: Summary, elapsed: float) -> str:
    errors = ", ".join(f"{k} ×{v}" for k, v in sorted(summary.errors.items())) or "none"
    return (f"{elapsed:5.1f}s  {summary.requests} requests ({summary.rps:.1f}/s)  p50 {summary.p50 * 1000:.0f} ms  "
            f"p95 {summary.p95 * 1000:.0f} ms  p99 {summary.p99 * 1000:.0f} ms  errors: {errors}")


# -- the `oewsctl loadtest` run ---------------------------------------------------------------
def via_api_target(kube: Kube, namespace: str, service: str) -> Target:
    """The Service through the API server's proxy, with the kubeconfig's credentials (no port-forward needed)."""
    conf = kube.api_client.configuration
    token = conf.get_api_key_with_prefix("authorization") or conf.get_api_key_with_prefix("BearerToken")
    cert = (conf.cert_file, conf.key_file) if conf.cert_file and conf.key_file else None
    return Target(f"{kube.host.rstrip('/')}/api/v1/namespaces/{namespace}/services/{service}:http/proxy",
                  headers={"Authorization": token} if token else {}, verify=(conf.ssl_ca_cert or True) if conf.verify_ssl else False, cert=cert)


def live_progress(interactive: bool) -> tuple[Progress, Callable[[], None]]:
    """A progress callback (a live line on a terminal, else a line every 5 s) and its closer."""
    from oewsctl.core.console import err_console

    if interactive:
        from rich.live import Live

        live = Live(console=err_console, refresh_per_second=4, transient=True)
        live.start()
        return (lambda summary, elapsed: live.update(progress_line(summary, elapsed))), live.stop
    printed = {"at": 0.0}

    def every_five(summary: Summary, elapsed: float) -> None:
        if elapsed - printed["at"] >= 5.0:
            printed["at"] = elapsed
            err_console.print(progress_line(summary, elapsed), markup=False, highlight=False)

    return every_five, lambda: None


def report_dir(kind: str, started: float) -> Path:
    """``<state dir>/<kind>/<UTC stamp>`` for a new report."""
    import datetime

    from oewsctl.core.state import state_dir

    return state_dir() / kind / datetime.datetime.fromtimestamp(started, datetime.UTC).strftime("%Y%m%d-%H%M%S")
