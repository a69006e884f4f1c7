"""Issue 13: the `/__admin` control API takes hostile numbers like any input (D73), over real
HTTP on the Sinatra mock: every refused value is a 400 in the admin error shape, a body over
1 MiB is the documented 413, and nothing is a 500. Every answer also goes through the contract
hook of conftest.py (admin.yaml)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask

from pepharness.mocks.core.clock import EARLIEST, LATEST, to_rfc3339
from pepharness.mocks.sinatra import create_app

if TYPE_CHECKING:
    from conftest import SinatraClient


JSON = {"Content-Type": "application/json"}
NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"]
"""Raw JSON texts: Python's json reads them as floats no JSON number can be."""


@pytest.fixture(scope="module")
def sinatra_app() -> Flask:
    """A small mock (200 rounds): these tests are about inputs, not data."""
    return create_app({"SEED": 42, "ROUNDS": 200})


def post_raw(sinatra: SinatraClient, path: str, text: str) -> Any:
    return sinatra.post("/__admin" + path, data=text.encode(), headers=JSON)


def refused(response: Any) -> bool:
    """A 400 in the admin error shape."""
    body = response.json()
    return response.status_code == 400 and list(body) == ["error"] and bool(body["error"])


WRONG_NUMBERS = ["null", "true", "false", '"1"', "[]", "{}", *NON_FINITE]


def test_rate_limit_bounds(sinatra: SinatraClient) -> None:
    for text in [*WRONG_NUMBERS, "1.35e308", "0", "-1", "0.0009", "86400.001", "1e20"]:
        response = post_raw(sinatra, "/rate-limit", f'{{"period_seconds": {text}}}')
        assert refused(response), (text, response.text)
    for text in [*WRONG_NUMBERS, "0", "-1", "1.5", "1000001", str(10**30), "1000000.5"]:
        response = post_raw(sinatra, "/rate-limit", f'{{"limit": {text}}}')
        assert refused(response), (text, response.text)
    assert sinatra.admin("GET", "/rate-limit") == {"limit": 5, "period_seconds": 1.0}
    # JSON Schema's `integer` is any number without a fraction: 7.0 is 7.
    assert sinatra.admin("POST", "/rate-limit", json={"limit": 7.0})["limit"] == 7
    edges = [{"limit": 1_000_000, "period_seconds": 86400}, {"limit": 1, "period_seconds": 0.001}]
    for body in edges:
        assert sinatra.admin("POST", "/rate-limit", json=body) == body


def test_clock_bounds(sinatra: SinatraClient) -> None:
    before = sinatra.admin("GET", "/clock")["now"]
    for text in [*WRONG_NUMBERS, "1.35e308", str(10**40), "-1e12", "1e300", "260000000001"]:
        response = post_raw(sinatra, "/clock", f'{{"advance_seconds": {text}}}')
        assert refused(response), (text, response.text)
    for when in [
        "0001-01-01T00:00:00Z",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "9999-12-31T23:59:59Z",
        "1969-12-31T23:59:59Z",
        "9999-01-01T00:00:00Z",
        "2026-02-30T00:00:00Z",
        "2026-01-01T24:00:00Z",
        "2026-12-31T23:59:60Z",
        "2026-01-01T00:00:00",
        "2026-01-01",
    ]:
        response = sinatra.post("/__admin/clock", json={"set": when})
        assert refused(response), (when, response.text)
    for text in ["null", "1", "true"]:
        assert refused(post_raw(sinatra, "/clock", f'{{"set": {text}}}')), text
    # Nothing refused moved the clock (it flows with real time, so compare minutes).
    assert sinatra.admin("GET", "/clock")["now"][:16] == before[:16]
    # The years 1970 to 9998 as written, whatever the offset (admin.yaml's pattern).
    for when, now in [
        ("1970-01-01T00:00:00Z", "1970-01-01T00:00:00.000Z"),
        ("1970-01-01T00:00:00+23:59", "1969-12-31T00:01:00.000Z"),
        ("9998-12-31T23:59:59Z", "9998-12-31T23:59:59.000Z"),
        ("9998-12-31T23:59:59.999-23:59", "9999-01-01T23:58:59.999Z"),
    ]:
        assert sinatra.admin("POST", "/clock", json={"set": when}) == {"now": now}
    # A move past either end of the range stops there.
    end = to_rfc3339(LATEST)
    assert sinatra.admin("POST", "/clock", json={"advance_seconds": 86400}) == {"now": end}
    assert sinatra.admin("POST", "/clock", json={"advance_seconds": -86400})["now"] < end
    assert sinatra.admin("POST", "/clock", json={"advance_seconds": 2.6e11}) == {"now": end}
    start = to_rfc3339(EARLIEST)
    assert sinatra.admin("POST", "/clock", json={"advance_seconds": -2.6e11}) == {"now": start}


