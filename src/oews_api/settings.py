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
