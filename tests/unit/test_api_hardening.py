"""The API on the open internet: input caps, admission control, work off the event loop, private docs, bounded caches."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from oews_api.answers import Answer, Answerer
from oews_api.app import create_app
from oews_api.caches import BoundedLRU
from oews_api.settings import MAX_LIST_ITEMS, MAX_NAME_CHARS, MAX_QUERY_CHARS, Settings


async def _client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://oews.test") as client:
            yield client


def _held_app(settings: Settings) -> tuple[FastAPI, asyncio.Event]:
    """The app with ``GET /api/v1/held``: a request that stays in flight until the test sets the event."""
    app = create_app(settings)
    release = asyncio.Event()

    @app.get("/api/v1/held")
    async def held() -> dict[str, bool]:
        await release.wait()
        return {"done": True}

    return app, release


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("method", "path", "params", "limit"),
    [
        ("GET", "/api/v1/wages", {"occupation": "x" * (MAX_NAME_CHARS + 1)}, f"at most {MAX_NAME_CHARS} characters"),
        ("GET", "/api/v1/wages", {"occupation": "nurse", "area": "y" * (MAX_NAME_CHARS + 1)}, f"at most {MAX_NAME_CHARS} characters"),
        ("GET", "/api/v1/compare", [("occupation", "nurse"), ("area", "ohio"), ("area", "z" * (MAX_NAME_CHARS + 1))], f"at most {MAX_NAME_CHARS} characters"),
        ("GET", "/api/v1/compare", [("occupation", f"nurse {n}") for n in range(MAX_LIST_ITEMS + 1)], f"at most {MAX_LIST_ITEMS} items"),
        ("GET", "/api/v1/compare", [("occupation", "nurse"), *[("area", "Ohio")] * (MAX_LIST_ITEMS + 1)], f"at most {MAX_LIST_ITEMS} items"),
        ("GET", "/api/v1/occupations", {"q": "q" * (MAX_NAME_CHARS + 1)}, f"at most {MAX_NAME_CHARS} characters"),
        ("GET", "/api/v1/top", {"group": "g" * (MAX_NAME_CHARS + 1)}, f"at most {MAX_NAME_CHARS} characters"),
        ("GET", "/api/v1/trend", {"occupation": "nurse", "industry": "i" * (MAX_NAME_CHARS + 1)}, f"at most {MAX_NAME_CHARS} characters"),
        ("POST", "/api/v1/query", None, f"at most {MAX_QUERY_CHARS} characters"),
    ],
)
async def test_every_free_text_input_is_capped_with_a_422_naming_the_limit(
    api_client: httpx.AsyncClient, method: str, path: str, params: Any, limit: str
) -> None:
    if method == "POST":
        response = await api_client.post(path, json={"query": "w" * (MAX_QUERY_CHARS + 1)})
    else:
        response = await api_client.get(path, params=params)
    assert response.status_code == 422, response.text
    assert limit in response.json()["detail"][0]["msg"]


@pytest.mark.asyncio
async def test_past_the_concurrency_limit_and_queue_requests_get_a_fast_503_with_retry_after(api_db: Path) -> None:
    app, release = _held_app(Settings(sqlite_db_path=api_db, max_concurrent_requests=1, max_queued_requests=1, queue_timeout_seconds=10))

    async for client in _client(app):
        running = asyncio.create_task(client.get("/api/v1/held"))
        queued = asyncio.create_task(client.get("/api/v1/held"))
        await asyncio.sleep(0.2)
        started = time.perf_counter()
        shed = await client.get("/api/v1/wages", params={"occupation": "15-1252"})
        shed_ms = (time.perf_counter() - started) * 1000
        health = await client.get("/health")
        metrics = await client.get("/metrics")
        release.set()
        assert [(await running).status_code, (await queued).status_code] == [200, 200]  # the queued one got the slot
        after = await client.get("/api/v1/wages", params={"occupation": "15-1252"})
    assert shed.status_code == 503 and shed.headers["retry-after"] == "1"
    assert "server busy" in shed.json()["detail"]
    assert shed_ms < 50  # in-process; the bench measures it over a socket (< 5 ms)
    assert health.status_code == 200 and metrics.status_code == 200  # probes and scrapes bypass the limit
    assert "oews_api_requests_in_progress 1.0" in metrics.text and "oews_api_requests_queued 1.0" in metrics.text
    assert 'oews_api_requests_total{method="GET",route="rejected",status="503"} 1.0' in metrics.text
    assert after.status_code == 200


@pytest.mark.asyncio
async def test_a_queued_request_gives_up_with_503_after_the_queue_timeout(api_db: Path) -> None:
    app, release = _held_app(Settings(sqlite_db_path=api_db, max_concurrent_requests=1, max_queued_requests=4, queue_timeout_seconds=0.3))

    async for client in _client(app):
        running = asyncio.create_task(client.get("/api/v1/held"))
        await asyncio.sleep(0.1)
        started = time.monotonic()
        waited = await client.get("/api/v1/areas", params={"q": "ohio"})
        elapsed = time.monotonic() - started
        release.set()
        assert (await running).status_code == 200
        again = await client.get("/api/v1/areas", params={"q": "ohio"})
    assert waited.status_code == 503 and "retry-after" in waited.headers
    assert 0.25 < elapsed < 2
    assert again.status_code == 200 and again.json()["results"][0]["area_name"] == "Ohio"


@pytest.mark.asyncio
@pytest.mark.parametrize("hang_up", ["while queued", "as the slot is handed over"])
async def test_clients_that_hang_up_give_their_slots_back(api_db: Path, hang_up: str) -> None:
    """A client that disconnects (its request task cancelled) while running, queued, or just as a finishing request
    hands it the slot, leaves no slot taken: later requests are served, the gauges are back to 0."""
    app, release = _held_app(Settings(sqlite_db_path=api_db, max_concurrent_requests=1, max_queued_requests=1, queue_timeout_seconds=10))

    async for client in _client(app):
        running = asyncio.create_task(client.get("/api/v1/held"))
        await asyncio.sleep(0.1)
        queued = asyncio.create_task(client.get("/api/v1/held"))
        await asyncio.sleep(0.1)
        if hang_up == "while queued":
            queued.cancel()
            running.cancel()
        else:
            release.set()  # the running request finishes and hands its slot to the queued one ...
            queued.cancel()  # ... whose client is gone before it runs
        await asyncio.gather(running, queued, return_exceptions=True)
        release.set()
        after = [(await client.get("/api/v1/areas", params={"q": q})).status_code for q in ("ohio", "texas", "utah")]
        metrics = (await client.get("/metrics")).text
    assert after == [200, 200, 200]
    assert "oews_api_requests_in_progress 0.0" in metrics and "oews_api_requests_queued 0.0" in metrics


@pytest.mark.asyncio
async def test_a_slow_answer_in_flight_does_not_delay_health(api_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The answer runs on the threadpool: while one takes 2 s (as a cold read on a slow disk may), /health answers at once."""
    app = create_app(Settings(sqlite_db_path=api_db))
    answerer: Answerer = app.state.service.data.answerer
    real_answer = answerer.answer

    def slow_answer(*args: Any, **kwargs: Any) -> Answer:
        time.sleep(2)  # blocks its thread, as SQLite or CPU work does
        return real_answer(*args, **kwargs)

    monkeypatch.setattr(answerer, "answer", slow_answer)
    async for client in _client(app):
        question = asyncio.create_task(client.post("/api/v1/query", json={"query": "median salary for nurses in Ohio"}))
        await asyncio.sleep(0.2)
        started = time.perf_counter()
        health = await client.get("/health")
        health_ms = (time.perf_counter() - started) * 1000
        answered = await question
    assert health.status_code == 200 and health_ms < 100, f"/health took {health_ms:.0f} ms behind a slow answer"
    assert answered.status_code == 200 and "Registered Nurses" in answered.json()["answer"]


