"""Upload throughput: oewsctl's SSHPool.upload against OpenSSH scp, same file, same node, same run.

Starts one real sshd test node on loopback (tests/fixtures/sshd.py; needs root, sshd, sudo),
writes an incompressible file (default 1 GiB), then alternates scp and our upload
(temp name, SHA-256 verified on the node, chmod, atomic rename) and prints the best
throughput of each and the ratio. ``--paramiko`` also times our paramiko-only data path
(used when no ``ssh`` client is installed).

    uv run python bench/transfer_bench.py [--size-mib 1024] [--rounds 2] [--paramiko]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from oewsctl.clients import transfer  # noqa: E402
from oewsctl.clients.ssh import SSHPool  # noqa: E402
from tests.fixtures.sshd import start_cluster  # noqa: E402


def make_file(path: Path, size_mib: int) -> None:
    block = 16 * 1024 * 1024
    with path.open("wb") as handle:
        for _ in range(0, size_mib * 1024 * 1024, block):
            handle.write(os.urandom(block))


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--paramiko", action="store_true", help="also time the paramiko-only data path")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="oewsctl-bench-"))
    cluster = start_cluster(root, 1)
    source = root / "payload.bin"
    make_file(source, args.size_mib)
    mib = args.size_mib
    best: dict[str, float] = {}
    try:
        with SSHPool(cluster.config) as pool:
            runs: dict[str, Callable[[], object]] = {
                "scp (OpenSSH defaults)": lambda: cluster.scp(cluster.nodes[0].name, source, "/tmp/oewsctl-bench-scp.bin"),
                "oewsctl upload": lambda: pool.upload("machine1", source, "/tmp/oewsctl-bench-ours.bin", progress=False),
            }
            for _ in range(args.rounds):
                for name, action in runs.items():
                    seconds = timed(action)
                    best[name] = min(best.get(name, seconds), seconds)
                    print(f"  {name:<32} {seconds:6.2f} s  {mib / seconds:7.1f} MiB/s", flush=True)
            if args.paramiko:
                original = transfer.openssh_available
                transfer.openssh_available = lambda: False
                seconds = timed(lambda: pool.upload("machine1", source, "/tmp/oewsctl-bench-ours.bin", progress=False))
                transfer.openssh_available = original
                best["oewsctl upload, paramiko data path"] = seconds
    finally:
        cluster.stop()
        for leftover in ("/tmp/oewsctl-bench-scp.bin", "/tmp/oewsctl-bench-ours.bin"):
            Path(leftover).unlink(missing_ok=True)
        shutil.rmtree(root, ignore_errors=True)

    peer = best["scp (OpenSSH defaults)"]
    print(f"\n{mib} MiB over loopback, best of {args.rounds} (load average {os.getloadavg()[0]:.1f}):")
    for name, seconds in best.items():
        print(f"  {name:<36} {mib / seconds:7.1f} MiB/s  ratio vs scp {peer / seconds:.2f}x")


if __name__ == "__main__":
    main()
