"""`serve --traffic FILE` over real HTTP: every exchange of every mock of the process, once, in
order, no secret written; the file read back with `read_traffic`, a torn last line skipped."""

from __future__ import annotations

import base64
import errno
import io
import json
import logging
import signal
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from test_serve import environment, free_port, pepharness, wait_for_health

from pepharness.cli import cli
from pepharness.fixtures import OPERATOR_EMAIL, OPERATOR_PASSWORD
from pepharness.mocks.core import ThreadedServer
from pepharness.mocks.core import traffic as traffic_module
from pepharness.mocks.core.traffic import (
    MAX_KEY_OBJECTS,
    TrafficFileError,
    TrafficWriter,
    body_keys,
    credential_id,
    read_traffic,
)
from pepharness.serving import MOCKS, ServeOptions, record_traffic

TIMEOUT = 10
CATALOG = "/vendors/1.0/view/available"
HISTORY_API = "/transactions/1.0/games/history/api"
MONEY = "/rx-api/transactions/v1/money-transaction"
ROUND = "/rx-api/transactions/v1/game-transaction-round"


class Traffic:
    """One process's traffic file, fed by a Sinatra mock and a reference PEP (as `serve all`)."""

    def __init__(self, path: Path, writer: TrafficWriter, urls: dict[str, str]) -> None:
        self.path = path
        self.writer = writer
        self.urls = urls
        self._seen = 0

    def new(self) -> list[dict[str, Any]]:
        """The entries written since the last call (every one queued so far is written first)."""
        assert self.writer.sync()
        entries = [e for e in read_traffic(self.path) if e["seq"] > self._seen]
        if entries:
            self._seen = entries[-1]["seq"]
        return entries


@pytest.fixture(scope="module")
def traffic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Traffic]:
    path = tmp_path_factory.mktemp("traffic") / "traffic.jsonl"
    options = ServeOptions(seed=7, rounds=50, operator_url="http://127.0.0.1:9")
    with TrafficWriter.open(path) as writer:
        servers = {
            name: ThreadedServer(record_traffic(MOCKS[name].build(options), MOCKS[name], writer))
            for name in ("sinatra", "pep")
        }
        for server in servers.values():
            server.start()
        try:
            yield Traffic(path, writer, {name: s.url for name, s in servers.items()})
        finally:
            for server in servers.values():
                server.stop()


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def test_every_request_once_in_order_and_no_secret(traffic: Traffic) -> None:
    traffic.new()
    url = traffic.urls["sinatra"]
    with requests.Session() as session:
        login = session.post(
            f"{url}/1.0/login/",
            json={"email": OPERATOR_EMAIL, "password": OPERATOR_PASSWORD},
            timeout=TIMEOUT,
        )
        token = login.headers["jwt-auth"]
        for n in range(10):
            session.get(f"{url}{CATALOG}", params={"n": n}, headers={"jwt-auth": token},
                        timeout=TIMEOUT)
        session.get(f"{url}{CATALOG}", headers={"jwt-auth": "forged"}, timeout=TIMEOUT)
        history = session.get(
            f"{url}{HISTORY_API}",
            params={"page_size": 1, "password": "query-secret"},
            auth=(OPERATOR_EMAIL, OPERATOR_PASSWORD),
            timeout=TIMEOUT,
        )
    entries = traffic.new()
    assert [(e["method"], e["path"]) for e in entries] == [
        ("POST", "/1.0/login/"), *[("GET", CATALOG)] * 11, ("GET", HISTORY_API)
    ]
    assert [e["seq"] for e in entries] == list(range(entries[0]["seq"], entries[0]["seq"] + 13))
    assert [e["query"].get("n") for e in entries[1:11]] == [str(n) for n in range(10)]
    assert {e["mock"] for e in entries} == {"sinatra"}
    assert entries[0]["issued"] == credential_id(token) and entries[0]["credential"] is None
    assert {e["credential"] for e in entries[1:11]} == {credential_id(token)}
    assert entries[11]["credential"] == credential_id("forged") != credential_id(token)
    assert entries[11]["status"] == 401 and entries[11]["auth"] == "jwt-auth"
    last = entries[-1]
    assert last["status"] == history.status_code and last["auth"] == "basic"
    assert last["credential"].startswith("user:")
    assert last["query"] == {"page_size": "1", "password": "***"}
    assert all(e["clock"] and e["time"] and e["duration_ms"] >= 0 for e in entries)
    written = _text(traffic.path)
    basic = base64.b64encode(f"{OPERATOR_EMAIL}:{OPERATOR_PASSWORD}".encode()).decode()
    for secret in (OPERATOR_PASSWORD, token, token.split(".")[2], basic, "query-secret"):
        assert secret not in written


