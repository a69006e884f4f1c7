"""The PEP client judges (suites/clients/pep_platform.py, pep_frontend.py) over real traffic: a
reference PEP and an operator mock on loopback, the PEP's exchanges recorded as `serve
--traffic` records them; each planted client of tests/planted/clients_pep.py is failed by its
rule's name and by no other rule, and the example clients pass every rule."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask, jsonify
from planted.clients_pep import CLIENTS, FRONTEND, PLATFORM
from planted.clients_pep import token as planted_token

from pepharness.mocks.core import ThreadedServer
from pepharness.mocks.core.traffic import TrafficWriter, answer_texts, read_traffic
from pepharness.mocks.pep import DEMO_CLIENT_SECRET
from pepharness.serving import MOCKS, record_traffic
from pepharness.suites.clients import FAIL, NOT_VERIFIED, PASS, Verdict, pep_frontend, pep_platform

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TIMEOUT = 10
JUDGES = {PLATFORM: pep_platform.judge, FRONTEND: pep_frontend.judge}


class Run:
    """The module's PEP with its traffic file; `new()` gives the entries since the last call."""

    def __init__(self, path: Path, writer: TrafficWriter, url: str, app: Flask,
                 identities: list[str]) -> None:
        self.path, self.writer, self.url, self.app = path, writer, url, app
        self.identities = identities
        self._seen = 0

    def admin(self, method: str, path: str, **kwargs: Any) -> None:
        answer = requests.request(method, f"{self.url}/__admin{path}", timeout=TIMEOUT, **kwargs)
        answer.raise_for_status()

    def fresh(self, fetch_limit: tuple[int, float] | None = None) -> None:
        """A reset PEP (state, faults, data-fetch limit) and no entry pending."""
        self.admin("POST", "/reset")
        if fetch_limit is not None:  # the data fetch's limit (D115)
            limit, period = fetch_limit
            self.admin("POST", "/rate-limit", json={"limit": limit, "period_seconds": period})
        self.new()

    def new(self) -> list[dict[str, Any]]:
        assert self.writer.sync()
        entries = [e for e in read_traffic(self.path) if e["seq"] > self._seen]
        if entries:
            self._seen = entries[-1]["seq"]
        return [e for e in entries if not e["path"].startswith("/__admin")]

    def settle(self, entries: list[dict[str, Any]], faults: Any) -> list[dict[str, Any]]:
        """`entries` and the lines still to come of the requests a latency fault slowed (a
        client that stopped waiting returns before their answers are written; D151)."""
        slow = [f["latency_ms"] for f in faults if f.get("latency_ms")]
        deadline = time.monotonic() + 10
        while slow and time.monotonic() < deadline and not any(
            e["duration_ms"] >= min(slow) for e in entries
        ):
            time.sleep(0.05)
            entries = entries + self.new()
        return entries

    def judge(self, api: str, entries: list[dict[str, Any]]) -> list[Verdict]:
        return JUDGES[api](
            entries, identity_tokens=self.identities, client_secrets=[DEMO_CLIENT_SECRET]
        )


@pytest.fixture(scope="module")
def run(
    tmp_path_factory: pytest.TempPathFactory, pep_app: Flask, operator_server: ThreadedServer
) -> Iterator[Run]:
    path = tmp_path_factory.mktemp("client-traffic") / "traffic.jsonl"
    tokens = requests.get(f"{operator_server.url}/__admin/tokens", timeout=TIMEOUT).json()
    identities = [token["identityToken"] for token in tokens["tokens"]]
    with TrafficWriter.open(path) as writer:
        app = record_traffic(pep_app, MOCKS["pep"], writer)
        with ThreadedServer(app, threads=16) as server:
            yield Run(path, writer, server.url, pep_app, identities)


def failed_rules(verdicts: list[Verdict]) -> set[str]:
    return {v.rule.name for v in verdicts if v.outcome == FAIL}


