"""The login: the call the PEP makes to the operator, how it maps the operator's answers, how
long it waits, and the token it issues."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from pepharness.suites.http import summarize
from pepharness.suites.jwts import jwt_claims, jwt_header
from pepharness.suites.leaks import answer_leaks
from pepharness.suites.pep_frontend import rules
from pepharness.suites.pep_frontend.client import (
    LOGIN,
    LOGIN_OPERATION,
    Pep,
    access_token,
    body_of,
    player_operations,
)
from pepharness.suites.pep_frontend.harness import Call, HarnessOperator, new_token
from pepharness.suites.rules import Rule, covers, fail, not_verified

SECRET_KEY = re.compile(r"(?i)secret|password|passwd|credential")
GATEWAY_STATUSES = (502, 503, 504)
READ_OPERATION = next(op for op in player_operations() if op.startswith("GET "))


def _rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _login(
    pep: Pep, operator: HarnessOperator, **rule: Any
) -> tuple[str, requests.Response, list[Call]]:
    """A new identity token programmed as `rule`, a login with it, and the calls it made."""
    mark = operator.mark()
    token = operator.program(**rule)
    response = pep.login(token)
    return token, response, operator.calls(token, since=mark)


def _issued(pep: Pep, operator: HarnessOperator, rule: Rule, **program: Any) -> str:
    """The token of a login the operator validates; `rule` fails when there is none."""
    _, response, _ = _login(pep, operator, **program)
    token = access_token(response) if response.status_code == 200 else None
    if token is None:
        fail(
            rule,
            "a login the operator validates issues no token",
            received=summarize(response),
            documented="200 {accessToken, tokenType, expiresAt, expiresIn, playerId} (D43)",
            curl=pep.curl(response),
            operation=LOGIN_OPERATION,
        )
    return token


@covers(
    rules.OPERATOR_CALLED, rules.SECRET_NOT_SENT, rules.ONLY_IDENTITY_TOKEN,
    operation=LOGIN_OPERATION,
)
def test_operator_call(pep: Pep, operator: HarnessOperator) -> None:
    token, response, calls = _login(pep, operator)
    if len(calls) != 1 or not isinstance(calls[0].body, dict) or calls[0].keys is None:
        fail(
            rules.OPERATOR_CALLED,
            f"a login made {len(calls)} call(s) to the operator with the identity token",
            received=f"login {summarize(response)}; operator calls: "
            f"{[c.body for c in calls] or 'none'}",
            documented="one POST /api/auth/v1/player {\"identityToken\": ...}",
            curl=pep.curl(response),
        )
    call = calls[0]
    if operator.owned and call.body.get("identityToken") != token:
        fail(
            rules.OPERATOR_CALLED,
            "the operator call's identityToken is not the token the front end sent",
            received=f"body keys {list(call.keys or [])}",
            documented="identityToken: the front end's identityToken, unchanged",
            curl=pep.curl(response),
        )
    secret_keys = [key for key in call.keys or () if SECRET_KEY.search(key)]
    secret = pep.options.client_secret
    if secret_keys or (secret and secret in call.text()):
        fail(
            rules.SECRET_NOT_SENT,
            "the call to the operator carries a client secret",
            received=f"keys {list(call.keys or [])}, headers {list(call.header_names)}"
            + ("; the --client-secret value is in it" if secret and secret in call.text() else ""),
            documented="Params: identityToken",
            curl=pep.curl(response),
        )
    if set(call.keys or ()) != {"identityToken"}:
        fail(
            rules.ONLY_IDENTITY_TOKEN,
            "the call to the operator sends more than identityToken",
            received=f"keys {list(call.keys or [])}",
            documented="{identityToken}",
            curl=pep.curl(response),
        )


@covers(rules.TOKEN_ISSUED, operation=LOGIN_OPERATION)
def test_login_issues_token(pep: Pep, operator: HarnessOperator) -> None:
    token = _issued(pep, operator, rules.TOKEN_ISSUED)
    answer = pep.call(READ_OPERATION, token)
    if answer.status_code != 200:
        fail(
            rules.TOKEN_ISSUED,
            f"the issued token does not open {READ_OPERATION}",
            received=summarize(answer),
            documented="200 with the player's data",
            curl=pep.curl(answer),
        )


@covers(rules.UNKNOWN_CLIENT_REFUSED, rules.UNKNOWN_CLIENT_401, operation=LOGIN_OPERATION)
def test_unknown_client(pep: Pep, operator: HarnessOperator) -> None:
    mark = operator.mark()
    identity = operator.program()
    response = pep.login(identity, client_id=f"pepharness-unknown-{new_token()[:12]}")
    if not 400 <= response.status_code < 500 or access_token(response):
        fail(
            rules.UNKNOWN_CLIENT_REFUSED,
            "an unknown clientId is not refused",
            received=summarize(response),
            documented="401 invalid_client (D44)",
            curl=pep.curl(response),
        )
    calls = operator.calls(identity, since=mark)
    if response.status_code != 401 or calls:
        fail(
            rules.UNKNOWN_CLIENT_401,
            "an unknown clientId is not 401 before any call to the operator",
            received=f"{summarize(response)}; {len(calls)} operator call(s)",
            documented="401 invalid_client, the operator not called (D44)",
            curl=pep.curl(response),
        )


UNENCODABLE = {
    "a lone surrogate": b'"\\ud800"',
    "a NUL": b'"a\\u0000b"',
    "bytes that are not UTF-8": b'"\xff\xfe"',
}
"""JSON string literals, as sent, of text that cannot be encoded."""


def _unencodable_logins(identity: str, client_id: str) -> list[tuple[str, bytes]]:
    """(what, body): the login with each field, then a key, replaced by each bad literal."""
    logins = []
    for what, literal in UNENCODABLE.items():
        for field in ("identityToken", "clientId"):
            values = {"identityToken": identity, "clientId": client_id, field: "\0"}
            body = json.dumps(values).encode().replace(b'"\\u0000"', literal)
            logins.append((f"{what} in {field}", body))
        if what == "a NUL":
            continue  # a valid JSON string (D83): as a key, an extra field like any other
        body = json.dumps({"identityToken": identity, "clientId": client_id}).encode()
        logins.append((f"{what} in a key", body[:-1] + b", " + literal + b": 1}"))
    return logins


@covers(rules.UNENCODABLE_REFUSED, operation=LOGIN_OPERATION)
def test_login_refuses_unencodable_text(pep: Pep, operator: HarnessOperator) -> None:
    identity = operator.program()
    for what, body in _unencodable_logins(identity, pep.options.client_id):
        response = pep.target.request(
            "POST", LOGIN, data=body, headers={"Content-Type": "application/json"}
        )
        if not 400 <= response.status_code < 500 or access_token(response):
            fail(
                rules.UNENCODABLE_REFUSED,
                f"a login with {what} is not a 4xx",
                received=summarize(response),
                documented="400 invalid_request: text that cannot be encoded is bad input (D81)",
                curl=pep.curl(response),
            )


@pytest.mark.parametrize("status", [400, 401, 404])
@covers(rules.ERRORS_REFUSE, rules.NO_RETRY, rules.ERRORS_KEEP_STATUS, operation=LOGIN_OPERATION)
def test_operator_refusal(pep: Pep, operator: HarnessOperator, status: int) -> None:
    _, response, calls = _login(pep, operator, status=status)
    if not 400 <= response.status_code < 500 or access_token(response):
        fail(
            rules.ERRORS_REFUSE,
            f"the operator's {status} does not make the login a 4xx",
            received=summarize(response),
            documented=f"operator {status} → PEP {status} (D45)",
            curl=pep.curl(response),
        )
    if len(calls) != 1:
        fail(
            rules.NO_RETRY,
            f"the operator's {status} was followed by {len(calls) - 1} more call(s)",
            received=f"{len(calls)} calls with the same identity token",
            documented="one call, never retried on a 4xx (D45)",
            curl=pep.curl(response),
        )
    if response.status_code != status:
        fail(
            rules.ERRORS_KEEP_STATUS,
            f"the operator's {status} became {response.status_code}",
            received=summarize(response),
            documented=f"operator {status} → PEP {status} (D45)",
            curl=pep.curl(response),
        )


FAILURES: dict[str, tuple[int, Any]] = {
    "a 500": (500, {"error": "internal_server_error"}),
    "a 200 without playerId": (200, {"expiresAt": "2030-01-01T00:00:00Z"}),
    "a 200 with expiresAt not RFC 3339": (200, {"playerId": "131918", "expiresAt": "tomorrow"}),
    "a 200 that is not a JSON object": (200, "ok"),
    "a 200 with a numeric playerId": (200, {"playerId": 131918}),
}


@pytest.mark.parametrize("case", list(FAILURES))
@covers(rules.FAILURE_IS_BAD_GATEWAY, operation=LOGIN_OPERATION)
def test_operator_failure(pep: Pep, operator: HarnessOperator, case: str) -> None:
    status, body = FAILURES[case]
    identity = operator.program()
    operator.answer_next(status, body)
    try:
        response = pep.login(identity)
    finally:
        operator.clear_faults()
    if response.status_code not in GATEWAY_STATUSES or access_token(response):
        fail(
            rules.FAILURE_IS_BAD_GATEWAY,
            f"the operator answering {case} is not a 502",
            received=summarize(response),
            documented="502 operator_error / operator_bad_response (D45)",
            curl=pep.curl(response),
        )


def _timed_login(pep: Pep, identity: str, rule: Rule) -> tuple[requests.Response, float]:
    bound = pep.options.operator_timeout
    started = time.monotonic()
    try:
        response = pep.login(identity, timeout=bound + 5)
    except requests.RequestException as error:
        fail(
            rule,
            f"no answer within {bound + 5:g} s",
            received=type(error).__name__,
            documented=f"502 or 504 within {bound:g} s (D45)",
        )
    return response, time.monotonic() - started


@covers(rules.DOWN_BOUNDED, operation=LOGIN_OPERATION)
def test_dead_operator(pep: Pep, operator: HarnessOperator) -> None:
    if not operator.owned:
        not_verified(
            "the operator is served by another process and cannot be stopped: run the check "
            "with a free --operator-port to verify"
        )
    identity = operator.program()
    operator.go_down()
    try:
        response, elapsed = _timed_login(pep, identity, rules.DOWN_BOUNDED)
    finally:
        operator.come_back()
    bound = pep.options.operator_timeout
    if response.status_code not in (502, 504) or elapsed > bound:
        fail(
            rules.DOWN_BOUNDED,
            f"with the operator down the login is {response.status_code} after {elapsed:.1f} s",
            received=summarize(response),
            documented=f"502 or 504 within {bound:g} s (D45)",
            curl=pep.curl(response),
        )


@covers(rules.TIMEOUT_BOUNDED, operation=LOGIN_OPERATION)
def test_operator_timeout(pep: Pep, operator: HarnessOperator) -> None:
    bound = pep.options.operator_timeout
    identity = operator.program(delay_ms=int((bound + 3) * 1000))
    response, elapsed = _timed_login(pep, identity, rules.TIMEOUT_BOUNDED)
    if response.status_code not in GATEWAY_STATUSES or elapsed > bound:
        fail(
            rules.TIMEOUT_BOUNDED,
            f"with the operator silent for {bound + 3:g} s the login is "
            f"{response.status_code} after {elapsed:.1f} s",
            received=summarize(response),
            documented=f"504 operator_timeout within {bound:g} s (D45)",
            curl=pep.curl(response),
        )


def _expiry(response: requests.Response, token: str) -> tuple[int | None, int | None]:
    """(exp, iat) of the token, from its JWT claims or the answer's expiresAt / expiresIn."""
    claims = jwt_claims(token) or {}
    exp, iat = claims.get("exp"), claims.get("iat")
    if isinstance(exp, int | float) and not isinstance(exp, bool):
        return int(exp), int(iat) if isinstance(iat, int | float) else None
    body = body_of(response)
    if isinstance(body, dict) and isinstance(body.get("expiresAt"), str):
        try:
            when = datetime.fromisoformat(body["expiresAt"].replace("Z", "+00:00"))
            return int(when.timestamp()), int(time.time())
        except ValueError:
            pass
    return None, None


