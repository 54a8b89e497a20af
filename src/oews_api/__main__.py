"""``python -m oews_api``: serve per environment variables, as the container does.

uvicorn handles SIGTERM gracefully: it stops accepting connections and lets
in-flight requests finish (up to ``GRACEFUL_SHUTDOWN_SECONDS``) before exiting,
which is what a rolling update needs.
"""

from __future__ import annotations

import uvicorn

from oews_api.settings import Settings

GRACEFUL_SHUTDOWN_SECONDS = 25  # under Kubernetes' default 30 s termination grace period


def serve(settings: Settings) -> None:
    """Run uvicorn for the app factory with these settings' host, port, workers and log level."""
    uvicorn.run(
        "oews_api.app:app_from_env",
        factory=True,
        host=settings.api_host,
        port=settings.api_port,
        reload=settings.api_reload,
        workers=None if settings.api_reload else settings.api_workers,
        log_level=settings.log_level,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        proxy_headers=True,
        server_header=False,
    )


if __name__ == "__main__":
    serve(Settings())
