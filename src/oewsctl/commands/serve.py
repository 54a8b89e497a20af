"""CLI wiring for `oewsctl serve`: run oews-api locally on a database file."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated

import typer

from oewsctl.core.console import err_console
from oewsctl.core.errors import UsageError


def register(app: typer.Typer) -> None:
    """Add `serve` to the root app."""
    app.command(
        "serve",
        help=(
            "Run the oews-api service on this machine (no cluster, no config file needed).\n\n"
            "Serves the bundled May 2025 sample database unless --db is given; opens the file read-only and "
            "changes nothing. Stop it with Ctrl-C (in-flight requests finish first).\n\n"
            "Exit 2 (one line, nothing started) when the database is unusable or the address is taken.\n\n"
            "Example:  oewsctl serve --db ./oews.db --port 8080   then   curl localhost:8080/health"
        ),
    )(serve)


def serve(
    db: Annotated[Path | None, typer.Option("--db", help="oews.db to serve (default: the bundled sample).", show_default=False)] = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on (0.0.0.0 = every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64, help="uvicorn worker processes.")] = 1,
) -> None:
    """Check the database, then serve it until interrupted."""
    from oews_api.__main__ import serve as run_server
    from oews_api.db import Database, DatabaseUnavailable
    from oews_api.sample import SAMPLE_DB
    from oews_api.settings import Settings

    path = (db or SAMPLE_DB).expanduser()
    try:
        info = Database.open(path).info
    except DatabaseUnavailable as exc:
        hint = "build one with `oewsctl db build --from DIR --out oews.db`, or omit --db to serve the bundled sample"
        raise UsageError(str(exc), hint) from exc
    _check_address(host, port)
    err_console.print(f"serving {path} ({info.release}, {info.rows:,} estimates, sha256 {info.sha256[:12]}…) on http://{host}:{port}")
    # Flags win; everything else (CORS, LLM keys, log level) comes from the environment as in the container.
    # Locally the API docs are on (/docs); the container keeps them off unless app.public_docs is set.
    run_server(Settings(sqlite_db_path=path.resolve(), api_host=host, api_port=port, api_workers=workers, public_docs=True))


def _check_address(host: str, port: int) -> None:
    """Bind ``host:port`` once, as uvicorn will, so a taken port is one clear line (uvicorn would log
    its own error and exit 3, the lock's code)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: a port in TIME_WAIT is free
            probe.bind(address)
    except socket.gaierror as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}", hint="--host takes an address of this machine, e.g. 127.0.0.1 or 0.0.0.0") from None
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                         hint=f"another program holds the port (see `ss -ltnp 'sport = :{port}'`): stop it or pick another with --port") from None