def test_concurrent_requests_are_all_recorded(traffic: Traffic) -> None:
    traffic.new()
    url = traffic.urls["sinatra"]

    def send(worker: int) -> list[int]:
        with requests.Session() as session:
            return [
                session.get(f"{url}/__admin/health", params={"w": worker, "i": i},
                            timeout=TIMEOUT).status_code
                for i in range(25)
            ]

    with ThreadPoolExecutor(8) as pool:
        statuses = [s for answer in pool.map(send, range(8)) for s in answer]
    assert statuses == [200] * 200
    entries = traffic.new()
    sent = sorted((e["query"]["w"], e["query"]["i"]) for e in entries)
    assert sent == sorted((str(w), str(i)) for w in range(8) for i in range(25))
    seqs = [e["seq"] for e in entries]
    assert seqs == list(range(seqs[0], seqs[0] + 200))  # in file order, none missing


def test_platform_events_keep_their_idempotency_keys(traffic: Traffic) -> None:
    traffic.new()
    url = traffic.urls["pep"]
    money = {"playerId": "p-1", "transactionId": "t-1", "amount": 100, "clientSecret": "s3"}
    items = [{"playerId": "p-2", "transactionId": f"r-{n}", "token": "x"} for n in range(3)]
    answers = [
        requests.post(f"{url}{MONEY}", json=money, timeout=TIMEOUT),
        requests.post(f"{url}{ROUND}", json={"gameTransactionRound": items}, timeout=TIMEOUT),
        requests.post(f"{url}{MONEY}", data="not json", timeout=TIMEOUT,
                      headers={"Content-Type": "application/json", "X-Request-Id": "r1"}),
    ]
    entries = traffic.new()
    assert [e["status"] for e in entries] == [a.status_code for a in answers]
    assert {e["mock"] for e in entries} == {"pep"}
    assert entries[0]["keys"] == [{"transactionId": "t-1", "playerId": "p-1"}]
    assert entries[1]["keys"] == [
        {"transactionId": f"r-{n}", "playerId": "p-2"} for n in range(3)
    ]
    assert entries[0]["body_sha256"] != entries[1]["body_sha256"]
    assert "keys" not in entries[2] and entries[2]["request_headers"]["X-Request-Id"] == "r1"
    assert '"s3"' not in _text(traffic.path) and "amount" not in _text(traffic.path)


def test_an_event_too_large_to_read_is_recorded_without_keys(traffic: Traffic) -> None:
    traffic.new()
    chunk = json.dumps({"transactionId": "big", "pad": "x" * 65536}).encode()

    def body() -> Iterator[bytes]:
        yield b"["
        for n in range(20):  # ~1.3 MiB: past the PEP's MAX_CONTENT_LENGTH and the keys' cap
            yield (b"," if n else b"") + chunk
        yield b"]"

    answer = requests.post(f"{traffic.urls['pep']}{MONEY}", data=body(), timeout=TIMEOUT,
                           headers={"Content-Type": "application/json"})
    assert 400 <= answer.status_code < 500
    [entry] = traffic.new()
    assert entry["status"] == answer.status_code
    assert entry["keys"] == [] and entry["keys_truncated"] is True  # too large to look into


def test_an_injected_fault_is_marked(traffic: Traffic) -> None:
    url = traffic.urls["sinatra"]
    fault = {"path": CATALOG, "status": 503, "body": "down", "times": 1}
    assert requests.post(f"{url}/__admin/faults", json=fault, timeout=TIMEOUT).status_code == 201
    traffic.new()
    assert requests.get(f"{url}{CATALOG}", timeout=TIMEOUT).status_code == 503
    assert requests.get(f"{url}{CATALOG}", timeout=TIMEOUT).status_code == 401
    entries = traffic.new()
    assert [(e["status"], e["fault"]) for e in entries] == [(503, True), (401, False)]


@pytest.mark.parametrize("kind", ["connection_reset", "empty_reply"])
def test_a_connection_left_without_an_answer_is_status_0(traffic: Traffic, kind: str) -> None:
    """As the journal records it (D102): no HTTP answer went out, whatever Flask produced."""
    url = traffic.urls["sinatra"]
    fault = {"path": CATALOG, "fault": kind, "times": 1}
    assert requests.post(f"{url}/__admin/faults", json=fault, timeout=TIMEOUT).status_code == 201
    traffic.new()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}{CATALOG}", timeout=TIMEOUT)
    assert requests.get(f"{url}{CATALOG}", timeout=TIMEOUT).status_code == 401
    entries = traffic.new()
    assert [(e["status"], e["fault"]) for e in entries] == [(0, True), (401, False)]


def test_response_retry_after_is_kept(traffic: Traffic) -> None:
    url = traffic.urls["sinatra"]
    traffic.new()
    requests.post(f"{url}/__admin/rate-limit", json={"limit": 1, "period_seconds": 60},
                  timeout=TIMEOUT)
    try:
        answers = [
            requests.get(f"{url}{HISTORY_API}", auth=(OPERATOR_EMAIL, OPERATOR_PASSWORD),
                         timeout=TIMEOUT)
            for _ in range(2)
        ]
    finally:
        requests.post(f"{url}/__admin/reset", timeout=TIMEOUT)
    limited = [e for e in traffic.new() if e["path"] == HISTORY_API]
    assert [e["status"] for e in limited] == [a.status_code for a in answers]
    assert limited[-1]["status"] == 429
    assert limited[-1]["response_headers"]["Retry-After"] == answers[-1].headers["Retry-After"]


