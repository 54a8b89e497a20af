"""`oewsctl db push` (the whole command, in its own process) against OpenSSH `scp` of the same file.

1. Loopback: the database to TWO DB nodes (real sshd test nodes, tests/fixtures/sshd.py) against
   one scp of the same file to ONE node. Target: push <= 2x scp.
2. A link shaped to 100 Mbit/s: a veth pair into a network namespace the bench makes (and always
   removes), `tc qdisc tbf rate 100mbit` on the host side (netem is not in this kernel), one sshd
   node inside. `db push` (--compress auto measures the link and picks zstd) against scp to that
   node. Target: push >= 2x faster.

Each figure is the median of --runs runs, ours and the peer alternated. The pushes alternate between the database and a copy
with another SHA-256 (``PRAGMA user_version``), so every run sends and switches, as a release does.
Both files were validated on this machine by their first push (as `db build` does for the file it
writes), so the timed pushes skip the quick_check; one more push of a third file with an empty state
dir shows the cost of a file never validated here.
Needs root, sshd, sudo, unshare, iproute2 (part 2 is skipped, saying why, when it cannot shape).

    env -u PYTHONDONTWRITEBYTECODE uv run python bench/db_push_bench.py [--db /work/oews-full.db] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fixtures.dbnodes import db_inventory  # noqa: E402
from tests.fixtures.sshd import TestCluster, inventory, start_cluster, write_inventory  # noqa: E402

DEFAULT_DB = Path("/work/oews-full.db")
SCP_TARGET = "/tmp/oewsctl-bench-scp.db"
NS, HOST_IF, NODE_IF = f"oewsbench{os.getpid()}", f"oewsb{os.getpid() % 100000}a", f"oewsb{os.getpid() % 100000}b"
HOST_IP, NODE_IP, NODE_PORT = "10.217.0.1", "10.217.0.2", 2222


def timed(ours: Callable[[], object], peer: Callable[[], object], runs: int) -> tuple[float, float, object]:
    """Median wall times of ``runs`` calls of each, alternated (the machine's load then weighs on both
    alike), and what the last call of ``ours`` returned."""
    seconds: tuple[list[float], list[float]] = ([], [])
    last = None
    for _ in range(runs):
        for index, fn in enumerate((ours, peer)):
            started = time.perf_counter()
            value = fn()
            seconds[index].append(time.perf_counter() - started)
            last = value if index == 0 else last
    return statistics.median(seconds[0]), statistics.median(seconds[1]), last


def push(cluster: TestCluster, sources: tuple[Path, Path], state: Path, *extra: str) -> Callable[[], str]:
    """The whole command as an operator runs it (a new process: imports, lock, plan, output), each
    call with the other file."""
    env = {**os.environ, "OEWSCTL_STATE_DIR": str(state)}
    argv = [sys.executable, "-m", "oewsctl.cli", "--config", str(cluster.config_path), "db", "push", *extra]
    turn = [0]

    def run() -> str:
        turn[0] += 1
        done = subprocess.run([*argv, str(sources[turn[0] % 2])], env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"db push failed:\n{done.stderr}")
        return done.stderr

    return run


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


@contextmanager
def shaped_link(mbit: int) -> Iterator[None]:
    """veth host <-> namespace, tbf at ``mbit`` on the host side (the upload direction); removed on exit."""
    try:
        sh("ip", "netns", "add", NS)
        sh("ip", "link", "add", HOST_IF, "type", "veth", "peer", "name", NODE_IF)
        sh("ip", "link", "set", NODE_IF, "netns", NS)
        sh("ip", "addr", "add", f"{HOST_IP}/24", "dev", HOST_IF)
        sh("ip", "link", "set", HOST_IF, "up")
        sh("ip", "netns", "exec", NS, "ip", "addr", "add", f"{NODE_IP}/24", "dev", NODE_IF)
        sh("ip", "netns", "exec", NS, "ip", "link", "set", NODE_IF, "up")
        sh("ip", "netns", "exec", NS, "ip", "link", "set", "lo", "up")
        sh("tc", "qdisc", "add", "dev", HOST_IF, "root", "tbf", "rate", f"{mbit}mbit", "burst", "32kbit", "latency", "400ms")
        yield
    finally:
        subprocess.run(["ip", "link", "del", HOST_IF], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", NS], capture_output=True, check=False)


def loopback(sources: tuple[Path, Path], unseen: Path, root: Path, runs: int) -> tuple[float, float, float, str]:
    """Timed pushes of files this machine validated before (the usual `db build` then `db push`: each
    file's first push records it), and one push of ``unseen`` with an empty state dir, which runs the
    quick_check while uploading."""
    source = sources[0]
    (root / "loopback").mkdir()
    cluster = start_cluster(root / "loopback", 3)
    db_inventory(cluster)
    try:
        pushed = push(cluster, sources, root / "state")
        pushed()  # first push (no version to keep yet); the timed ones replace a live file
        push_s, scp_s, last = timed(pushed, lambda: cluster.scp("machine1", source, SCP_TARGET), runs)
        first_s, _, _ = timed(push(cluster, (unseen, unseen), root / "state-empty"), lambda: None, 1)
    finally:
        cluster.stop()
        Path(SCP_TARGET).unlink(missing_ok=True)
    return push_s, scp_s, first_s, str(last)


def shaped(sources: tuple[Path, Path], root: Path, runs: int, mbit: int) -> tuple[float, float, float, str]:
    source = sources[0]
    with shaped_link(mbit):
        (root / "shaped").mkdir()
        cluster = start_cluster(root / "shaped", 1)
        node = cluster.nodes[0]
        node.stop()
        node.address, node.port, node.netns = NODE_IP, NODE_PORT, NS
        cluster.write_known_hosts()
        data = inventory(cluster)
        write_inventory(cluster, data)
        try:
            node.start()
            pushed = push(cluster, sources, root / "state-shaped")
            pushed()
            push_s, scp_s, last = timed(pushed, lambda: cluster.scp(node.name, source, SCP_TARGET), runs)
            raw_s, _, _ = timed(push(cluster, sources, root / "state-shaped", "--compress", "none"), lambda: None, 1)
        finally:
            cluster.stop()
            Path(SCP_TARGET).unlink(missing_ok=True)
    return push_s, raw_s, scp_s, str(last)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, default=DEFAULT_DB, help="a valid oews.db (default: the full May 2025 database)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--mbit", type=int, default=100)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="oewsctl-bench-"))
    root.chmod(0o755)
    sources = (root / "oews.db", root / "oews-b.db")
    unseen = root / "oews-unseen.db"
    for number, path in enumerate((*sources, unseen)):
        shutil.copyfile(args.db, path)
        with closing(sqlite3.connect(path)) as db:
            db.execute(f"PRAGMA user_version = {number + 7}")
            db.commit()
    size = sources[0].stat().st_size / 1048576
    try:
        push_s, scp_s, first_s, last = loopback(sources, unseen, root, args.runs)
        print(f"\n{size:.1f} MiB database, median of {args.runs}, load average {os.getloadavg()[0]:.1f} (2 cores shared with other work):")
        print(f"  loopback: oewsctl db push to 2 nodes (whole command)  {push_s:5.2f} s")
        print(f"            scp to 1 node                               {scp_s:5.2f} s   push/scp = {push_s / scp_s:.2f}x (target <= 2x)")
        print(f"            a file never validated here (1 run, empty state dir: quick_check while uploading)  {first_s:5.2f} s"
              f"   = {first_s / scp_s:.2f}x scp")
        print("            " + "\n            ".join(line for line in last.splitlines() if line.startswith("✓")))
        try:
            shaped_push, raw_s, shaped_scp, last = shaped(sources, root, args.runs, args.mbit)
        except subprocess.CalledProcessError as exc:
            print(f"  shaped link: skipped, cannot shape here ({' '.join(map(str, exc.cmd))}: {exc.stderr.decode().strip()})")
            return
        print(f"  {args.mbit} Mbit/s link (tbf on a veth pair): oewsctl db push --compress auto  {shaped_push:5.2f} s")
        print(f"            oewsctl db push --compress none (1 run)          {raw_s:5.2f} s")
        print(f"            scp                                              {shaped_scp:5.2f} s   scp/push = {shaped_scp / shaped_push:.2f}x (target >= 2x)")
        print("            " + "\n            ".join(line for line in last.splitlines() if line.startswith("✓")))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
