"""Benchmark of the reference PEP's event ingestion: throughput, latency, and nothing lost or
counted twice — also when the server is killed and restarted mid-run.

    python benchmarks/bench_pep_events.py                 # 10,000 events, 8 senders, both runs
    python benchmarks/bench_pep_events.py --events 2000   # a quick look
    python benchmarks/bench_pep_events.py --database postgresql+psycopg://u@127.0.0.1/bench
    python benchmarks/bench_pep_events.py --database postgresql://… --instances 2
    python benchmarks/bench_pep_events.py --workers 1,2   # `serve pep --workers N`, each N

Serves `pepharness serve pep --quiet` on a loopback port (a real subprocess, a real SQLite
file; `--access-log` keeps its line per request, which costs ~15 % here), takes
a Platform token, and has `--senders` threads post `--events` money events (APPROVED deposits of
200 players, seeded amounts and exchange rates) on keep-alive connections. When `wrk` is on PATH
(Debian: `apt-get install wrk`) a first run sends the same number of events with wrk's
`--senders` connections: a load generator in C leaves the server the CPU a Python one takes
(on two cores, that is most of the difference between the two figures). A sender retries an
event until it is acknowledged (202), backing off exponentially on a refused connection or a
5xx, as the vendor's clients do. Printed per run: events/s, p50/p99 latency of the acknowledged
attempts, retries, duplicates the server reported, then — once the engine has applied every
event — the rows in the database and every player's deposits compared with the expected sums.

The second run kills the server (SIGKILL) when 40 % of the events are acknowledged and starts it
again on the same database: an event committed just before the kill is answered `duplicate`
when its sender retries, and counted once. Nothing is asserted: these are figures; a mismatch is
printed as one. Only loopback is contacted.

`--database URL` runs the same on that database (PostgreSQL: psycopg, the `postgres` extra;
its PEP tables are dropped before each run: give it a database of its own), and
`--instances N` serves N PEPs on it (a shared database: PostgreSQL), the senders split among
them, each applying events with its own engine; the killed run kills the first one only.
`--workers 1,2` runs everything once per worker count (`serve pep --workers N`, one SQLite file
shared by the N processes); the killed run kills the server with its workers.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from sqlalchemy import create_engine, text

HOST = "127.0.0.1"
CLIENT, SECRET = "pep-demo-client", "pep-demo-secret"
PATH = "/rx-api/transactions/v1/money-transaction"
PLAYERS = 200
RATES = ("1", "1.1", "0.85", "1.25")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def events(count: int, seed: int) -> list[dict[str, object]]:
    chance = random.Random(seed)
    made = []
    for number in range(count):
        made.append({
            "playerId": f"bench-{number % PLAYERS}",
            "amount": chance.randint(1, 500),
            "exchangeRate": float(chance.choice(RATES)),
            "date": "2026-11-20T10:00:00Z",
            "currency": "EUR",
            "transactionStatus": "APPROVED",
            "transactionType": "DEPOSIT",
            "transactionId": f"bench-{seed}-{number}",
            "realMoneyBalance": 0,
            "bonusMoneyBalance": 0,
        })
    return made


def expected_deposits(made: list[dict[str, object]]) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for event in made:
        player = str(event["playerId"])
        amount = Decimal(str(event["amount"])) * Decimal(str(event["exchangeRate"]))
        totals[player] = totals.get(player, Decimal(0)) + amount
    return totals


class Server:
    """`pepharness serve pep` on `port` with the database `database`."""

    def __init__(
        self, port: int, database: str, threads: int | None, quiet: bool = True, workers: int = 1
    ) -> None:
        self.quiet = quiet
        self.workers = workers
        self.port = port
        self.database = database
        self.threads = threads
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pepharness", "serve", "pep", "--port", str(self.port),
             "--database", self.database,
             *([] if self.threads is None else ["--threads", str(self.threads)]),
             "--workers", str(self.workers), *(["--quiet"] if self.quiet else [])],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,  # killed with its workers
        )
        while time.monotonic() - started < 30:
            try:
                status, _ = request("GET", self.port, "/__admin/health")
                if status == 200:
                    return time.monotonic() - started
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the PEP did not start within 30 s")

    def kill(self) -> None:
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def request(
    method: str, port: int, path: str, body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        connection.request(method, path, body, headers or {})
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def platform_token(port: int) -> str:
    import base64

    basic = base64.b64encode(f"{CLIENT}:{SECRET}".encode()).decode()
    status, body = request(
        "POST", port, "/api/oauth/v1/token", b"grant_type=client_credentials",
        {"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"},
    )
    if status != 200:
        raise RuntimeError(f"no token: {status} {body[:200]!r}")
    return str(json.loads(body)["access_token"])


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    retries: int = 0
    duplicates: int = 0
    acknowledged: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def send_all(
    ports: list[int], token: str, made: list[dict[str, object]], senders: int, tally: Tally
) -> None:
    """`senders` threads, sender n posting to `ports[n % len(ports)]`."""
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}

    def sender(offset: int) -> None:
        port = ports[offset % len(ports)]
        connection: http.client.HTTPConnection | None = None
        for event in made[offset::senders]:
            body = json.dumps(event).encode()
            backoff = 0.05
            while True:
                started = time.perf_counter()
                try:
                    if connection is None:
                        connection = http.client.HTTPConnection(HOST, port, timeout=30)
                    connection.request("POST", PATH, body, headers)
                    answer = connection.getresponse()
                    reply = answer.read()
                    if answer.status == 202:
                        elapsed = time.perf_counter() - started
                        duplicate = bool(json.loads(reply).get("duplicate"))
                        with tally.lock:
                            tally.latencies.append(elapsed)
                            tally.acknowledged += 1
                            tally.duplicates += duplicate
                        break
                    if answer.status < 500:
                        raise RuntimeError(f"refused: {answer.status} {reply[:200]!r}")
                except (OSError, http.client.HTTPException):
                    if connection is not None:
                        connection.close()
                    connection = None
                with tally.lock:
                    tally.retries += 1
                time.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
        if connection is not None:
            connection.close()

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def converge(port: int, timeout: float = 120.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        status, body = request("GET", port, "/__admin/engine")
        if status == 200 and json.loads(body)["pending"] == 0:
            return time.monotonic() - started
        time.sleep(0.1)
    raise RuntimeError("the engine did not apply every event in time")


def database_url(args: argparse.Namespace, folder: Path) -> str:
    """`--database` without the PEP's tables, or a new SQLite file in `folder`."""
    if args.database is None:
        return f"sqlite:///{folder / 'pep.sqlite3'}"
    from pepharness.mocks.pep import engine as _tables  # noqa: F401 (its tables)
    from pepharness.mocks.pep.store import database_url as full_url
    from pepharness.mocks.pep.store import metadata

    url = full_url(args.database)
    engine = create_engine(url)
    metadata.drop_all(engine)
    engine.dispose()
    return url


