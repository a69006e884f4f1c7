"""The boundary values, the probes built from them, their curl lines, and the rule and the fuzz
flow that send them, over real HTTP against the mocks and a planted Sinatra."""

from __future__ import annotations

import http.server
import subprocess
import threading
from collections.abc import Iterator
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

import pytest
from planted.variants import server_error_after_2100

from pepharness.mocks.core import ThreadedServer
from pepharness.suites import boundaries, boundary_values
from pepharness.suites.fuzz.apis import APIS
from pepharness.suites.fuzz.findings import SERVER_ERROR
from pepharness.suites.fuzz.model import Settings
from pepharness.suites.fuzz.runner import Runner
from pepharness.suites.operator import rules as operator_rules
from pepharness.suites.operator.client import Operator
from pepharness.suites.options import SuiteOptions
from pepharness.suites.rules import RuleFailures
from pepharness.suites.sinatra import rules as sinatra_rules
from pepharness.suites.sinatra.client import Sinatra

HISTORY = "GET /transactions/{version}/games/history"
CATALOG = "GET /games/{version}/view/detailed"
LOGIN = "POST /{version}/login/"


def texts(values: tuple[boundary_values.Value, ...]) -> set[bytes]:
    return {value.text for value in values}


def test_each_kind_has_its_edges() -> None:
    dates = boundary_values.kinds({"string"}, {"date"})
    assert {b"0001-01-01", b"9999-12-31", b"2026-02-30", b"2026-13-01"} <= texts(dates)
    assert {v.text for v in dates if v.impossible} == {b"2026-02-30", b"2026-13-01", b"2026-01-00"}
    times = texts(boundary_values.kinds({"string"}, {"date-time"}))
    assert {b"9999-12-31T23:59:59.999999Z", b"2026-01-01T24:00:00Z"} <= times
    integers = texts(boundary_values.kinds({"integer"}, set()))
    assert {b"9223372036854775807", b"9223372036854775808", b"-9223372036854775809",
            b"123456789012345678", b"1234567890123456789", b"+1", b"-1", b"007", b"1e3",
            "١٢".encode(), b"1.5"} <= integers
    every = boundary_values.kinds(set(), set())
    assert {b"", b"   ", b"\x00", b"\xff\xfe", b"\xed\xa0\x80"} == texts(every)
    assert b'"\\ud800"' in {value.json for value in every}
    # Interleaved: a capped list still holds both the kind's edges and the text.
    assert [v.text for v in dates[:2]] == [b"0001-01-01", b"\xed\xa0\x80"]


def history_base() -> boundaries.Base:
    return boundaries.Base(
        HISTORY, {"version": "1.0"}, headers={"jwt-auth": "token"}, credential="jwt-auth",
        companions={"from": {"to": "2026-01-31"}, "to": {"from": "2026-01-01"}},
    )


def test_each_probe_changes_one_place() -> None:
    found = boundaries.probes("sinatra", history_base())
    names = {p.name for p in boundaries.parameters("sinatra", HISTORY) if p.location == "query"}
    probed = {probe.where.split(" ")[1] for probe in found if probe.where.startswith("query")}
    assert probed == names
    for probe in found:
        url = urlsplit(probe.target)
        assert url.path == "/transactions/1.0/games/history" or probe.where.startswith("path")
        pairs = parse_qsl(url.query, keep_blank_values=True)
        if probe.where.endswith("repeated"):
            name = probe.where.split(" ")[1]
            assert [k for k, _ in pairs].count(name) == 2
        elif probe.where.startswith("query"):
            name = probe.where.split(" ")[1]
            companions = history_base().companions.get(name, {})
            assert {k for k, _ in pairs} == {name, *companions}
            assert dict(pairs).items() >= dict(companions).items()
        elif probe.where.startswith("credentials"):
            assert pairs == [] and probe.headers["jwt-auth"] == probe.value.text
        else:
            assert probe.where.startswith("path") and pairs == []
        if not probe.where.startswith("credentials"):
            assert probe.headers["jwt-auth"] == "token"
    # The bytes themselves, percent-encoded: nothing was decoded or replaced on the way.
    surrogate = [p for p in found if p.label == "query to = lone surrogate"]
    assert surrogate and "to=%ED%A0%80" in surrogate[0].target


def test_body_probes_replace_one_field_with_the_exact_bytes() -> None:
    base = boundaries.Base(LOGIN, {"version": "1.0"}, body={"email": "e", "password": "p"})
    found = boundaries.probes("sinatra", base)
    bodies = {p.label: p.body for p in found if p.where.startswith("body")}
    assert bodies["body email = lone surrogate"] == b'{"email": "\\ud800", "password": "p"}'
    assert bodies["body password = non-UTF-8 bytes"] == b'{"email": "e", "password": "\xff\xfe"}'
    assert bodies["body = body of non-UTF-8 bytes"] == b"\xff\xfe\xfd"
    assert all(p.headers["Content-Type"] == "application/json" for p in found)


