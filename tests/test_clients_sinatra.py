"""The Sinatra client judge over real traffic: a mock served on loopback with `--traffic`
recording, each planted-fault client of tests/planted/clients_sinatra.py failed by the one rule
it breaks (and by no other), the example client passing every rule, and breaches named."""

from __future__ import annotations

import os
import subprocess
import sys
from base64 import b64encode
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from planted.clients_sinatra import PLANTED

from pepharness.fixtures import OPERATOR_EMAIL, OPERATOR_PASSWORD
from pepharness.mocks.core import ThreadedServer
from pepharness.mocks.core.traffic import TrafficWriter, credential_id, read_traffic
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
    verdicts = judge(recorded.new())
    got = outcomes(verdicts)
    assert got[rule] == FAIL, got
    assert [n for n, outcome in got.items() if outcome == FAIL] == [rule], got
    breach = next(v for v in verdicts if v.rule.name == rule).breaches[0]
    assert breach.seqs and breach.detail


def test_the_example_client_passes_every_rule(recorded: Recorded) -> None:
    recorded.new()
    # 2 pages a second: the third page is a 429 the client must wait out (~1 s, not CPU)
    recorded.admin("POST", "/rate-limit", {"limit": 2, "period_seconds": 1})
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
    verdicts = judge(recorded.new())
    got = outcomes(verdicts)
    assert FAIL not in got.values(), [(v.rule.name, v.breaches) for v in verdicts if v.breaches]
    for rule in ("check_client_reuses_its_token", "check_client_drops_a_token_after_401",
                 "check_client_honours_retry_after",
                 "check_client_walks_pages_in_order", "check_client_stops_at_the_last_page",
                 "check_client_uses_basic_only_on_the_paginated_history",
                 "check_client_requests_match_the_contract"):
        assert got[rule] == PASS, got


def test_two_users_each_logging_in_once_are_two_clients(recorded: Recorded) -> None:
    second = {"email": "second@example.com", "password": "second-secret",
              "permissions": ["View games catalog"]}
    recorded.admin("POST", "/users", second)
    recorded.new()
    for email, password in ((OPERATOR_EMAIL, OPERATOR_PASSWORD),
                            (second["email"], second["password"])):
        answer = requests.post(f"{recorded.url}/1.0/login/", timeout=TIMEOUT,
                               json={"email": email, "password": password})
        token = answer.headers["jwt-auth"]
        requests.get(f"{recorded.url}{VENDORS}", headers={"jwt-auth": token}, timeout=TIMEOUT)
    entries = recorded.new()
    logins = [e for e in entries if e["path"] == LOGIN]
    users = [e["user"] for e in logins]
    # the digest of the email alone, as Basic's credential is (D150): no password in it
    assert users[0] == credential_id("Basic " + b64encode(f"{OPERATOR_EMAIL}:x".encode()).decode())
    assert len(set(users)) == 2 and all(second["password"] not in str(e) for e in entries)
    assert outcomes(judge(entries))["check_client_reuses_its_token"] == PASS
    # the same user logging in per request is still one client
    again = [*entries, {**logins[0], "seq": 99, "issued": "another"}]
    assert outcomes(judge(again))["check_client_reuses_its_token"] == FAIL


def test_nothing_to_look_at_is_not_verified() -> None:
    got = outcomes(judge([{"seq": 1, "mock": "pep", "path": "/x", "method": "GET"}]))
    assert set(got) == {rule.name for rule in CATALOG}
    assert set(got.values()) == {NOT_VERIFIED}


# -- the judge's tolerances on hand-written lines (D105-D107) -----------------------------------

START = datetime(2026, 1, 1, tzinfo=UTC)
HISTORY = "/transactions/1.0/games/history/api"
LOGIN = "/1.0/login/"
VENDORS = "/vendors/1.0/view/available"


def line(seq: int, path: str, at: float, status: int = 200, **fields: Any) -> dict[str, Any]:
    """A traffic line `at` seconds into the run (wall and mock clock alike)."""
    stamp = (START + timedelta(seconds=at)).isoformat()
    method = "POST" if path == LOGIN else "GET"
    auth = None if path == LOGIN else "basic" if path == HISTORY else "jwt-auth"
    credential = "user:abc" if auth == "basic" else None
    sent = {"Content-Type": "application/json"} if path == LOGIN else {}
    return {"seq": seq, "mock": "sinatra", "time": stamp, "clock": stamp, "method": method,
            "path": path, "query": {}, "status": status, "duration_ms": 5.0, "fault": False,
            "auth": auth, "credential": credential, "issued": None, "response_headers": {},
            "request_headers": sent, **fields}


def pages(*numbers: int, total: int = 30, **fields: Any) -> list[dict[str, Any]]:
    return [line(n + 10, HISTORY, n, query={"page_size": "10", "page_number": str(number)},
                 answer={"total_count": total}, **fields) for n, number in enumerate(numbers)]


def failed(entries: list[dict[str, Any]]) -> list[str]:
    return [v.rule.name for v in judge(entries) if v.outcome == FAIL]


def test_a_renewal_near_expiry_and_one_use_past_it_are_tolerated() -> None:
    entries = [
        line(1, LOGIN, 0, issued="t1"),
        line(2, VENDORS, 60, credential="t1"),
        line(3, LOGIN, 16 * 60, issued="t2"),  # the last 5 minutes: a renewal
        line(4, VENDORS, 16 * 60 + 1, credential="t2"),
        line(5, VENDORS, 40 * 60, 401, credential="t2"),  # the clock jumped: once is fine
        line(6, LOGIN, 40 * 60 + 1, issued="t3"),
        line(7, VENDORS, 40 * 60 + 2, 401, credential="t3"),  # a 401 to a good token
        line(8, LOGIN, 40 * 60 + 2, issued="t3"),  # the same second: the same token again
        line(9, VENDORS, 40 * 60 + 3, credential="t3"),
    ]
    assert failed(entries) == []
    early = [*entries[:2], line(3, LOGIN, 10 * 60, issued="t2")]
    assert failed(early) == ["check_client_reuses_its_token"]
    twice = [*entries[:5], line(6, VENDORS, 40 * 60 + 1, 401, credential="t2")]
    assert failed(twice) == ["check_client_renews_its_token_before_20_minutes"]


