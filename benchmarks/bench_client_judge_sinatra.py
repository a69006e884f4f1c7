"""Judging 100,000 lines of a well-behaved Sinatra client's traffic: time and peak memory.

Synthesizes the traffic file (a login every 19 minutes of mock clock, catalog calls with the
token, history walks of 50 pages with Basic, now and then a 429 honoured), then times
`judge(read_traffic(path))` and measures its peak memory with tracemalloc. Prints figures; no
assertion (issue 14: under 10 s, memory bounded by the client's state, not by the lines).

    .venv/bin/python benchmarks/bench_client_judge_sinatra.py [LINES]
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pepharness.mocks.core.traffic import read_traffic
from pepharness.suites.clients import FAIL
from pepharness.suites.clients.sinatra import judge

HISTORY = "/transactions/1.0/games/history/api"
PAGES, PAGE_SIZE = 50, 100


def synthesize(path: Path, lines: int) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    seq, now, token, issued_at = 0, 0.0, 0, -1e9
    page, walk = 1, 0

    def stamp(seconds: float) -> str:
        return (start + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")

    with open(path, "w", encoding="utf-8") as out:
        def write(**fields: object) -> None:
            nonlocal seq
            seq += 1
            entry = {"seq": seq, "mock": "sinatra", "time": stamp(now), "clock": stamp(now),
                     "duration_ms": 2.0, "fault": False, "request_headers": {},
                     "response_headers": {}, "issued": None, "credential": None, "auth": None,
                     "query": {}, **fields}
            out.write(json.dumps(entry, separators=(",", ":")) + "\n")

        while seq < lines:
            now += 0.2
            if now - issued_at > 19 * 60:
                token += 1
                issued_at = now
                write(method="POST", path="/1.0/login/", status=200, issued=f"tok{token:08d}",
                      request_headers={"Content-Type": "application/json"})
                continue
            if seq % 10 == 0:
                write(method="GET", path="/vendors/1.0/view/available", status=200,
                      auth="jwt-auth", credential=f"tok{token:08d}")
                continue
            query = {"time_period": "last 30 days", "page_size": str(PAGE_SIZE),
                     "page_number": str(page)}
            if seq % 997 == 0:  # a 429, then the same page after Retry-After
                write(method="GET", path=HISTORY, status=429, auth="basic",
                      credential="user:0123456789ab", query=query,
                      response_headers={"Retry-After": "1"})
                now += 1.0
                continue
            write(method="GET", path=HISTORY, status=200, auth="basic",
                  credential="user:0123456789ab", query=query,
                  answer={"total_count": PAGES * PAGE_SIZE - walk % 7})
            page = page + 1 if page < PAGES else 1
            walk += page == 1


def main() -> None:
    lines = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "traffic.jsonl"
        synthesize(path, lines)
        size = path.stat().st_size
        began = time.perf_counter()
        verdicts = judge(read_traffic(path))
        elapsed = time.perf_counter() - began
        tracemalloc.start()  # a second pass for the memory: tracemalloc slows the first
        judge(read_traffic(path))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    failed = [v.rule.name for v in verdicts if v.outcome == FAIL]
    print(f"lines={lines} file={size / 1e6:.1f}MB judge={elapsed:.2f}s "
          f"({lines / elapsed:,.0f} lines/s) peak_memory={peak / 1e6:.2f}MB")
    for verdict in verdicts:
        print(f"  {verdict.rule.name}: {verdict.outcome} checked={verdict.checked}")
    if failed:
        print(f"  unexpected failures (the synthesized client is well-behaved): {failed}")


if __name__ == "__main__":
    main()
