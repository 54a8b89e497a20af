"""Prometheus metrics and the request limits, as one pure-ASGI middleware.

Counts and latency are labelled by route *template* (``/api/v1/wages``, never
the raw URL with its query) and status, so label cardinality stays small. Each
app owns its registry (tests build many apps in one process). With several
uvicorn workers each worker reports its own counters; the cluster runs one
worker per pod, so per-pod scraping is exact.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from oews_api.db import DatabaseInfo

# Methods recorded by name; anything else a client sends is counted as "other" (bounded label set).
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """The service's metrics in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "oews_api_requests_total", "HTTP requests by route template and status.", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "oews_api_request_duration_seconds",
            "HTTP request latency by route template and status.",
            ["method", "route", "status"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.database = Info("oews_api_database", "The database file being served.", registry=self.registry)
        self.release_time = Gauge(
            "oews_api_database_release_timestamp_seconds",
            "Survey reference date of the newest release served (Unix time); alerts on stale data.",
            ["release"],
            registry=self.registry,
        )
        self.in_progress = Gauge("oews_api_requests_in_progress", "Data requests being handled (admission control).", registry=self.registry)
        self.queued = Gauge("oews_api_requests_queued", "Data requests waiting for a slot (admission control).", registry=self.registry)

    def describe_database(self, info: DatabaseInfo | None, error: str | None) -> None:
        """Publish the DB release and SHA-256 (or that it is unavailable) as an info metric; the file by name, never its path."""
        if info is None:
            self.database.info({"status": "unavailable", "reason": error or "", "release": "", "sha256": "", "path": ""})
        else:
            self.database.info({"status": "ok", "reason": "", "release": info.release, "sha256": info.sha256, "path": Path(info.path).name})
            reference = datetime.combine(info.reference_date, datetime.min.time(), tzinfo=timezone.utc)
            self.release_time.labels(info.release).set(reference.timestamp())

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


async def _send_json(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class MetricsAndLimits:
    """Reject oversized requests (413/414, JSON) and record every request's count and latency."""

    def __init__(self, app: ASGIApp, metrics: Metrics, *, max_body: int, max_url: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body = max_body
        self.max_url = max_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        state = {"code": 500, "rejected": False}

        async def send_wrapper(message: Message) -> None:
            if state["rejected"]:
                return  # the 413 is already out; drop whatever the app answers after its receive failed
            if message["type"] == "http.response.start":
                state["code"] = message["status"]
            await send(message)

        async def reject_body() -> None:
            await _send_json(send_wrapper, 413, f"request body too large (the limit is {self.max_body} bytes)")
            state["rejected"] = True

        try:
            rejection = self._rejection(scope)
            if rejection:
                await _send_json(send_wrapper, *rejection)
            else:
                await self.app(scope, self._limited(receive, reject_body), send_wrapper)
        except BodyTooLarge:
            pass  # already answered 413 by reject_body
        finally:
            self._record(scope, int(state["code"]), time.perf_counter() - start)

    def _record(self, scope: Scope, code: int, seconds: float) -> None:
        """Count the request (an unhandled error counts as the 500 the server sends)."""
        route = scope.get("route")
        template = getattr(route, "path", None) or ("unmatched" if code == 404 else "rejected")
        method = scope["method"] if scope["method"] in KNOWN_METHODS else "other"
        labels = (method, template, str(code))
        self.metrics.requests.labels(*labels).inc()
        self.metrics.latency.labels(*labels).observe(seconds)

    def _rejection(self, scope: Scope) -> tuple[int, str] | None:
        url_length = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
        if url_length > self.max_url:
            return 414, f"URL too long ({url_length} bytes; the limit is {self.max_url})"
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    return 400, "invalid Content-Length header"
                if length > self.max_body:
                    return 413, f"request body too large ({length} bytes; the limit is {self.max_body})"
        return None

    def _limited(self, receive: Receive, reject: Callable[[], Awaitable[None]]) -> Receive:
        """Answer 413 for bodies sent without Content-Length (chunked) as soon as they pass the limit.

        The 413 goes out from here, before the app sees the error: FastAPI turns any exception
        raised while it reads the body into a 400 "error parsing the body".
        """
        seen = {"bytes": 0}
        max_body = self.max_body

        async def limited_receive() -> Message:
            message: dict[str, Any] = dict(await receive())
            if message["type"] == "http.request":
                seen["bytes"] += len(message.get("body", b""))
                if seen["bytes"] > max_body:
                    await reject()
                    raise BodyTooLarge(max_body)
            return message

        return limited_receive


class BodyTooLarge(Exception):
    """A chunked request body went past the limit (answered 413 by the middleware)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body too large (the limit is {limit} bytes)")
