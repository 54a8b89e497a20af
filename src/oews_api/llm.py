"""Optional LLM planner: an OpenAI-compatible chat endpoint turns a question into a ``Plan``.

The model is only asked for the plan as JSON matching ``Plan``'s schema; the
reply is validated by pydantic, and the same answer code as for the built-in
planner runs on it. It never sees or writes SQL. Any error, timeout or invalid
reply returns None and the caller falls back to the built-in planner. The API
key travels only in a request header and is never logged.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

import httpx
from pydantic import SecretStr, ValidationError

from oews_api.planner import Plan
from oews_api.settings import Settings

log = logging.getLogger("oews_api.llm")

SYSTEM_PROMPT = (
    "You turn questions about U.S. wages and employment (BLS OEWS data) into a JSON plan. "
    "Reply with one JSON object that matches this JSON Schema and nothing else:\n{schema}\n"
    "occupations: SOC codes like 15-1252 or plain occupation names; areas: place names (state, metro area, city) "
    "or BLS area codes; leave areas empty for the whole U.S. Never write SQL."
)


@dataclass(frozen=True)
class LLMPlanner:
    """One configured OpenAI-compatible endpoint (OpenAI, or Azure AI with an ``api-key`` header)."""

    url: str
    model: str
    headers: dict[str, str] = field(repr=False)  # holds the API key
    timeout: float = 5.0

    @classmethod
    def from_settings(cls, settings: Settings) -> LLMPlanner | None:
        """The planner for the configured key, or None when no key is set."""
        if settings.azure_ai_api_key and settings.azure_ai_endpoint:
            return cls(
                url=settings.azure_ai_endpoint.rstrip("/") + "/chat/completions",
                model=settings.azure_ai_model,
                headers=_headers("api-key", settings.azure_ai_api_key),
                timeout=settings.llm_timeout_seconds,
            )
        if settings.openai_api_key:
            return cls(
                url=settings.openai_base_url.rstrip("/") + "/chat/completions",
                model=settings.openai_model,
                headers=_headers("authorization", settings.openai_api_key, prefix="Bearer "),
                timeout=settings.llm_timeout_seconds,
            )
        return None

    async def plan(self, client: httpx.AsyncClient, question: str) -> Plan | None:
        """The model's plan for a question, or None (logged) on any failure."""
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