def test_fault_rule_bounds(sinatra: SinatraClient) -> None:
    rule = {"path": "/nowhere", "status": 503}
    for key, texts in {
        "times": [*WRONG_NUMBERS, "0", "-1", "1.5", "1000000001", "1e10", str(10**40)],
        "status": [*WRONG_NUMBERS, "99", "600", "500.5"],
        "latency_ms": [*WRONG_NUMBERS, "-1", "120001", "1.5"],
        "probability": [*WRONG_NUMBERS, "-0.1", "1.1"],
        "method": ["null", "1", '"BREW"'],
        "path": ["null", '""', "1"],
    }.items():
        for text in texts:
            body = json.dumps({**rule, key: 0})[:-1].replace(f'"{key}": 0', f'"{key}": {text}')
            response = post_raw(sinatra, "/faults", body + "}")
            assert refused(response), (key, text, response.text)
    assert sinatra.admin("GET", "/faults") == {"faults": []}
    # A rule needs a status or a latency of at least 1 ms, and a body needs a status.
    for body in [{"path": "/x"}, {"path": "/x", "latency_ms": 0}, {"path": "/x", "body": "x"}]:
        assert refused(sinatra.post("/__admin/faults", json=[body])), body
    added = sinatra.admin("POST", "/faults", json={**rule, "times": 1_000_000_000})
    assert added["faults"][0]["times"] == 1_000_000_000
    added = sinatra.admin("POST", "/faults", json={**rule, "times": 2.0, "status": 503.0})
    assert (added["faults"][0]["times"], added["faults"][0]["status"]) == (2, 503)


def test_journal_limit_and_user_operators(sinatra: SinatraClient) -> None:
    for text in ["0", "-1", "+1", "1e3", "1.0", " 1", "", "\u0663", "\u00b2", "9" * 19, "9" * 5000]:
        response = sinatra.get("/__admin/requests", params={"limit": text})
        assert refused(response), (text, response.text)
    answer = sinatra.get("/__admin/requests", params={"limit": "0" * 5000 + "2"})
    assert answer.status_code == 200 and len(answer.json()["requests"]) <= 2
    for operators in ([10**18], [-1], [True], [1.5], [None], ["1"], 7):
        body = {"email": "edge@example.com", "password": "pw", "available_operators": operators}
        response = sinatra.post("/__admin/users", json=body)
        assert refused(response), (operators, response.text)
    for permissions in ([0], [1.5], [True], [None], ["Fly"], "View games catalog"):
        body = {"email": "edge@example.com", "password": "pw", "permissions": permissions}
        response = sinatra.post("/__admin/users", json=body)
        assert refused(response), (permissions, response.text)
    body = {
        "email": "edge@example.com",
        "password": "pw",
        "permissions": [1.0, "View game history"],
        "available_operators": [5.0],
    }
    added = sinatra.admin("POST", "/users", json=body)
    assert (added["permissions"], added["available_operators"]) == (
        ["View games catalog", "View game history"],
        [5],
    )


def test_bodies_over_a_mebibyte_are_413(sinatra: SinatraClient) -> None:
    big = b" " * (1024 * 1024 + 1)
    for path in ("/clock", "/faults", "/rate-limit", "/users"):
        response = sinatra.post("/__admin" + path, data=big, headers=JSON)
        assert response.status_code == 413, (path, response.text)
        assert list(response.json()) == ["error"]
