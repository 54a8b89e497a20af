"""A dead-man's switch for cron jobs: Healthchecks.io-style pings (``<url>/start``, ``<url>``, ``<url>/fail``).

Pinging must never block or fail the job it watches: each ping has a short timeout and one
retry, and any error becomes one warning line. A failure ping carries only the error line
(truncated to the server's body limit), never the environment, a config or a secret; the
URL (which holds the check's key) is never printed, only its host and port (no path, no
``user:password@``). A URL httpx cannot use (``http://[::1``) is one more ping error, not a crash:
``--ping-url`` and the inventory reject such URLs up front (``configuration.schema.ping_url_problem``).
One ``rid`` (a UUID) per run pairs the start with its end, so Healthchecks measures run time.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import httpx

from oewsctl.configuration.schema import ping_url_problem
from oewsctl.core.errors import UsageError

PING_TIMEOUT = 5.0
PING_ATTEMPTS = 2
BODY_LIMIT = 10_000
"""A self-hosted Healthchecks keeps 10,000 bytes of a ping body (hosted: 100 kB); ``Ping-Body-Limit`` lowers it."""

Warn = Callable[[str], None]


def checked_option(url: str | None) -> str | None:
    """``--ping-url`` as given, or a one-line UsageError (exit 2) before the job starts: a URL the
    pinger could not use would only show up as a warning on every run."""
    problem = url and ping_url_problem(url)
    if problem:
        raise UsageError(f"--ping-url: {problem}")
    return url


class Pinger:
    """The pings of one run of a job; ``url`` None makes every ping a no-op."""

    def __init__(self, url: str | None, warn: Warn, *, timeout: float | None = None) -> None:
        self.url = url.rstrip("/") if url else None
        self.warn = warn
        self.timeout = PING_TIMEOUT if timeout is None else timeout
        self.run_id = str(uuid.uuid4())
        self.body_limit = BODY_LIMIT

    @property
    def where(self) -> str:
        """``host[:port]`` for warnings: never the path (the check's key) nor a ``user:password@``."""
        if not self.url:
            return "(none)"
        try:
            parts = urlsplit(self.url)
            host, port = parts.hostname or "(no host)", parts.port
        except ValueError:
            return "(malformed URL)"
        host = f"[{host}]" if ":" in host else host
        return f"{host}:{port}" if port else host

    def start(self) -> None:
        self._ping("/start", "")

    def success(self) -> None:
        self._ping("", "")

    def fail(self, message: str) -> None:
        self._ping("/fail", message)

    def _ping(self, suffix: str, body: str) -> None:
        if self.url is None:
            return
        data = body.encode()[: self.body_limit]
        problem = ""
        for _ in range(PING_ATTEMPTS):
            try:
                response = httpx.post(f"{self.url}{suffix}", params={"rid": self.run_id}, content=data, timeout=self.timeout)
            except httpx.HTTPError as exc:
                problem = type(exc).__name__
                continue
            except (httpx.InvalidURL, ValueError) as exc:  # a URL httpx cannot use (ValueError: a host IDNA rejects)
                problem = type(exc).__name__
                break  # retrying cannot mend the URL
            limit = response.headers.get("Ping-Body-Limit", "")
            if limit.isdigit():
                self.body_limit = min(self.body_limit, int(limit))
            if response.is_success:
                return
            problem = f"HTTP {response.status_code}"
            if response.is_client_error:
                break  # an unknown check (404) or a bad slug (409) does not get better by retrying
        self.warn(f"warning: ping{suffix or ' (success)'} to {self.where} failed ({problem}); the job itself is not affected")


def failure_line(exc: BaseException) -> str:
    """What a failure ping says: the error's one line (``OewsctlError.message``), Ctrl-C or the signal."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (Ctrl-C)"
    if isinstance(exc, SystemExit):
        return f"exited with code {exc.code}" + (" (terminated by SIGTERM)" if exc.code == 143 else "")
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return str(message).splitlines()[0]


@contextmanager
def pinged(url: str | None, warn: Warn) -> Iterator[Pinger]:
    """Ping ``/start`` now, then the success URL when the block ends, or ``/fail`` with the error
    line when it raises anything (Ctrl-C and SIGTERM-as-SystemExit included); re-raises."""
    pinger = Pinger(url, warn)
    pinger.start()
    try:
        yield pinger
    except BaseException as exc:
        pinger.fail(failure_line(exc))
        raise
    pinger.success()
