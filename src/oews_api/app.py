"""The app factory: ``create_app(settings)`` builds the service on any database file.

The database and its name index are loaded once (``service.Service``). A missing or
unreadable file does not stop the app: ``/health`` answers 503 with the reason (so probes
see it) and data endpoints answer 503 too. Requests pass, outermost first: metrics and
size limits, admission control (a concurrency limit with a short queue), CORS, the
response cache of GET data requests, the routes.
``/docs``, ``/redoc`` and ``/openapi.json`` exist only when ``public_docs`` is set.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from oews_api.admission import Admission
from oews_api.metrics import MetricsAndLimits
from oews_api.response_cache import ResponseCache
from oews_api.routes import router
from oews_api.service import Service
from oews_api.settings import MAX_BODY_BYTES, MAX_URL_CHARS, Settings


def create_app(settings: Settings | None = None, *, public_docs: bool | None = None) -> FastAPI:
    """A ready-to-serve app for ``settings`` (default: from the environment); ``public_docs`` overrides the setting."""
    settings = settings or Settings()
    service = Service(settings)
    docs = settings.public_docs if public_docs is None else public_docs

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Everything loaded so far (modules, the name index) lives as long as the process: keep it
        # out of the garbage collector's full passes, which otherwise stall requests for ~100 ms.
        await run_in_threadpool(service.warm_up)
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
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.state.service = service
    app.include_router(router)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_middleware(ResponseCache, cache=service.responses)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"], allow_headers=["content-type"], max_age=600
        )
    app.add_middleware(
        Admission,
        metrics=service.metrics,
        limit=settings.max_concurrent_requests,
        queue=settings.max_queued_requests,
        timeout=settings.queue_timeout_seconds,
        retry_after=settings.retry_after_seconds,
    )
    app.add_middleware(MetricsAndLimits, metrics=service.metrics, max_body=MAX_BODY_BYTES, max_url=MAX_URL_CHARS)
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` (and ``python -m oews_api``): settings from the environment."""
    return create_app(Settings())


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """422 with pydantic's error list (its messages name the limit broken), minus the echoed input (it may be a 16 KiB body)."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    detail = [{key: error[key] for key in ("type", "loc", "msg") if key in error} for error in errors]
    return JSONResponse({"detail": detail}, status_code=422)