@pytest.mark.asyncio
async def test_docs_are_private_unless_public_docs_is_set(api_db: Path) -> None:
    hidden = create_app(Settings(sqlite_db_path=api_db))
    shown = create_app(Settings(sqlite_db_path=api_db, public_docs=True))
    for app, expected in ((hidden, 404), (shown, 200)):
        async for client in _client(app):
            for path in ("/docs", "/redoc", "/openapi.json"):
                assert (await client.get(path)).status_code == expected, (path, expected)
    assert create_app(Settings(sqlite_db_path=api_db), public_docs=True).openapi_url == "/openapi.json"


@pytest.mark.asyncio
async def test_health_names_the_file_not_its_absolute_path(api_client: httpx.AsyncClient, api_db: Path) -> None:
    response = await api_client.get("/health")
    assert response.json()["database"]["path"] == api_db.name
    assert str(api_db.parent) not in response.text
    assert str(api_db.parent) not in (await api_client.get("/metrics")).text


@pytest.mark.asyncio
async def test_repeated_lookups_come_from_the_response_cache_counted_under_their_route(api_db: Path) -> None:
    app = create_app(Settings(sqlite_db_path=api_db, cors_origins=["https://app.example.com"]))
    origin = {"origin": "https://app.example.com"}
    async for client in _client(app):
        first = await client.get("/api/v1/wages", params={"occupation": "registered nurses", "area": "Ohio"}, headers=origin)
        again = await client.get("/api/v1/wages", params={"occupation": "registered nurses", "area": "Ohio"}, headers=origin)
        by_code = await client.get("/api/v1/wages", params={"occupation": "291141", "area": "3900000"})
        reordered = await client.get("/api/v1/wages?area=3900000&occupation=291141")  # the same question: the same entry
        ca_first = await client.get("/api/v1/compare?occupation=291141&area=CA&area=TX")
        tx_first = await client.get("/api/v1/compare?area=TX&occupation=291141&area=CA")
        missing = [await client.get("/api/v1/wages", params={"occupation": "zzzzqqq"}) for _ in range(2)]
        metrics = (await client.get("/metrics")).text
    assert first.status_code == again.status_code == by_code.status_code == 200
    assert first.content == again.content and first.json() == by_code.json() and reordered.content == by_code.content
    assert again.headers["content-type"] == "application/json" and again.headers["access-control-allow-origin"] == "https://app.example.com"
    assert ca_first.status_code == tx_first.status_code == 200  # repeated names keep their order: two entries, never merged
    assert [m.status_code for m in missing] == [404, 404]  # errors are answered afresh, never cached
    assert app.state.service.responses.stats()["entries"] == 4
    assert 'oews_api_requests_total{method="GET",route="/api/v1/wages",status="200"} 4.0' in metrics


def test_caches_drop_the_least_recently_used_past_entries_or_bytes() -> None:
    by_count: BoundedLRU[str, str] = BoundedLRU(max_entries=2, max_bytes=1 << 20)
    by_count.put("a", "1")
    by_count.put("b", "2")
    by_count.get("a")  # now b is the least recently used
    by_count.put("c", "3")
    assert (by_count.get("a"), by_count.get("b"), by_count.get("c")) == ("1", None, "3")
    by_bytes: BoundedLRU[int, bytes] = BoundedLRU(max_entries=1000, max_bytes=10_000, size=lambda k, v: len(v))
    for key in range(100):
        by_bytes.put(key, b"x" * 1000)
    assert by_bytes.bytes <= 10_000 and len(by_bytes) == 10 and by_bytes.get(99) is not None
    by_bytes.put(-1, b"y" * 5000)  # over a quarter of the budget: not kept
    assert by_bytes.get(-1) is None
