"""Shared test configuration.

Fixtures for the real parts live in ``tests/fixtures/`` (one module per part) and
are registered here. ``require`` turns a missing part into a failure under CI
(``CI=true``) and a skip elsewhere, so CI never passes by skipping silently.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

pytest_plugins = [
    "tests.fixtures.parts",
    "tests.fixtures.cli",
    "tests.fixtures.kube",
    "tests.fixtures.kube_front",
    "tests.fixtures.oewsdata",
    "tests.fixtures.docker",
    "tests.fixtures.sshd",
    "tests.fixtures.k3s",
    "tests.fixtures.dbnodes",
    "tests.fixtures.keyvault",
    "tests.fixtures.eso",
    "tests.fixtures.azure_app",
    "tests.fixtures.api",
    "tests.fixtures.prometheus",
    "tests.fixtures.standin",
]

IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
TESTS_DIR = Path(__file__).parent
DATA_DIR = TESTS_DIR / "data"


MISSING = " not available on this machine"
"""Ends the skip reason of every :func:`require` skip; the run's summary counts them by part."""
INSTALL_PARTS = "sudo bash .ci/run"


def require(available: bool, what: str) -> None:
    """Skip outside CI, fail inside CI, when a real part a test needs is absent."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{what} is required in CI but is missing", pytrace=False)
    pytest.skip(f"{what}{MISSING}")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """A skip for a missing part is not a pass: end the run saying what was not tested and how to fix it."""
    missing: Counter[str] = Counter()
    for report in terminalreporter.stats.get("skipped", []):
        reason = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else ""
        if reason.endswith(MISSING):
            missing[reason.removeprefix("Skipped: ").removesuffix(MISSING)] += 1
    if not missing:
        return
    terminalreporter.section(f"NOT TESTED: {sum(missing.values())} tests skipped, real parts missing", sep="!", red=True, bold=True)
    for part, count in missing.most_common():
        terminalreporter.write_line(f"  {count:4d} x {part}", red=True)
    terminalreporter.write_line(f"Install and start every part (as root; it then runs the whole suite): {INSTALL_PARTS}", bold=True)
    terminalreporter.write_line("With CI=true a missing part fails the run instead of skipping.")
