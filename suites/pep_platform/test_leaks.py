"""Malformed, hostile or refused requests to the token endpoint, the events, the sync and the data
fetch: never a 5xx, and nothing of the server's insides in any answer."""

from __future__ import annotations

import json
from collections.abc import Callable

import requests

from pepharness.suites.http import summarize
from pepharness.suites.leaks import answer_leaks
from pepharness.suites.pep_platform import rules
from pepharness.suites.pep_platform.client import (
    MIGRATE,
    TASK_OPERATION,
    TOKEN,
    Platform,
    event_operation,
    money,
)
from pepharness.suites.rules import covers, fail

Probe = Callable[[Platform], requests.Response]
DEEP = b"[" * 50_000 + b"]" * 50_000


def _token_raw(data: bytes, content_type: str) -> Probe:
    return lambda p: p.target.request(
        "POST", TOKEN, data=data, headers={"Content-Type": content_type}
    )


def _event_raw(data: bytes) -> Probe:
    return lambda p: p.event_bytes("money", data)


def _sync_raw(data: bytes, encoding: str) -> Probe:
    return lambda p: p.target.request(
        "POST", MIGRATE, data=data,
        headers={"Content-Type": "application/json", "Content-Encoding": encoding,
                 "Authorization": p.bearer()},
    )


def _huge_number() -> bytes:
    return json.dumps(money()).replace('"amount": 25.5', '"amount": 1' + "0" * 400).encode()


PROBES: dict[str, Probe] = {
    "a token form that is not a form": _token_raw(b"\xff\xfe=&&=", "application/x-www-form-"
                                                  "urlencoded"),
    "a token request nested 50,000 deep": _token_raw(DEEP, "application/json"),
    "a token request as XML": _token_raw(b"<token/>", "application/xml"),
    "an unknown grant_type": lambda p: p.token_by_basic(form={"grant_type": "../../etc/passwd"}),
    "an event that is not JSON": _event_raw(b'{"playerId": '),
    "an event nested 50,000 deep": _event_raw(DEEP),
    "an event with bytes that are not UTF-8": _event_raw(b'{"playerId": "\xff\xfe"}'),
    "an event with an amount of 401 digits": lambda p: p.event_bytes("money", _huge_number()),
    "an event with a 1,000-character date": lambda p: p.event(
        "money", money(date="2026-11-25T" + "9" * 1000)
    ),
    "a gzip sync that is not gzip": _sync_raw(b"not gzip at all", "gzip"),
    "a sync in an unknown encoding": _sync_raw(b"{}", "compress"),
    "a data fetch with limit=abc": lambda p: p.fetch("players", {"limit": "abc"}),
    "an unknown task": lambda p: p.call(TASK_OPERATION, authorization=p.bearer()),
    "a token of 10,000 characters": lambda p: p.call(
        event_operation("login"), authorization="Bearer " + "a" * 10_000
    ),
    "GET on an event endpoint": lambda p: p.target.request(
        "GET", "/rx-api/transactions/v1/money-transaction", headers={"Authorization": p.bearer()}
    ),
    "an unknown path": lambda p: p.target.request("GET", "/rx-api/pepharness/v1/nothing"),
    # A lone surrogate is valid JSON (an escape) that no UTF-8 store can hold.
    "a JSON token request with a lone surrogate": _token_raw(
        b'{"clientId": "\\ud800", "clientSecret": "\\ud800"}', "application/json"
    ),
    "an event with a lone surrogate": lambda p: p.event_bytes(
        "money", json.dumps(money("pepharness-\ud800")).encode()
    ),
}


@covers(rules.HOSTILE_NO_5XX)
def test_hostile_input_is_not_a_server_error(platform: Platform) -> None:
    for case, probe in PROBES.items():
        response = probe(platform)
        if response.status_code >= 500:
            fail(
                rules.HOSTILE_NO_5XX,
                f"{case} is answered {response.status_code}",
                received=summarize(response, 300),
                documented="a 4xx (or a 2xx for input the contract allows); 500 only when the "
                "PEP itself fails (D52, D56)",
                curl=platform.curl(response),
            )


@covers(rules.NO_LEAKED_INTERNALS)
def test_errors_do_not_leak_internals(platform: Platform) -> None:
    for case, probe in PROBES.items():
        response = probe(platform)
        shown = answer_leaks(response)
        if shown:
            fail(
                rules.NO_LEAKED_INTERNALS,
                f"the answer to {case} shows {shown.split(':')[0]}",
                received=f"{summarize(response, 300)}\n{shown}",
                documented='a generic error: {"error": code, "message": text} (D56), nothing '
                "of the server",
                curl=platform.curl(response),
            )
