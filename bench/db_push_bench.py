"""`db push` of a 2 GiB database to two DB nodes, against OpenSSH scp of the same file to the same nodes.

Starts three real sshd test nodes on loopback (tests/fixtures/sshd.py; needs root, sshd, sudo),
two of them DB nodes, builds a valid oews.db of ``--size-mib`` (the bundled sample plus a table of
random blobs: incompressible, the worst case), then times:

- ``oewsctl db push`` (the same plan the CLI runs: free-disk check, upload to a staged name with
  SHA-256 verified on each node, chmod 0444, then the switch with a kept version) — local
  validation timed separately, it happens once before any node is touched;
- ``scp`` of the same file to the same two nodes, one after the other (no verification, no switch).

    uv run python bench/db_push_bench.py [--size-mib 2048]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from oews_api.builder import build_database  # noqa: E402
from oewsctl.core.context import Options, RunContext  # noqa: E402
from oewsctl.core.runner import run_plan  # noqa: E402
from oewsctl.runbooks.database import PushOptions, push_plan, validate_local  # noqa: E402
from tests.fixtures.dbnodes import db_inventory  # noqa: E402
from tests.fixtures.oewsdata import BLS_SAMPLE  # noqa: E402
from tests.fixtures.sshd import start_cluster  # noqa: E402

DB_NODES = ("machine1", "machine2")


def make_database(path: Path, size_mib: int) -> None:
    build_database([BLS_SAMPLE], path)
    with closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE filler (b BLOB)")
        remaining = size_mib - path.stat().st_size // 1048576
        for _ in range(max(0, remaining)):
            db.execute("INSERT INTO filler VALUES (randomblob(1048500))")
        db.commit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=2048)
    args = parser.parse_args()
    os.environ.setdefault("OEWSCTL_STATE_DIR", tempfile.mkdtemp(prefix="oewsctl-bench-state-"))

    root = Path(tempfile.mkdtemp(prefix="oewsctl-bench-"))
    cluster = start_cluster(root, 3)
    db_inventory(cluster)
    source = root / "oews.db"
    try:
        make_database(source, args.size_mib)
        size = source.stat().st_size / 1048576
        started = time.perf_counter()
        release = validate_local(source)
        validate_s = time.perf_counter() - started

        ctx = RunContext(cluster.config, Options(output="text"))
        started = time.perf_counter()
        result = run_plan(push_plan(cluster.config, source, release, PushOptions()), ctx)
        push_s = time.perf_counter() - started
        ctx.close()
        assert result.ok

        started = time.perf_counter()
        for node in DB_NODES:
            cluster.scp(node, source, "/tmp/oewsctl-bench-scp.db")
        scp_s = time.perf_counter() - started
    finally:
        cluster.stop()
        Path("/tmp/oewsctl-bench-scp.db").unlink(missing_ok=True)
        shutil.rmtree(root, ignore_errors=True)

    moved = size * len(DB_NODES)
    print(f"\n{size:.0f} MiB database to {len(DB_NODES)} nodes over loopback (load average {os.getloadavg()[0]:.1f}):")
    print(f"  local validation (once, before any node)  {validate_s:6.1f} s")
    print(f"  oewsctl db push (check, upload+verify, switch)  {push_s:6.1f} s  {moved / push_s:7.1f} MiB/s")
    print(f"  scp to each node (no verify, no switch)         {scp_s:6.1f} s  {moved / scp_s:7.1f} MiB/s")
    print(f"  ratio db push vs scp throughput: {scp_s / push_s:.2f}x")


if __name__ == "__main__":
    main()
