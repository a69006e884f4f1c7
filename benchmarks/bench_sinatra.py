"""Benchmark of the Sinatra mock: req/s, p50/p99 latency and server memory, per scenario.

    python benchmarks/bench_sinatra.py                  # the figures README quotes
    python benchmarks/bench_sinatra.py --duration 5 --rounds 20000   # a quick look

Serves `pepharness serve sinatra` on a loopback port (a real subprocess, its own waitress),
then drives it with many concurrent keep-alive clients: `wrk` when it is on PATH (Debian:
`apt-get install wrk`), else a built-in Python load generator (slower: its figures are a floor).
Scenarios: login, a filtered catalog request, the unfiltered catalog, page 1 and a deep page of
the paginated history with >= 1,000,000 transactions loaded, and — for reference — a bare Flask
app answering the filtered catalog's bytes under the same server and threads. Prints one line per
scenario and the server's startup time and memory; nothing is asserted: these are figures.
Only loopback is ever contacted.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

HOST = "127.0.0.1"
EMAIL, PASSWORD = "operator@example.com", "operator-secret"

BARE_FLASK = textwrap.dedent(
    """
    import sys
    from flask import Flask, Response
    from waitress import serve

    body = open(sys.argv[1], "rb").read()
    app = Flask("bare")

    @app.get("/games/<version>/view/detailed")
    def detailed(version):
        return Response(body, mimetype="application/json")

    @app.get("/__admin/health")
    def health():
        return {"status": "ok"}

    serve(app, host="127.0.0.1", port=int(sys.argv[2]), threads=int(sys.argv[3]), _quiet=True)
    """
)


@dataclass
class Figures:
    name: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> float:
    """Resident memory of a process (Linux /proc), in MiB."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return float("nan")
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(match.group(1)) / 1024 if match else float("nan")


def wait_up(url: str, timeout: float) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return time.perf_counter() - started
        except requests.ConnectionError:
            time.sleep(0.02)
    raise SystemExit(f"{url} did not come up within {timeout:.0f}s")


def start(command: list[str], health: str, timeout: float) -> tuple[subprocess.Popen[bytes], float]:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        return process, wait_up(health, timeout)
    except BaseException:
        process.kill()
        raise


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()