@pytest.mark.parametrize("name", sorted(CLIENTS))
def test_a_planted_client_fails_its_rule_and_no_other(run: Run, name: str) -> None:
    api, client = CLIENTS[name]
    run.fresh(client.fetch_limit)
    for fault in client.faults:
        run.admin("POST", "/faults", json=fault)
    run.new()
    client.run(run.url, f"planted-{name}", run.identities[0])
    entries = run.settle(run.new(), client.faults)
    verdicts = run.judge(api, entries)
    assert failed_rules(verdicts) == {client.breaks}, [
        (v.rule.name, v.breaches) for v in verdicts if v.outcome == FAIL
    ]
    breach = next(v for v in verdicts if v.rule.name == client.breaks).breaches[0]
    assert breach.seqs and set(breach.seqs) <= {e["seq"] for e in entries}
    assert breach.detail
    other = JUDGES[PLATFORM if api == FRONTEND else FRONTEND]
    assert not failed_rules(other(entries, identity_tokens=run.identities))


def example(name: str, **env: str) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PEPHARNESS_")}
    clean["NO_PROXY"] = clean["no_proxy"] = "127.0.0.1,localhost"
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name)], env={**clean, **env}, capture_output=True,
        text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_platform_example_passes_every_rule_through_faults(run: Run) -> None:
    run.fresh(fetch_limit=(1, 3.0))  # the second page: a 429 with Retry-After of 1 to 3 s
    faults = (
        {"path": "/rx-api/transactions/v1/money-transaction", "status": 503, "times": 1},
        {"path": "/rx-api/players-data/v1/login", "status": 401, "times": 1},
        # slower than the client waits (1 s): it must resend the same round (D151)
        {"path": ROUND, "latency_ms": 1500, "times": 1},
    )
    for fault in faults:
        run.admin("POST", "/faults", json=fault)
    run.new()
    example("platform_client.py", PEPHARNESS_PEP_URL=run.url, PEPHARNESS_PEP_FETCH_LIMIT="2",
            PEPHARNESS_PEP_EVENT_PREFIX="judged", PEPHARNESS_PEP_TIMEOUT="1")
    entries = run.settle(run.new(), faults)
    rounds = [e for e in entries if e["path"] == ROUND]
    assert len(rounds) == 2 and rounds[0]["keys"] == rounds[1]["keys"], rounds  # one resent
    verdicts = run.judge(PLATFORM, entries)
    assert not failed_rules(verdicts), [(v.rule.name, v.breaches) for v in verdicts]
    outcomes = {v.rule.name: v.outcome for v in verdicts}
    for rule in ("token_reused", "new_token_after_401", "events_are_valid", "retry_backoff",
                 "retry_same_event", "fetch_honours_retry_after", "fetch_follows_next",
                 "sends_its_oauth_token", "bulk_sync_within_size"):
        assert outcomes[f"check_client_platform_{rule}"] == PASS, outcomes
    assert not failed_rules(run.judge(FRONTEND, entries))


def test_the_frontend_example_passes_every_rule_after_a_401(
    run: Run, operator_server: ThreadedServer
) -> None:
    run.fresh()
    run.admin("POST", "/faults", json={"path": "/api/players/v1/me", "status": 401, "times": 1})
    run.new()
    example("frontend_client.py", PEPHARNESS_PEP_URL=run.url,
            PEPHARNESS_OPERATOR_URL=operator_server.url, PEPHARNESS_EVENT_WAIT="0")
    entries = run.new()
    verdicts = {v.rule.name: v.outcome for v in run.judge(FRONTEND, entries)}
    assert verdicts == {
        "check_client_frontend_sends_the_pep_jwt": PASS,
        "check_client_frontend_logs_in_again_after_401": PASS,
        "check_client_frontend_socketio_connects_with_the_token": PASS,
    }
    assert not failed_rules(run.judge(PLATFORM, entries))


