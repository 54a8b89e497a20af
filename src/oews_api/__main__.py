"""``python -m oews_api``: serve per environment variables, as the container does.

uvicorn handles SIGTERM gracefully: it stops accepting connections and lets
in-flight requests finish (up to ``GRACEFUL_SHUTDOWN_SECONDS``) before exiting,
which is what a rolling update needs.
"""

from __future__ import annotations

import os
from pathlib import Path

import uvicorn
from pydantic import SecretStr

from oews_api.app import create_app
from oews_api.settings import Settings

GRACEFUL_SHUTDOWN_SECONDS = 25  # under Kubernetes' default 30 s termination grace period


def serve(settings: Settings) -> None:
    """Run uvicorn on exactly these settings (database, CORS, LLM keys, host, port, workers, log level).

    One worker serves an app built here from ``settings``. Several workers (or reload) are
    separate processes that uvicorn starts from an import string, so they rebuild their
    settings from the environment: ``settings`` is exported there first.
    """
    single = settings.api_workers == 1 and not settings.api_reload
    if not single:
        _export(settings)
    uvicorn.run(
        create_app(settings) if single else "oews_api.app:app_from_env",
        factory=not single,
        host=settings.api_host,
        port=settings.api_port,
        reload=settings.api_reload,
        workers=None if settings.api_reload else settings.api_workers,
        log_level=settings.log_level,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        proxy_headers=True,
        server_header=False,
    )


def _export(settings: Settings) -> None:
    """Set the environment so that ``Settings()`` in a worker process equals ``settings``."""
    for name, value in settings:
        key = name.upper()
        if value is None:
            os.environ.pop(key, None)
        elif isinstance(value, SecretStr):
            os.environ[key] = value.get_secret_value()
        elif isinstance(value, list):
            os.environ[key] = ",".join(value)
        elif isinstance(value, Path):
            os.environ[key] = str(value.resolve())
        else:
            os.environ[key] = str(value).lower() if isinstance(value, bool) else str(value)


if __name__ == "__main__":
    serve(Settings())