def test_retry_after_counts_from_the_answer_and_reads_an_http_date() -> None:
    wait = {"Retry-After": "2"}
    in_flight = line(3, HISTORY, 10.001, query={"page_number": "1"})  # before the 429 left
    refused = line(2, HISTORY, 10, 429, query={"page_number": "1"}, response_headers=wait)
    again = line(4, HISTORY, 12.5, query={"page_number": "2"})
    assert failed([refused, in_flight, again]) == []
    early = line(4, HISTORY, 11, query={"page_number": "1"})
    assert failed([refused, early]) == ["check_client_honours_retry_after"]
    date = {"Retry-After": format_datetime(START + timedelta(seconds=70), usegmt=True)}
    dated = line(2, HISTORY, 10, 429, query={"page_number": "1"}, response_headers=date)
    assert failed([dated, line(3, HISTORY, 69, query={"page_number": "1"})]) == [
        "check_client_honours_retry_after"
    ]
    assert failed([dated, line(3, HISTORY, 71, query={"page_number": "1"})]) == []


def test_a_5xx_retry_after_is_waited_for_the_same_request_only() -> None:
    wait = {"Retry-After": "2"}
    busy = line(2, VENDORS, 10, 503, credential="t1", response_headers=wait)
    rule = "check_client_waits_retry_after_on_5xx"
    assert failed([busy, line(3, VENDORS, 11, credential="t1")]) == [rule]
    assert failed([busy, line(3, VENDORS, 12.1, credential="t1")]) == []
    other = line(3, "/games/1.0/view/detailed", 11, credential="t1")
    assert failed([busy, other]) == []  # another request: not this rule's
    verdicts = {v.rule.name: v for v in judge([busy])}
    assert verdicts[rule].outcome == PASS and verdicts[rule].rule.level.name == "SHOULD"


def test_a_fault_rule_answers_with_its_headers(recorded: Recorded) -> None:
    recorded.new()
    for bad in ({"Connection": "close"}, {"content-length": "1"}, {"Retry After": "1"},
                {"Retry-After": 1}, {"Retry-After": "1\r\nX: y"}, ["Retry-After"],
                {f"X-{n}": "1" for n in range(11)}, {"X-A": "1", "x-a": "2"}):
        refused = requests.post(f"{recorded.url}/__admin/faults", timeout=TIMEOUT,
                                json={"path": VENDORS, "status": 503, "headers": bad})
        assert refused.status_code == 400 and list(refused.json()) == ["error"], (bad, refused.text)
    for bad_rule in ({"path": VENDORS, "headers": {"Retry-After": "1"}, "latency_ms": 1},
                     {"path": VENDORS, "fault": "empty_reply", "headers": {"Retry-After": "1"}}):
        refused = requests.post(f"{recorded.url}/__admin/faults", json=bad_rule, timeout=TIMEOUT)
        assert refused.status_code == 400, refused.text
    added = recorded.admin("POST", "/faults", {"path": VENDORS, "status": 503, "times": 1,
                                               "headers": {"Retry-After": "7"}})
    assert added["faults"][0]["headers"] == {"Retry-After": "7"}
    answer = requests.get(f"{recorded.url}{VENDORS}", timeout=TIMEOUT)
    assert (answer.status_code, answer.headers["Retry-After"]) == (503, "7")
    line = recorded.new()[-1]
    assert line["response_headers"]["Retry-After"] == "7" and line["fault_kind"] == "status"


def test_page_walks() -> None:
    assert failed(pages(1, 2, 3, 1, 2)) == []  # page 1 after the last: a new walk
    faulted = pages(1, 2)
    faulted[1]["fault"] = True  # a truncated page 2: asking it again is no repeat
    assert failed([*faulted, pages(2)[0] | {"seq": 20}]) == []
    delayed = pages(1, 2, 3)
    delayed[1] |= {"fault": True, "fault_kind": "latency"}  # a slow page 2 was answered (D153)
    assert failed(delayed) == []
    assert failed(pages(2)) == ["check_client_walks_pages_in_order"]
    assert failed(pages(1, 1)) == ["check_client_never_repeats_a_page"]
    assert failed(pages(1, 2, 3, 4)) == ["check_client_stops_at_the_last_page"]
    assert failed(pages(1, total=0) + pages(2, total=0)) == [
        "check_client_stops_at_the_last_page"
    ]


def test_query_rules() -> None:
    pair = {"from": "2026-01-01", "to": "2026-01-31", "page_number": "1"}
    assert failed([line(1, HISTORY, 0, query=pair)]) == []
    alone = {"to": "2026-01-31"}
    assert failed([line(1, HISTORY, 0, query=alone)]) == ["check_client_sends_from_and_to_together"]
    assert failed([line(1, "/nowhere", 0, credential="t")]) == [
        "check_client_requests_match_the_contract"
    ]
    form = line(1, LOGIN, 0, request_headers={"Content-Type": "text/plain"})
    assert failed([form]) == ["check_client_requests_match_the_contract"]
    hidden = {"time_period": "***"}  # redacted: not judged
    assert failed([line(1, HISTORY, 0, query=hidden)]) == []
    assert failed([line(1, HISTORY, 0, query={"time_period": "someday"})]) == [
        "check_client_requests_match_the_contract"
    ]
