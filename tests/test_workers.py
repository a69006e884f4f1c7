"""`pepharness serve sinatra --workers 2`: two real processes on one port, one mock's state.

One server for the module; each test spreads its requests over many keep-alive connections
opened at once, which the two workers share (`test_both_workers_hold_connections` shows it),
and asserts what one process would have answered: exact counts, one clock, one journal.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from pepharness.fixtures import OPERATOR_EMAIL, OPERATOR_PASSWORD

CONNECTIONS = 16
URL = re.compile(r"^\w+ on (http://\S+)")
TIMEOUT = 30
HISTORY = "/transactions/v1/games/history/api?from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z"

pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux /proc")


class Pool:
    """CONNECTIONS keep-alive connections to one server, opened at once, used at once."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "", parts.port or 80
        self.executor = ThreadPoolExecutor(CONNECTIONS)
        self.connections = [
            http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT)
            for _ in range(CONNECTIONS)
        ]
        list(self.executor.map(lambda c: c.connect(), self.connections))

    def one(
        self, index: int, method: str, path: str, body: Any = None, headers: Any = None
    ) -> tuple[int, Any]:
        connection = self.connections[index % CONNECTIONS]
        data = None if body is None else json.dumps(body)
        sent = {"Content-Type": "application/json", **(headers or {})}
        connection.request(method, path, body=data, headers=sent)
        response = connection.getresponse()
        raw = response.read()
        try:
            return response.status, json.loads(raw)
        except ValueError:
            return response.status, raw

    def all(
        self, method: str, path: str, body: Any = None, headers: Any = None, count: int = 0
    ) -> list[tuple[int, Any]]:
        """The same request on every connection (`count` requests: round the connections)."""
        total = count or CONNECTIONS

        def send(index: int) -> list[tuple[int, Any]]:
            return [
                self.one(i, method, path.replace("{i}", str(i)), body, headers)
                for i in range(index, total, CONNECTIONS)
            ]

        return [answer for batch in self.executor.map(send, range(CONNECTIONS)) for answer in batch]

    def close(self) -> None:
        for connection in self.connections:
            connection.close()
        self.executor.shutdown()


@pytest.fixture(scope="module")
def traffic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("workers") / "traffic.jsonl"


