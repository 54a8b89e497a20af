"""Build oews.db from the BLS data layouts users have, and validate it.

Public API (others call these):

- ``build_database(sources, out, *, replace_year=False, progress=None, include=None, built_at=None)``: sources are
  BLS flat-file directories, all-data .xlsx/.csv files, legacy oews.db files (table oews_data) or
  databases this builder wrote
- ``oews_api.builder.validate.validate_database(path) -> ValidationReport``
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from oews_api.builder.errors import BuildError, BuildUsageError, SourceError
from oews_api.builder.model import CellFilter, ReleaseInput
from oews_api.builder.sources import open_source
from oews_api.builder.writer import BuildSummary, Progress, write_database

__all__ = ["BuildError", "BuildSummary", "BuildUsageError", "SourceError", "build_database", "plan_releases"]


def plan_releases(sources: list[Path], *, replace_year: bool = False, include: CellFilter | None = None) -> list[ReleaseInput]:
    """Open every source (cheap: headers and mapping files only) and settle which release each year comes from.

    The same year twice is a usage error unless ``replace_year``; then the later ``--from`` wins.
    """
    if not sources:
        raise BuildUsageError("no input given", hint="pass --from PATH (a BLS flat-file directory, an all-data .xlsx/.csv, or an oews.db)")
    by_year: dict[int, ReleaseInput] = {}
    for source in sources:
        for release in open_source(Path(source), include):
            earlier = by_year.get(release.year)
            if earlier is not None and not replace_year:
                raise BuildUsageError(
                    f"year {release.year} is in both {earlier.origin} and {release.origin}",
                    hint="pass --replace-year to take it from the later --from, or drop one of them",
                )
            by_year[release.year] = release
    return [by_year[y] for y in sorted(by_year)]


def build_database(
    sources: list[Path],
    out: Path,
    *,
    replace_year: bool = False,
    progress: Progress | None = None,
    include: CellFilter | None = None,
    built_at: datetime | None = None,
) -> BuildSummary:
    """Build one oews.db at ``out`` from every source; ``out`` appears only once it validated.
    ``built_at`` (default: :func:`~oews_api.builder.writer.build_time`) is the only input besides the sources."""
    return write_database(plan_releases(sources, replace_year=replace_year, include=include), Path(out), progress, built_at)
