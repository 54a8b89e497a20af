"""`db push | update | rollback` as data, and the node-side scripts run by a real shell on a temp dir.

The shell scripts (INSPECT, RECEIVE, SWITCH, STAGE_VERSION) are what the nodes run; executing them
with /bin/sh (RECEIVE with bash, and the real zstd) here checks the version bookkeeping (keep, prune,
no duplicate of a rolled-back file), the staged file's hash/mode and the ledger without SSH. The
end-to-end behaviour over SSH is in tests/integration/test_db_push*.py.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import zstandard

from oewsctl.configuration.loading import load_config
from oewsctl.core.errors import UsageError
from oewsctl.runbooks.database import (
    INSPECT,
    PY_UNZSTD,
    RECEIVE,
    STAGE_VERSION,
    SWITCH,
    Layout,
    PushOptions,
    Release,
    parse_inspect,
    precheck_local,
    push_plan,
    switch_args,
    update_plan,
)
from tests.conftest import DATA_DIR

CONFIG = DATA_DIR / "deploy" / "oewsctl.yaml"
NEW = Release("ab" * 32, 5 * 1048576, "May 2025", [2025])


def sh(script: str, *args: str, stdin: str = "") -> str:
    return subprocess.run(["sh", "-c", script, "sh", *args], capture_output=True, text=True, check=True, input=stdin).stdout


def test_push_plan_inspects_uploads_and_switches_every_db_node_at_once() -> None:
    plan = push_plan(load_config(CONFIG), Path("oews.db"))
    assert [(s.node, s.description.split(" ")[0]) for s in plan.steps] == [
        (None, "inspect"), (None, "upload"), (None, "switch"),
        (None, "confirm"),  # a ledger that could not be written fails the run, never a switch
    ]
    assert plan.steps[2].description.startswith("switch /opt/k3s/storage/oews.db to the new file on machine1, machine2 at once")
    assert plan.steps[0].description == "inspect machine1, machine2 (free disk, live file, link) while hashing and validating oews.db"
    assert plan.steps[1].description.startswith("upload oews.db (?) to machine1, machine2 in parallel")
    assert plan.steps[1].description.endswith("validate it locally meanwhile")
    assert "zstd below 400 Mbit/s" in (plan.steps[0].detail or "")
    assert plan.mutating


def test_a_known_release_is_not_validated_again() -> None:  # restore: the backup was verified
    plan = push_plan(load_config(CONFIG), Path("oews.db"), NEW, PushOptions(node="machine2", compress="none"))
    assert plan.steps[1].description == "upload oews.db (?) to machine2 in parallel → /opt/k3s/storage/.oews.db.incoming"
    assert "--compress none" in (plan.steps[0].detail or "")


def test_update_plan_adds_restart_wait_and_pod_check() -> None:
    tail = [s.description for s in update_plan(load_config(CONFIG), Path("oews.db")).steps[4:]]
    assert tail[0].startswith("restart the pods of deployment oews/oews-api")
    assert tail[1] == "wait for the rollout of deployment oews/oews-api"
    assert tail[2] == "check every ready pod reports the new database's sha256 on /health"
    known = update_plan(load_config(CONFIG), Path("oews.db"), NEW).steps[-1].description
    assert known == f"check every ready pod reports sha256 {NEW.sha256[:12]}… on /health"


def test_push_to_a_node_that_is_not_a_db_node_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="'raspberrypi' is not a DB node"):
        push_plan(load_config(CONFIG), Path("oews.db"), NEW, PushOptions(node="raspberrypi"))


def test_invalid_file_is_refused_with_exit_2_and_a_dry_run_touches_nothing(oewsctl_proc, tmp_path: Path, sample_db: Path) -> None:  # type: ignore[no-untyped-def]
    junk = tmp_path / "oews.db"
    junk.write_bytes(b"not a database at all")
    refused = oewsctl_proc("--config", CONFIG, "db", "push", junk)
    assert refused.returncode == 2
    assert "is not a usable oews.db, no node was touched" in refused.stderr
    plan = oewsctl_proc("--config", CONFIG, "--dry-run", "--output", "json", "db", "push", sample_db)
    assert plan.returncode == 0, plan.stderr
    steps = json.loads(plan.stdout)["steps"]
    assert len(steps) == 4 and {s["status"] for s in steps} == {"planned"}


def test_precheck_refuses_a_truncated_file_from_its_header_alone(sample_db: Path, tmp_path: Path) -> None:
    assert precheck_local(sample_db) == sample_db.stat().st_size
    cut = tmp_path / "cut.db"
    cut.write_bytes(sample_db.read_bytes()[:-4096])
    with pytest.raises(UsageError, match="its header says .* truncated or damaged"):
        precheck_local(cut)
    with pytest.raises(UsageError, match="no such file"):
        precheck_local(tmp_path / "missing.db")


def _switch(layout: Layout, keep: int, ledger: str = "{}") -> tuple[int | None, list[int]]:
    """One switch as the push runs it: inspect, decide, run SWITCH with the ledger on stdin."""
    state = parse_inspect("m1", sh(INSPECT, layout.live, "1"))
    plan = switch_args(state, keep)
    out = sh(SWITCH, layout.live, layout.staged, "-" if plan.link is None else str(plan.link), layout.ledger, *map(str, plan.prune), stdin=ledger)
    assert out == "ledger\n" and Path(layout.ledger).read_text() == ledger
    return plan.kept, plan.prune


def test_node_scripts_keep_versions_prune_and_never_duplicate(tmp_path: Path) -> None:
    layout = Layout(str(tmp_path / "oews.db"))

    def push(data: bytes, keep: int = 2) -> tuple[int | None, list[int]]:
        Path(layout.staged).write_bytes(data)
        return _switch(layout, keep)

    assert push(b"one") == (None, [])  # first file: nothing to keep
    assert push(b"two") == (1, [])
    assert push(b"three") == (2, [])
    assert push(b"four") == (3, [1])  # oldest pruned only after the switch
    assert Path(layout.live).read_bytes() == b"four"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".oews.db.releases.json", "oews.db", "oews.db.v2", "oews.db.v3"]

    sh(STAGE_VERSION, layout.version(2), layout.staged)  # roll back to v2 ("two")
    assert _switch(layout, 2) == (4, [2])
    assert Path(layout.live).read_bytes() == b"two"  # v2's bytes live on in the live file
    assert push(b"five") == (5, [3])  # the rolled-back file was not yet a version: kept once

    state = parse_inspect("m1", sh(INSPECT, layout.live, "1"))
    assert [v.number for v in state.versions] == [4, 5]
    assert state.live_size == 4 and state.avail > 0
    assert state.live_sha == hashlib.sha256(b"five").hexdigest()
    assert state.previous() is not None and state.previous().number == 5  # type: ignore[union-attr]


def test_switch_without_a_staged_file_fails_and_keeps_the_live_file(tmp_path: Path) -> None:
    layout = Layout(str(tmp_path / "oews.db"))
    Path(layout.live).write_bytes(b"live")
    result = subprocess.run(["sh", "-c", SWITCH, "sh", layout.live, layout.staged, "1", layout.ledger], capture_output=True, text=True, check=False)
    assert result.returncode == 66 and "the upload did not finish" in result.stderr
    assert Path(layout.live).read_bytes() == b"live" and sorted(p.name for p in tmp_path.iterdir()) == ["oews.db"]


def test_a_ledger_that_cannot_be_written_is_reported_after_the_rename(tmp_path: Path) -> None:
    layout = Layout(str(tmp_path / "oews.db"))
    Path(layout.staged).write_bytes(b"new")
    Path(layout.ledger + ".tmp").mkdir()
    result = subprocess.run(["sh", "-c", SWITCH, "sh", layout.live, layout.staged, "-", layout.ledger], capture_output=True, text=True, check=False,
                            input="{}")
    assert result.returncode == 0 and result.stdout == "" and "could not be written" in result.stderr
    assert Path(layout.live).read_bytes() == b"new"


def _receive(dest: Path, codec: str, payload: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["bash", "-c", RECEIVE, "bash", str(dest), codec, PY_UNZSTD], input=payload, capture_output=True, check=False)


@pytest.mark.parametrize("codec", ["none", "zstd", "python"])
def test_receive_writes_hashes_and_locks_the_staged_file(tmp_path: Path, codec: str) -> None:
    if codec == "zstd" and shutil.which("zstd") is None:
        pytest.skip("no zstd binary here")
    python_zstd = "import compression.zstd" if sys.version_info >= (3, 14) else "import zstandard"
    if codec == "python" and subprocess.run(["python3", "-c", python_zstd], check=False, capture_output=True).returncode != 0:
        pytest.skip("this machine's python3 cannot decompress zstd")
    data = bytes(range(256)) * 4096
    payload = data if codec == "none" else zstandard.ZstdCompressor(level=3).compress(data)
    dest = tmp_path / "storage" / ".oews.db.incoming"
    done = _receive(dest, codec, payload)
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().split() == ["sha256", hashlib.sha256(data).hexdigest(), "size", str(len(data))]
    assert dest.read_bytes() == data and dest.stat().st_mode & 0o777 == 0o444


def test_receive_removes_the_file_when_the_stream_is_not_zstd(tmp_path: Path) -> None:
    if shutil.which("zstd") is None:
        pytest.skip("no zstd binary here")
    dest = tmp_path / ".oews.db.incoming"
    done = _receive(dest, "zstd", b"not a zstd stream at all")
    assert done.returncode == 74 and b"writing" in done.stderr
    assert not dest.exists()


def test_inspect_reads_the_ledger_and_ignores_a_broken_one() -> None:
    text = "avail_kib 10\nlive 5 100\nlive_sha " + "a" * 64 + "\nunzstd zstd\nversion 2 6 90 1700000000\nledger\n" + json.dumps(
        {"live": {"sha256": "a" * 64, "size": 100, "release": "May 2025", "years": [2025]}, "versions": {"2": {"sha256": "b" * 64, "size": 90}}})
    state = parse_inspect("m1", text)
    assert state.avail == 10240 and state.ledger_live is not None and state.ledger_live.release == "May 2025"
    assert state.live_release() == state.ledger_live and state.unzstd == "zstd"
    assert state.release_of_version(2).sha256 == "b" * 64  # type: ignore[union-attr]
    assert parse_inspect("m1", "avail_kib 1\nledger\n{broken").ledger_live is None


def test_inspect_on_a_fresh_node_reads_only(tmp_path: Path) -> None:
    target = tmp_path / "opt" / "k3s" / "storage" / "oews.db"
    state = parse_inspect("m1", sh(INSPECT, str(target), "1"))
    assert state.avail > 0 and state.live_inode is None and state.versions == [] and state.live_sha is None
    assert list(tmp_path.iterdir()) == []  # nothing created


def test_db_push_loads_neither_the_kubernetes_client_nor_httpx() -> None:
    """`db push` reaches nodes only: what its command imports (runbook, runner, lock) must not pull in
    the Kubernetes client (~0.5 s) or httpx; `db update` loads the Kubernetes client when it restarts pods."""
    code = ("import sys, oewsctl.commands.db, oewsctl.runbooks.database, oewsctl.core.runner, oewsctl.core.lock, oewsctl.clients.transfer; "
            "print(sorted(m for m in ('kubernetes', 'httpx', 'docker', 'jinja2') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert done.stdout.strip() == "[]"