@covers(rules.EXP_WITHIN_EXPIRES_AT, operation=LOGIN_OPERATION)
def test_token_does_not_outlive_expires_at(pep: Pep, operator: HarnessOperator) -> None:
    expires_at = operator.now() + timedelta(minutes=10)
    _, response, _ = _login(pep, operator, expiresAt=_rfc3339(expires_at))
    token = access_token(response)
    if token is None:
        not_verified(f"the login issued no token ({summarize(response, 80)})")
    exp, _ = _expiry(response, token)
    if exp is None:
        not_verified("the token is opaque and the answer gives no expiresAt")
    if exp > expires_at.timestamp():
        fail(
            rules.EXP_WITHIN_EXPIRES_AT,
            "the token outlives the operator's expiresAt",
            received=f"exp {datetime.fromtimestamp(exp, UTC).isoformat()}",
            documented=f"exp <= expiresAt {_rfc3339(expires_at)} (D46)",
            curl=pep.curl(response),
        )


@covers(rules.PASSED_EXPIRES_AT, operation=LOGIN_OPERATION)
def test_passed_expires_at_opens_nothing(pep: Pep, operator: HarnessOperator) -> None:
    passed = operator.now() - timedelta(hours=1)
    _, response, _ = _login(pep, operator, status=200, expiresAt=_rfc3339(passed))
    token = access_token(response)
    if response.status_code != 200 or token is None:
        return
    answer = pep.call(READ_OPERATION, token)
    if answer.status_code != 401:
        fail(
            rules.PASSED_EXPIRES_AT,
            "an identity the operator says expired an hour ago opens the player endpoints",
            received=f"login {summarize(response, 80)}; {READ_OPERATION}: {summarize(answer, 80)}",
            documented="401 identity_token_expired, or at least a token that opens nothing",
            curl=pep.curl(answer),
        )


