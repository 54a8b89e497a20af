"""The state a request needs, built once per app: the data (or why there is none), the LLM planner, metrics, caches.

Routes read it from ``request.app.state.service``; the app factory builds it. Neither
imports the other's module for it, so there is no app <-> routes cycle.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx
from fastapi import HTTPException

from oews_api.answers import Answerer
from oews_api.caches import BoundedLRU
from oews_api.db import Database, DatabaseUnavailable
from oews_api.llm import LLMPlanner
from oews_api.metrics import Metrics
from oews_api.names import NameIndex
from oews_api.planner import Planner
from oews_api.response_cache import CachedResponse, response_size
from oews_api.settings import Settings

log = logging.getLogger("oews_api")
RESPONSE_CACHE_SIZE = 8192
RESPONSE_CACHE_BYTES = 16 << 20


@dataclass(frozen=True)
class Data:
    """The open database with its in-memory name index and the planner and answerer over both."""

    db: Database
    index: NameIndex
    planner: Planner
    answerer: Answerer


class Service:
    """Everything a request needs: data (or the public reason there is none), LLM, metrics, the response cache."""

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
            self.error = exc.public
            log.error("database unavailable: %s", exc)  # the full path and SQLite's words: for the operator's log only
        self.metrics.describe_database(self.data.db.info if self.data else None, self.error)
        self.llm = LLMPlanner.from_settings(settings)
        self.http: httpx.AsyncClient | None = None
        # JSON bodies of GET data requests by their raw URL: the file never changes while it is served.
        self.responses: BoundedLRU[bytes, CachedResponse] = BoundedLRU(RESPONSE_CACHE_SIZE, RESPONSE_CACHE_BYTES, response_size)

    def warm_up(self) -> None:
        """Answer one question and resolve a few names, so the first client does not pay for lazy imports,
        regex compilation and the first SQLite reads."""
        if self.data is None:
            return
        data = self.data
        try:
            data.answerer.answer(data.planner.plan("median salary for registered nurses in Texas"), charts=True)
            data.index.area("zzqx")
            data.index.occupation("zzqx")
        except Exception:  # the same error would meet the first client; starting anyway keeps /health answering
            log.exception("warm-up question failed")

    def require_data(self) -> Data:
        """The data, or a 503 saying (without any filesystem path) why there is none."""
        if self.data is None:
            raise HTTPException(503, f"database unavailable: {self.error or 'not loaded'}")
        return self.data

    @property
    def database_file(self) -> str:
        """The served file's name (never its absolute path: /health is public)."""
        return self.settings.sqlite_db_path.name
