"""Build errors that name the file, line and field at fault, plus what to do about it.

``oews_api`` must not depend on ``oewsctl``; the CLI maps these to its exit codes
(``BuildUsageError`` -> 2, ``BuildError`` -> 1).
"""

from __future__ import annotations

from pathlib import Path


class BuildError(Exception):
    """The build failed; nothing was written at the output path."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class BuildUsageError(BuildError):
    """The inputs as given cannot be built (missing path, same year twice, unknown format)."""


class SourceError(BuildError):
    """A problem in one input file, at a line and field when known."""

    def __init__(self, path: Path, message: str, *, line: int | None = None, field: str | None = None, hint: str | None = None) -> None:
        where = str(path)
        if line is not None:
            where += f", line {line:,}"
        if field is not None:
            where += f", field {field}"
        super().__init__(f"{where}: {message}", hint)
        self.path = path
        self.line = line
        self.field = field