def test_the_pep_rate_limit_route_sets_the_data_fetch_limit(run: Run) -> None:
    run.fresh()
    url = f"{run.url}/__admin/rate-limit"
    assert requests.get(url, timeout=TIMEOUT).json() == {"limit": 100, "period_seconds": 60.0}
    for body, says in (
        ({}, 'give "limit", "period_seconds" or both'),
        ({"limit": 0}, "limit must be an integer from 1 to 1000000"),
        ({"limit": "5"}, "limit must be an integer, not"),
        ({"period_seconds": 86_401}, "period_seconds must be a number from 0.001 to 86400"),
        ({"burst": 1}, "burst"),
    ):
        refused = requests.post(url, json=body, timeout=TIMEOUT)
        assert refused.status_code == 400, (body, refused.text)
        assert set(refused.json()) == {"error"} and says in refused.json()["error"], refused.text
    set_to = requests.post(url, json={"limit": 1, "period_seconds": 30}, timeout=TIMEOUT)
    assert set_to.json() == {"limit": 1, "period_seconds": 30.0}
    bearer = planted_token(run.url)
    statuses = [
        requests.get(f"{run.url}/api/data-fetch/v1/players", params={"limit": 1},
                     headers={"Authorization": f"Bearer {bearer}"}, timeout=TIMEOUT)
        for _ in range(2)
    ]
    assert [answer.status_code for answer in statuses] == [200, 429]
    assert statuses[1].headers["Retry-After"] == "30"
    run.admin("POST", "/reset")  # the seeded 100 a minute again
    assert requests.get(url, timeout=TIMEOUT).json() == {"limit": 100, "period_seconds": 60.0}
    run.new()


def test_nothing_to_look_at_is_not_verified() -> None:
    for judge in JUDGES.values():
        assert {v.outcome for v in judge([])} == {NOT_VERIFIED}
    names = [rule.name for rule in (*pep_platform.CATALOG, *pep_frontend.CATALOG)]
    assert len(names) == len(set(names)) == 15


# -- the judges' edges, on hand-written lines (no server) ---------------------------------------

MONEY = "/rx-api/transactions/v1/money-transaction"
ROUND = "/rx-api/transactions/v1/game-transaction-round"


def line(seq: int, at: float, method: str, path: str, status: int, **extra: Any) -> dict[str, Any]:
    """A traffic line at `at` seconds (wall and mock clock alike) into the run."""
    when = f"2026-12-01T10:{int(at) // 60:02d}:{at % 60:06.3f}Z"
    entry = {"seq": seq, "mock": "pep", "time": when, "clock": when, "method": method,
             "path": path, "query": {}, "status": status, "duration_ms": 0.0,
             "auth": "bearer", "credential": "tok", "response_headers": {}}
    entry.update(extra)
    return entry


def event(seq: int, at: float, status: int, tid: str = "t-1", body: str = "b1",
          **extra: Any) -> dict[str, Any]:
    return line(seq, at, "POST", MONEY, status, keys=[{"transactionId": tid}],
                body_sha256=body, **extra)


def outcome(verdicts: list[Verdict], name: str) -> str:
    return next(v.outcome for v in verdicts if v.rule.name == f"check_client_platform_{name}")


def test_a_capped_backoff_passes_a_constant_one_fails() -> None:
    capped = [event(1, 0, 503)]
    at = 0.0
    for n, gap in enumerate((0.2, 0.4, 0.8, 1.6, 3.2, 5, 5), 2):
        at += gap
        capped.append(event(n, at, 503 if n < 8 else 202))
    assert outcome(pep_platform.judge(capped), "retry_backoff") == PASS
    constant = [event(n, n * 0.5, 503 if n < 4 else 202) for n in range(1, 5)]
    verdicts = pep_platform.judge(constant)
    assert outcome(verdicts, "retry_backoff") == FAIL
    assert outcome(verdicts, "retry_same_event") == PASS