def query(url: str, sql: str) -> list[tuple[object, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql))]
    finally:
        engine.dispose()


def verify(port: int, database: str, made: list[dict[str, object]]) -> tuple[int, int, int]:
    """(rows stored, distinct keys, players whose deposits differ from the expected sums)."""
    rows, keys = query(
        database, "SELECT count(*), count(DISTINCT event_key) FROM platform_events"
    )[0]
    wrong = sum(
        1 for player, total in expected_deposits(made).items()
        if _deposits(port, player) != total
    )
    return int(rows), int(keys), wrong


def run(name: str, args: argparse.Namespace, *, kill_at: float | None) -> None:
    folder = Path(tempfile.mkdtemp(prefix="pepharness-bench-"))
    database = database_url(args, folder)
    servers = [
        Server(free_port(), database, args.threads, quiet=not args.access_log,
               workers=args.worker_count)
        for _ in range(args.instances)
    ]
    # One after the other: each creates the tables it does not find.
    startup = max(server.start() for server in servers)
    server, port = servers[0], servers[0].port
    made = events(args.events, args.seed)
    tally = Tally()
    restart = 0.0
    try:
        token = platform_token(port)
        killer = None
        if kill_at is not None:
            def kill_then_restart() -> None:
                nonlocal restart
                while tally.acknowledged < kill_at * len(made):
                    time.sleep(0.005)
                server.kill()
                restart = server.start()

            killer = threading.Thread(target=kill_then_restart)
            killer.start()
        started = time.perf_counter()
        send_all([each.port for each in servers], token, made, args.senders, tally)
        elapsed = time.perf_counter() - started
        if killer is not None:
            killer.join()
        applied = converge(port)
        rows, keys, wrong = verify(port, database, made)
    finally:
        for each in servers:
            each.stop()
    latencies = sorted(tally.latencies)
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000
    where = f", {args.worker_count} worker(s)"
    if args.database is not None:
        where += f", {args.instances} instance(s) on {engine_name(database)}"
    print(f"{name}: {len(made):,} events, {args.senders} senders{where}, "
          f"{len(made) / elapsed:,.0f} events/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms "
          f"(startup {startup:.1f} s)")
    if kill_at is not None:
        print(f"  killed at {kill_at:.0%} acknowledged, back in {restart:.1f} s; "
              f"{tally.retries} retries, {tally.duplicates} answered duplicate")
    print(f"  acknowledged {tally.acknowledged:,}/{len(made):,}; stored {rows:,} rows, "
          f"{keys:,} distinct; engine done {applied:.1f} s after the last 202; "
          f"players with wrong deposits: {wrong} of {PLAYERS}")
    verdict = tally.acknowledged == rows == keys == len(made) and wrong == 0
    print(f"  {'nothing lost, nothing counted twice' if verdict else 'MISMATCH'}")


