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


@pytest.fixture(scope="module")
def sinatra_app() -> Flask:
    """A small mock (200 rounds): these tests are about inputs, not data."""
    return create_app({"SEED": 42, "ROUNDS": 200})

JSON = {"Content-Type": "application/json"}
NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"]
"""Raw JSON texts: Python's json reads them as floats no JSON number can be."""


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
    for text in [*WRONG_NUMBERS, "0", "-1", "1.5", "1000001", str(10**30), "5.0"]:
        response = post_raw(sinatra, "/rate-limit", f'{{"limit": {text}}}')
        assert refused(response), (text, response.text)
    assert sinatra.admin("GET", "/rate-limit") == {"limit": 5, "period_seconds": 1.0}
    edges = [{"limit": 1_000_000, "period_seconds": 86400}, {"limit": 1, "period_seconds": 0.001}]
    for body in edges:
        assert sinatra.admin("POST", "/rate-limit", json=body) == body


def test_clock_bounds(sinatra: SinatraClient) -> None:
    before = sinatra.admin("GET", "/clock")["now"]
    for text in [*WRONG_NUMBERS, "1.35e308", str(10**40), "-1e12", "1e300"]:
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
        "2026-01-01T00:00:00",
        "2026-01-01",
    ]:
        response = sinatra.post("/__admin/clock", json={"set": when})
        assert refused(response), (when, response.text)
    for text in ["null", "1", "true"]:
        assert refused(post_raw(sinatra, "/clock", f'{{"set": {text}}}')), text
    # Nothing refused moved the clock (it flows with real time, so compare minutes).
    assert sinatra.admin("GET", "/clock")["now"][:16] == before[:16]
    for when in (EARLIEST, LATEST):
        assert sinatra.admin("POST", "/clock", json={"set": to_rfc3339(when)}) == {
            "now": to_rfc3339(when)
        }
    # At the end of the range, moving forward is refused and moving back works.
    assert refused(sinatra.post("/__admin/clock", json={"advance_seconds": 86400}))
    assert sinatra.admin("POST", "/clock", json={"advance_seconds": -86400})["now"] < to_rfc3339(
        LATEST
    )


def test_fault_rule_bounds(sinatra: SinatraClient) -> None:
    rule = {"path": "/nowhere", "status": 503}
    for key, texts in {
        "times": [*WRONG_NUMBERS, "0", "-1", "1.5", "1000000001", str(10**40)],
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
    added = sinatra.admin("POST", "/faults", json={**rule, "times": 1_000_000_000})
    assert added["faults"][0]["times"] == 1_000_000_000


def test_journal_limit_and_user_operators(sinatra: SinatraClient) -> None:
    for text in ["0", "-1", "+1", "1e3", "1.0", " 1", "", "\u0663", "\u00b2", "9" * 19, "9" * 5000]:
        response = sinatra.get("/__admin/requests", params={"limit": text})
        assert refused(response), (text, response.text)
    answer = sinatra.get("/__admin/requests", params={"limit": "0" * 30 + "2"})
    assert answer.status_code == 200 and len(answer.json()["requests"]) <= 2
    for operators in ([10**18], [-1], [True], [1.5], [None], 7):
        body = {"email": "edge@example.com", "password": "pw", "available_operators": operators}
        response = sinatra.post("/__admin/users", json=body)
        assert refused(response), (operators, response.text)


def test_bodies_over_a_mebibyte_are_413(sinatra: SinatraClient) -> None:
    big = b" " * (1024 * 1024 + 1)
    for path in ("/clock", "/faults", "/rate-limit", "/users"):
        response = sinatra.post("/__admin" + path, data=big, headers=JSON)
        assert response.status_code == 413, (path, response.text)
        assert list(response.json()) == ["error"]
