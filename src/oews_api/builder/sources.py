"""Tell which input layout a ``--from`` path is, and open it."""

from __future__ import annotations

from pathlib import Path

from oews_api.builder.errors import BuildUsageError
from oews_api.builder.files import sqlite_tables
from oews_api.builder.flatfile import is_flatfile_dir, read_flatfile
from oews_api.builder.legacy import LEGACY_TABLE, read_legacy
from oews_api.builder.model import CellFilter, ReleaseInput
from oews_api.builder.rebuild import read_built
from oews_api.builder.spreadsheet import SPREADSHEET_SUFFIXES, read_spreadsheet

FORMATS_HINT = (
    "--from takes a BLS flat-file directory (oe.area, oe.data.0.Current[.gz], ...), an all-data .xlsx or .csv, "
    "an old oews.db (table oews_data) or one built by oewsctl db build"
)


def open_source(path: Path, include: CellFilter | None = None) -> list[ReleaseInput]:
    """The releases (years) ``path`` holds."""
    if not path.exists():
        raise BuildUsageError(f"{path}: no such file or directory", hint=FORMATS_HINT)
    if path.is_dir():
        if not is_flatfile_dir(path):
            raise BuildUsageError(f"{path}: directory has no BLS flat files (oe.area, oe.data.0.Current)", hint=FORMATS_HINT)
        return read_flatfile(path, include)
    if path.suffix.lower() in SPREADSHEET_SUFFIXES:
        return read_spreadsheet(path, include)
    tables = sqlite_tables(path)
    if LEGACY_TABLE in tables:
        return read_legacy(path, include)
    if "estimates" in tables:
        return read_built(path, include)
    if tables:
        raise BuildUsageError(f"{path}: SQLite file has neither table {LEGACY_TABLE} nor estimates (tables: {', '.join(sorted(tables))})", hint=FORMATS_HINT)
    raise BuildUsageError(f"{path}: not a format this builder reads (not a directory, .xlsx, .csv or SQLite file)", hint=FORMATS_HINT)
