"""Every setting of the service, read from the environment in one place (pydantic-settings).

The container sets these as environment variables; ``oewsctl serve`` builds a
``Settings`` from its flags instead. Secrets are ``SecretStr`` so they never
appear in a repr, a log line or an error message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from oews_api.sample import SAMPLE_DB

MAX_QUERY_CHARS = 500  # POST /api/v1/query "query" (DESIGN: 3..500)
MAX_NAME_CHARS = 120  # any occupation, area, group or industry name or search text (the longest BLS title is 100)
MAX_LIST_ITEMS = 5  # repeated parameters (compare) and plan terms
MAX_BODY_BYTES = 16 * 1024  # any request body
MAX_URL_CHARS = 2048  # path + query string


class Settings(BaseSettings):
    """Service configuration (environment variable = field name in upper case)."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=1, le=65535)
    api_reload: bool = False
    api_workers: int = Field(1, ge=1, le=64)
    sqlite_db_path: Path = SAMPLE_DB
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    log_level: Literal["critical", "error", "warning", "info", "debug", "trace"] = "info"

    # Optional LLM planner: OpenAI (or any OpenAI-compatible endpoint) or Azure AI.
    openai_api_key: SecretStr | None = None
    openai_base_url: str = "https://api.openai.com/v1"
    openai_model: str = "gpt-4o-mini"
    azure_ai_api_key: SecretStr | None = None
    azure_ai_endpoint: str | None = None  # e.g. https://NAME.services.ai.azure.com/models
    azure_ai_model: str = "gpt-4o-mini"
    llm_timeout_seconds: float = Field(5.0, gt=0, le=60)
    llm_calls_per_minute: int = Field(30, ge=0, le=10_000, description="paid LLM calls per minute per process; past it the built-in planner answers")
    llm_max_concurrent: int = Field(4, ge=1, le=256, description="LLM calls in flight at once; a question past it gets the built-in planner")

    # Exposure and admission control (issue 13): the pod is on the open internet.
    public_docs: bool = Field(False, description="serve /docs, /redoc and /openapi.json (oewsctl serve turns this on locally)")
    max_concurrent_requests: int = Field(8, ge=1, le=1024, description="data requests handled at once; /health and /metrics are not counted")
    max_queued_requests: int = Field(32, ge=0, le=10_000, description="data requests waiting for a slot; past it: 503 with Retry-After")
    queue_timeout_seconds: float = Field(2.0, gt=0, le=60, description="longest wait for a slot before a 503")
    retry_after_seconds: int = Field(1, ge=1, le=3600, description="Retry-After sent with a 503 when shedding load")

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        """Accept ``https://a,https://b`` (as Kubernetes env vars carry it) or a JSON list."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                return json.loads(text)
            return [item.strip() for item in text.split(",") if item.strip()]
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_level(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value
