"""The example questions (real BLS answers) through POST /api/v1/query: every one on the bundled sample
database, and the industry ones on a database built from tests/data/bls-industries (national rows by
industry). The full-database ones run in bench/example_questions.py."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from oews_api.app import create_app
from oews_api.builder import build_database
from oews_api.settings import Settings
from tests.conftest import DATA_DIR
from tests.examples import EXAMPLES, MONEY, TOP_CODE_FIGURES, for_database, next_to, problems
from tests.fixtures.oewsdata import BLS_SAMPLE

pytestmark = pytest.mark.asyncio
SAMPLE_EXAMPLES = for_database("sample")
INDUSTRY_EXAMPLES = for_database("industries")


async def _ask(client: httpx.AsyncClient, question: str) -> dict:
    response = await client.post("/api/v1/query", json={"query": question, "enable_charts": True})
    assert response.status_code == 200, response.text
    return response.json()


async def _wrong(client: httpx.AsyncClient, examples: list[dict]) -> list[str]:
    wrong = []
    for example in examples:
        body = await _ask(client, example["question"])
        found = problems(example, body)
        if found:
            wrong.append(f"{example['id']}: {example['question']!r}: {'; '.join(found)}\n    -> {body['answer']!r}")
    return wrong


@pytest.fixture(scope="module")
def industries_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """National rows by industry (tests/data/bls-industries) with the real BLS mapping files, built like any release."""
    source = tmp_path_factory.mktemp("bls-industries")
    for mapping in BLS_SAMPLE.glob("oe.*"):
        if not mapping.name.startswith("oe.data."):
            shutil.copy(mapping, source / mapping.name)
    shutil.copy(DATA_DIR / "bls-industries" / "oe.data.0.Current.gz", source)
    out = tmp_path_factory.mktemp("industries-db") / "oews.db"
    build_database([source], out)
    return out


@pytest_asyncio.fixture
async def industries_client(industries_db: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(sqlite_db_path=industries_db))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://oews.test") as client:
            yield client


async def test_the_truth_set_covers_every_kind_of_question() -> None:
    kinds = {e["type"] for e in EXAMPLES}
    assert {"alias", "headcount", "top_metro", "difference", "multi", "near", "missing_place", "industry", "industry_top"} <= kinds
    assert len({e["question"] for e in EXAMPLES if e["id"].startswith("q2-")}) >= 120
    assert len(SAMPLE_EXAMPLES) >= 120 and len(INDUSTRY_EXAMPLES) >= 30


async def test_every_sample_database_question_gets_the_bls_figure_next_to_its_names(api_client: httpx.AsyncClient) -> None:
    wrong = await _wrong(api_client, SAMPLE_EXAMPLES)
    assert not wrong, f"{len(wrong)} of {len(SAMPLE_EXAMPLES)} wrong:\n" + "\n".join(wrong)


async def test_every_industry_question_gets_that_industrys_figure(industries_client: httpx.AsyncClient) -> None:
    wrong = await _wrong(industries_client, INDUSTRY_EXAMPLES)
    assert not wrong, f"{len(wrong)} of {len(INDUSTRY_EXAMPLES)} wrong:\n" + "\n".join(wrong)


async def test_a_figure_outside_the_lead_statement_does_not_count() -> None:
    example = next(e for e in EXAMPLES if e["id"] == "ex-001")
    row = {"occ_code": "151254", "area_code": "0042660", "industry_code": "000000", "a_median": 99999.0}
    body = {
        "answer": "The median annual wage for Web Developers in Seattle was $99,999. Also: mean annual wage $130,440.",
        "data": [row],
        "metadata": {"plan": {"statistic": "median", "basis": None}},
    }
    assert problems(example, body)


async def test_a_figure_under_another_occupations_heading_does_not_count() -> None:
    """The mislabelled table from the issue: lawyers' figure printed under the nurses' heading."""
    example = next(e for e in EXAMPLES if e["question"] == "registered nurses or lawyers in California or Texas")
    rows = [
        {"occ_code": c["occ_code"], "area_code": c["area_code"], "industry_code": "000000", "a_median": c["value"]} for c in example["cells"]
    ]
    body = {
        "answer": "Median annual wage for Registered Nurses (May 2025, BLS OEWS): California $195,080; Texas $154,200; "
        "California $140,270; Texas $95,970.",
        "data": rows,
        "metadata": {"plan": {"statistic": "median", "basis": None}},
    }
    assert any("Lawyers" in p for p in problems(example, body))
    assert next_to("Median for Lawyers: California $195,080; Texas $154,200.", "$195,080", ["Lawyers", "California"])


async def test_answers_name_the_occupation_area_and_release_they_used(api_client: httpx.AsyncClient) -> None:
    for example in (e for e in EXAMPLES if e["type"] in ("median", "mean", "employment", "percentile")):
        body = await _ask(api_client, example["question"])
        expected = example["expected"]
        resolved = body["metadata"]["resolved"]
        assert resolved["occupations"][0]["occ_code"] == expected["occ_code"], example["question"]
        assert resolved["areas"][0]["area_code"] == expected["area_code"], example["question"]
        assert expected["occ_title"] in body["answer"]
        assert "May 2025" in body["answer"]
        assert body["data"] and body["data"][0]["occ_code"] == expected["occ_code"]


async def test_unpublished_values_say_why_and_show_no_figure(api_client: httpx.AsyncClient) -> None:
    for example in (e for e in EXAMPLES if e.get("expect_unavailable")):
        body = await _ask(api_client, example["question"])
        answer = body["answer"]
        assert "not published" in answer, answer
        assert not set(MONEY.findall(answer)) - TOP_CODE_FIGURES, answer
        row = body["data"][0]
        assert row["a_median"] is None
        assert row["unpublished"]["a_median"]["reason"] in ("top_coded", "not_released")


async def test_comparisons_state_both_values_and_the_winner_first(api_client: httpx.AsyncClient) -> None:
    for example in (e for e in EXAMPLES if e["type"] == "comparison"):
        body = await _ask(api_client, example["question"])
        assert body["metadata"]["plan"]["intent"] == "compare"
        values = body["charts"][0]["data"]["values"]
        assert values == sorted(values, reverse=True)
        assert values[0] == example["expected"]["value"]
        assert body["charts"][0]["type"] == "bar"


async def test_several_occupations_in_several_places_chart_one_series_per_occupation(api_client: httpx.AsyncClient) -> None:
    for example in (e for e in SAMPLE_EXAMPLES if e["type"] == "multi"):
        body = await _ask(api_client, example["question"])
        chart = body["charts"][0]
        assert chart["type"] == "bar" and chart["options"]["grouped"], example["question"]
        titles = {c["occ_title"] for c in example["cells"]}
        assert {s["name"] for s in chart["data"]["series"]} == titles
        for cell in example["cells"]:
            series = next(s for s in chart["data"]["series"] if s["name"] == cell["occ_title"])
            assert series["values"][chart["data"]["labels"].index(cell["area_name"])] == cell["value"]


async def test_top_paying_names_the_bls_first_and_runner_up(api_client: httpx.AsyncClient) -> None:
    for example in (e for e in EXAMPLES if e["type"] == "top_paying"):
        body = await _ask(api_client, example["question"])
        ranked = [row["occ_code"] for row in body["data"]]
        assert ranked[:2] == [example["expected"]["occ_code"], example["runner_up"]["occ_code"]], body["answer"]


async def test_near_is_read_as_near_and_a_missing_place_is_named_once(api_client: httpx.AsyncClient) -> None:
    near = (await _ask(api_client, "nurse salary near Houston"))["answer"]
    assert "Houston-Pasadena-The Woodlands, TX" in near and "newark" not in near.lower(), near
    boise = (await _ask(api_client, "median pay for nurses in Boise"))["answer"]
    assert boise.count("no area named \u201cBoise\u201d") == 1, boise


async def test_rest_endpoints_take_industry_words_too(industries_client: httpx.AsyncClient) -> None:
    """`industry=hospitals` means the database's Hospitals row, as in questions (BLS: RN median $100,220)."""
    response = await industries_client.get("/api/v1/wages", params={"occupation": "RN", "area": "US", "industry": "hospitals"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["industry"] == {"industry_code": "622000", "industry_name": "Hospitals"} and body["measures"]["a_median"] == 100220
