"""`oewsctl --help` starts fast: importing the CLI loads no heavy library.

Command modules import the runbook modules (kube, ssh, config, ...) inside the
commands that use them; a module-level import of one of these would fail here.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.conftest import DATA_DIR

HEAVY = ("kubernetes", "paramiko", "docker", "azure.identity", "fastapi", "httpx", "pydantic")


def test_importing_the_cli_loads_no_heavy_library() -> None:
    code = f"import oewsctl.cli, sys; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert ast.literal_eval(done.stdout.strip()) == []


def test_loading_a_config_for_db_push_does_not_load_the_http_client(tmp_path: Path) -> None:
    """Every command loads the config (which checks app.image); `db push` must not pay for httpx (~50 ms at each start)."""
    config = tmp_path / "oewsctl.yaml"
    config.write_text((DATA_DIR / "deploy" / "oewsctl.yaml").read_text())
    code = ("import sys, oewsctl.cli; from oewsctl.configuration.loading import load_config; from pathlib import Path; "
            f"load_config(Path({str(config)!r})); import oewsctl.runbooks.database; "
            "print(sorted(m for m in ('httpx',) if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert ast.literal_eval(done.stdout.strip()) == []


def test_db_push_modules_leave_paramiko_to_the_first_connection() -> None:
    """`db push` starts its OpenSSH uploads before paramiko (and invoke, ~0.12 s) is imported by the first connection."""
    code = ("import sys, oewsctl.cli, oewsctl.commands.db, oewsctl.runbooks.database, oewsctl.clients.transfer, oewsctl.clients.ssh, "
            "oewsctl.core.context, oewsctl.core.runner; print(sorted(m for m in ('paramiko', 'invoke') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert ast.literal_eval(done.stdout.strip()) == []
