"""Rebuild the bundled sample database from a full BLS flat-file release.

    uv run python -m oews_api.sample.make /work/shared/data/bls-oe-may2025

Keeps cross-industry (000000) cells for: national, all states and territories, the
25 metro areas with the largest total employment, and every area named in
``EXTRA_AREAS`` (those the shared small sample and the example questions use).

Reproducible: the same release gives the same bytes (same SHA-256), so rebuilding does not dirty
the tree. ``meta.built_at`` is the newest modification time of the release's files
(``SOURCE_DATE_EPOCH`` overrides it).
"""

from __future__ import annotations

import argparse
import gzip
from datetime import UTC, datetime
from pathlib import Path

from oews_api.builder import build_database
from oews_api.builder.flatfile import DATA_NAMES, MAPPING_HEADERS, read_table
from oews_api.builder.writer import build_time
from oews_api.sample import SAMPLE_DB

CROSS_INDUSTRY = "000000"
TOP_METROS = 25
EXTRA_AREAS = frozenset(
    {
        "0012420",  # Austin-Round Rock-San Marcos, TX
        "0035620",  # New York-Newark-Jersey City, NY-NJ
        "0041860",  # San Francisco-Oakland-Fremont, CA
        "0041940",  # San Jose-Sunnyvale-Santa Clara, CA
        "0042660",  # Seattle-Tacoma-Bellevue, WA
        "0100001",  # Northwest Alabama nonmetropolitan area
    }
)


def largest_metros(release: Path, count: int) -> list[str]:
    """Metro area codes (``00NNNNN``) ordered by All Occupations cross-industry employment."""
    data = next(release / n for n in DATA_NAMES if (release / n).exists())
    opener = gzip.open if data.suffix == ".gz" else open
    employment: dict[str, int] = {}
    # series: OEU M area(7) industry(6) occupation(6) datatype(2); want 000000 + 000000 + 01
    suffix = b"00000000000001"
    with opener(data, "rb") as f:
        for line in f:
            if line.startswith(b"OEUM00") and line[11:25] == suffix:
                value = line.split(b"\t")[3].strip()
                if value.isdigit():
                    employment[line[4:11].decode()] = int(value)
    return sorted(employment, key=employment.__getitem__, reverse=True)[:count]


def sample_areas(release: Path) -> set[str]:
    national_and_states = {f[1] for _, f in read_table(release / "oe.area", MAPPING_HEADERS["oe.area"]) if f[2] in ("N", "S")}
    return national_and_states | set(largest_metros(release, TOP_METROS)) | EXTRA_AREAS


def release_time(release: Path) -> datetime:
    """The newest modification time among the release's files: when its data last changed."""
    return datetime.fromtimestamp(max(int(f.stat().st_mtime) for f in release.iterdir() if f.is_file()), UTC)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("release", type=Path, help="a full BLS flat-file directory (oe.area, oe.data.0.Current[.gz], ...)")
    parser.add_argument("--out", type=Path, default=SAMPLE_DB, help=f"where to write (default: {SAMPLE_DB})")
    args = parser.parse_args(argv)
    areas = sample_areas(args.release)
    summary = build_database(
        [args.release],
        args.out,
        include=lambda area, industry: industry == CROSS_INDUSTRY and area in areas,
        built_at=build_time(default=release_time(args.release)),
    )
    print(f"{summary.out}: {summary.counts['areas']} areas, {summary.rows:,} rows, {summary.size / 1e6:.1f} MB, sha256 {summary.sha256}")


if __name__ == "__main__":
    main()