@covers(rules.DEFAULT_LIFETIME, operation=LOGIN_OPERATION)
def test_token_lifetime_without_expires_at(pep: Pep, operator: HarnessOperator) -> None:
    _, response, _ = _login(pep, operator, expiresAt=None)
    token = access_token(response)
    if token is None:
        not_verified(f"the login issued no token ({summarize(response, 80)})")
    exp, iat = _expiry(response, token)
    if exp is None:
        not_verified("the token is opaque and the answer gives no expiresAt")
    start = iat if iat is not None else int(time.time())
    if exp - start > 24 * 3600:
        fail(
            rules.DEFAULT_LIFETIME,
            f"without expiresAt the token lives {(exp - start) / 3600:.1f} h",
            received=f"iat {start}, exp {exp}",
            documented="a default lifetime of at most 24 h (the reference: 1 h, D46)",
            curl=pep.curl(response),
        )


EXPIRY_AHEAD_SECONDS = 3
EXPIRY_GRACE_SECONDS = 1.5
EXPIRY_POLL_SECONDS = 0.2


@covers(rules.EXPIRED_REFUSED, operation=LOGIN_OPERATION)
def test_expired_token_is_refused(pep: Pep, operator: HarnessOperator) -> None:
    now = operator.now()
    expires_at = now.replace(microsecond=0) + timedelta(seconds=EXPIRY_AHEAD_SECONDS)
    # expiresAt on this process's monotonic clock; from then on the PEP has EXPIRY_GRACE_SECONDS
    # to refuse the token, asked every EXPIRY_POLL_SECONDS (a 401 ends the wait, D189).
    expiry = time.monotonic() + (expires_at - now).total_seconds()
    _, response, _ = _login(pep, operator, expiresAt=_rfc3339(expires_at))
    token = access_token(response)
    if token is None:
        not_verified(f"the login issued no token ({summarize(response, 80)})")
    time.sleep(max(0.0, expiry - time.monotonic()))
    answer = pep.call(READ_OPERATION, token)
    while answer.status_code != 401 and time.monotonic() < expiry + EXPIRY_GRACE_SECONDS:
        time.sleep(EXPIRY_POLL_SECONDS)
        answer = pep.call(READ_OPERATION, token)
    if answer.status_code != 401:
        fail(
            rules.EXPIRED_REFUSED,
            "a token past the operator's expiresAt still opens the player endpoints",
            received=summarize(answer),
            documented="401 invalid_token from exp on (D46)",
            curl=pep.curl(answer),
        )


