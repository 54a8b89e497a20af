"""The real server under hostile load: memory stays bounded, /health stays fast (real uvicorn, real sockets, /proc for RSS)."""

from __future__ import annotations

import random
import string
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.fixtures.api import ServerFactory, rss_mb

# Caches hold at most 64 MB of encoded answers, 8 MB of plans, 16 MB of response bodies and 3 x 8 MB of name matches;
# the allocator keeps some freed memory around them. The process itself is ~80 MB on the sample database.
RSS_BOUND_MB = 300
RSS_SATURATED_MB = 30  # what a second round of as many new answers may still add once the caches are full


def test_rss_stays_bounded_after_thousands_of_distinct_expensive_requests(api_server: ServerFactory, api_db: Path) -> None:
    proc, url = api_server(SQLITE_DB_PATH=str(api_db), MAX_QUEUED_REQUESTS="64")
    with httpx.Client(base_url=url, timeout=30) as client:
        areas = [a["area_name"] for a in client.get("/api/v1/areas", params={"limit": 600}).json()["results"] if a["area_type"] != "N"]
    # Every one a distinct plan whose answer holds up to 50 rows and a chart: the most memory an answer can take.
    questions = [
        f"top {n} {order} paying jobs{by} in {area}"
        for by in ("", " by mean wage")
        for area in areas
        for n in range(20, 51)
        for order in ("highest", "lowest")
    ][:6000]

    def ask(chunk: list[str]) -> list[int]:
        with httpx.Client(base_url=url, timeout=30) as client:
            return [client.post("/api/v1/query", json={"query": q}).status_code for q in chunk]

    rss = [rss_mb(proc.pid)]
    statuses: list[int] = []
    for half in (questions[:3000], questions[3000:]):
        with ThreadPoolExecutor(4) as pool:
            statuses += [s for chunk in pool.map(ask, [half[i::4] for i in range(4)]) for s in chunk]
        rss.append(rss_mb(proc.pid))
    assert len(questions) == 6000 and statuses.count(200) == len(statuses), {s: statuses.count(s) for s in set(statuses)}
    message = f"RSS {rss[0]:.0f} MB at start, {rss[1]:.0f} MB after 3,000 distinct answers, {rss[2]:.0f} MB after 3,000 more"
    assert rss[2] < RSS_BOUND_MB and rss[2] - rss[1] < RSS_SATURATED_MB, message


def test_health_stays_fast_while_clients_send_hostile_requests(api_server: ServerFactory, api_db: Path) -> None:
    _, url = api_server(SQLITE_DB_PATH=str(api_db))
    rnd = random.Random(13)

    def junk(length: int) -> str:
        words = []
        while sum(len(w) + 1 for w in words) < length:
            words.append("".join(rnd.choice(string.ascii_letters + "éßøç中文") for _ in range(rnd.randint(2, 12))))
        return " ".join(words)[:length]

    hostile = [
        *[("GET", "/api/v1/compare", [("occupation", junk(120)) for _ in range(5)] + [("area", junk(120)) for _ in range(5)], None) for _ in range(60)],
        *[("GET", "/api/v1/wages", {"occupation": junk(120), "area": junk(120)}, None) for _ in range(60)],
        *[("POST", "/api/v1/query", None, {"query": junk(500)}) for _ in range(60)],
    ]
    stop = threading.Event()
    statuses: list[int] = []

    def attack(offset: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            for method, path, params, body in (hostile[offset::8] * 20):
                if stop.is_set():
                    return
                statuses.append(client.request(method, path, params=params, json=body).status_code)

    threads = [threading.Thread(target=attack, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    health_ms = []
    with httpx.Client(base_url=url, timeout=30) as client:
        time.sleep(0.5)
        for _ in range(100):
            started = time.perf_counter()
            assert client.get("/health").status_code == 200
            health_ms.append((time.perf_counter() - started) * 1000)
            time.sleep(0.02)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    health_ms.sort()
    assert len(statuses) > 100 and all(s < 500 or s == 503 for s in statuses), sorted(set(statuses))
    # The bench holds /health p99 under 20 ms on the full database; here, beside other tests on a shared machine, 100 ms.
    assert health_ms[98] < 100, f"/health p99 {health_ms[98]:.0f} ms under hostile load"
