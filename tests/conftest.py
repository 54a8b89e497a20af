"""Shared test configuration.

Fixtures for the real parts live in ``tests/fixtures/`` (one module per part) and
are registered here. ``require`` turns a missing part into a failure under CI
(``CI=true``) and a skip elsewhere, so CI never passes by skipping silently.
"""

from __future__ import annotations

import os
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
    "tests.fixtures.api",
    "tests.fixtures.prometheus",
    "tests.fixtures.standin",
]

IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
TESTS_DIR = Path(__file__).parent
DATA_DIR = TESTS_DIR / "data"


def require(available: bool, what: str) -> None:
    """Skip outside CI, fail inside CI, when a real part a test needs is absent."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{what} is required in CI but is missing", pytrace=False)
    pytest.skip(f"{what} not available on this machine")
