"""Benchmark: a sandbox's requests against the default space's, with one and several workers.

    python benchmarks/bench_sandbox_workers.py                 # --workers 1,2, 5 s per figure
    python benchmarks/bench_sandbox_workers.py --workers 2 --duration 10

For each worker count, serves `pepharness serve sinatra --workers N --quiet` (a real subprocess
on a loopback port), logs in in the default space and in a new sandbox, then drives the same
filtered catalog request with `wrk` (on PATH; `-t2 -c32`) at the default space's URL and at the
sandbox's (`/__sandbox/<id>/…`): req/s and p99 of each, side by side in one run. Also prints a
sandbox's creation (POST, median of 20) and its first request through each worker (the copy's
build), and, in-process, what routing a request to a sandbox costs with one process's registry
and with the workers' shared one. Nothing is asserted: these are figures (D217-D219). Only
loopback is ever contacted.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import requests

HOST = "127.0.0.1"
EMAIL, PASSWORD = "operator@example.com", "operator-secret"
FILTERED = "/games/1.0/view/detailed?game_name=book&operator_id=9999999"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wrk(url: str, token: str, duration: int) -> tuple[float, str]:
    """req/s and the p99 line of `wrk -t2 -c32 --latency` on `url`."""
    command = ["wrk", "-t2", "-c32", f"-d{duration}s", "--latency", "-H", f"jwt-auth: {token}", url]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p99 = re.search(r"^\s+99%\s+(\S+)\s*$", output, re.M)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if rate is None or errors is not None:
        raise SystemExit(f"wrk: no rate or errors:\n{output}")
    return float(rate.group(1)), p99.group(1) if p99 else "?"


def login(base: str) -> str:
    answer = requests.post(f"{base}/1.0/login/", json={"email": EMAIL, "password": PASSWORD},
                           timeout=30)
    answer.raise_for_status()
    return answer.headers["jwt-auth"]


def measure(workers: int, duration: int) -> None:
    port = free_port()
    base = f"http://{HOST}:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEPHARNESS_")}
    server = subprocess.Popen(
        [sys.executable, "-m", "pepharness", "serve", "sinatra", "--quiet", "--port", str(port),
         "--workers", str(workers)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                requests.get(f"{base}/__admin/health", timeout=1)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("serve did not start") from None
                time.sleep(0.1)
        created = []
        for _ in range(20):
            began = time.perf_counter()
            answer = requests.post(f"{base}/__admin/sandboxes", timeout=30)
            created.append(time.perf_counter() - began)
            requests.delete(f"{base}/__admin/sandboxes/{answer.json()['id']}", timeout=30)
        sandbox = requests.post(f"{base}/__admin/sandboxes", timeout=30).json()["urls"]["sinatra"]
        # New connections, spread by the kernel: each worker builds its copy on its first one.
        firsts = []
        for _ in range(4 * workers):
            began = time.perf_counter()
            requests.get(f"{sandbox}/__admin/health", timeout=60)
            firsts.append(time.perf_counter() - began)
        default_token, sandbox_token = login(base), login(sandbox)
        wrk(base + FILTERED, default_token, 2)  # warm-up
        wrk(sandbox + FILTERED, sandbox_token, 2)
        default_rate, default_p99 = wrk(base + FILTERED, default_token, duration)
        sandbox_rate, sandbox_p99 = wrk(sandbox + FILTERED, sandbox_token, duration)
        print(f"--workers {workers}: create a sandbox {statistics.median(created) * 1000:.1f} ms "
              f"(median of 20); its first requests {max(firsts):.2f} s at most (each worker's "
              f"copy built), then {min(firsts) * 1000:.1f} ms")
        print(f"  filtered catalog, default space: {default_rate:8.0f} req/s  p99 {default_p99}")
        print(f"  filtered catalog, in a sandbox:  {sandbox_rate:8.0f} req/s  p99 {sandbox_p99}"
              f"  ({sandbox_rate / default_rate:.2f}x)")
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()


def routing_cost(rounds: int = 100_000) -> None:
    """In-process: what finding a sandbox costs per request, 32 live, one process's registry
    against the workers' shared one (its lock, its page, its idle scan)."""
    import tempfile

    from flask import Flask

    from pepharness.mocks.core.sandbox import Sandbox, SandboxRegistry
    from pepharness.mocks.core.state_sandbox import SharedSandboxRegistry

    app = Flask("bench")

    def build(mock: str, sandbox: Sandbox) -> tuple[Flask, Callable[[], None]]:
        return app, lambda: None

    with tempfile.TemporaryDirectory() as folder:
        registries = {
            "one process": SandboxRegistry(build),
            "several workers": SharedSandboxRegistry(build, folder),
        }
        ids = {name: [r.create().id for _ in range(32)] for name, r in registries.items()}
        for _ in range(3):  # alternated: the machine's load moves
            for name, registry in registries.items():
                chosen = ids[name][5]
                began = time.perf_counter()
                for _ in range(rounds):
                    registry.use(chosen, "sinatra")
                each = (time.perf_counter() - began) / rounds * 1e6
                print(f"  routing to a sandbox ({name}, 32 live): {each:.1f} µs per request")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2", help="worker counts, comma-separated")
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk figure")
    args = parser.parse_args()
    print(f"wrk -t2 -c32, {args.duration}s per figure, {os.cpu_count()} cores, "
          f"usable {len(os.sched_getaffinity(0))}")
    routing_cost()
    for workers in (int(n) for n in args.workers.split(",")):
        measure(workers, args.duration)


if __name__ == "__main__":
    main()
