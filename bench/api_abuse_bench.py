"""Hostile load on oews-api: what an attacker can make one request cost, and whether /health stays fast meanwhile.

    env -u PYTHONDONTWRITEBYTECODE uv run python bench/api_abuse_bench.py [--db /work/oews-full.db] [--count 2400]

Starts ``python -m oews_api`` (one uvicorn worker, as in a pod) on loopback and sends hostile
corpora built from a fixed seed: random words up to each input cap (vocabulary, typos and
garbage mixed), unicode (accents, CJK, emoji, right-to-left, combining marks), full lists
(5 occupations x 5 areas), names that match nothing (404), 20-word questions, 500-character
questions and inputs one past each cap (422).

1. **Cost**: one client sends a corpus once, in order; every request is seen for the first time
   (no cache helps). Target: the worst request < 50 ms.
2. **Load**: 32 clients send a second, different corpus while another process polls ``/health``
   every 10 ms. Targets: ``/health`` p99 < 20 ms; no 5xx but deliberate 503 shedding.
3. **Shedding**: bursts of 128 requests written at the same instant on 128 open connections, more
   than the concurrency limit plus the queue; the service's own latency histogram says how fast
   the 503s left (target < 5 ms).

Prints the server's RSS after the run. Load only on loopback, bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from api_bench import OUT, free_port, start, wait_ready

DEFAULT_DB = Path("/work/oews-full.db")
MAX_NAME, MAX_ITEMS, MAX_QUERY = 120, 5, 500  # the service's caps (oews_api.settings)
UNICODE = ["Zürich", "São", "Ørsted", "Straße", "東京", "北京市", "😀🔥", "مرحبا", "שלום", "e\u0301\u0301\u0301", "Ω≈ç√∫", "\u200b", "ﬁﬂ", "Ⅻ"]
Request = tuple[str, str, dict[str, Any] | None]  # method, path with query string, JSON body


class Corpus:
    """Hostile requests from a seed, with words drawn from the database's own names (so some of them almost match)."""

    def __init__(self, db: Path, seed: int) -> None:
        self.rnd = random.Random(seed)
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
            names = [r[0] for r in connection.execute("SELECT occ_title FROM occupations UNION ALL SELECT area_name FROM areas")]
        self.vocabulary = sorted({w for name in names for w in re.findall(r"[A-Za-z]+", name)})

    def word(self) -> str:
        roll = self.rnd.random()
        if roll < 0.45:
            return self.rnd.choice(self.vocabulary)
        if roll < 0.6:  # a typo of a real word
            word = list(self.rnd.choice(self.vocabulary))
            word[self.rnd.randrange(len(word))] = self.rnd.choice("abcdefghijklmnopqrstuvwxyz")
            return "".join(word)
        if roll < 0.75:
            return self.rnd.choice(UNICODE)
        return "".join(self.rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(self.rnd.randint(2, 14)))

    def text(self, limit: int, *, words: int | None = None) -> str:
        out: list[str] = []
        while (words is None or len(out) < words) and len(" ".join(out)) < limit:
            out.append(self.word())
        return " ".join(out)[:limit].strip() or "x"

    def nonsense(self) -> str:
        return "".join(self.rnd.choice("bcdfghjklmnpqrstvwxz") for _ in range(self.rnd.randint(5, 20)))

    def requests(self, count: int) -> list[Request]:
        makers = [
            lambda: ("GET", "/api/v1/wages?" + urlencode({"occupation": self.text(MAX_NAME), "area": self.text(MAX_NAME)}), None),
            lambda: ("GET", "/api/v1/wages?" + urlencode({"occupation": self.nonsense(), "area": self.nonsense()}), None),
            lambda: (
                "GET",
                "/api/v1/compare?"
                + urlencode([("occupation", self.text(MAX_NAME)) for _ in range(MAX_ITEMS)] + [("area", self.text(MAX_NAME)) for _ in range(MAX_ITEMS)]),
                None,
            ),
            lambda: ("GET", "/api/v1/occupations?" + urlencode({"q": self.text(MAX_NAME), "limit": 200}), None),
            lambda: ("GET", "/api/v1/areas?" + urlencode({"q": self.text(MAX_NAME), "limit": 600}), None),
            lambda: ("GET", "/api/v1/top?" + urlencode({"area": self.text(MAX_NAME), "group": self.text(MAX_NAME), "limit": 100}), None),
            lambda: ("GET", "/api/v1/trend?" + urlencode({"occupation": self.text(MAX_NAME), "area": self.text(MAX_NAME)}), None),
            lambda: ("POST", "/api/v1/query", {"query": self.text(MAX_QUERY, words=20)}),
            lambda: ("POST", "/api/v1/query", {"query": self.text(MAX_QUERY)}),
            lambda: ("POST", "/api/v1/query", {"query": f"top 50 highest paying {self.word()} jobs in {self.text(60)}"}),
            lambda: ("GET", "/api/v1/wages?" + urlencode({"occupation": "x" * (MAX_NAME + 1)}), None),  # one past the cap: 422
            lambda: ("GET", "/api/v1/compare?" + urlencode([("occupation", self.word()) for _ in range(MAX_ITEMS + 1)]), None),
            lambda: ("POST", "/api/v1/query", {"query": "y" * (MAX_QUERY + 1)}),
        ]
        return [makers[n % len(makers)]() for n in range(count)]


