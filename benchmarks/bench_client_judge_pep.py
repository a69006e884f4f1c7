"""Benchmark of the PEP client judges (suites/clients/pep_platform.py and pep_frontend.py):
the time and peak memory of judging a synthesized traffic file of a well-behaved client.

    python benchmarks/bench_client_judge_pep.py                 # 100,000 lines
    python benchmarks/bench_client_judge_pep.py --lines 1000000 # memory must not follow

The file holds what `serve --traffic` writes (D104) for a Platform client and a front end that
behave: one OAuth token per half lifetime (the mock clock moves 30 s a cycle), a login, a
deposit and a game round per cycle, every 25th deposit answered 503 and resent unchanged after
200 ms and 400 ms, a data-fetch walk of 5 pages by `next` every 10 cycles with a 429
(Retry-After: 1) honoured, a bulk sync every 50 cycles, and three Frontend calls with the PEP's
JWT, a 401 now and then followed by a new login; every 100th cycle the Platform token is
refused (401) and replaced once. Printed: lines, seconds to read and judge
(`judge(read_traffic(path))`, each judge over its own pass), lines a second, the peak memory
tracemalloc saw during the judging, and each verdict's outcome. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import base64
import json
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pepharness.mocks.core.clock import to_rfc3339
from pepharness.mocks.core.traffic import credential_id, read_traffic
from pepharness.suites.clients import pep_frontend, pep_platform

START = datetime(2026, 12, 1, tzinfo=UTC)


class Writer:
    def __init__(self) -> None:
        self.seq = 0
        self.wall = START
        self.clock = START

    def entry(self, method: str, path: str, status: int, *, credential: str | None = None,
              auth: str | None = None, query: dict[str, str] | None = None,
              keys: list[dict[str, Any]] | None = None, body: str | None = None,
              retry_after: str | None = None, ms: float = 2.0) -> dict[str, Any]:
        self.seq += 1
        line: dict[str, Any] = {
            "seq": self.seq, "mock": "pep", "time": to_rfc3339(self.wall),
            "clock": to_rfc3339(self.clock), "method": method, "path": path,
            "query": query or {}, "status": status, "duration_ms": ms, "fault": status >= 500,
            "auth": auth, "credential": credential, "issued": None,
            "request_headers": {"User-Agent": "bench"},
            "response_headers": {"Retry-After": retry_after} if retry_after else {},
            "error": None,
        }
        if keys is not None:
            line["keys"] = keys
            line["body_sha256"] = body
        self.wall += timedelta(milliseconds=ms + 1)
        return line

    def wait(self, seconds: float) -> None:
        self.wall += timedelta(seconds=seconds)
        self.clock += timedelta(seconds=seconds)


def cursor(after: int) -> str:
    return base64.urlsafe_b64encode(f"transactions:{after}".encode()).decode().rstrip("=")


def client(lines: int) -> Iterator[dict[str, Any]]:
    w = Writer()
    client_id = credential_id("Basic " + base64.b64encode(b"pep-demo-client:x").decode())
    bearer = jwt = ""
    cycle = granted = 0
    while w.seq < lines:
        if cycle == 0 or cycle - granted == 60:  # a token per 30 minutes of the mock clock
            yield w.entry("POST", "/api/oauth/v1/token", 200, credential=client_id, auth="basic")
            bearer = credential_id(f"Bearer token-{cycle}")
            granted = cycle
        auth = {"credential": bearer, "auth": "bearer"}
        login = {"keys": [{"playerId": "877018"}], "body": f"login{cycle}"}
        if cycle % 100 == 99:  # the token revoked: a 401, one new token, the event again
            yield w.entry("POST", "/rx-api/players-data/v1/login", 401, **auth, **login)
            yield w.entry("POST", "/api/oauth/v1/token", 200, credential=client_id, auth="basic")
            bearer = credential_id(f"Bearer token-{cycle}-renewed")
            granted = cycle
            auth = {"credential": bearer, "auth": "bearer"}
        yield w.entry("POST", "/rx-api/players-data/v1/login", 202, **auth, **login)
        deposit = {"keys": [{"transactionId": f"d-{cycle}", "playerId": "877018"}],
                   "body": f"d{cycle}"}
        if cycle % 25 == 0:
            for delay in (0.2, 0.4):
                yield w.entry("POST", "/rx-api/transactions/v1/money-transaction", 503, **auth,
                              **deposit)
                w.wait(delay)
        yield w.entry("POST", "/rx-api/transactions/v1/money-transaction", 202, **auth, **deposit)
        yield w.entry(
            "POST", "/rx-api/transactions/v1/game-transaction-round", 202, **auth,
            keys=[{"transactionId": f"b-{cycle}"}, {"transactionId": f"w-{cycle}"}],
            body=f"r{cycle}",
        )
        if cycle % 10 == 0:
            for page in range(5):
                query = {"limit": "100", **({"next": cursor(page * 100)} if page else {})}
                if page == 3:
                    yield w.entry("GET", "/api/data-fetch/v1/transactions", 429, **auth,
                                  query=query, retry_after="1")
                    w.wait(1.0)
                yield w.entry("GET", "/api/data-fetch/v1/transactions", 200, **auth, query=query)
        if cycle % 50 == 0:
            yield w.entry("POST", "/api/players-data/v1/migrate/batch", 202, **auth,
                          keys=[{"playerId": f"p-{cycle}-{n}"} for n in range(100)],
                          body=f"s{cycle}")
        if cycle % 30 == 0 or not jwt:
            yield w.entry("POST", "/api/auth/v1/player", 200)
            jwt = credential_id(f"jwt-{cycle}")
        for path in ("/api/players/v1/me", "/api/missions/v1/missions", "/api/leaderboards/v1/xp"):
            status = 401 if cycle % 40 == 39 and path.endswith("me") else 200
            yield w.entry("GET", path, status, credential=jwt, auth="x-authorization")
            if status == 401:
                jwt = ""
                break
        w.wait(30.0)
        cycle += 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "traffic.jsonl"
        lines = 0
        with open(path, "w", encoding="utf-8") as stream:
            for line in client(args.lines):
                stream.write(json.dumps(line, separators=(",", ":")) + "\n")
                lines += 1
        print(f"traffic file: {lines:,} lines, {path.stat().st_size / 1e6:.1f} MB")
        for name, judge in (("pep_platform", pep_platform.judge),
                            ("pep_frontend", pep_frontend.judge)):
            started = time.perf_counter()
            verdicts = judge(read_traffic(path))
            seconds = time.perf_counter() - started
            tracemalloc.start()
            judge(read_traffic(path))
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            print(f"{name}: {seconds:.2f} s ({lines / seconds:,.0f} lines/s), "
                  f"peak memory {peak / 1e6:.2f} MB (tracemalloc, a second pass)")
            for verdict in verdicts:
                print(f"  {verdict.outcome:13} {verdict.checked:7,} checked  {verdict.rule.name}")
                for breach in verdict.breaches[:3]:
                    print(f"      {breach.title}: {breach.detail}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