WRK_SCRIPT = """
counter = 0
answered = 0
accepted = 0
threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
function init(args)
  token = args[1]
end
request = function()
  counter = counter + 1
  local amount = (counter * 37 + tid * 11) % 500 + 1
  local body = string.format('{"playerId":"bench-%d","amount":%d,"exchangeRate":1.25,' ..
    '"date":"2026-11-20T10:00:00Z","currency":"EUR","transactionStatus":"APPROVED",' ..
    '"transactionType":"DEPOSIT","transactionId":"wrk-%d-%d","realMoneyBalance":0,' ..
    '"bonusMoneyBalance":0}', (counter + tid) % 200, amount, tid, counter)
  return wrk.format("POST", "@PATH@", {["Content-Type"]="application/json",
    ["Authorization"]="Bearer " .. token}, body)
end
response = function(status, headers, body)
  answered = answered + 1
  if status == 202 then accepted = accepted + 1 end
end
function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do total = total + thread:get("accepted") end
  io.write(string.format("accepted %d\\n", total))
  io.write(string.format("p50 %.3f p99 %.3f\\n", latency:percentile(50) / 1000,
    latency:percentile(99) / 1000))
end
""".replace("@PATH@", PATH)


def run_wrk(args: argparse.Namespace) -> None:
    """wrk's `--senders` connections posting events for `--wrk-seconds`; every acknowledged
    event checked against what was stored and what the engine counted."""
    folder = Path(tempfile.mkdtemp(prefix="pepharness-bench-"))
    database = database_url(args, folder)
    script = folder / "events.lua"
    script.write_text(WRK_SCRIPT, encoding="utf-8")
    port = free_port()
    server = Server(port, database, args.threads, quiet=not args.access_log,
                    workers=args.worker_count)
    startup = server.start()
    threads = 2
    try:
        token = platform_token(port)
        output = subprocess.run(
            ["wrk", f"-t{threads}", f"-c{args.senders}", f"-d{args.wrk_seconds}s",
             "-s", str(script), f"http://{HOST}:{port}", "--", token],
            capture_output=True, text=True, check=True,
        ).stdout
        # wrk stops with requests in flight: the server still answers them after it exits.
        time.sleep(1.0)
        applied = converge(port)
        rows = int(str(query(database, "SELECT count(*) FROM platform_events")[0][0]))
        stored = [json.loads(str(body)) for (body,) in query(
            database, "SELECT body FROM platform_events")]
        wrong = sum(
            1 for player, total in expected_deposits(stored).items()
            if _deposits(port, player) != total
        )
    finally:
        server.stop()
    accepted = int(output.split("accepted ")[1].split()[0])
    p50, p99 = (float(x) for x in output.split("p50 ")[1].split()[0::2][:2])
    print(f"wrk: {accepted:,} events acknowledged in {args.wrk_seconds} s, {args.senders} "
          f"connections, {args.worker_count} worker(s), "
          f"{accepted / args.wrk_seconds:,.0f} events/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms "
          f"(startup {startup:.1f} s)")
    print(f"  stored {rows:,} rows (those acknowledged and those in flight when wrk stopped); "
          f"engine done {applied:.1f} s after; "
          f"players with wrong deposits: {wrong} of {len(expected_deposits(stored))}")
    verdict = rows >= accepted and wrong == 0
    print(f"  {'nothing lost, nothing counted twice' if verdict else 'MISMATCH'}")


def engine_name(url: str) -> str:
    return url.split(":", 1)[0].split("+", 1)[0]


def _deposits(port: int, player: str) -> Decimal | None:
    status, body = request("GET", port, f"/__admin/engine/players/{player}")
    return Decimal(str(json.loads(body)["deposits"])) if status == 200 else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument(
        "--threads", type=int, default=None,
        help="the server's threads per worker (default: serve's own, D225)",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--wrk-seconds", type=int, default=10)
    parser.add_argument(
        "--access-log", action="store_true",
        help="serve with a log line per request (default: `serve pep --quiet`)",
    )
    parser.add_argument("--skip-kill", action="store_true", help="only the steady run")
    parser.add_argument(
        "--database", default=None,
        help="an SQLAlchemy URL the PEP's tables are dropped from and served on (default: a new "
        "SQLite file per run)",
    )
    parser.add_argument(
        "--instances", type=int, default=1,
        help="PEP instances on --database, the senders split among them (not with wrk)",
    )
    parser.add_argument(
        "--workers", default="1",
        help="worker counts to serve the PEP with, comma-separated (e.g. 1,2): each one a run",
    )
    args = parser.parse_args()
    if args.instances > 1 and (args.database is None or args.database.startswith("sqlite")):
        parser.error("--instances above 1 needs a shared --database (PostgreSQL)")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    for count in (int(each) for each in args.workers.split(",")):
        args.worker_count = count
        if args.instances > 1:
            print("wrk: skipped with --instances (one wrk target)")
        elif shutil.which("wrk"):
            run_wrk(args)
        else:
            print("wrk: not on PATH, skipped (the Python senders' figures are a floor)")
        run("steady", args, kill_at=None)
        if not args.skip_kill:
            run("killed and restarted", args, kill_at=0.4)


if __name__ == "__main__":
    main()