async def send_all(url: str, requests: list[Request], clients: int) -> list[tuple[float, int, str]]:
    """Send every request once over ``clients`` keep-alive connections; (ms, status, path) of each."""
    queue = list(reversed(requests))
    results: list[tuple[float, int, str]] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        await asyncio.gather(*(client.get("/health") for _ in range(clients)))  # open the connections (not what is measured)

        async def worker() -> None:
            while queue:
                method, path, body = queue.pop()
                started = time.perf_counter()
                response = await client.request(method, path, json=body)
                results.append(((time.perf_counter() - started) * 1000, response.status_code, path.split("?")[0]))

        await asyncio.gather(*(worker() for _ in range(clients)))
    return results


async def bursts(port: int, requests: list[Request], width: int, rounds: int) -> list[tuple[float, int, str]]:
    """``rounds`` times: write ``width`` requests on ``width`` open connections at once, then read every answer."""
    results: list[tuple[float, int, str]] = []
    connections = [await asyncio.open_connection("127.0.0.1", port) for _ in range(width)]
    try:
        for round_ in range(rounds):
            batch = requests[round_ * width : (round_ + 1) * width]
            started = time.perf_counter()
            for (_, writer), (method, path, body) in zip(connections, batch, strict=False):
                payload = json.dumps(body).encode() if body is not None else b""
                head = f"{method} {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
                writer.write(head.encode() + payload)
            for (reader, _), (_, path, _) in zip(connections, batch, strict=False):
                status = int((await reader.readline()).split()[1])
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
                results.append(((time.perf_counter() - started) * 1000, status, path.split("?")[0]))
    finally:
        for _, writer in connections:
            writer.close()
    return results