def wrk(
    name: str, url: str, headers: dict[str, str], args: argparse.Namespace, body: str | None
) -> Figures:
    command = ["wrk", f"-t{args.wrk_threads}", f"-c{args.connections}", f"-d{args.duration}s"]
    command.append("--latency")
    for key, value in headers.items():
        command += ["-H", f"{key}: {value}"]
    with tempfile.TemporaryDirectory() as scratch:
        if body is not None:
            script = Path(scratch) / "post.lua"
            script.write_text(
                f'wrk.method = "POST"\nwrk.body = {json.dumps(body)}\n'
                'wrk.headers["Content-Type"] = "application/json"\n'
            )
            command += ["-s", str(script)]
        run = subprocess.run([*command, url], capture_output=True, text=True, check=True)
    output = run.stdout
    total = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    took = re.search(r"requests in ([\d.]+)(ms|s|m|h),", output)
    if took is None:
        raise SystemExit(f"cannot read wrk's output:\n{output}")
    seconds = float(took.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[took.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return Figures(
        name, total, seconds, _percentile(output, "50"), _percentile(output, "99"),
        int(errors.group(1)) if errors else 0,
    )


def _percentile(output: str, which: str) -> float:
    match = re.search(rf"^\s+{which}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
    if match is None:
        return float("nan")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def python_load(
    name: str, url: str, headers: dict[str, str], args: argparse.Namespace, body: str | None
) -> Figures:
    """Keep-alive clients in threads: a fallback when wrk is missing (a floor, not a ceiling)."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    deadline = time.perf_counter() + args.duration
    latencies: list[list[float]] = []
    errors = [0]
    lock = threading.Lock()
    sent = dict(headers)
    payload = body.encode() if body is not None else None
    if payload is not None:
        sent["Content-Type"] = "application/json"

    def client() -> None:
        mine: list[float] = []
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            connection.request("POST" if payload else "GET", target, body=payload, headers=sent)
            response = connection.getresponse()
            response.read()
            mine.append(time.perf_counter() - began)
            if response.status >= 300:
                with lock:
                    errors[0] += 1
        connection.close()
        with lock:
            latencies.append(mine)

    began = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(min(args.connections, 32))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - began
    flat = sorted(x for chunk in latencies for x in chunk)
    if not flat:
        return Figures(name, 0, seconds, float("nan"), float("nan"), errors[0])
    quantiles = statistics.quantiles(flat, n=100)
    return Figures(name, len(flat), seconds, quantiles[49] * 1000, quantiles[98] * 1000, errors[0])


def report(figures: Figures, rss: float) -> None:
    print(
        f"{figures.name:<38} {figures.rate:>9,.0f} req/s  p50 {figures.p50_ms:7.2f} ms"
        f"  p99 {figures.p99_ms:7.2f} ms  non-2xx {figures.errors:>5}  server RSS {rss:6.1f} MiB",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per scenario")
    parser.add_argument("--connections", type=int, default=64, help="concurrent clients")
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8, help="server worker threads")
    parser.add_argument(
        "--rounds", type=int, default=600_000,
        help="rounds loaded for the history scenarios (~2.4 transactions each)",
    )
    parser.add_argument("--page-size", type=int, default=50)
    parser.add_argument("--deep-page", type=int, default=10_000)
    parser.add_argument("--no-wrk", action="store_true", help="use the Python load generator")
    parser.add_argument(
        "--soak-seconds", type=int, default=0,
        help="also drive the filtered catalog this long and print the server's memory before "
        "and after (a bounded journal keeps it flat)",
    )
    parser.add_argument(
        "--workers", default="1",
        help="serve --workers for the login and catalog scenarios, e.g. 1,2 for both in one run",
    )
    parser.add_argument(
        "--catalog-only", action="store_true",
        help="only the login and catalog scenarios (no bare Flask, no history)",
    )
    args = parser.parse_args()
    drive = python_load if args.no_wrk or shutil.which("wrk") is None else wrk
    print(f"load generator: {'wrk' if drive is wrk else 'python threads (wrk not found)'}, "
          f"{args.connections} keep-alive connections, {args.duration}s per scenario, "
          f"server threads {args.threads}, {os.cpu_count()} cores")
    pepharness = [sys.executable, "-m", "pepharness", "serve", "sinatra", "--host", HOST]

    for workers in [int(n) for n in args.workers.split(",")]:
        saved = catalog_scenarios(pepharness, workers, drive, args)
    if args.catalog_only:
        os.unlink(saved)
        return
    bare_and_history(saved, pepharness, drive, args)


def catalog_scenarios(
    pepharness: list[str], workers: int, drive: Any, args: argparse.Namespace
) -> str:
    """1. The default dataset on `workers` processes: startup, login, catalog; the filtered
    catalog's bytes saved to a file (its name returned)."""
    port = free_port()
    base = f"http://{HOST}:{port}"
    server, startup = start(
        [*pepharness, "--port", str(port), "--threads", str(args.threads),
         "--workers", str(workers)],
        f"{base}/__admin/health", 60,
    )
    print(f"--workers {workers}:")
    try:
        print(f"startup (default data, until /__admin/health answers): {startup:.2f}s, "
              f"RSS {rss_mb(server.pid):.1f} MiB")
        login = requests.post(f"{base}/1.0/login/", json={"email": EMAIL, "password": PASSWORD})
        token = login.headers["jwt-auth"]
        catalog = requests.get(f"{base}/games/1.0/view/detailed", headers={"jwt-auth": token})
        games = catalog.json()
        word = games[len(games) // 2]["gameName"].split()[0].lower()
        filtered_url = f"{base}/games/1.0/view/detailed?game_name={word}&operator_id=9999999"
        filtered = requests.get(filtered_url, headers={"jwt-auth": token})
        print(f"filtered catalog: game_name={word} → {len(filtered.json())} games, "
              f"{len(filtered.content)} bytes; unfiltered: {len(games)} games, "
              f"{len(catalog.content)} bytes")
        body = json.dumps({"email": EMAIL, "password": PASSWORD})
        auth = {"jwt-auth": token}
        report(drive("login", f"{base}/1.0/login/", {}, args, body), rss_mb(server.pid))
        report(drive("catalog, filtered", filtered_url, auth, args, None), rss_mb(server.pid))
        report(
            drive("catalog, unfiltered", f"{base}/games/1.0/view/detailed", auth, args, None),
            rss_mb(server.pid),
        )
        if args.soak_seconds:
            before = rss_mb(server.pid)
            soak = argparse.Namespace(**{**vars(args), "duration": args.soak_seconds})
            figures = drive("soak, filtered catalog", filtered_url, auth, soak, None)
            report(figures, rss_mb(server.pid))
            print(f"memory over {figures.requests:,} requests: {before:.1f} → "
                  f"{rss_mb(server.pid):.1f} MiB")
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as saved:
            saved.write(filtered.content)
        requests.post(f"{base}/__admin/reset")
    finally:
        stop(server)
    return saved.name


def bare_and_history(
    saved: str, pepharness: list[str], drive: Any, args: argparse.Namespace
) -> None:
    """2. and 3.: the bare Flask reference, the history pages."""
    # 2. A bare Flask app answering the same bytes under the same server.
    port = free_port()
    bare, _ = start(
        [sys.executable, "-c", BARE_FLASK, saved, str(port), str(args.threads)],
        f"http://{HOST}:{port}/__admin/health", 30,
    )
    try:
        url = f"http://{HOST}:{port}/games/1.0/view/detailed"
        report(drive("bare Flask, same bytes (reference)", url, {}, args, None), rss_mb(bare.pid))
    finally:
        stop(bare)
        os.unlink(saved)

    # 3. History with >= 1,000,000 transactions loaded: page 1 against a deep page.
    port = free_port()
    base = f"http://{HOST}:{port}"
    server, startup = start(
        [*pepharness, "--port", str(port), "--threads", str(args.threads),
         "--rounds", str(args.rounds), "--rate-limit", "1000000000/1"],
        f"{base}/__admin/health", 600,
    )
    try:
        basic = "Basic " + base64.b64encode(f"{EMAIL}:{PASSWORD}".encode()).decode()
        today = requests.get(f"{base}/__admin/clock").json()["now"][:10]
        window = f"from=1970-01-01&to={today}&page_size={args.page_size}"
        history = f"{base}/transactions/1.0/games/history/api?{window}"
        first = requests.get(f"{history}&page_number=1", headers={"Authorization": basic})
        total = first.json()["total_count"]
        pages = -(-total // args.page_size)
        deep = min(args.deep_page, pages)
        print(f"history: {args.rounds:,} rounds loaded in {startup:.1f}s, "
              f"{total:,} transactions in the user's six-month window, "
              f"{pages:,} pages of {args.page_size}; RSS {rss_mb(server.pid):.1f} MiB")
        headers = {"Authorization": basic}
        report(drive("history, page 1", f"{history}&page_number=1", headers, args, None),
               rss_mb(server.pid))
        report(drive(f"history, page {deep:,}", f"{history}&page_number={deep}", headers, args,
                     None), rss_mb(server.pid))
    finally:
        stop(server)


if __name__ == "__main__":
    main()
