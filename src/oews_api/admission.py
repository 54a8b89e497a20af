"""Admission control: at most N data requests at once, a short queue, and a fast 503 past it.

A public pod must answer its probes whatever clients send. This pure-ASGI middleware lets
``limit`` requests run, parks up to ``queue`` more (each for at most ``timeout`` seconds) and
answers the rest at once with ``503`` and ``Retry-After``; ``/health`` and ``/metrics`` are
never counted or queued. A finishing request hands its slot straight to the oldest waiter.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from contextlib import suppress

from starlette.types import ASGIApp, Receive, Scope, Send

from oews_api.metrics import Metrics

EXEMPT_PATHS = frozenset({"/health", "/metrics"})


class Admission:
    """Concurrency limit with a bounded queue in front of ``app``."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, limit: int, queue: int, timeout: float, retry_after: int) -> None:
        self.app = app
        self.metrics = metrics
        self.limit = limit
        self.queue = queue
        self.timeout = timeout
        self.retry_after = retry_after
        self.active = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        if self.active < self.limit:
            self.active += 1
            self.metrics.in_progress.set(self.active)
        elif len(self._waiters) >= self.queue or not await self._wait_for_slot():
            await self._shed(send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self._release()

    async def _wait_for_slot(self) -> bool:
        """Queue up; True once a finishing request handed us its slot, False after ``timeout``."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        self.metrics.queued.set(len(self._waiters))
        try:
            await asyncio.wait_for(future, self.timeout)
            return True
        except BaseException as exc:
            if future.done() and not future.cancelled():
                self._release()  # the slot arrived just as we gave up: pass it on
            else:
                with suppress(ValueError):
                    self._waiters.remove(future)
            if isinstance(exc, TimeoutError):
                return False
            raise
        finally:
            self.metrics.queued.set(len(self._waiters))

    def _release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot moves to the waiter: ``active`` stays the same
                return
        self.active -= 1
        self.metrics.in_progress.set(self.active)

    async def _shed(self, send: Send) -> None:
        body = json.dumps(
            {
                "detail": f"server busy: {self.active} requests in progress and {len(self._waiters)} waiting "
                f"(limits {self.limit} and {self.queue}); retry after {self.retry_after} s"
            }
        ).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(self.retry_after).encode()),
        ]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})