def probe_health(url: str, interval: float, stop: Any, out: Connection) -> None:
    """In its own process (its own GIL): GET /health every ``interval`` s until ``stop`` is set; send back the latencies."""
    timings = []
    with httpx.Client(base_url=url, timeout=10) as client:
        while not stop.is_set():
            started = time.perf_counter()
            status = client.get("/health").status_code
            timings.append(((time.perf_counter() - started) * 1000, status))
            time.sleep(interval)
    out.send(timings)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def rss(pid: int) -> dict[str, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile"):
            fields[key] = int(value.split()[0]) / 1024
    return fields


def histogram(url: str, route: str, status: int) -> dict[str, float]:
    """The service's own latency histogram for one route and status: upper bound (seconds) -> requests."""
    text = httpx.get(url + "/metrics").text
    counts: dict[str, float] = {}
    pattern = rf'oews_api_request_duration_seconds_bucket\{{le="([^"]+)",method="\w+",route="{re.escape(route)}",status="{status}"\}} ([\d.e+]+)'
    for le, value in re.findall(pattern, text):
        counts[le] = counts.get(le, 0) + float(value)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, default=DEFAULT_DB, help=f"oews.db to serve (default {DEFAULT_DB})")
    parser.add_argument("--count", type=int, default=2400, help="requests per corpus (default 2400)")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients in the load phase (default 32)")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    if not args.db.is_file():
        raise SystemExit(f"{args.db} not found: build it with `oewsctl db build --from DIR --out {args.db}`")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    workdir = Path(tempfile.mkdtemp(prefix="api-abuse-"))
    env = {"SQLITE_DB_PATH": str(args.db), "API_HOST": "127.0.0.1", "API_PORT": str(port), "API_WORKERS": "1", "LOG_LEVEL": "warning"}
    server = start([sys.executable, "-m", "oews_api"], env, workdir / "server.log")
    try:
        wait_ready(url + "/health", server)
        rss_start = rss(server.pid)
        cost = asyncio.run(send_all(url, Corpus(args.db, args.seed).requests(args.count), 1))
        stop = multiprocessing.Event()
        receive, send = multiprocessing.Pipe(duplex=False)
        prober = multiprocessing.Process(target=probe_health, args=(url, 0.01, stop, send))
        prober.start()
        time.sleep(0.5)
        load_started = time.perf_counter()
        load = asyncio.run(asyncio.wait_for(send_all(url, Corpus(args.db, args.seed + 1).requests(args.count), args.clients), 300))
        load_seconds = time.perf_counter() - load_started
        stop.set()
        health = receive.recv()
        prober.join(timeout=30)
        shed = asyncio.run(asyncio.wait_for(bursts(port, Corpus(args.db, args.seed + 2).requests(args.count), 128, 10), 300))
        shed_seconds = histogram(url, "rejected", 503)
        health_seconds = histogram(url, "/health", 200)
        rss_end = rss(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    report(args, cost, load, load_seconds, health, health_seconds, shed, shed_seconds, rss_start, rss_end)


def report(
    args: argparse.Namespace,
    cost: list[tuple[float, int, str]],
    load: list[tuple[float, int, str]],
    load_seconds: float,
    health: list[tuple[float, int]],
    health_seconds: dict[str, float],
    shed: list[tuple[float, int, str]],
    shed_seconds: dict[str, float],
    rss_start: dict[str, float],
    rss_end: dict[str, float],
) -> None:
    def statuses(results: list[tuple[float, int, str]]) -> dict[int, int]:
        return {s: sum(1 for r in results if r[1] == s) for s in sorted({r[1] for r in results})}

    worst = max(cost)
    health_ms = [t for t, _ in health]
    server_errors = [r for r in cost + load + shed if r[1] >= 500 and r[1] != 503]
    print(f"\noews-api under a hostile corpus on {args.db.name} ({args.db.stat().st_size / 1e6:.0f} MB), 1 uvicorn worker, loopback")
    print(f"{os.cpu_count()} CPUs shared with other work; load average {os.getloadavg()[0]:.1f} at the end")
    print(f"1. cost, one client, {len(cost)} first-sight requests: p50 {percentile([r[0] for r in cost], 0.5):.1f} ms, "
          f"p99 {percentile([r[0] for r in cost], 0.99):.1f} ms, worst {worst[0]:.1f} ms ({worst[2]}) (target < 50 ms); statuses {statuses(cost)}")
    slowest = sorted(cost, reverse=True)[:5]
    print("   slowest five:", ", ".join(f"{ms:.1f} ms {path}" for ms, _, path in slowest))
    print(f"2. load, {args.clients} clients, {len(load)} requests in {load_seconds:.1f} s ({len(load) / load_seconds:.0f} req/s): "
          f"p50 {percentile([r[0] for r in load], 0.5):.1f} ms, p99 {percentile([r[0] for r in load], 0.99):.1f} ms; statuses {statuses(load)}")
    print(f"   /health meanwhile, {len(health_ms)} probes: p50 {statistics.median(health_ms):.1f} ms, p99 {percentile(health_ms, 0.99):.1f} ms, "
          f"max {max(health_ms):.1f} ms (target p99 < 20 ms); non-200: {sum(1 for _, s in health if s != 200)}")
    print(f"   /health inside the server (its histogram, every probe): {health_seconds.get('0.005', 0):.0f} within 5 ms, "
          f"{health_seconds.get('0.01', 0):.0f} within 10 ms, {health_seconds.get('0.025', 0):.0f} within 25 ms, of {health_seconds.get('+Inf', 0):.0f}")
    print(f"3. shedding, 10 bursts of 128 at once: statuses {statuses(shed)}; 503s answered within 5 ms (server histogram): "
          f"{shed_seconds.get('0.005', 0):.0f} of {shed_seconds.get('+Inf', 0):.0f}")
    print(f"5xx other than 503: {len(server_errors)} (target 0)")
    print(f"server RSS: {rss_start['VmRSS']:.0f} MB at start, {rss_end['VmRSS']:.0f} MB after the run "
          f"(anonymous {rss_end['RssAnon']:.0f} MB, mapped database pages {rss_end['RssFile']:.0f} MB)")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "api_abuse_bench.json").write_text(
        json.dumps(
            {
                "count": len(cost), "clients": args.clients, "load_average": os.getloadavg()[0], "worst_ms": worst[0],
                "cost_statuses": statuses(cost), "load_statuses": statuses(load), "shed_statuses": statuses(shed),
                "health_p99_ms": percentile(health_ms, 0.99), "health_max_ms": max(health_ms), "health_server_histogram": health_seconds,
                "shed_503_histogram": shed_seconds,
                "server_errors": len(server_errors), "rss_mb": {"start": rss_start, "end": rss_end},
            },
            indent=2,
        )
    )  # fmt: skip


if __name__ == "__main__":
    main()
