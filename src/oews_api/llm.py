"""Optional LLM planner: an OpenAI-compatible chat endpoint turns a question into a ``Plan``.

The model is only asked for the plan as JSON matching ``Plan``'s schema; the
reply is validated by pydantic, and the same answer code as for the built-in
planner runs on it. It never sees or writes SQL. Any error, timeout or invalid
reply returns None and the caller falls back to the built-in planner. The API
key travels only in a request header and is never logged.

Every call is paid, and the endpoint is public, so costs are bounded: plans are kept per
normalised question (a bounded LRU), at most ``calls_per_minute`` calls start in any 60 s
and at most ``max_concurrent`` are in flight; past either limit, and on timeout, the
built-in planner answers.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from dataclasses import dataclass, field

import httpx
from pydantic import SecretStr, ValidationError

from oews_api.caches import BoundedLRU
from oews_api.planner import Plan
from oews_api.settings import Settings
from oews_api.text import normalize

log = logging.getLogger("oews_api.llm")

SYSTEM_PROMPT = (
    "You turn questions about U.S. wages and employment (BLS OEWS data) into a JSON plan. "
    "Reply with one JSON object that matches this JSON Schema and nothing else:\n{schema}\n"
    "occupations: SOC codes like 15-1252 or plain occupation names; areas: place names (state, metro area, city) "
    "or BLS area codes; leave areas empty for the whole U.S. Never write SQL."
)


PLAN_CACHE_SIZE = 2048
PLAN_CACHE_BYTES = 4 << 20
WINDOW_SECONDS = 60.0


@dataclass
class LLMPlanner:
    """One configured OpenAI-compatible endpoint (OpenAI, or Azure AI with an ``api-key`` header), with its cost limits."""

    url: str
    model: str
    headers: dict[str, str] = field(repr=False)  # holds the API key
    timeout: float = 5.0
    calls_per_minute: int = 30
    max_concurrent: int = 4
    in_flight: int = field(default=0, repr=False)
    _said_at: float = field(default=-WINDOW_SECONDS, repr=False)  # when "at its limit" was last logged (once a minute at most)
    _started: deque[float] = field(default_factory=deque, repr=False)  # monotonic start times of calls in the last minute
    _plans: BoundedLRU[str, Plan] = field(default_factory=lambda: BoundedLRU(PLAN_CACHE_SIZE, PLAN_CACHE_BYTES), repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> LLMPlanner | None:
        """The planner for the configured key, or None when no key is set."""
        if settings.azure_ai_api_key and settings.azure_ai_endpoint:
            return cls(
                url=settings.azure_ai_endpoint.rstrip("/") + "/chat/completions",
                model=settings.azure_ai_model,
                headers=_headers("api-key", settings.azure_ai_api_key),
                timeout=settings.llm_timeout_seconds,
                calls_per_minute=settings.llm_calls_per_minute,
                max_concurrent=settings.llm_max_concurrent,
            )
        if settings.openai_api_key:
            return cls(
                url=settings.openai_base_url.rstrip("/") + "/chat/completions",
                model=settings.openai_model,
                headers=_headers("authorization", settings.openai_api_key, prefix="Bearer "),
                timeout=settings.llm_timeout_seconds,
                calls_per_minute=settings.llm_calls_per_minute,
                max_concurrent=settings.llm_max_concurrent,
            )
        return None

    async def plan(self, client: httpx.AsyncClient, question: str) -> Plan | None:
        """The model's plan for a question (cached per normalised question), or None when over a limit or on any failure."""
        key = " ".join(normalize(question))
        cached = self._plans.get(key)
        if cached is not None:
            return cached
        if not self._admit():
            return None
        self.in_flight += 1
        try:
            plan = await self._ask(client, question)
        finally:
            self.in_flight -= 1
        return self._plans.put(key, plan) if plan is not None else None

    def _admit(self) -> bool:
        """Whether a new call fits the per-minute budget and the concurrency cap (if so, it is counted)."""
        now = time.monotonic()
        while self._started and now - self._started[0] >= WINDOW_SECONDS:
            self._started.popleft()
        if self.in_flight >= self.max_concurrent or len(self._started) >= self.calls_per_minute:
            if now - self._said_at >= WINDOW_SECONDS:
                self._said_at = now
                log.warning("LLM planner at its limit (%d calls/min, %d at once); the built-in planner answers", self.calls_per_minute, self.max_concurrent)
            return False
        self._started.append(now)
        return True

    async def _ask(self, client: httpx.AsyncClient, question: str) -> Plan | None:
        body = {
            "model": self.model,
            "temperature": 0,
            "response_format": {"type": "json_object"},
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT.format(schema=json.dumps(Plan.model_json_schema()))},
                {"role": "user", "content": question},
            ],
        }
        try:
            response = await client.post(self.url, json=body, headers=self.headers, timeout=self.timeout)
            response.raise_for_status()
            content = response.json()["choices"][0]["message"]["content"]
            return Plan.model_validate_json(content)
        except httpx.TimeoutException:
            log.warning("LLM planner timed out after %.1fs; using the built-in planner", self.timeout)
        except httpx.HTTPStatusError as exc:
            log.warning("LLM planner returned HTTP %s; using the built-in planner", exc.response.status_code)
        except (httpx.HTTPError, KeyError, IndexError, TypeError, ValueError, ValidationError) as exc:
            log.warning("LLM planner reply unusable (%s); using the built-in planner", type(exc).__name__)
        return None


def _headers(name: str, key: SecretStr, prefix: str = "") -> dict[str, str]:
    return {name: prefix + key.get_secret_value()}