@covers(rules.TOKEN_SIGNED, rules.NO_STORE, operation=LOGIN_OPERATION)
def test_token_is_signed(pep: Pep, operator: HarnessOperator) -> None:
    _, response, _ = _login(pep, operator)
    token = access_token(response)
    if token is None:
        not_verified(f"the login issued no token ({summarize(response, 80)})")
    header = jwt_header(token)
    if header is not None and (
        str(header.get("alg", "")).lower() in ("", "none") or not token.split(".")[2]
    ):
        fail(
            rules.TOKEN_SIGNED,
            "the issued JWT is unsigned",
            received=f"header {header}",
            documented="a signed JWT (RFC 8725 §3.1)",
            curl=pep.curl(response),
        )
    if "no-store" not in response.headers.get("Cache-Control", "").lower():
        fail(
            rules.NO_STORE,
            "the login's 200 may be stored by a cache",
            received=f"Cache-Control: {response.headers.get('Cache-Control')}",
            documented="Cache-Control: no-store (D43)",
            curl=pep.curl(response),
        )


@covers(rules.NO_LEAKED_INTERNALS, operation=LOGIN_OPERATION)
def test_errors_do_not_leak_internals(pep: Pep, operator: HarnessOperator) -> None:
    answers = [
        pep.target.request("POST", "/api/auth/v1/player", data=b"{", headers={
            "Content-Type": "application/json"}),
        pep.target.request("POST", "/api/auth/v1/player", json=[]),
        pep.login(operator.program(status=500)),
        pep.call(READ_OPERATION, None),
        pep.call(READ_OPERATION, "a.b.c"),
    ]
    identity = operator.program()
    operator.answer_next(200, {"playerId": None})
    try:
        answers.append(pep.login(identity))
    finally:
        operator.clear_faults()
    for answer in answers:
        shown = answer_leaks(answer)
        if shown:
            fail(
                rules.NO_LEAKED_INTERNALS,
                f"an error answer shows {shown.split(':')[0]}",
                received=f"{summarize(answer, 300)}\n{shown}",
                documented="{error, message}: nothing of the server (D43)",
                curl=pep.curl(answer),
            )