def test_form_and_basic_credentials_are_probed() -> None:
    base = boundaries.Base(
        "POST /api/oauth/v1/token", form={"grant_type": "client_credentials"},
        headers={"Authorization": "Basic eDp5"}, credential="Authorization", basic=True,
    )
    found = {p.label: p for p in boundaries.probes("pep-platform", base)}
    repeated = found["form grant_type repeated = repeated parameter"]
    assert repeated.body == b"grant_type=client_credentials&grant_type=password"
    utf8 = found["credentials Authorization = Basic with non-UTF-8 user and password"]
    assert utf8.headers["Authorization"] == b"Basic //46/w=="


class Capture(http.server.BaseHTTPRequestHandler):
    """Keeps the raw request it gets: what a curl line really sends."""

    seen: ClassVar[list[tuple[bytes, bytes, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        raw = b"".join(f"{k}: ".encode() + v.encode("latin-1") for k, v in self.headers.items()
                       if k.lower() == "x-probe")
        Capture.seen.append((self.path.encode(), raw, body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def capture() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Capture)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_curl_line_sends_the_exact_bytes(capture: str) -> None:
    probe = boundaries.Probe(
        "POST /x", "body", boundary_values.TEXTS[4], "POST", "/x?q=%FF%FE",
        {"X-Probe": b"\xff\xfe'\\", "Content-Type": "application/json"},
        b'{"a": "\xff\xfe", "b": "\\ud800", "c": "it\'s $HOME"}',
    )
    line = boundaries.curl(capture, probe)
    assert "$'" in line
    subprocess.run(["bash", "-c", line + " -o /dev/null"], check=True, timeout=30)
    path, header, body = Capture.seen[-1]
    assert path == b"/x?q=%FF%FE"
    assert header == b"X-Probe: \xff\xfe'\\"
    assert body == probe.body


@pytest.fixture(scope="module")
def planted() -> Iterator[str]:
    with ThreadedServer(server_error_after_2100(), threads=4) as server:
        yield server.url


def test_a_5xx_fails_the_rule_with_a_curl_line(planted: str) -> None:
    sinatra = Sinatra(SuiteOptions(base_url=planted, expect_rate_limit=(50, 1.0)))
    found = boundaries.probes("sinatra", boundaries.sinatra_base(sinatra, HISTORY))
    with pytest.raises(RuleFailures) as raised:
        boundaries.never_5xx(sinatra.target, sinatra_rules.BOUNDARY_VALUES_NEVER_5XX, found)
    failures = raised.value.failures
    assert {f.title.split(": ", 1)[1] for f in failures} == {
        "query from = largest date", "query to = largest date",
    }
    assert all(f.rule.name == "check_boundary_values_never_5xx" for f in failures)
    assert all("9999-12-31" in f.curl and f.curl.startswith("curl ") for f in failures)
    assert all("$JWT_AUTH" in f.curl for f in failures)
    # The impossible dates get their 4xx there: the SHOULD rule passes.
    assert boundaries.refused(sinatra.target, sinatra_rules.IMPOSSIBLE_DATES_REFUSED,
                              boundaries.impossible(found)) == 6
    sinatra.target.close()


def test_the_operator_mock_answers_every_boundary_without_5xx(
    operator_server: ThreadedServer,
) -> None:
    operator = Operator(SuiteOptions(base_url=operator_server.url))
    operation = boundaries.operations("operator-identity")[0]
    found = boundaries.probes("operator-identity", boundaries.operator_base(operator, operation))
    sent = boundaries.never_5xx(
        operator.target, operator_rules.BOUNDARY_VALUES_NEVER_5XX, found
    )
    assert sent == len(found) >= 8
    operator.target.close()


def test_the_fuzz_boundary_flow_finds_the_5xx(planted: str) -> None:
    suite = SuiteOptions(base_url=planted, seed=1)
    settings = Settings(
        api="sinatra", base_url=planted, requests=320, concurrency=4, seed=1, variety=4,
        latency_budget_ms=10_000, suite=suite, profile={"boundary": 1},
    )
    api = APIS["sinatra"](suite)
    try:
        result = Runner(settings, api).run()
    finally:
        api.close()
    found = {(f.operation, f.kind, f.status): f for f in result.findings.sorted()}
    # Every operation with a date in its query: the catalog's date_from and both histories.
    assert set(found) == {
        (CATALOG, SERVER_ERROR, 500), (HISTORY, SERVER_ERROR, 500),
        (HISTORY + "/api", SERVER_ERROR, 500),
    }, result.notes
    finding = found[(HISTORY, SERVER_ERROR, 500)]
    assert "9999-12-31" in finding.curl and "boundary value" in finding.title
    assert finding.entry["_pepharness"]["flow"] == "boundary"
    assert result.statuses.get("500", 0) >= 2