def test_a_retry_waits_a_5xx_retry_after_and_an_event_may_be_given_up_after_3() -> None:
    told = {"response_headers": {"Retry-After": "2"}}
    early = [event(1, 0, 503, **told), event(2, 1.0, 202)]
    # a 5xx's Retry-After is the SHOULD rule's (D148), a 429's the backoff's
    assert outcome(pep_platform.judge(early), "retry_backoff") == PASS
    assert outcome(pep_platform.judge(early), "waits_retry_after_on_5xx") == FAIL
    limited = [event(1, 0, 429, **told), event(2, 1.0, 202)]
    assert outcome(pep_platform.judge(limited), "retry_backoff") == FAIL
    assert outcome(pep_platform.judge(limited), "waits_retry_after_on_5xx") == NOT_VERIFIED
    later = [event(1, 0, 503, **told), event(2, 2.0, 202)]
    assert outcome(pep_platform.judge(later), "retry_backoff") == PASS
    assert outcome(pep_platform.judge(later), "waits_retry_after_on_5xx") == PASS
    given_up = [event(1, 0, 503), event(2, 0.2, 503), event(3, 0.6, 503),
                event(4, 2.0, 202, tid="t-2", body="b2")]
    verdicts = pep_platform.judge(given_up)
    assert outcome(verdicts, "retry_same_event") == PASS
    assert outcome(pep_platform.judge(given_up[:1] + given_up[3:]), "retry_same_event") == FAIL


def test_an_event_resent_before_its_answer_is_a_retry_after_a_timeout() -> None:
    slow = {"duration_ms": 1500.0}
    # the retry's line comes first: the slow attempt is written when it is answered
    same = [event(1, 1.2, 202), event(2, 0, 202, **slow)]
    verdicts = pep_platform.judge(same)
    assert outcome(verdicts, "retry_same_event") == PASS
    assert outcome(verdicts, "retry_backoff") == PASS
    renamed = [event(1, 1.2, 202, tid="t-2", body="b2"), event(2, 0, 202, **slow)]
    assert outcome(pep_platform.judge(renamed), "retry_same_event") == FAIL
    # a late 503 to an attempt already retried leaves no retry due
    late = [event(1, 1.2, 202), event(2, 0, 503, **slow), event(3, 3, 202, tid="t-2", body="b2")]
    assert {v.outcome for v in pep_platform.judge(late)} <= {PASS, NOT_VERIFIED}
    # three timeouts: the gaps (each the client's timeout plus its delay) must grow
    constant = [event(n, (n - 1) * 1.1, 202, **slow) for n in range(1, 4)]
    constant.append(event(4, 3.3, 202))
    assert outcome(pep_platform.judge(constant), "retry_backoff") == FAIL
    growing = [event(n, at, 202, **slow) for n, at in ((1, 0), (2, 1.2), (3, 2.6))]
    growing.append(event(4, 4.4, 202))
    assert outcome(pep_platform.judge(growing), "retry_backoff") == PASS
    assert outcome(pep_platform.judge(growing), "retry_same_event") == PASS


def test_a_bulk_sync_is_judged_by_its_recorded_size() -> None:
    def sync(status: int = 202, **recorded: Any) -> list[Verdict]:
        return pep_platform.judge([line(1, 0, "POST", pep_platform.BULK_PATH, status,
                                        **recorded)])

    assert outcome(sync(items=20_000, body_bytes=15 * 1024 * 1024), "bulk_sync_within_size") \
        == PASS
    assert outcome(sync(400, items=20_001, body_bytes=900), "bulk_sync_within_size") == FAIL
    assert outcome(sync(413, items=2, body_bytes=15 * 1024 * 1024 + 1),
                   "bulk_sync_within_size") == FAIL
    assert outcome(sync(413, body_bytes_at_least=(32 << 20) + 1), "bulk_sync_within_size") \
        == FAIL
    assert outcome(sync(413), "bulk_sync_within_size") == FAIL  # an older file: its 413
    assert outcome(sync(), "bulk_sync_within_size") == PASS


