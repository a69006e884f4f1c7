"""Benchmark of `serve --traffic`: req/s with and without the traffic file, and read_traffic's
speed and peak memory over a 100,000-line file.

    python benchmarks/bench_traffic.py                     # 8 s per serving scenario
    python benchmarks/bench_traffic.py --duration 3 --lines 20000   # a quick look

Serves `pepharness serve sinatra --quiet` as a real subprocess on a loopback port, once plainly
and once with `--traffic FILE`, and drives each with the same keep-alive Python clients (threads
of http.client: a floor, not wrk's figures) on the catalog with a `jwt-auth` token. Then writes
a file of N realistic entries through a TrafficWriter and reads it back with read_traffic:
lines/s and tracemalloc's peak. Prints figures; nothing is asserted. Only loopback is contacted.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

from pepharness.mocks.core.traffic import TrafficWriter, read_traffic

HOST = "127.0.0.1"
EMAIL, PASSWORD = "operator@example.com", "operator-secret"
CATALOG = "/vendors/1.0/view/available"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def start(port: int, traffic: Path | None) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "pepharness", "serve", "sinatra", "--quiet", "--workers", "1",
            "--port", str(port), "--rounds", "200"]
    if traffic is not None:
        args += ["--traffic", str(traffic)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEPHARNESS_")}
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=1):
                return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit(f"the server on port {port} did not start")


def login(port: int) -> str:
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    body = json.dumps({"email": EMAIL, "password": PASSWORD})
    connection.request("POST", "/1.0/login/", body, {"Content-Type": "application/json"})
    answer = connection.getresponse()
    answer.read()
    token = answer.getheader("jwt-auth")
    connection.close()
    if not token:
        raise SystemExit(f"login failed: {answer.status}")
    return token


def drive(port: int, token: str, clients: int, seconds: float) -> float:
    """Requests per second the clients got answered in `seconds`."""
    counts = [0] * clients
    stop = threading.Event()

    def client(index: int) -> None:
        connection = http.client.HTTPConnection(HOST, port, timeout=10)
        while not stop.is_set():
            connection.request("GET", CATALOG, headers={"jwt-auth": token})
            connection.getresponse().read()
            counts[index] += 1
        connection.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - started)


def serving(duration: float, clients: int, folder: Path) -> None:
    rates: dict[str, float] = {}
    for label, traffic in (("without --traffic", None), ("with --traffic", folder / "t.jsonl")):
        port = free_port()
        process = start(port, traffic)
        try:
            rates[label] = drive(port, login(port), clients, duration)
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(30)
        lines = sum(1 for _ in read_traffic(traffic)) if traffic is not None else None
        print(f"{label:>18}: {rates[label]:8.0f} req/s"
              + ("" if lines is None else f"  ({lines} lines written)"))
    ratio = rates["with --traffic"] / rates["without --traffic"]
    print(f"{'ratio':>18}: {ratio:8.2f}")


def reading(lines: int, folder: Path) -> None:
    path = folder / "read.jsonl"
    entry = {
        "mock": "pep", "time": "2026-12-07T03:00:00.000Z", "clock": "2026-12-07T03:00:00.000Z",
        "method": "POST", "path": "/rx-api/transactions/v1/money-transaction", "query": {},
        "status": 202, "duration_ms": 1.234, "fault": False, "auth": "bearer",
        "credential": "3f2a9c1b7e4d", "issued": None,
        "request_headers": {"Content-Type": "application/json", "User-Agent": "bench"},
        "response_headers": {"Content-Type": "application/json"}, "error": None,
        "keys": [{"transactionId": "t-000001", "playerId": "p-1"}],
        "body_sha256": "0123456789abcdef",
    }
    with TrafficWriter.open(path) as writer:
        for _ in range(lines):
            writer.record(entry)
    size = path.stat().st_size
    started = time.perf_counter()
    count = sum(1 for _ in read_traffic(path))
    elapsed = time.perf_counter() - started
    tracemalloc.start()
    sum(1 for _ in read_traffic(path))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"read_traffic: {count} lines ({size / 1e6:.1f} MB) in {elapsed:.2f}s = "
          f"{count / elapsed:,.0f} lines/s; peak memory {peak / 1024:.0f} KiB (tracemalloc, "
          "a second pass)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per scenario")
    parser.add_argument("--clients", type=int, default=16, help="concurrent keep-alive clients")
    parser.add_argument("--lines", type=int, default=100_000, help="lines of the read test")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-traffic-") as folder:
        serving(args.duration, args.clients, Path(folder))
        reading(args.lines, Path(folder))


if __name__ == "__main__":
    main()
