"""Benchmark of the Sinatra mock: req/s, p50/p99 latency and server memory, per scenario.

    python benchmarks/bench_sinatra.py                  # the figures README quotes
    python benchmarks/bench_sinatra.py --duration 5 --rounds 20000   # a quick look

Serves `pepharness serve sinatra` on a loopback port (a real subprocess, its own waitress),
then drives it with many concurrent keep-alive clients: `wrk` when it is on PATH (Debian:
`apt-get install wrk`), else a built-in Python load generator (slower: its figures are a floor).
Scenarios: login, a filtered catalog request, the unfiltered catalog, page 1 and a deep page of
the paginated history with >= 1,000,000 transactions loaded, and — for reference — a bare Flask
app answering the filtered catalog's bytes on the same server (pepharness's waitress, with as many
worker processes and threads as the mock). Each server runs in a session of its own, as
`../shared/bench/run_peers.sh` starts the peers; its CPU and memory are those of every process it
runs (the parent and its workers). Prints one line per scenario and the server's startup time and
memory; nothing is asserted: these are figures. Only loopback is ever contacted.
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
from collections.abc import Callable
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
    from pepharness.mocks.core.server import serve_many

    body = open(sys.argv[1], "rb").read()
    app = Flask("bare")

    @app.get("/games/<version>/view/detailed")
    def detailed(version):
        return Response(body, mimetype="application/json")

    @app.get("/__admin/health")
    def health():
        return {"status": "ok"}

    serve_many(
        [(app, "127.0.0.1", int(sys.argv[2]))], threads=int(sys.argv[3]), workers=int(sys.argv[4])
    )
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
    server_cpu: float = float("nan")

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


Driver = Callable[..., Figures]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _tree(pid: int) -> list[int]:
    """`pid` and its descendants (Linux /proc): a server and its worker processes."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        queue += [int(child) for child in children]
    return found


def rss_mb(pid: int) -> float:
    """Resident memory of the largest process of a server (its parent or a worker), in MiB."""
    return max(_rss_mb(each) for each in _tree(pid))


