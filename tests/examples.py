"""The example questions (tests/data/example-questions.json) and how an answer to one is judged.

Each example says which databases it holds for (``db``: ``sample`` = the bundled sample,
``industries`` = the fixture built from tests/data/bls-industries, ``full`` = the full May 2025
release, checked by ``bench/example_questions.py``) and the BLS figures the answer must state,
each next to its own occupation, place and industry (``cells``; the first is the lead figure).
Used by ``tests/unit/test_api_examples.py`` and the bench script, so both judge alike.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

EXAMPLES_FILE = Path(__file__).parent / "data" / "example-questions.json"
EXAMPLES: list[dict[str, Any]] = json.loads(EXAMPLES_FILE.read_text())
TOP_CODE_FIGURES = {"$115.00", "$239,200"}
MONEY = re.compile(r"\$\d[\d,]*(?:\.\d+)?")
FIGURE = re.compile(r"\$\d[\d,]*(?:\.\d+)?|\b\d{1,3}(?:,\d{3})+\b|\b\d+\.\d+\b")
_SENTENCE_END = re.compile(r"(?<!\bSt)(?<!\bU\.S)\.\s+(?=[A-Z\u201c(])")
_SECTOR = re.compile(r"^Sectors? [\d, and]+ - ")
NATIONAL = "0000000"
CROSS_INDUSTRY = "000000"


def for_database(db: str) -> list[dict[str, Any]]:
    """The examples that hold for one database."""
    return [e for e in EXAMPLES if db in e["db"]]


def sentences(answer: str) -> list[str]:
    """The answer's sentences ("St. Louis", "the U.S. (national)" and "$72.25" do not end one)."""
    return [s for s in _SENTENCE_END.split(answer) if s]


def lead(answer: str) -> str:
    """The first sentence that states a figure (notes about what could not be honoured may come first)."""
    return next((s for s in sentences(answer) if FIGURE.search(s)), "")


def labels(cell: dict[str, Any]) -> list[str]:
    """The names a figure must stand next to: occupation, place (the U.S. for national) and industry."""
    names = [cell["occ_title"], "U.S." if cell["area_code"] == NATIONAL else cell["area_name"]]
    if cell.get("industry_code", CROSS_INDUSTRY) != CROSS_INDUSTRY:
        names.append(_SECTOR.sub("", cell["industry_name"]))
    return names


def next_to(answer: str, figure: str, names: list[str]) -> bool:
    """True when one clause states ``figure`` and every name is in that clause or its sentence's heading.

    A sentence ``Heading: a $1; b $2.`` has clauses ``a $1`` and ``b $2``; a sentence without a
    colon is one clause. So "Registered Nurses: California $195,080" does not count as a figure for
    Lawyers in California.
    """
    for sentence in sentences(answer):
        head, _, body = sentence.partition(": ") if ": " in sentence else ("", "", sentence)
        for clause in body.split("; "):
            if figure in clause and all(n.lower() in clause.lower() or n.lower() in head.lower() for n in names):
                return True
    return False


def _row(body: dict[str, Any], cell: dict[str, Any]) -> dict[str, Any] | None:
    industry = cell.get("industry_code", CROSS_INDUSTRY)
    return next(
        (
            r
            for r in body["data"]
            if r["occ_code"] == cell["occ_code"] and r["area_code"] == cell["area_code"] and r.get("industry_code", CROSS_INDUSTRY) == industry
        ),
        None,
    )


def problems(example: dict[str, Any], body: dict[str, Any]) -> list[str]:
    """What is wrong with an answer to an example (empty when it is right)."""
    if "cells" not in example:
        return [] if _original_correct(example, body) else ["lead figure not stated or not in data"]
    answer, found = body["answer"], []
    ranked = example["type"] in ("top_metro", "industry_top")
    for n, cell in enumerate(example["cells"]):
        row = body["data"][0] if ranked and body["data"] else _row(body, cell)
        if row is None or row.get(cell["measure"]) != cell["value"] or row["occ_code"] != cell["occ_code"] or row["area_code"] != cell["area_code"]:
            found.append(f"no data row with {cell['measure']}={cell['value']} for {labels(cell)}")
        if not next_to(answer, cell["says"], labels(cell)):
            found.append(f"{cell['says']} not stated next to {labels(cell)}")
        if n == 0 and cell["says"] not in lead(answer):
            found.append(f"lead statement {lead(answer)!r} lacks {cell['says']}")
    if "runner_up" in example and (len(body["data"]) < 2 or body["data"][1]["occ_code"] != example["runner_up"]["occ_code"]
                                   or body["data"][1]["area_code"] != example["runner_up"]["area_code"]):
        found.append("runner-up is not second")
    if "difference_says" in example and example["difference_says"] not in lead(answer):
        found.append(f"lead statement lacks the difference {example['difference_says']}")
    for place in example.get("missing", ()):
        if place.lower() not in answer.lower() or "no area" not in answer:
            found.append(f"does not say {place!r} is not in this database")
        if any(r["area_code"] != NATIONAL for r in body["data"]):
            found.append(f"answers for another place instead of {place!r}")
    for phrase in example.get("not_honoured", ()):
        if phrase.lower() not in answer.lower():
            found.append(f"does not name {phrase!r} as not honoured")
    for area in example.get("national_only", ()):
        if area["area_name"] not in answer:
            found.append(f"does not say the figure is national, not {area['area_name']}")
    return found


def measure_of(body: dict[str, Any]) -> str:
    """The estimates column the answer's plan asks for."""
    plan = body["metadata"]["plan"]
    statistic = plan["statistic"]
    if statistic in ("employment", "jobs_1000", "loc_quotient"):
        return statistic
    return ("h_" if plan["basis"] == "hourly" else "a_") + statistic


def _original_correct(example: dict[str, Any], body: dict[str, Any]) -> bool:
    """The original 26 examples: the figure is the lead statement's and the plan's measure in ``data``."""
    expected, first, measure = example["expected"], (sentences(body["answer"]) or [""])[0], measure_of(body)
    said = any(accept.lower() in first.lower() for accept in example["accept"])
    if example["type"] == "top_paying":
        top = body["data"][0] if body["data"] else {}
        return said and top.get("occ_code") == expected["occ_code"] and top.get(measure) == expected["value"]
    row = _row(body, {**expected, "industry_code": CROSS_INDUSTRY})
    if example.get("expect_unavailable"):
        return said and row is not None and row[measure] is None and not (set(MONEY.findall(body["answer"])) - TOP_CODE_FIGURES)
    return row is not None and row[measure] == expected["value"] and said
