"""Benchmark `oewsctl db build` on the full May 2025 BLS release, against the sqlite3 CLI's `.import`.

    uv run python bench/build_bench.py [/work/shared/data/bls-oe-may2025]

Ours: parse, check and pivot 6.0 M data rows into 370 k estimate rows, with mapping
lookups, indexes, metadata and validation. Peer: the `sqlite3` shell importing the same
decompressed data file as plain tab-separated text into a one-table database (no parsing
of values, no checks, no indexes) — the floor for "get these rows into SQLite".
Each runs in a child process so its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_RELEASE = Path("/work/shared/data/bls-oe-may2025")
OURS = "from pathlib import Path; import sys; from oews_api.builder import build_database; build_database([Path(sys.argv[1])], Path(sys.argv[2]))"


def timed_child(argv: list[str]) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds and peak RSS (bytes) of one child process.

    CPU time is reported too because the machine is shared: wall time moves with the load.
    ``os.wait4`` reports this child's own usage (RUSAGE_CHILDREN would be the largest of all children).
    """
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, argv)
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024


def data_rows(path: Path) -> int:
    with gzip.open(path, "rb") as f:
        return sum(1 for _ in f) - 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("release", type=Path, nargs="?", default=DEFAULT_RELEASE)
    args = parser.parse_args()
    if shutil.which("sqlite3") is None:
        sys.exit("the peer needs the sqlite3 shell (Debian package sqlite3)")
    data = args.release / "oe.data.0.Current.gz"
    rows = data_rows(data)
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / "oe.data.0.Current"
        with gzip.open(data, "rb") as src, open(plain, "wb") as dst:
            shutil.copyfileobj(src, dst)
        peer_db = Path(tmp) / "peer.db"
        peer_s, peer_cpu, _ = timed_child(["sqlite3", "-batch", str(peer_db), ".mode tabs", f".import {plain} data"])
        out = Path(tmp) / "oews.db"
        ours_s, ours_cpu, ours_rss = timed_child([sys.executable, "-c", OURS, str(args.release), str(out)])
        size = out.stat().st_size
    print(f"input: {data} ({data.stat().st_size / 1e6:.1f} MB gz, {rows:,} data rows)")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"ours   oewsctl db build      : {ours_s:6.1f} s wall {ours_cpu:6.1f} s CPU  {rows / ours_s:>9,.0f} rows/s  peak RSS {ours_rss / 2**20:4.0f} MiB  -> {size / 1e6:.0f} MB oews.db")
    print(f"peer   sqlite3 .import (tabs): {peer_s:6.1f} s wall {peer_cpu:6.1f} s CPU  {rows / peer_s:>9,.0f} rows/s  (plain text: no parsing, checks or indexes)")
    print(f"ratio  ours/peer             : {ours_s / peer_s:.2f}x wall, {ours_cpu / peer_cpu:.2f}x CPU")
    met = ours_s < 90 and ours_rss < 600 * 2**20
    print(f"targets < 90 s wall, < 600 MiB peak RSS: {'met' if met else 'MISSED'}")


if __name__ == "__main__":
    main()