def _rss_mb(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return float("nan")
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(match.group(1)) / 1024 if match else float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU a server (the process and its workers) has used so far, in seconds."""
    return sum(_cpu_seconds(each) for each in _tree(pid))


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
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


def _per_cpu(figures: Figures) -> float:
    return figures.requests / figures.server_cpu if figures.server_cpu else float("nan")


def measured(pid: int, drive: Driver, *how: Any) -> Figures:
    """`drive(*how)`'s figures with the CPU the server (`pid`) used meanwhile."""
    before = cpu_seconds(pid)
    figures = drive(*how)
    figures.server_cpu = cpu_seconds(pid) - before
    return figures


def report(figures: Figures, rss: float) -> None:
    # Requests per server CPU-second: what the server costs, whoever else shares the cores.
    per_cpu = figures.requests / figures.server_cpu if figures.server_cpu else float("nan")
    print(
        f"{figures.name:<38} {figures.rate:>9,.0f} req/s  p50 {figures.p50_ms:7.2f} ms"
        f"  p99 {figures.p99_ms:7.2f} ms  non-2xx {figures.errors:>5}"
        f"  {per_cpu:>7,.0f} req/server-CPU-s  server RSS {rss:6.1f} MiB",
        flush=True,
    )


def app_cost(count: int) -> None:
    """CPU per request of the WSGI apps alone, in this process (no server, no sockets, no load
    generator): the mock's login, filtered catalog and history page against a bare Flask app
    answering the same bytes. Steadier than req/s on a shared machine."""
    import io

    from flask import Flask, Response
    from werkzeug.test import EnvironBuilder

    from pepharness.mocks.sinatra import create_app

    app = create_app({"RATE_LIMIT": (1_000_000, 1.0)})
    client = app.test_client()
    credentials = json.dumps({"email": EMAIL, "password": PASSWORD}).encode()
    token = client.post("/1.0/login/", data=credentials, content_type="application/json")
    auth = {"jwt-auth": token.headers["jwt-auth"]}
    games = client.get("/games/1.0/view/detailed", headers=auth).get_json()
    word = games[len(games) // 2]["gameName"].split()[0].lower()
    filtered = f"/games/1.0/view/detailed?game_name={word}&operator_id=9999999"
    basic = {"Authorization": "Basic " + base64.b64encode(f"{EMAIL}:{PASSWORD}".encode()).decode()}
    today = client.get("/__admin/clock").get_json()["now"][:10]
    history = f"/transactions/1.0/games/history/api?from=1970-01-01&to={today}&page_size=50"
    bare = Flask("bare")
    answer = client.get(filtered, headers=auth).data

    @bare.get("/games/<version>/view/detailed")
    def detailed(version: str) -> Response:
        return Response(answer, mimetype="application/json")

    def cost(target: Any, method: str, path: str, headers: dict[str, str], body: bytes) -> float:
        built = EnvironBuilder(path=path, method=method, headers=headers, data=body or None,
                               content_type="application/json" if body else None)
        environ = built.get_environ()
        status: list[str] = []

        def once() -> None:
            status.clear()
            copy = dict(environ, **{"wsgi.input": io.BytesIO(body)})
            answered = target(copy, lambda code, _headers, _info=None: status.append(code))
            b"".join(answered)
            answered.close()

        once()
        if not status[0].startswith("200"):
            raise SystemExit(f"{method} {path}: {status[0]}")
        began = time.process_time()
        for _ in range(count):
            once()
        return (time.process_time() - began) / count * 1e6

    figures = [
        ("login", cost(app, "POST", "/1.0/login/", {}, credentials)),
        ("catalog, filtered", cost(app, "GET", filtered, auth, b"")),
        ("history, page 1", cost(app, "GET", f"{history}&page_number=1", basic, b"")),
        ("history, page 100", cost(app, "GET", f"{history}&page_number=100", basic, b"")),
        ("bare Flask, same catalog bytes", cost(bare, "GET", filtered, auth, b"")),
    ]
    print(f"app alone (WSGI calls in this process, {count:,} each, CPU per request):")
    for name, micros in figures:
        print(f"  {name:<34} {micros:8.1f} µs  {1e6 / micros:>9,.0f} req/CPU-s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per scenario")
    parser.add_argument("--connections", type=int, default=32, help="concurrent clients")
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument(
        "--threads", type=int, default=None,
        help="threads per server process (default: serve's own, 8 with one process and 4 per "
        "worker with several, D225; the bare Flask reference gets the same)",
    )
    parser.add_argument(
        "--rounds", type=int, default=600_000,
        help="rounds loaded for the history scenarios (~2.4 transactions each)",
    )
    parser.add_argument("--page-size", type=int, default=50)
    parser.add_argument("--deep-page", type=int, default=10_000)
    parser.add_argument("--no-wrk", action="store_true", help="use the Python load generator")
    parser.add_argument(
        "--access-log", action="store_true",
        help="serve with the access log on (default: --quiet, as Prism's `-v silent`)",
    )
    parser.add_argument(
        "--skip-history", action="store_true", help="only login and the catalog (no history)"
    )
    parser.add_argument(
        "--soak-seconds", type=int, default=0,
        help="also drive the filtered catalog this long and print the server's memory before "
        "and after (a bounded journal keeps it flat)",
    )
    parser.add_argument(
        "--app-requests", type=int, default=3000,
        help="requests per scenario of the in-process app-alone figures (0: skip them)",
    )
    parser.add_argument(
        "--workers", type=int, default=1,
        help="serve --workers for the login and catalog scenarios, and the bare Flask "
        "reference's worker processes (CPU: all of them; RSS: the largest process)",
    )
    args = parser.parse_args()
    if args.threads is None:  # serve's own default (pepharness/serving.py, D225)
        from pepharness.serving import SINGLE_PROCESS_THREADS, WORKER_THREADS

        args.threads = SINGLE_PROCESS_THREADS if args.workers == 1 else WORKER_THREADS
    if args.app_requests:
        app_cost(args.app_requests)
    drive = python_load if args.no_wrk or shutil.which("wrk") is None else wrk
    print(f"load generator: {'wrk' if drive is wrk else 'python threads (wrk not found)'}, "
          f"{args.connections} keep-alive connections, {args.duration}s per scenario, "
          f"{args.workers} server process(es) of {args.threads} threads, {os.cpu_count()} cores")
    pepharness = [sys.executable, "-m", "pepharness", "serve", "sinatra", "--host", HOST]
    if not args.access_log:
        pepharness.append("--quiet")

    # 1. The default dataset: startup, login, catalog.
    port = free_port()
    base = f"http://{HOST}:{port}"
    server, startup = start(
        [*pepharness, "--port", str(port), "--threads", str(args.threads),
         "--workers", str(args.workers)],
        f"{base}/__admin/health", 60,
    )
    try:
        print(f"startup ({args.workers} worker(s), default data, until /__admin/health "
              f"answers): {startup:.2f}s, "
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
        logins = measured(server.pid, drive, "login", f"{base}/1.0/login/", {}, args, body)
        report(logins, rss_mb(server.pid))
        selected = measured(server.pid, drive, "catalog, filtered", filtered_url, auth, args, None)
        report(selected, rss_mb(server.pid))
        report(
            measured(server.pid, drive, "catalog, unfiltered",
                     f"{base}/games/1.0/view/detailed", auth, args, None),
            rss_mb(server.pid),
        )
        if args.soak_seconds:
            before = rss_mb(server.pid)
            soak = argparse.Namespace(**{**vars(args), "duration": args.soak_seconds})
            figures = measured(
                server.pid, drive, "soak, filtered catalog", filtered_url, auth, soak, None
            )
            report(figures, rss_mb(server.pid))
            print(f"memory over {figures.requests:,} requests: {before:.1f} → "
                  f"{rss_mb(server.pid):.1f} MiB")
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as saved:
            saved.write(filtered.content)
        requests.post(f"{base}/__admin/reset")
    finally:
        stop(server)

    # 2. A bare Flask app answering the same bytes under the same server.
    port = free_port()
    bare, _ = start(
        [sys.executable, "-c", BARE_FLASK, saved.name, str(port), str(args.threads),
         str(args.workers)],
        f"http://{HOST}:{port}/__admin/health", 30,
    )
    try:
        url = f"http://{HOST}:{port}/games/1.0/view/detailed"
        reference = measured(
            bare.pid, drive, "bare Flask, same bytes (reference)", url, {}, args, None
        )
        report(reference, rss_mb(bare.pid))
    finally:
        stop(bare)
        os.unlink(saved.name)
    print(f"ratios: login / filtered catalog {logins.rate / selected.rate:.2f}x (target >= 0.8x); "
          f"filtered catalog / bare Flask {selected.rate / reference.rate:.2f}x "
          f"(target >= 0.8x); per server CPU-second "
          f"{_per_cpu(selected) / _per_cpu(reference):.2f}x", flush=True)
    if args.skip_history:
        return

    # 3. History with >= 1,000,000 transactions loaded: page 1 against a deep page.
    port = free_port()
    base = f"http://{HOST}:{port}"
    server, startup = start(
        [*pepharness, "--port", str(port), "--threads", str(args.threads),
         "--workers", str(args.workers), "--rounds", str(args.rounds),
         "--rate-limit", "1000000/1"],
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
        report(measured(server.pid, drive, "history, page 1", f"{history}&page_number=1",
                        headers, args, None), rss_mb(server.pid))
        report(measured(server.pid, drive, f"history, page {deep:,}",
                        f"{history}&page_number={deep}", headers, args, None),
               rss_mb(server.pid))
    finally:
        stop(server)


if __name__ == "__main__":
    main()
