"""Regenerate ``oe.data.0.Current.gz`` here from a full BLS flat-file release (run by hand, not by tests).

    uv run python tests/data/bls-industries/extract.py /work/shared/data/bls-oe-may2025

Keeps national (U.S.) series only: every occupation cross-industry, All Occupations in every
industry (so the industry table is complete), every occupation in the industries the example
questions rank (hospitals, federal government), the occupation x industry cells the example
questions ask for, and those occupations' cross-industry figures in the states they name. Tests
build a database from it with the mapping files of ``tests/data/bls-sample``.
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

HERE = Path(__file__).parent
NATIONAL, CROSS_INDUSTRY, ALL_OCCUPATIONS = "0000000", "000000", "000000"
RANKED_INDUSTRIES = frozenset({"622000", "999101"})


def wanted_cells() -> set[tuple[str, str, str]]:
    """(area, industry, occupation) cells the industry example questions use."""
    examples = json.loads((HERE.parent / "example-questions.json").read_text())
    cells = set()
    for example in (e for e in examples if "industries" in e.get("db", ())):
        for cell in example["cells"]:
            cells.add((cell["area_code"], cell["industry_code"], cell["occ_code"]))
            cells.add((cell["area_code"], CROSS_INDUSTRY, cell["occ_code"]))
            cells.update((area["area_code"], CROSS_INDUSTRY, cell["occ_code"]) for area in example.get("national_only", ()))
    return cells


def keep(series: str, cells: set[tuple[str, str, str]]) -> bool:
    area, industry, occ = series[4:11], series[11:17], series[17:23]
    national = area == NATIONAL and (industry == CROSS_INDUSTRY or occ == ALL_OCCUPATIONS or industry in RANKED_INDUSTRIES)
    return national or (area, industry, occ) in cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("release", type=Path)
    args = parser.parse_args()
    cells = wanted_cells()
    lines = []
    with gzip.open(args.release / "oe.data.0.Current.gz", "rt") as source:
        lines.append(next(source))
        for line in source:
            series = line.split("\t", 1)[0].strip()
            if keep(series, cells):
                lines.append(line)
    with open(HERE / "oe.data.0.Current.gz", "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as out:
        out.write("".join(lines).encode())
    print(f"{len(lines) - 1} series")


if __name__ == "__main__":
    main()
