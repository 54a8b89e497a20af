"""REST endpoints, health, metrics, limits and errors of the real app on the bundled sample database."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from oews_api.app import create_app
from oews_api.settings import Settings

pytestmark = pytest.mark.asyncio


async def test_health_reports_the_file_being_served(api_client: httpx.AsyncClient, api_db: Path) -> None:
    response = await api_client.get("/health")
    assert response.status_code == 200
    database = response.json()["database"]
    assert database["sha256"] == hashlib.sha256(api_db.read_bytes()).hexdigest()
    assert database["release"] == "May 2025"
    assert database["years"] == [2025]
    with sqlite3.connect(api_db) as connection:
        assert database["rows"] == connection.execute("SELECT count(*) FROM estimates").fetchone()[0]


@pytest.mark.parametrize("make_bad", ["missing", "not_sqlite", "wrong_schema"])
async def test_health_is_503_with_the_reason_when_the_database_cannot_be_served(tmp_path: Path, make_bad: str) -> None:
    path = tmp_path / "oews.db"
    if make_bad == "not_sqlite":
        path.write_text("this is not a database")
    elif make_bad == "wrong_schema":
        with sqlite3.connect(path) as connection:
            connection.execute("CREATE TABLE other (x)")
    app = create_app(Settings(sqlite_db_path=path))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        health = await client.get("/health")
        query = await client.post("/api/v1/query", json={"query": "median pay for nurses"})
        metrics = await client.get("/metrics")
    assert health.status_code == 503
    assert "oews.db" in health.json()["detail"] and health.json()["database"]["path"] == "oews.db"
    assert query.status_code == 503 and "database unavailable" in query.json()["detail"]
    assert 'status="unavailable"' in metrics.text
    # The internet may read these: no absolute path, no SQLite error text.
    for body in (health.text, query.text, metrics.text):
        assert str(tmp_path) not in body and "file is not a database" not in body


async def test_wages_accepts_codes_names_and_abbreviations_alike(api_client: httpx.AsyncClient) -> None:
    by_code = (await api_client.get("/api/v1/wages", params={"occupation": "15-1252", "area": "5300000"})).json()
    by_name = (await api_client.get("/api/v1/wages", params={"occupation": "software engineers", "area": "WA"})).json()
    assert by_code == by_name
    assert by_code["occupation"]["title"] == "Software Developers"
    assert by_code["area"]["area_name"] == "Washington"
    assert set(by_code["measures"]) >= {"employment", "a_median", "h_median", "a_pct90", "jobs_1000", "loc_quotient"}


async def test_wages_give_unpublished_values_as_null_with_the_bls_reason(api_client: httpx.AsyncClient) -> None:
    body = (await api_client.get("/api/v1/wages", params={"occupation": "291218", "area": "District of Columbia"})).json()
    assert body["measures"]["a_median"] is None
    assert body["unpublished"]["a_median"]["reason"] == "top_coded"
    assert "$239,200" in body["unpublished"]["a_median"]["detail"]


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"occupation": "zzzzqqq"}, "no occupation matches"),
        ({"occupation": "nurse", "area": "Qwxzv Town"}, "no area matches"),
        ({"occupation": "nurse", "year": "2019"}, "no data for 2019"),
        ({"occupation": "nurse", "industry": "999999"}, "no industry matches"),
    ],
)
async def test_wages_bad_input_is_a_404_that_says_what_to_do(api_client: httpx.AsyncClient, params: dict, fragment: str) -> None:
    response = await api_client.get("/api/v1/wages", params=params)
    assert response.status_code == 404
    assert fragment in response.json()["detail"]


async def test_search_finds_common_names_abbreviations_and_cities(api_client: httpx.AsyncClient) -> None:
    rad = (await api_client.get("/api/v1/occupations", params={"q": "rad tech"})).json()["results"]
    assert rad[0]["occ_code"] == "292034"
    tx = (await api_client.get("/api/v1/areas", params={"q": "TX"})).json()["results"]
    assert tx[0]["area_name"] == "Texas"
    seattle = (await api_client.get("/api/v1/areas", params={"q": "seattle"})).json()["results"]
    assert seattle[0]["area_code"] == "0042660"
    states = (await api_client.get("/api/v1/areas", params={"type": "S", "limit": 600})).json()["results"]
    assert len(states) == 54


async def test_compare_top_and_trend(api_client: httpx.AsyncClient) -> None:
    compare = (await api_client.get("/api/v1/compare", params=[("occupation", "rad tech"), ("area", "CA"), ("area", "New York State")])).json()
    assert [c["value"] for c in compare["results"]] == [121260, 98470]
    same = (await api_client.get("/api/v1/compare", params=[("occupation", "RN"), ("occupation", "29-1141"), ("area", "TX"), ("area", "Texas")])).json()
    assert [(c["occupation"]["occ_code"], c["area"]["area_code"], c["value"]) for c in same["results"]] == [("291141", "4800000", 95970)]
    top = (await api_client.get("/api/v1/top", params={"area": "San Jose", "limit": 2})).json()
    assert [r["occupation"]["occ_code"] for r in top["results"]] == ["291241", "291223"]
    trend = (await api_client.get("/api/v1/trend", params={"occupation": "web developers", "area": "Seattle"})).json()
    assert [(y["year"], y["measures"]["a_median"]) for y in trend["years"]] == [(2025, 130440)]


async def test_query_returns_the_contract_shape_with_charts(api_client: httpx.AsyncClient) -> None:
    body = (await api_client.post("/api/v1/query", json={"query": "median salary for software engineers in Seattle"})).json()
    assert set(body) == {"answer", "charts", "data_sources", "data", "metadata"}
    assert {"execution_time_ms", "plan", "models_used"} <= set(body["metadata"])
    assert body["metadata"]["models_used"] == ["oews-builtin-planner"]
    chart = body["charts"][0]
    assert chart["type"] == "range" and set(chart) == {"type", "title", "data", "options"}
    assert chart["data"]["values"][2] == body["data"][0]["a_median"]
    assert "May 2025" in body["data_sources"][0]
    no_charts = (
        await api_client.post("/api/v1/query", json={"query": "median salary for software engineers in Seattle", "enable_charts": False})
    ).json()
    assert no_charts["charts"] == [] and no_charts["answer"] == body["answer"]


async def test_query_says_when_it_did_not_understand_and_suggests(api_client: httpx.AsyncClient) -> None:
    body = (await api_client.post("/api/v1/query", json={"query": "how much do frobnicators make in Texas"})).json()
    assert "could not match" in body["answer"] and "Close matches" in body["answer"]
    assert body["data"] == []


@pytest.mark.parametrize("query", ["", "hi", "x" * 501])
async def test_query_length_is_limited(api_client: httpx.AsyncClient, query: str) -> None:
    response = await api_client.post("/api/v1/query", json={"query": query})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "query"]


async def test_oversized_bodies_and_urls_are_refused_with_json(api_client: httpx.AsyncClient) -> None:
    big = await api_client.post("/api/v1/query", content=b"{" + b" " * 20000 + b"}", headers={"content-type": "application/json"})
    assert big.status_code == 413 and "too large" in big.json()["detail"]
    long_url = await api_client.get("/api/v1/occupations", params={"q": "a" * 3000})
    assert long_url.status_code == 414


async def test_malformed_json_is_a_422_not_a_500(api_client: httpx.AsyncClient) -> None:
    response = await api_client.post("/api/v1/query", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422


async def test_cors_allows_only_the_configured_origins(api_client: httpx.AsyncClient) -> None:
    preflight = {"access-control-request-method": "POST", "access-control-request-headers": "content-type"}
    allowed = await api_client.options("/api/v1/query", headers={"origin": "https://app.example.com", **preflight})
    denied = await api_client.options("/api/v1/query", headers={"origin": "https://evil.example", **preflight})
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "access-control-allow-origin" not in denied.headers


async def test_metrics_count_requests_by_route_template_and_status(api_client: httpx.AsyncClient, api_db: Path) -> None:
    await api_client.get("/api/v1/wages", params={"occupation": "151252", "area": "CA"})
    await api_client.get("/api/v1/wages", params={"occupation": "zzzzqqq"})
    text = (await api_client.get("/metrics")).text
    assert 'oews_api_requests_total{method="GET",route="/api/v1/wages",status="200"}' in text
    assert 'oews_api_requests_total{method="GET",route="/api/v1/wages",status="404"}' in text
    assert 'oews_api_request_duration_seconds_bucket{le="0.005",method="GET",route="/api/v1/wages",status="200"}' in text
    assert "occupation=" not in text  # never the raw URL
    sha = hashlib.sha256(api_db.read_bytes()).hexdigest()
    assert f'sha256="{sha}"' in text and 'release="May 2025"' in text
    # May 2025 survey reference date (2025-05-12 UTC): the stale-release alert reads this gauge.
    assert 'oews_api_database_release_timestamp_seconds{release="May 2025"} 1.747008e+09' in text


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("compare nurse pay in Texas, Ohio, Utah, Iowa, Maine, Idaho and Oregon", "Texas"),
        ("median salary for nurses in 1995", "no 1995 data"),
        ("top 99 highest paying jobs in Ohio", "top 50:"),
        ("?!?!", "could not"),
    ],
)
async def test_odd_questions_get_an_answer_not_an_error(api_client: httpx.AsyncClient, question: str, expected: str) -> None:
    response = await api_client.post("/api/v1/query", json={"query": question})
    assert response.status_code == 200, response.text
    assert expected in response.json()["answer"]


async def test_a_chunked_body_over_the_limit_is_a_413_not_a_400(api_client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: sent chunked
        yield b'{"query": "'
        for _ in range(20):
            yield b"x" * 1024
        yield b'"}'

    response = await api_client.post("/api/v1/query", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413, response.text
    assert "too large" in response.json()["detail"]
    text = (await api_client.get("/metrics")).text
    assert 'oews_api_requests_total{method="POST",route="/api/v1/query",status="413"}' in text


async def test_unhandled_errors_are_counted_as_500_and_odd_methods_as_other(api_db: Path) -> None:
    app = create_app(Settings(sqlite_db_path=api_db))

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("route bug")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/boom")).status_code == 500
        await client.request("FROBNICATE", "/health")
        text = (await client.get("/metrics")).text
    assert 'oews_api_requests_total{method="GET",route="/boom",status="500"} 1.0' in text
    assert 'oews_api_requests_total{method="other",route="/health",status="405"} 1.0' in text
    assert "FROBNICATE" not in text


async def test_a_bad_survey_month_is_a_503_with_the_reason_not_a_crash(tmp_path: Path, api_db: Path) -> None:
    path = tmp_path / "oews.db"
    path.write_bytes(api_db.read_bytes())
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE releases SET survey_month = 13")
    app = create_app(Settings(sqlite_db_path=path))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        health = await client.get("/health")
    assert health.status_code == 503
    assert "invalid survey month 13" in health.json()["detail"]


async def test_top_paying_ranks_only_published_wages_and_names_the_top_coded_ones(api_client: httpx.AsyncClient, api_db: Path) -> None:
    body = (await api_client.post("/api/v1/query", json={"query": "top paying jobs in Colorado"})).json()
    with sqlite3.connect(api_db) as connection:
        withheld = [
            title
            for (title,) in connection.execute(
                "SELECT o.occ_title FROM estimates e JOIN occupations o USING (occ_code) WHERE e.area_code = '0800000' "
                "AND o.display_level = 3 AND json_extract(e.unpublished, '$.a_median') = 'top_coded'"
            )
        ]
    answer = body["answer"]
    assert answer.startswith("Among occupations with a published median annual wage in Colorado, Orthodontists ranks highest at $416,000")
    assert f"{len(withheld)} occupations (" in answer and "withheld as top-coded" in answer
    assert all(title in answer for title in withheld)
    assert "$239,200" not in answer  # published medians go far above it: it is no ceiling


@pytest.mark.parametrize("group", ["all occupations", "All Occupations", "000000"])
async def test_top_accepts_the_all_occupations_group_it_suggests(api_client: httpx.AsyncClient, group: str) -> None:
    everything = (await api_client.get("/api/v1/top", params={"area": "CO"})).json()["results"]
    response = await api_client.get("/api/v1/top", params={"area": "CO", "group": group})
    assert response.status_code == 200, response.text
    assert response.json()["results"] == everything