def test_a_bulk_sync_line_keeps_its_decoded_size_and_count(run: Run) -> None:
    run.fresh()
    players = [{"playerId": f"sized-{n}", "registrationDate": "2026-01-01T00:00:00Z"}
               for n in range(3)]
    raw = json.dumps({"players": players}).encode()
    requests.post(run.url + pep_platform.BULK_PATH, data=gzip.compress(raw), timeout=TIMEOUT,
                  headers={"Authorization": f"Bearer {planted_token(run.url)}",
                           "Content-Type": "application/json", "Content-Encoding": "gzip"})
    sync = [e for e in run.new() if e["path"] == pep_platform.BULK_PATH][-1]
    assert (sync["status"], sync["items"], sync["body_bytes"]) == (202, 3, len(raw)), sync


def test_a_data_fetch_walk_back_and_an_http_date_retry_after() -> None:
    fetch = "/api/data-fetch/v1/players"
    walk = [line(1, 0, "GET", fetch, 200), line(2, 1, "GET", fetch, 200, query={"next": "cDoyMA"}),
            line(3, 2, "GET", fetch, 200, query={"next": "cDoxMA"})]  # p:20, then p:10
    assert outcome(pep_platform.judge(walk), "fetch_follows_next") == FAIL
    assert outcome(pep_platform.judge(walk[:2]), "fetch_follows_next") == PASS
    until = "Tue, 01 Dec 2026 10:00:05 GMT"
    limited = [line(1, 0, "GET", fetch, 429, response_headers={"Retry-After": until}),
               line(2, 4, "GET", fetch, 200)]
    assert outcome(pep_platform.judge(limited), "fetch_honours_retry_after") == FAIL
    limited[1] = line(2, 5, "GET", fetch, 200)
    assert outcome(pep_platform.judge(limited), "fetch_honours_retry_after") == PASS


def test_a_platform_call_without_credential_or_with_a_secret_fails() -> None:
    assert outcome(pep_platform.judge([event(1, 0, 401, credential=None, auth=None)]),
                   "sends_its_oauth_token") == FAIL
    secret = pep_platform.foreign_credentials([], ["s3cret"]).pop()
    verdicts = pep_platform.judge([event(1, 0, 401, credential=secret)], client_secrets=["s3cret"])
    assert outcome(verdicts, "sends_its_oauth_token") == FAIL


def test_a_walk_is_judged_to_its_end_when_the_answer_next_is_recorded() -> None:
    fetch = "/api/data-fetch/v1/players"
    first = line(1, 0, "GET", fetch, 200, answer={"next": "cDoxMA"})
    last = line(2, 1, "GET", fetch, 200, query={"next": "cDoxMA"}, answer={"next": None})
    assert outcome(pep_platform.judge([first, last]), "fetch_follows_next") == PASS
    verdicts = pep_platform.judge([first])
    assert outcome(verdicts, "fetch_follows_next") == FAIL
    breach = next(v for v in verdicts if v.rule.name.endswith("fetch_follows_next")).breaches[0]
    assert breach.seqs == (1,) and "never asked" in breach.detail
    # an older file (no `answer`) is not judged to the end
    assert outcome(pep_platform.judge([line(1, 0, "GET", fetch, 200)]), "fetch_follows_next") \
        == PASS


def test_the_answer_next_is_the_one_closing_the_page() -> None:
    with Flask("answers").app_context():
        page = jsonify({"items": [{"next": "an-item's"}] * 3, "next": "cDoxMA"})
        assert answer_texts(page, ["next"]) == {"next": "cDoxMA"}
        assert answer_texts(jsonify({"items": [], "next": None}), ["next"]) == {"next": None}
        assert answer_texts(jsonify({"items": [{"a": "x" * 2000}]}), ["next"]) == {}
