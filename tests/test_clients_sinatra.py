"""The Sinatra client judge over real traffic: a mock served on loopback with `--traffic`
recording, each planted-fault client of tests/planted/clients_sinatra.py failed by the one rule
it breaks (and by no other), the example client passing every rule, and breaches named."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from planted.clients_sinatra import PLANTED

from pepharness.mocks.core import ThreadedServer
from pepharness.mocks.core.traffic import TrafficWriter, read_traffic
from pepharness.serving import MOCKS, ServeOptions, record_traffic
from pepharness.suites.clients import FAIL, NOT_VERIFIED, PASS, Verdict
from pepharness.suites.clients.sinatra import CATALOG, judge

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "sinatra_client.py"
TIMEOUT = 10


class Recorded:
    """A Sinatra mock whose traffic goes to a file; `run` gives the entries of one client."""

    def __init__(self, url: str, path: Path, writer: TrafficWriter) -> None:
        self.url, self.path, self.writer = url, path, writer
        self.seen = 0

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        answer = requests.request(method, f"{self.url}/__admin{path}", json=body, timeout=TIMEOUT)
        assert answer.status_code < 300, answer.text
        return answer.json()

    def new(self) -> list[dict[str, Any]]:
        assert self.writer.sync()
        entries = [e for e in read_traffic(self.path) if e["seq"] > self.seen]
        if entries:
            self.seen = entries[-1]["seq"]
        return entries


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorded]:
    path = tmp_path_factory.mktemp("client-traffic") / "traffic.jsonl"
    options = ServeOptions(seed=7, rounds=400, rate_limit=(1000, 1.0))
    with TrafficWriter.open(path) as writer:
        mock = MOCKS["sinatra"]
        server = ThreadedServer(record_traffic(mock.build(options), mock, writer))
        server.start()
        try:
            yield Recorded(server.url, path, writer)
        finally:
            server.stop()


def outcomes(verdicts: list[Verdict]) -> dict[str, str]:
    return {v.rule.name: v.outcome for v in verdicts}


@pytest.mark.parametrize("name", sorted(PLANTED))
def test_a_planted_client_fails_by_its_rule_alone(recorded: Recorded, name: str) -> None:
    client, rule = PLANTED[name]
    recorded.new()
    client(recorded.url, recorded.admin)
    entries = recorded.new()
    verdicts = judge(entries)
    got = outcomes(verdicts)
    assert got[rule] == FAIL, got
    assert [n for n, outcome in got.items() if outcome == FAIL] == [rule], got
    breach = next(v for v in verdicts if v.rule.name == rule).breaches[0]
    assert breach.seqs and breach.detail


def test_the_example_client_passes_every_rule(recorded: Recorded) -> None:
    recorded.new()
    recorded.admin("POST", "/rate-limit", {"limit": 5, "period_seconds": 1})
    recorded.admin("POST", "/faults", {"path": "/vendors/*/view/available", "status": 401,
                                       "times": 1})
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PEPHARNESS_")}
    clean["NO_PROXY"] = clean["no_proxy"] = "127.0.0.1,localhost"
    env = {**clean, "PEPHARNESS_SINATRA_URL": recorded.url, "PEPHARNESS_SINATRA_PAGE_SIZE": "25"}
    try:
        done = subprocess.run([sys.executable, str(EXAMPLE)], env=env, capture_output=True,
                              text=True, timeout=60, check=False)
    finally:
        recorded.admin("POST", "/rate-limit", {"limit": 1000, "period_seconds": 1})
    assert done.returncode == 0, done.stdout + done.stderr
    entries = recorded.new()
    verdicts = judge(entries)
    got = outcomes(verdicts)
    assert FAIL not in got.values(), [(v.rule.name, v.breaches) for v in verdicts if v.breaches]
    for rule in ("check_client_reuses_its_token", "check_client_drops_a_token_after_401",
                 "check_client_walks_pages_in_order", "check_client_stops_at_the_last_page",
                 "check_client_uses_basic_only_on_the_paginated_history",
                 "check_client_requests_match_the_contract"):
        assert got[rule] == PASS, (got, [e for e in entries if "history" in e["path"]][:3])


def test_nothing_to_look_at_is_not_verified() -> None:
    got = outcomes(judge([{"seq": 1, "mock": "pep", "path": "/x", "method": "GET"}]))
    assert set(got) == {rule.name for rule in CATALOG}
    assert set(got.values()) == {NOT_VERIFIED}