def test_body_keys_are_capped() -> None:
    body = [{"transactionId": "t" * 500, "n": n} for n in range(MAX_KEY_OBJECTS + 1)]
    keys, truncated = body_keys(body, ("transactionId",))
    assert truncated and len(keys) == MAX_KEY_OBJECTS and len(keys[0]["transactionId"]) == 200
    assert body_keys({"playerId": {"a": 1}}, ("playerId",)) == ([{"playerId": '{"a":1}'}], False)


def test_a_secret_field_is_never_a_key(traffic: Traffic) -> None:
    operator = replace(MOCKS["operator"], traffic_keys=("playerId", "clientSecret"))
    with pytest.raises(ValueError, match="clientSecret"):
        record_traffic(operator.build(ServeOptions()), operator, traffic.writer)


def test_read_traffic_streams_and_skips_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    lines = [json.dumps({"seq": n}) for n in (1, 2)]
    path.write_text("\n".join(lines) + '\n{"seq": 3, "pa', encoding="utf-8")
    entries = read_traffic(path)
    assert next(entries) == {"seq": 1}
    assert list(entries) == [{"seq": 2}]
    path.write_text(lines[0] + "\n" + lines[1], encoding="utf-8")  # whole, newline not yet out
    assert [e["seq"] for e in read_traffic(path)] == [1, 2]
    path.write_text(lines[0] + "\n{torn\n" + lines[1] + "\n", encoding="utf-8")
    with pytest.raises(TrafficFileError, match=r"t\.jsonl:2"):
        list(read_traffic(path))


class StalledDisk(io.StringIO):
    """A stream whose first write waits until `release` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.entered, self.release = threading.Event(), threading.Event()
        self.final = ""

    def write(self, text: str) -> int:
        self.entered.set()
        assert self.release.wait(30)
        return super().write(text)

    def close(self) -> None:
        self.final = self.getvalue()
        super().close()


def test_a_stalled_disk_drops_an_exchange_instead_of_holding_the_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(traffic_module, "PUT_TIMEOUT_SECONDS", 0.01)
    stream = StalledDisk()
    writer = TrafficWriter(stream, queue_size=1)
    assert writer.record({"n": 1}) == 1
    assert stream.entered.wait(30)  # the writer holds entry 1: the queue has room for one
    assert writer.record({"n": 2}) == 2
    assert writer.record({"n": 3}) == 0  # the queue is full: dropped, its seq left as a gap
    assert writer.record({"n": 4}) == 0
    stream.release.set()
    writer.close()
    assert [json.loads(line)["seq"] for line in stream.final.splitlines()] == [1, 2]
    assert writer.lost == 2


class FullDisk(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_write_error_is_logged_once_and_blocks_nothing(caplog: pytest.LogCaptureFixture) -> None:
    writer = TrafficWriter(FullDisk(), queue_size=1)
    with caplog.at_level(logging.ERROR, logger="pepharness.traffic"):
        assert [writer.record({"n": n}) for n in range(5)] == [1, 2, 3, 4, 5]
        assert writer.sync()
        writer.close()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == ["traffic: cannot write any more: No space left on device"]
    assert writer.written == 0 and writer.lost == 5  # the first one failed, the rest drained


@pytest.mark.parametrize("env", [False, True])
def test_an_unwritable_traffic_file_is_one_line_and_exit_2(tmp_path: Path, env: bool) -> None:
    target = str(tmp_path / "missing" / "traffic.jsonl")
    args = ["serve", "sinatra", "--port", "0", "--rounds", "0"]
    result = CliRunner().invoke(
        cli, args if env else [*args, "--traffic", target],
        env={"PEPHARNESS_TRAFFIC": target} if env else {},
    )
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"Error: cannot write traffic to {target}: No such file or directory"
    ]


def test_serve_traffic_through_the_cli_is_flushed_on_ctrl_c(tmp_path: Path) -> None:
    path, port = tmp_path / "traffic.jsonl", free_port()
    process = subprocess.Popen(
        pepharness("serve", "sinatra", "--port", str(port), "--rounds", "20", "--quiet",
                   "--workers", "1", "--traffic", str(path)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment(),
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_health(url, process)
        requests.post(f"{url}/1.0/login/", timeout=TIMEOUT,
                      json={"email": OPERATOR_EMAIL, "password": OPERATOR_PASSWORD})
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    entries = list(read_traffic(path))
    assert entries[-1]["path"] == "/1.0/login/" and entries[-1]["status"] == 200
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    assert OPERATOR_PASSWORD not in path.read_text(encoding="utf-8")
