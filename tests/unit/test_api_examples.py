"""The example questions (real BLS answers) through POST /api/v1/query on the bundled sample database."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from oews_api.planner import measure_column
from tests.conftest import DATA_DIR

EXAMPLES = json.loads((DATA_DIR / "example-questions.json").read_text())
TOP_CODE_FIGURES = {"$115.00", "$239,200"}
pytestmark = pytest.mark.asyncio
MONEY = re.compile(r"\$\d[\d,]*(?:\.\d+)?")


async def _ask(client: httpx.AsyncClient, question: str) -> dict:
    response = await client.post("/api/v1/query", json={"query": question, "enable_charts": True})
    assert response.status_code == 200, response.text
    return response.json()


def _lead(answer: str) -> str:
    """The answer's first sentence ("St. Louis" and "$72.25" do not end one)."""
    return re.split(r"(?<!\bSt)\.\s+(?=[A-Z])", answer, maxsplit=1)[0]


def _measure(body: dict) -> str:
    plan = body["metadata"]["plan"]
    return measure_column(plan["statistic"], plan["basis"] or "annual")


def _row(body: dict, occ_code: str, area_code: str) -> dict | None:
    return next((r for r in body["data"] if r["occ_code"] == occ_code and r["area_code"] == area_code), None)


def _correct(example: dict, body: dict) -> bool:
    """The figure is the lead statement's and the plan's measure in ``data`` (not merely somewhere in the text)."""
    expected, lead, measure = example["expected"], _lead(body["answer"]), _measure(body)
    said = any(accept.lower() in lead.lower() for accept in example["accept"])
    if example["type"] == "top_paying":
        first = body["data"][0] if body["data"] else {}
        return said and first.get("occ_code") == expected["occ_code"] and first.get(measure) == expected["value"]
    row = _row(body, expected["occ_code"], expected["area_code"])
    if example.get("expect_unavailable"):
        return said and row is not None and row[measure] is None and not (set(MONEY.findall(body["answer"])) - TOP_CODE_FIGURES)
    return row is not None and row[measure] == expected["value"] and said


async def test_at_least_95_percent_of_example_questions_get_the_bls_figure(api_client: httpx.AsyncClient) -> None:
    wrong = []
    for example in EXAMPLES:
        body = await _ask(api_client, example["question"])
        if not _correct(example, body):
            wrong.append(f"{example['id']}: {example['question']!r} -> {body['answer']!r}")
    accuracy = 1 - len(wrong) / len(EXAMPLES)
    assert accuracy >= 0.95, f"{accuracy:.0%} correct; wrong:\n" + "\n".join(wrong)


async def test_a_figure_outside_the_lead_statement_does_not_count() -> None:
    example = next(e for e in EXAMPLES if e["id"] == "ex-001")
    row = {"occ_code": "151254", "area_code": "0042660", "a_median": 99999.0}
    body = {
        "answer": "The median annual wage for Web Developers in Seattle was $99,999. Also: mean annual wage $130,440.",
        "data": [row],
        "metadata": {"plan": {"statistic": "median", "basis": None}},
    }
    assert not _correct(example, body)


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


async def test_top_paying_names_the_bls_first_and_runner_up(api_client: httpx.AsyncClient) -> None:
    for example in (e for e in EXAMPLES if e["type"] == "top_paying"):
        body = await _ask(api_client, example["question"])
        ranked = [row["occ_code"] for row in body["data"]]
        assert ranked[:2] == [example["expected"]["occ_code"], example["runner_up"]["occ_code"]], body["answer"]
