"""A run that skipped tests for a missing part (sshd, dockerd, ...) says so loudly at the end, with the fix."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import INSTALL_PARTS, TESTS_DIR

TESTS = '''
from tests.conftest import require

def test_over_ssh():
    require(False, "OpenSSH sshd (Debian package openssh-server)")

def test_over_ssh_too():
    require(False, "OpenSSH sshd (Debian package openssh-server)")

def test_with_docker():
    require(False, "a running Docker engine (dockerd)")

def test_plain():
    assert True
'''


def _pytest(tmp_path: Path, ci: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "conftest.py").write_text("from tests.conftest import pytest_terminal_summary  # noqa: F401\n")
    (tmp_path / "test_parts.py").write_text(TESTS)
    env = {**os.environ, "CI": ci, "PYTHONPATH": str(TESTS_DIR.parent)}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(tmp_path)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)


def test_skips_for_missing_parts_end_the_run_with_a_summary_and_the_fix(tmp_path: Path) -> None:
    done = _pytest(tmp_path, ci="")
    assert done.returncode == 0, done.stdout + done.stderr
    tail = done.stdout[done.stdout.index("NOT TESTED"):]
    assert "NOT TESTED: 3 tests skipped, real parts missing" in tail
    assert "2 x OpenSSH sshd (Debian package openssh-server)" in tail
    assert "1 x a running Docker engine (dockerd)" in tail
    assert INSTALL_PARTS == "sudo bash .ci/run" and INSTALL_PARTS in tail


def test_in_ci_a_missing_part_fails_instead(tmp_path: Path) -> None:
    done = _pytest(tmp_path, ci="true")
    assert done.returncode == 1
    assert "3 failed, 1 passed" in done.stdout and "NOT TESTED" not in done.stdout
