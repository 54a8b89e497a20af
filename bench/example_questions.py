"""Ask every full-database example question and judge the answers (the tests run the sample-database ones).

    uv run python bench/example_questions.py [--db /work/oews-full.db] [--show-all]

First re-reads every expected figure from the database by SQL (so the truth set is checked against
BLS data, not against the planner), then sends each question to ``POST /api/v1/query`` on the real
app in-process and judges the answer as the tests do (``tests/examples.py``): the figure in the
lead statement, each figure next to its own occupation, place and industry. Exit 1 if any is wrong.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import time
from contextlib import closing
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from oews_api.app import create_app  # noqa: E402
from oews_api.settings import Settings  # noqa: E402
from tests.examples import for_database, problems  # noqa: E402

DEFAULT_DB = Path("/work/oews-full.db")


def truth_errors(db: Path, examples: list[dict]) -> list[str]:
    """Expected figures that differ from what the database holds for that cell."""
    errors = []
    with closing(sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)) as conn:
        for example in examples:
            for cell in example.get("cells", ()):
                measure = cell["measure"]
                assert measure.isidentifier(), measure
                row = conn.execute(
                    f"SELECT {measure} FROM estimates WHERE occ_code = ? AND area_code = ? AND industry_code = ? "
                    "AND year = (SELECT MAX(year) FROM releases)",
                    (cell["occ_code"], cell["area_code"], cell["industry_code"]),
                ).fetchone()
                if row is None or row[0] != cell["value"]:
                    errors.append(f"{example['id']}: {cell['occ_code']} {cell['area_code']} {cell['industry_code']} {measure}: file says {cell['value']}, DB {row}")
    return errors


async def ask_all(db: Path, examples: list[dict], show_all: bool) -> tuple[list[str], list[float]]:
    app = create_app(Settings(sqlite_db_path=db))
    wrong, times = [], []
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://oews.test") as client:
            for example in examples:
                started = time.perf_counter()
                response = await client.post("/api/v1/query", json={"query": example["question"], "enable_charts": True})
                times.append((time.perf_counter() - started) * 1000)
                body = response.json()
                found = problems(example, body) if response.status_code == 200 else [f"HTTP {response.status_code}"]
                if found:
                    wrong.append(f"{example['id']} {example['question']!r}: {'; '.join(found)}\n    -> {body.get('answer')!r}")
                elif show_all:
                    print(f"ok {example['id']} {example['question']!r}\n    -> {body['answer'][:300]}")
    return wrong, times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, default=DEFAULT_DB, help=f"the full May 2025 database (default {DEFAULT_DB})")
    parser.add_argument("--show-all", action="store_true", help="print every answer, not only the wrong ones")
    args = parser.parse_args()
    if not args.db.is_file():
        sys.exit(f"{args.db} not found: build it with `oewsctl db build` or pass --db")
    examples = for_database("full")
    errors = truth_errors(args.db, examples)
    wrong, times = asyncio.run(ask_all(args.db, examples, args.show_all))
    for line in errors + wrong:
        print(line)
    times.sort()
    print(
        f"{len(examples) - len(wrong)}/{len(examples)} full-database questions answered correctly; "
        f"{len(errors)} expected figures differ from the database; per question (in-process, first ask) "
        f"p50 {times[len(times) // 2]:.1f} ms, max {times[-1]:.1f} ms"
    )
    sys.exit(1 if wrong or errors else 0)


if __name__ == "__main__":
    main()
