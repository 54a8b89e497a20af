"""Benchmark oews-api against Datasette serving the same full May 2025 database over HTTP, and against FastAPI itself.

    uv run --group bench python bench/api_bench.py [--workers 2] [--duration 20] [--db FILE]

Builds ``bench/out/oews-may2025.db`` with ``oewsctl db build`` if it is missing. Starts
our service (``python -m oews_api``, uvicorn) and Datasette (PyPI, one process, the file
opened immutable) on loopback, and loads each with ``wrk`` from a separate process:

* wages lookup, concurrency 32: ``GET /api/v1/wages?occupation=&area=`` vs Datasette's JSON
  API running the equivalent SQL (the same joined row, bound parameters, ``_shape=array``);
  both rotate through the same 24 occupation × area pairs; and vs an empty FastAPI endpoint
  (``async def`` returning ``{}``, same uvicorn worker count): the framework's own ceiling
  (target: lookups at >= 0.7x of it). Repeats are answered from the service's response cache;
  a third run rotates through 20,000 distinct cells (more than that cache holds), so every
  lookup there is resolved and read from SQLite afresh;
* ``POST /api/v1/query`` (plain-English questions, rotating through 5,040 distinct ones:
  28 occupations × 30 places × 6 phrasings, more than the service caches, so every request is
  planned and answered afresh), concurrency 32 and 8 (the target is p99 < 20 ms at 8); Datasette
  has no equivalent, so no ratio there.

Prints requests/s, p50 and p99 latency per run and our/peer ratios; writes
``bench/out/api_bench.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
FULL_DB = OUT / "oews-may2025.db"
RELEASE_DIR = Path("/work/shared/data/bls-oe-may2025")

PAIRS = [  # occupation × area, the same for both servers
    (occ, area)
    for occ in ("151252", "291141", "472111", "132011", "412031", "533032", "252021", "113021")
    for area in ("0000000", "0600000", "0042660")
]
# POST /api/v1/query load: every occupation × place × phrasing, more distinct questions than the
# service's plan and answer caches hold (4,096 each), so round-robin load never hits a cache.
OCCUPATION_NAMES = (
    "software developers", "registered nurses", "electricians", "accountants", "customer service reps", "truck drivers",
    "elementary school teachers", "IT managers", "dental hygienists", "plumbers", "pharmacists", "cashiers",
    "web developers", "physical therapists", "lawyers", "cooks", "janitors", "data scientists", "paralegals",
    "welders", "dentists", "firefighters", "police officers", "bus drivers", "carpenters", "graphic designers",
    "financial analysts", "medical assistants",
)  # fmt: skip
PLACES = (
    "Texas", "California", "Ohio", "New York State", "Florida", "Illinois", "Colorado", "Washington state", "Georgia",
    "Michigan", "Arizona", "Minnesota", "Oregon", "Utah", "Iowa", "Seattle", "Chicago", "Houston", "Denver", "Phoenix",
    "Boston", "Atlanta", "Dallas", "Miami", "San Jose", "San Diego", "Detroit", "Tampa", "St. Louis", "the U.S.",
)  # fmt: skip
PHRASINGS = (
    "median salary for {occupation} in {place}",
    "how many {occupation} work in {place}",
    "average hourly wage for {occupation} in {place}",
    "90th percentile pay for {occupation} in {place}",
    "entry level salary for {occupation} in {place}",
    "location quotient of {occupation} in {place}",
)
QUESTIONS = [p.format(occupation=o, place=a) for p in PHRASINGS for o in OCCUPATION_NAMES for a in PLACES]
DATASETTE_SQL = (
    "SELECT e.*, o.occ_title, o.display_level, a.area_name, a.area_type, i.industry_name FROM estimates e "
    "JOIN occupations o ON o.occ_code = e.occ_code JOIN areas a ON a.area_code = e.area_code "
    "JOIN industries i ON i.industry_code = e.industry_code "
    "WHERE e.occ_code = :occ AND e.area_code = :area AND e.year = 2025 AND e.industry_code = '000000'"
)


EMPTY_APP = "from fastapi import FastAPI\napp = FastAPI()\n\n@app.get('/empty')\nasync def empty() -> dict:\n    return {}\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ensure_database() -> Path:
    """The full release as an oews.db, built once with our builder."""
    if not FULL_DB.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        print(f"building {FULL_DB} from {RELEASE_DIR} (once)...", flush=True)
        subprocess.run([sys.executable, "-m", "oewsctl.cli", "db", "build", "--from", str(RELEASE_DIR), "--out", str(FULL_DB)], check=True)
    return FULL_DB


def wait_ready(url: str, proc: subprocess.Popen[bytes], seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server for {url} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{url} not ready after {seconds:.0f} s")


def lua_rotation(requests: list[tuple[str, str, str | None]]) -> str:
    """A wrk script that sends the given (method, path, body) requests round-robin.

    The two wrk threads start half a rotation apart, so they do not send the same request at
    the same moment (which would turn one of them into a cache hit).
    """
    entries = ",\n".join(f"{{{json.dumps(m)}, {json.dumps(p)}, {json.dumps(b) if b is not None else 'nil'}}}" for m, p, b in requests)
    return (
        "local reqs = {\n" + entries + "\n}\n"
        "local threads = {}\n"
        "function setup(thread)\n  table.insert(threads, thread)\n  thread:set('id', #threads)\nend\n"
        "function init(args)\n  i = math.floor((id - 1) * #reqs / 2) % #reqs\nend\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        "request = function()\n  i = (i % #reqs) + 1\n  local r = reqs[i]\n"
        "  return wrk.format(r[1], r[2], nil, r[3])\nend\n"
    )


def to_ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def run_wrk(base: str, requests: list[tuple[str, str, str | None]], connections: int, duration: int, workdir: Path) -> dict[str, float]:
    """Requests/s, p50 and p99 latency, and socket errors (timeouts at 2 s) of one wrk run."""
    script = workdir / f"rotation-{abs(hash((base, len(requests), connections)))}.lua"
    script.write_text(lua_rotation(requests))
    threads = min(2, connections)
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), base],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        raise SystemExit(f"wrk saw error responses from {base}:\n{out}")
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "socket_errors": sum(int(n) for n in errors.groups()) if errors else 0,
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": to_ms(re.search(r"^\s*50%\s+(\S+)", out, re.M).group(1)),  # type: ignore[union-attr]
        "p99_ms": to_ms(re.search(r"^\s*99%\s+(\S+)", out, re.M).group(1)),  # type: ignore[union-attr]
    }


def start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, env={**os.environ, **env}, stdout=log.open("wb"), stderr=subprocess.STDOUT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers for oews-api (default 2)")
    parser.add_argument("--duration", type=int, default=20, help="seconds per wrk run (default 20)")
    parser.add_argument("--db", type=Path, help=f"oews.db to serve (default: {FULL_DB}, built once if missing)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    db = args.db or ensure_database()
    ours_port, peer_port, empty_port = free_port(), free_port(), free_port()
    workdir = Path(tempfile.mkdtemp(prefix="api-bench-"))
    (workdir / "empty_app.py").write_text(EMPTY_APP)
    ours = start(
        [sys.executable, "-m", "oews_api"],
        {"SQLITE_DB_PATH": str(db), "API_HOST": "127.0.0.1", "API_PORT": str(ours_port), "API_WORKERS": str(args.workers), "LOG_LEVEL": "warning"},
        workdir / "ours.log",
    )
    peer = start(
        [sys.executable, "-m", "datasette", "serve", "--immutable", str(db), "--host", "127.0.0.1", "--port", str(peer_port)],
        {},
        workdir / "datasette.log",
    )
    empty = start(
        [sys.executable, "-m", "uvicorn", "empty_app:app", "--app-dir", str(workdir), "--host", "127.0.0.1", "--port", str(empty_port),
         "--workers", str(args.workers), "--log-level", "warning", "--no-server-header"],
        {},
        workdir / "empty.log",
    )  # fmt: skip
    try:
        ours_url, peer_url, empty_url = f"http://127.0.0.1:{ours_port}", f"http://127.0.0.1:{peer_port}", f"http://127.0.0.1:{empty_port}"
        wait_ready(ours_url + "/health", ours)
        wait_ready(peer_url + "/-/versions.json", peer)
        wait_ready(empty_url + "/empty", empty)
        empty_requests = [("GET", "/empty", None)]
        wages = [("GET", "/api/v1/wages?" + urlencode({"occupation": o, "area": a}), None) for o, a in PAIRS]
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
            cells = connection.execute("SELECT occ_code, area_code FROM estimates WHERE industry_code = '000000' LIMIT 20000").fetchall()
        fresh_wages = [("GET", "/api/v1/wages?" + urlencode({"occupation": o, "area": a}), None) for o, a in cells]
        peer_wages = [
            ("GET", f"/{db.stem}.json?" + urlencode({"sql": DATASETTE_SQL, "occ": o, "area": a, "_shape": "array"}), None) for o, a in PAIRS
        ]
        queries = [("POST", "/api/v1/query", json.dumps({"query": q, "enable_charts": True})) for q in QUESTIONS]
        _check_same_rows(ours_url, peer_url, wages[0][1], peer_wages[0][1])
        for base, reqs in ((ours_url, wages), (peer_url, peer_wages), (empty_url, empty_requests), (ours_url, queries)):  # warm caches
            run_wrk(base, reqs, 4, 2, workdir)
        results = {
            "wages_c32_ours": run_wrk(ours_url, wages, 32, args.duration, workdir),
            "wages_c32_ours_first_sight": run_wrk(ours_url, fresh_wages, 32, args.duration, workdir),
            "wages_c32_datasette": run_wrk(peer_url, peer_wages, 32, args.duration, workdir),
            "empty_c32_fastapi": run_wrk(empty_url, empty_requests, 32, args.duration, workdir),
            "query_c32_ours": run_wrk(ours_url, queries, 32, args.duration, workdir),
            "query_c8_ours": run_wrk(ours_url, queries, 8, args.duration, workdir),
        }
    finally:
        for proc in (ours, peer, empty):
            proc.terminate()
            proc.wait(timeout=30)
    report(results, args, db, uncached_answer_ms(db))


def uncached_answer_ms(db: Path) -> list[float]:
    """In-process planner + answer time per question on first sight (no HTTP, no caches), sorted."""
    from oews_api.answers import Answerer
    from oews_api.db import Database
    from oews_api.names import NameIndex
    from oews_api.planner import build_plan

    database = Database.open(db)
    index = NameIndex.build(database)
    examples = json.loads((ROOT / "tests" / "data" / "example-questions.json").read_text())
    timings = []
    for question in [*QUESTIONS, *(e["question"] for e in examples)]:
        answerer = Answerer(database, index)  # a fresh answer cache each time
        started = time.perf_counter()
        answerer.answer(build_plan(question, index), charts=True)
        timings.append((time.perf_counter() - started) * 1000)
    return sorted(timings)


def _check_same_rows(ours_url: str, peer_url: str, ours_path: str, peer_path: str) -> None:
    """Both servers must return the same figures, or the comparison means nothing."""
    mine = httpx.get(ours_url + ours_path).json()["measures"]
    theirs = httpx.get(peer_url + peer_path).json()[0]
    assert all(mine[k] == theirs[k] for k in mine), (mine, theirs)


def report(results: dict[str, dict[str, float]], args: argparse.Namespace, db: Path, uncached: list[float]) -> None:
    load = os.getloadavg()[0]
    print(
        f"\noews-api ({args.workers} uvicorn workers) vs Datasette (1 process) on {db.name} ({db.stat().st_size / 1e6:.0f} MB), wrk, {args.duration} s per run"
    )
    print(f"{os.cpu_count()} CPUs, load average {load:.1f} at the end (other work on the machine inflates the tails)")
    print(f"{'run':24} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'socket errors':>14}")
    for name, r in results.items():
        print(f"{name:24} {r['requests_per_s']:>10,.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['socket_errors']:>14.0f}")
    ours, peer = results["wages_c32_ours"], results["wages_c32_datasette"]
    ratio = ours["requests_per_s"] / peer["requests_per_s"]
    framework = ours["requests_per_s"] / results["empty_c32_fastapi"]["requests_per_s"]
    print(f"\nwages lookup, ours/Datasette: {ratio:.2f}x requests/s (target >= 2x), p99 {ours['p99_ms']:.1f} vs {peer['p99_ms']:.1f} ms")
    print(f"wages lookup, ours/empty FastAPI endpoint: {framework:.2f}x requests/s (target >= 0.7x)")
    fresh = results["wages_c32_ours_first_sight"]["requests_per_s"]
    print(f"first-sight wages lookups (20,000 distinct cells): {fresh / results['empty_c32_fastapi']['requests_per_s']:.2f}x the empty endpoint, "
          f"{fresh / peer['requests_per_s']:.2f}x Datasette")
    p99 = results["query_c8_ours"]["p99_ms"]
    print(f"/api/v1/query p99 at concurrency 8: {p99:.1f} ms (target < 20 ms)")
    median = uncached[len(uncached) // 2]
    print(f"first-time (uncached) planner + answer, in-process, {len(uncached)} questions: median {median:.1f} ms, max {uncached[-1]:.1f} ms")
    (OUT / "api_bench.json").write_text(
        json.dumps(
            {
                "workers": args.workers, "duration_s": args.duration, "load_average": load, "results": results,
                "wages_ratio": ratio, "framework_ratio": framework, "uncached_answer_ms": uncached,
            },
            indent=2,
        )  # fmt: skip
    )


if __name__ == "__main__":
    main()
