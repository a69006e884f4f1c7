"""The identity endpoint's answers: valid, expired and unknown tokens, malformed and hostile
requests, and nothing of the server's insides in any answer."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

import pytest
import requests

from pepharness.suites.http import summarize
from pepharness.suites.leaks import answer_leaks
from pepharness.suites.operator import rules
from pepharness.suites.operator.client import (
    OPERATION,
    Operator,
    answered_at,
    body_of,
    parse_rfc3339,
    unknown_token,
)
from pepharness.suites.plugin import active_options
from pepharness.suites.rules import covers, fail, not_verified

OPTIONS = active_options()
VALID = list(range(1, len(OPTIONS.valid_tokens) + 1)) or [0]
EXPIRED = list(range(1, len(OPTIONS.expired_tokens) + 1)) or [0]

Probe = Callable[[Operator], requests.Response]


def _valid(operator: Operator, number: int) -> str:
    if number == 0:
        not_verified("no --valid-token given")
    return operator.options.valid_tokens[number - 1]


def _player_answer(operator: Operator, number: int) -> requests.Response:
    token = _valid(operator, number)
    response = operator.validate(token)
    if response.status_code != 200:
        fail(
            rules.VALID_TOKEN_RETURNS_PLAYER,
            f"valid token #{number} is not answered 200",
            received=summarize(response),
            documented="200 {playerId, expiresAt?}",
            curl=operator.curl(response),
        )
    return response


@pytest.mark.parametrize("number", VALID)
@covers(rules.VALID_TOKEN_RETURNS_PLAYER, operation=OPERATION)
def test_valid_token_returns_player_id(operator: Operator, number: int) -> None:
    response = _player_answer(operator, number)
    media = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        fail(
            rules.VALID_TOKEN_RETURNS_PLAYER,
            f"valid token #{number}: the 200 is not JSON",
            received=f"Content-Type: {response.headers.get('Content-Type')}",
            documented="Payload (JSON)",
            curl=operator.curl(response),
        )
    body = body_of(response)
    player = body.get("playerId") if isinstance(body, dict) else None
    if not isinstance(player, str) or not player:
        fail(
            rules.VALID_TOKEN_RETURNS_PLAYER,
            f"valid token #{number}: the 200 has no non-empty string playerId",
            received=summarize(response),
            documented="playerId: <string|required>",
            curl=operator.curl(response),
        )


@pytest.mark.parametrize("number", VALID)
@covers(rules.EXPIRES_AT_IS_RFC3339, rules.EXPIRES_AT_IN_FUTURE, operation=OPERATION)
def test_expires_at(operator: Operator, number: int) -> None:
    response = _player_answer(operator, number)
    body = body_of(response)
    if not isinstance(body, dict) or "expiresAt" not in body:
        return  # optional: nothing to hold it to
    value = body["expiresAt"]
    try:
        if not isinstance(value, str):
            raise ValueError(f"{value!r} is not a string")
        expires = parse_rfc3339(value)
    except ValueError as error:
        fail(
            rules.EXPIRES_AT_IS_RFC3339,
            f"valid token #{number}: expiresAt is not RFC 3339",
            received=f"{summarize(response)}\n{error}",
            documented="expiresAt: <RFC 3339 format DateTime|optional>, e.g. "
            "2026-11-25T14:44:13Z",
            curl=operator.curl(response),
        )
    now = answered_at(response)
    # The Date header has whole seconds: a second of grace, no more.
    if expires <= now - timedelta(seconds=1):
        fail(
            rules.EXPIRES_AT_IN_FUTURE,
            f"valid token #{number}: expiresAt has already passed",
            received=f"expiresAt {value}, answered at {now.isoformat()}",
            documented="the datetime until the Player Identity token is valid: later than now",
            curl=operator.curl(response),
        )


@pytest.mark.parametrize("number", VALID)
@covers(rules.SAME_TOKEN_SAME_PLAYER, operation=OPERATION)
def test_same_token_same_player(operator: Operator, number: int) -> None:
    token = _valid(operator, number)
    answers = [operator.validate(token) for _ in range(3)]
    players = [
        body.get("playerId") if isinstance(body := body_of(a), dict) else None for a in answers
    ]
    if any(a.status_code != 200 for a in answers) or len(set(players)) != 1:
        fail(
            rules.SAME_TOKEN_SAME_PLAYER,
            f"valid token #{number} answered differently three times in a row",
            received="; ".join(summarize(a, 80) for a in answers),
            documented="the same 200 playerId each time",
            curl=operator.curl(answers[-1]),
        )


@pytest.mark.parametrize("number", EXPIRED)
@covers(rules.EXPIRED_TOKEN_REFUSED, operation=OPERATION)
def test_expired_token_is_401(operator: Operator, number: int) -> None:
    if number == 0:
        not_verified("no --expired-token given")
    response = operator.validate(operator.options.expired_tokens[number - 1])
    if response.status_code != 401:
        fail(
            rules.EXPIRED_TOKEN_REFUSED,
            f"expired token #{number} is not 401",
            received=summarize(response),
            documented="401: Token Invalid or expired",
            curl=operator.curl(response),
        )


def near_misses(token: str) -> list[str]:
    """Tokens close to a valid one that no operator issued: cut short, extended, another case,
    one character changed."""
    changed = token[:-1] + ("0" if token[-1:] != "0" else "1")
    misses = [token[: max(1, len(token) // 2)], token[:-1], token + "0", changed]
    misses += [token.swapcase()] if token.swapcase() != token else []
    return [miss for miss in misses if miss != token]


@covers(rules.UNKNOWN_TOKEN_REFUSED, operation=OPERATION)
def test_unknown_token_is_401(operator: Operator) -> None:
    tokens = [unknown_token(), unknown_token().upper(), "x" + unknown_token()]
    for valid in operator.options.valid_tokens:
        tokens += [miss for miss in near_misses(valid) if miss not in operator.options.valid_tokens]
    for token in tokens:
        response = operator.validate(token)
        if response.status_code != 401:
            fail(
                rules.UNKNOWN_TOKEN_REFUSED,
                "a token the operator never issued is not 401",
                received=summarize(response),
                documented="401: Token Invalid or expired",
                curl=operator.curl(response),
            )


MALFORMED: dict[str, bytes] = {
    "no identityToken": b"{}",
    "an empty identityToken": b'{"identityToken": ""}',
    "a number as identityToken": b'{"identityToken": 12345}',
    "a null identityToken": b'{"identityToken": null}',
    "a list as identityToken": b'{"identityToken": ["a"]}',
    "a JSON array body": b"[]",
    "a body that is not JSON": b'{"identityToken": ',
    "an empty body": b"",
}


@pytest.mark.parametrize("case", list(MALFORMED))
@covers(rules.MALFORMED_REFUSED, rules.MALFORMED_IS_400, operation=OPERATION)
def test_malformed_request_is_refused(operator: Operator, case: str) -> None:
    response = operator.post(MALFORMED[case])
    if response.status_code not in (400, 401):
        fail(
            rules.MALFORMED_REFUSED,
            f"{case} is not refused with 400 or 401",
            received=summarize(response),
            documented="400: Invalid parameter (or 401: Token Invalid)",
            curl=operator.curl(response),
        )
    if response.status_code != 400:
        fail(
            rules.MALFORMED_IS_400,
            f"{case} is {response.status_code}, not 400",
            received=summarize(response),
            documented="400: Invalid parameter",
            curl=operator.curl(response),
        )


def _token_body(token: str) -> bytes:
    return json.dumps({"identityToken": token}).encode()


HOSTILE: dict[str, Probe] = {
    "JSON nested 50,000 deep": lambda op: op.post(b"[" * 50_000 + b"]" * 50_000),
    "an identityToken of 200 kB": lambda op: op.post(_token_body("a" * 200_000)),
    "an SQL injection as identityToken": lambda op: op.post(_token_body("' OR '1'='1' --")),
    "a path as identityToken": lambda op: op.post(_token_body("../../../../etc/passwd")),
    "a template injection as identityToken": lambda op: op.post(_token_body("${7*7}{{7*7}}")),
    "control characters in identityToken": lambda op: op.post(_token_body("\x00\x1b[31m\n")),
    "text/plain instead of JSON": lambda op: op.post(
        _token_body(unknown_token()), content_type="text/plain"
    ),
    "bytes that are not UTF-8": lambda op: op.post(b'{"identityToken": "\xff\xfe\xfd"}'),
}


@pytest.mark.parametrize("case", list(HOSTILE))
@covers(rules.HOSTILE_REFUSED, operation=OPERATION)
def test_hostile_input_is_refused(operator: Operator, case: str) -> None:
    response = HOSTILE[case](operator)
    if not 400 <= response.status_code < 500:
        fail(
            rules.HOSTILE_REFUSED,
            f"{case} is not refused with a 4xx",
            received=summarize(response),
            documented="400: Invalid parameter or 401: Token Invalid (never 2xx, never 5xx)",
            curl=operator.curl(response),
        )


def _wrong_method(operator: Operator) -> requests.Response:
    return operator.target.request("GET", "/api/auth/v1/player")


def _posting(body: bytes) -> Probe:
    """A probe that POSTs `body` as it is."""

    def probe(operator: Operator) -> requests.Response:
        return operator.post(body)

    return probe


def _valid_answer(operator: Operator) -> requests.Response:
    if not operator.options.valid_tokens:
        return operator.validate(unknown_token())
    return operator.validate(operator.options.valid_tokens[0])


LEAK_PROBES: dict[str, Probe] = {
    "a valid token": _valid_answer,
    **{case: _posting(body) for case, body in MALFORMED.items()},
    **HOSTILE,
    "an unknown token": lambda op: op.validate(unknown_token()),
    "GET instead of POST": _wrong_method,
}


@covers(rules.NO_LEAKED_INTERNALS, operation=OPERATION)
def test_errors_do_not_leak_internals(operator: Operator) -> None:
    for case, probe in LEAK_PROBES.items():
        response = probe(operator)
        shown = answer_leaks(response)
        if shown:
            fail(
                rules.NO_LEAKED_INTERNALS,
                f"the answer to {case} shows {shown.split(':')[0]}",
                received=f"{summarize(response, 300)}\n{shown}",
                documented="a generic error: status and a short message, nothing of the server",
                curl=operator.curl(response),
            )
