"""The optional LLM planner against a local OpenAI-compatible stand-in server (real HTTP on loopback)."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from oews_api.app import create_app
from oews_api.settings import Settings
from tests.fixtures.api import free_port

pytestmark = pytest.mark.asyncio
KEY = "sk-test-not-a-real-key-7f3a"


class StandIn:
    """A chat-completions endpoint whose behaviour the test sets (``mode``) and whose requests it records."""

    def __init__(self) -> None:
        self.mode = "plan"
        self.requests: list[dict[str, Any]] = []
        self.app = FastAPI()
        self.app.post("/v1/chat/completions")(self.complete)

    async def complete(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.requests.append({"headers": dict(request.headers), "body": body})
        if self.mode == "slow":
            await asyncio.sleep(3)
        if self.mode == "error":
            return JSONResponse({"error": {"message": "overloaded"}}, status_code=503)
        content = {
            "plan": json.dumps({"intent": "value", "statistic": "mean", "occupations": ["Software Developers"], "areas": ["Seattle, WA"]}),
            "invalid": json.dumps({"intent": "value", "occupations": ["x"], "sql": "DROP TABLE estimates"}),
            "garbage": "Sure! The answer is about $100k.",
        }.get(self.mode, "{}")
        return JSONResponse({"choices": [{"message": {"role": "assistant", "content": content}}]})


@pytest.fixture(scope="module")
def stand_in() -> Iterator[tuple[StandIn, str]]:
    server_app = StandIn()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(server_app.app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield server_app, f"http://127.0.0.1:{port}/v1"
    server.should_exit = True
    thread.join(timeout=10)


async def _ask(settings: Settings, question: str) -> dict[str, Any]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            response = await client.post("/api/v1/query", json={"query": question})
    assert response.status_code == 200
    return response.json()


def _openai(url: str, api_db: Path) -> Settings:
    return Settings(sqlite_db_path=api_db, openai_api_key=KEY, openai_base_url=url, openai_model="stand-in-model", llm_timeout_seconds=0.5)


async def test_the_llm_plan_is_validated_and_answered_from_the_data(stand_in: tuple[StandIn, str], api_db: Path) -> None:
    server, url = stand_in
    server.mode = "plan"
    body = await _ask(_openai(url, api_db), "what do software engineers in Seattle make on average?")
    assert body["metadata"]["models_used"] == ["stand-in-model"]
    assert body["metadata"]["plan"]["statistic"] == "mean"
    assert "mean annual wage for Software Developers in Seattle-Tacoma-Bellevue, WA" in body["answer"]
    assert f"${body['data'][0]['a_mean']:,.0f}" in body["answer"]
    sent = server.requests[-1]
    assert sent["headers"]["authorization"] == f"Bearer {KEY}"
    assert sent["body"]["messages"][-1]["content"] == "what do software engineers in Seattle make on average?"
    assert "occupations" in sent["body"]["messages"][0]["content"]  # the Plan JSON schema


@pytest.mark.parametrize("mode", ["garbage", "invalid", "error", "slow"])
async def test_any_llm_failure_falls_back_to_the_builtin_planner(
    stand_in: tuple[StandIn, str], api_db: Path, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    server, url = stand_in
    server.mode = mode
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="oews_api.llm"):
        body = await _ask(_openai(url, api_db), "median salary for web developers in Seattle")
    assert time.monotonic() - started < 2.5  # the 0.5 s timeout, not the stand-in's 3 s
    assert body["metadata"]["models_used"] == ["oews-builtin-planner"]
    assert "$130,440" in body["answer"]
    assert "built-in planner" in caplog.text
    assert KEY not in caplog.text


async def test_azure_ai_uses_its_endpoint_and_api_key_header(stand_in: tuple[StandIn, str], api_db: Path) -> None:
    server, url = stand_in
    server.mode = "plan"
    settings = Settings(sqlite_db_path=api_db, azure_ai_api_key=KEY, azure_ai_endpoint=url, azure_ai_model="azure-model")
    body = await _ask(settings, "software developer pay in Seattle")
    assert body["metadata"]["models_used"] == ["azure-model"]
    assert server.requests[-1]["headers"]["api-key"] == KEY
    assert KEY not in repr(settings) and KEY not in repr(create_app(settings).state.service.llm)


async def _ask_many(settings: Settings, questions: list[str]) -> list[dict[str, Any]]:
    """Ask one app several questions at once; the answers in the same order."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            responses = await asyncio.gather(*(client.post("/api/v1/query", json={"query": q}) for q in questions))
    assert all(r.status_code == 200 for r in responses)
    return [r.json() for r in responses]


async def test_llm_plans_are_cached_per_normalised_question(stand_in: tuple[StandIn, str], api_db: Path) -> None:
    server, url = stand_in
    server.mode = "plan"
    app = create_app(_openai(url, api_db))
    before = len(server.requests)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            for question in ("Software engineer pay in Seattle?", "software engineer pay in seattle", "SOFTWARE ENGINEER PAY IN SEATTLE!"):
                body = (await client.post("/api/v1/query", json={"query": question})).json()
                assert body["metadata"]["models_used"] == ["stand-in-model"]
    assert len(server.requests) == before + 1  # one paid call for three spellings of one question


async def test_past_the_per_minute_budget_the_builtin_planner_answers(stand_in: tuple[StandIn, str], api_db: Path) -> None:
    server, url = stand_in
    server.mode = "plan"
    settings = _openai(url, api_db).model_copy(update={"llm_calls_per_minute": 2})
    before = len(server.requests)
    app = create_app(settings)
    models = []
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            for place in ("Seattle", "Ohio", "Texas", "Utah"):
                body = (await client.post("/api/v1/query", json={"query": f"median salary for web developers in {place}"})).json()
                models.append(body["metadata"]["models_used"])
    assert models == [["stand-in-model"]] * 2 + [["oews-builtin-planner"]] * 2
    assert len(server.requests) == before + 2


async def test_past_the_concurrency_cap_a_question_does_not_wait_for_the_llm(stand_in: tuple[StandIn, str], api_db: Path) -> None:
    server, url = stand_in
    server.mode = "slow"  # each call would take 3 s; the 0.5 s timeout ends it
    settings = _openai(url, api_db).model_copy(update={"llm_max_concurrent": 1})
    before = len(server.requests)
    started = time.monotonic()
    bodies = await _ask_many(settings, [f"median salary for web developers in {place}" for place in ("Seattle", "Ohio", "Texas")])
    assert time.monotonic() - started < 2.5
    assert all(b["metadata"]["models_used"] == ["oews-builtin-planner"] for b in bodies)
    assert len(server.requests) == before + 1  # the other two never reached the paid endpoint