@pytest.fixture(scope="module")
def server(traffic: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    yield from _serve("sinatra", "--rounds", "50", "--traffic", str(traffic))


def _serve(mock: str, *args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEPHARNESS_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "pepharness", "serve", mock, "--port", "0", *args,
         "--workers", "2", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**env, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    url = ""
    for line in process.stdout:
        if match := URL.match(line):
            url = match.group(1)
            break
    try:
        assert url, f"serve printed no URL (exit {process.poll()})"
        yield process, url
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


@pytest.fixture
def pool(server: tuple[subprocess.Popen[str], str]) -> Iterator[Pool]:
    opened = Pool(server[1])
    assert opened.one(0, "POST", "/__admin/reset", {})[0] == 200
    try:
        yield opened
    finally:
        opened.close()


def _workers(parent: int) -> list[int]:
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return [int(pid) for pid in children]


def _sockets(pid: int) -> int:
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):  # closed meanwhile
            count += os.readlink(fd).startswith("socket:")
    return count


def test_both_workers_hold_connections(server: tuple[subprocess.Popen[str], str]) -> None:
    workers = _workers(server[0].pid)
    assert len(workers) == 2
    before = {pid: _sockets(pid) for pid in workers}
    opened = Pool(server[1])
    try:
        assert {status for status, _ in opened.all("GET", "/__admin/health")} == {200}
        after = {pid: _sockets(pid) for pid in workers}
    finally:
        opened.close()
    # Each worker accepted some of the connections opened at once.
    assert all(after[pid] > before[pid] for pid in workers), (before, after)


def test_a_limit_admits_exactly_its_requests_over_both_workers(pool: Pool) -> None:
    # A window of an hour: the burst is inside it however slow the machine.
    window = {"limit": 5, "period_seconds": 3600}
    assert pool.one(0, "POST", "/__admin/rate-limit", window)[0] == 200
    basic = {"Authorization": "Basic " + _basic(OPERATOR_EMAIL, OPERATOR_PASSWORD)}
    statuses = [status for status, _ in pool.all("GET", HISTORY, headers=basic, count=40)]
    assert statuses.count(429) == 35, statuses
    assert len(statuses) == 40


def test_a_fault_with_times_fires_exactly_that_often(pool: Pool) -> None:
    rule = {"path": "/no-such-path/*", "status": 418, "times": 3}
    assert pool.one(0, "POST", "/__admin/faults", rule)[0] == 201
    statuses = [status for status, _ in pool.all("GET", "/no-such-path/{i}", count=32)]
    assert statuses.count(418) == 3, statuses
    assert pool.one(1, "GET", "/__admin/faults")[1] == {"faults": []}


def test_a_clock_move_is_seen_by_every_worker(pool: Pool) -> None:
    status, _ = pool.one(0, "POST", "/__admin/clock", {"set": "2031-05-06T07:08:09Z"})
    assert status == 200
    seen = [answer["now"] for _, answer in pool.all("GET", "/__admin/clock")]
    assert all("2031-05-06T07:08:09" <= now < "2031-05-06T08" for now in seen), seen


def test_the_journal_has_every_request_once_in_order(pool: Pool) -> None:
    statuses = [status for status, _ in pool.all("GET", "/__admin/health?n={i}", count=48)]
    assert statuses == [200] * 48
    _, journal = pool.one(0, "GET", "/__admin/requests")
    entries = [e for e in journal["requests"] if e["path"] == "/__admin/health"]
    assert sorted(int(e["query"]["n"]) for e in entries) == list(range(48))
    ids = [e["id"] for e in journal["requests"]]
    assert ids == list(range(ids[0], ids[0] + len(ids)))  # one sequence, no gap, no repeat


def test_the_traffic_file_has_every_exchange_once_in_seq_order(
    pool: Pool, traffic: Path
) -> None:
    statuses = [status for status, _ in pool.all("GET", "/__admin/health?t={i}", count=48)]
    assert statuses == [200] * 48
    lines = [json.loads(line) for line in traffic.read_text().splitlines()]
    seqs = [line["seq"] for line in lines]
    assert seqs == list(range(1, len(lines) + 1))  # one writer's order: 1, 2, 3…
    marked = [line["query"]["t"] for line in lines if "t" in line["query"]]
    assert sorted(int(t) for t in marked) == list(range(48))
    # GET /__admin/traffic on any worker streams the same lines
    _, feed = pool.one(3, "GET", "/__admin/traffic")
    assert isinstance(feed, bytes) and feed.count(b'"seq":') >= len(lines)


def test_a_user_added_on_one_worker_logs_in_on_every_worker(pool: Pool) -> None:
    user = {"email": "shared@example.com", "password": "pw-shared", "available_operators": [1]}
    assert pool.one(0, "POST", "/__admin/users", user)[0] == 201
    login = {"email": user["email"], "password": user["password"]}
    statuses = [status for status, _ in pool.all("POST", "/1.0/login/", login)]
    assert statuses == [200] * CONNECTIONS


def test_a_token_programmed_on_one_worker_answers_on_every_worker() -> None:
    for _, url in _serve("operator"):
        pool = Pool(url)
        try:
            token = {"identityToken": "shared-token", "playerId": "p-shared"}
            assert pool.one(0, "POST", "/__admin/tokens", token)[0] in (200, 201)
            answers = pool.all("POST", "/api/auth/v1/player", {"identityToken": "shared-token"})
            assert {(status, body.get("playerId")) for status, body in answers} == {
                (200, "p-shared")
            }, answers
            _, received = pool.one(0, "GET", "/__admin/received")
            ids = [entry["id"] for entry in received["received"]]
            assert ids == list(range(1, CONNECTIONS + 1)), received
            # In a sandbox: programmed through one worker before any other built its copy.
            prefix = f"/__sandbox/{_sandbox(pool)}"
            token = {"identityToken": "sandboxed-token", "playerId": "p-sandboxed"}
            assert pool.one(0, "POST", f"{prefix}/__admin/tokens", token)[0] in (200, 201)
            asked = {"identityToken": "sandboxed-token"}
            answers = pool.all("POST", f"{prefix}/api/auth/v1/player", asked)
            assert {(status, body.get("playerId")) for status, body in answers} == {
                (200, "p-sandboxed")
            }, answers
            assert pool.one(1, "POST", "/api/auth/v1/player", asked)[0] != 200
            _, received = pool.one(2, "GET", f"{prefix}/__admin/received")
            assert [e["id"] for e in received["received"]] == list(range(1, CONNECTIONS + 1))
        finally:
            pool.close()


def _login_token(pool: Pool, path: str, credentials: dict[str, str]) -> str:
    connection = pool.connections[0]
    connection.request("POST", path, body=json.dumps(credentials),
                       headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    response.read()
    assert response.status == 200
    return str(response.getheader("jwt-auth"))


def _basic(email: str, password: str) -> str:
    return base64.b64encode(f"{email}:{password}".encode()).decode()


def test_probabilities_draw_one_seeded_sequence_whatever_the_worker(tmp_path: Path) -> None:
    from pepharness.mocks.core.faults import FaultRegistry
    from pepharness.mocks.core.state import SharedFaults, SharedState

    state = SharedState(str(tmp_path / "state.sqlite3"))
    # Two workers' registries on one state (each its own generator), and one process's.
    workers = [SharedFaults(state, seed=7), SharedFaults(state, seed=7)]
    alone = FaultRegistry(seed=7)
    rule = {"path": "/p/*", "status": 503, "probability": 0.5}
    workers[0].add(rule)
    alone.add(rule)
    pattern = [1, 0, 0, 1, 1, 1, 0, 1, 0, 0, 0, 1, 1, 0, 1, 0] * 4
    shared = [workers[w].match("GET", f"/p/{i}") is not None for i, w in enumerate(pattern)]
    single = [alone.match("GET", f"/p/{i}") is not None for i in range(len(pattern))]
    assert shared == single and 0 < sum(single) < len(single)
    workers[1].reset()  # from the seed again, on every worker
    alone.reset()
    workers[1].add(rule)
    alone.add(rule)
    again = [workers[w].match("GET", "/p/x") is not None for w in pattern[:8]]
    assert again == [alone.match("GET", "/p/x") is not None for _ in range(8)]


def test_a_port_workers_hold_is_taken_for_another_serve(
    server: tuple[subprocess.Popen[str], str],
) -> None:
    from click.testing import CliRunner

    from pepharness.cli import cli

    port = str(urlsplit(server[1]).port)
    for workers in ("2", "1"):  # SO_REUSEPORT shares a port with no one but its own workers
        args = ["serve", "sinatra", "--port", port, "--rounds", "0", "--workers", workers]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2, result.output
        assert "Address already in use" in result.output


def _sandbox(pool: Pool, index: int = 0) -> str:
    status, created = pool.one(index, "POST", "/__admin/sandboxes", {})
    assert status == 201, created
    return str(created["id"])


def test_a_sandbox_made_through_one_worker_is_the_same_on_every_worker(pool: Pool) -> None:
    sandbox = _sandbox(pool)
    prefix = f"/__sandbox/{sandbox}"
    try:
        # Its clock moved through one worker (building its copy there), then every connection
        # (both workers) reaches it, the other worker building its copy on a moved clock.
        set_clock = {"set": "2031-05-06T07:08:09Z"}
        assert pool.one(1, "POST", f"{prefix}/__admin/clock", set_clock)[0] == 200
        assert {s for s, _ in pool.all("GET", f"{prefix}/__admin/health")} == {200}
        seen = [answer["now"] for _, answer in pool.all("GET", f"{prefix}/__admin/clock")]
        assert all(now.startswith("2031-05-06T07:") for now in seen), seen
        assert not pool.one(2, "GET", "/__admin/clock")[1]["now"].startswith("2031")
        # Its faults: `times: 3` counted over both workers, never firing outside it.
        rule = {"path": "/no-such-path/*", "status": 418, "times": 3}
        assert pool.one(3, "POST", f"{prefix}/__admin/faults", rule)[0] == 201
        assert {s for s, _ in pool.all("GET", "/no-such-path/{i}")} == {404}
        statuses = [s for s, _ in pool.all("GET", prefix + "/no-such-path/{i}", count=32)]
        assert statuses.count(418) == 3, statuses
        # Its rate window: exactly its limit over both workers; the default space's apart.
        window = {"limit": 5, "period_seconds": 3600}
        assert pool.one(4, "POST", f"{prefix}/__admin/rate-limit", window)[0] == 200
        basic = {"Authorization": "Basic " + _basic(OPERATOR_EMAIL, OPERATOR_PASSWORD)}
        statuses = [s for s, _ in pool.all("GET", prefix + HISTORY, headers=basic, count=24)]
        assert statuses.count(429) == 19, statuses
        # Its data: the same history whichever worker's copy answers (one anchor, D222).
        wide = {"limit": 1000, "period_seconds": 3600}
        assert pool.one(4, "POST", f"{prefix}/__admin/rate-limit", wide)[0] == 200
        today = datetime.now(UTC)
        back = {"set": today.strftime("%Y-%m-%dT%H:%M:%SZ")}
        assert pool.one(4, "POST", f"{prefix}/__admin/clock", back)[0] == 200
        window_of = f"from={today - timedelta(days=90):%Y-%m-%d}&to={today:%Y-%m-%d}"
        path = f"{prefix}/transactions/v1/games/history/api?{window_of}"
        pages = pool.all("GET", path, headers=basic)
        assert {status for status, _ in pages} == {200}, pages[0]
        assert len({json.dumps(page, sort_keys=True) for _, page in pages}) == 1, pages[:2]
        # A user added through one worker logs in through all, and only there.
        user = {"email": "sandboxed@example.com", "password": "pw-sandboxed"}
        assert pool.one(5, "POST", f"{prefix}/__admin/users", user)[0] == 201
        assert {s for s, _ in pool.all("POST", f"{prefix}/1.0/login/", user)} == {200}
        assert pool.one(5, "POST", "/1.0/login/", user)[0] != 200
        # A token it issued through one worker opens it on all (one key), not the default.
        seeded = {"email": OPERATOR_EMAIL, "password": OPERATOR_PASSWORD}
        jwt = {"jwt-auth": _login_token(pool, f"{prefix}/1.0/login/", seeded)}
        games = "/games/1.0/view/detailed"
        assert {s for s, _ in pool.all("GET", prefix + games, headers=jwt)} == {200}
        assert pool.one(6, "GET", games, headers=jwt)[0] == 401
        # Its journal has its requests, the default space's none of them.
        _, journal = pool.one(6, "GET", f"{prefix}/__admin/requests")
        assert sum(e["path"].startswith("/no-such-path/") for e in journal["requests"]) == 32
        _, default = pool.one(7, "GET", "/__admin/requests")
        assert sum(e["path"].startswith("/no-such-path/") for e in default["requests"]) == 16
    finally:
        assert pool.one(8, "DELETE", f"/__admin/sandboxes/{sandbox}")[0] == 200
    # Ended through one worker: gone on every worker.
    assert {s for s, _ in pool.all("GET", f"{prefix}/__admin/health")} == {404}


def test_the_33rd_sandbox_is_refused_whichever_worker_is_asked(pool: Pool) -> None:
    made = pool.all("POST", "/__admin/sandboxes", {}, count=32)
    try:
        assert [status for status, _ in made] == [201] * 32, made
        status, refused = pool.one(5, "POST", "/__admin/sandboxes", {})
        assert status == 429 and "32 sandboxes are live" in refused["error"]
        assert len(pool.one(9, "GET", "/__admin/sandboxes")[1]["sandboxes"]) == 32
    finally:
        for index, (status, answer) in enumerate(made):
            if status == 201:
                pool.one(index, "DELETE", f"/__admin/sandboxes/{answer['id']}")
    assert pool.one(3, "GET", "/__admin/sandboxes")[1] == {"sandboxes": []}


def test_without_workers_serve_uses_the_usable_cores_for_every_mock() -> None:
    from pepharness.serving import MOCKS, default_workers

    cores = min(len(os.sched_getaffinity(0)), 64)
    assert default_workers([MOCKS["sinatra"]]) == default_workers([MOCKS["operator"]]) == cores
    assert default_workers([MOCKS["pep"]]) == default_workers(list(MOCKS.values())) == cores


def test_a_shared_sandbox_idles_from_its_last_use_on_any_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flask import Flask

    from pepharness.mocks.core import state_sandbox
    from pepharness.mocks.core.sandbox import Sandbox

    now = [1000.0]
    monkeypatch.setattr(state_sandbox.time, "monotonic", lambda: now[0])
    built: list[str] = []

    def build(mock: str, sandbox: Sandbox) -> tuple[Flask, Any]:
        built.append(sandbox.folder or "")
        return Flask(mock), lambda: None

    registry = state_sandbox.SharedSandboxRegistry(build, str(tmp_path))
    sandbox = registry.create(10)
    assert sandbox.folder is not None and Path(sandbox.folder).is_dir()
    now[0] += 6
    pid = os.fork()
    if pid == 0:  # another worker uses it: its slot in the shared page moves
        os._exit(0 if registry.use(sandbox.id, "sinatra") is not None else 1)
    assert os.waitpid(pid, 0)[1] == 0
    assert built == []  # the copy was that worker's
    now[0] += 6  # 12 s after its creation, 6 after its use
    assert [s.id for s in registry.sandboxes()] == [sandbox.id]
    now[0] += 5
    assert registry.get(sandbox.id) is None and not Path(sandbox.folder).exists()
    assert registry.use(sandbox.id, "sinatra") is None and built == []
