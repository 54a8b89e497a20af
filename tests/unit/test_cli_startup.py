"""`oewsctl --help` starts fast: importing the CLI loads no heavy library.

Command modules import the runbook modules (kube, ssh, config, ...) inside the
commands that use them; a module-level import of one of these would fail here.
"""

from __future__ import annotations

import ast
import subprocess
import sys

HEAVY = ("kubernetes", "paramiko", "docker", "azure.identity", "fastapi", "httpx", "pydantic")


def test_importing_the_cli_loads_no_heavy_library() -> None:
    code = f"import oewsctl.cli, sys; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert ast.literal_eval(done.stdout.strip()) == []
