"""The app factory: ``create_app(settings)`` builds the service on any database file.

The database and its name index are loaded once here. A missing or unreadable
file does not stop the app: ``/health`` answers 503 with the reason (so probes
see it) and data endpoints answer 503 too.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from oews_api.answers import Answerer
from oews_api.db import Database, DatabaseUnavailable
from oews_api.llm import LLMPlanner
from oews_api.metrics import Metrics, MetricsAndLimits
from oews_api.names import NameIndex
from oews_api.planner import Planner
from oews_api.routes import router
from oews_api.settings import MAX_BODY_BYTES, MAX_URL_CHARS, Settings

log = logging.getLogger("oews_api")


@dataclass(frozen=True)
class Data:
    """The open database with its in-memory name index and the answerer over both."""

    db: Database
    index: NameIndex
    planner: Planner
    answerer: Answerer


class Service:
    """Everything a request needs, built once per app: data (or why there is none), LLM, metrics."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.data: Data | None = None
        self.error: str | None = None
        try:
            db = Database.open(settings.sqlite_db_path)
            index = NameIndex.build(db)
            self.data = Data(db, index, Planner(index), Answerer(db, index))
        except DatabaseUnavailable as exc:
            self.error = str(exc)
            log.error("database unavailable: %s", exc)
        self.metrics.describe_database(self.data.db.info if self.data else None, self.error)
        self.llm = LLMPlanner.from_settings(settings)
        self.http: httpx.AsyncClient | None = None


def create_app(settings: Settings | None = None) -> FastAPI:
    """A ready-to-serve app for ``settings`` (default: from the environment)."""
    settings = settings or Settings()
    service = Service(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Everything loaded so far (modules, the name index) lives as long as the process: keep it
        # out of the garbage collector's full passes, which otherwise stall requests for ~100 ms.
        gc.collect()
        gc.freeze()
        if service.llm is not None:
            service.http = httpx.AsyncClient()
        try:
            yield
        finally:
            if service.http is not None:
                await service.http.aclose()

    app = FastAPI(
        title="oews-api",
        version="1.0.0",
        summary="U.S. occupational wages and employment (BLS OEWS) from a read-only SQLite file.",
        lifespan=lifespan,
    )
    app.state.service = service
    app.include_router(router)
    app.add_exception_handler(DatabaseUnavailable, _database_unavailable)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"], allow_headers=["content-type"], max_age=600
        )
    app.add_middleware(MetricsAndLimits, metrics=service.metrics, max_body=MAX_BODY_BYTES, max_url=MAX_URL_CHARS)
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` (and ``python -m oews_api``): settings from the environment."""
    return create_app(Settings())


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": f"database unavailable: {exc}"}, status_code=503)


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """422 with pydantic's error list, minus the echoed input (it may be a 16 KiB body)."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    detail = [{key: error[key] for key in ("type", "loc", "msg") if key in error} for error in errors]
    return JSONResponse({"detail": detail}, status_code=422)
