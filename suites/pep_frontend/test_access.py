"""x-authorization on every player endpoint: nothing opens without a token the PEP issued,
signed, for its own audience, and still in force."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests

from pepharness.suites.http import summarize
from pepharness.suites.jwts import altered_signature, forged, unsigned
from pepharness.suites.pep_frontend import rules
from pepharness.suites.pep_frontend.client import (
    GARBAGE,
    SESSION,
    Pep,
    access_token,
    other_audience,
    player_operations,
)
from pepharness.suites.pep_frontend.harness import HarnessOperator
from pepharness.suites.rules import Rule, covers, fail, not_verified

OPERATIONS = player_operations()


@pytest.fixture(scope="module")
def issued(pep: Pep, operator: HarnessOperator) -> str:
    """A token of a login the operator validated (for the checks that change it)."""
    response = pep.login(operator.program())
    token = access_token(response)
    if token is None:
        not_verified(f"the login issued no token ({summarize(response, 80)})")
    return token


def _refused(
    pep: Pep, rule: Rule, operation: str, token: str | None, what: str
) -> requests.Response:
    answer = pep.call(operation, token)
    if answer.status_code != 401:
        fail(
            rule,
            f"{operation} with {what} is not 401",
            received=summarize(answer),
            documented="401 (D46)",
            curl=pep.curl(answer),
            operation=operation,
        )
    return answer


@pytest.mark.parametrize("operation", OPERATIONS)
@covers(rules.MISSING_REFUSED, rules.CHALLENGE)
def test_missing_x_authorization(pep: Pep, operation: str) -> None:
    answer = _refused(pep, rules.MISSING_REFUSED, operation, None, "no x-authorization")
    if not answer.headers.get("WWW-Authenticate"):
        fail(
            rules.CHALLENGE,
            f"the 401 of {operation} carries no WWW-Authenticate",
            received=f"{summarize(answer)}; headers {dict(answer.headers)}",
            documented='WWW-Authenticate: Bearer realm="pep-frontend" (RFC 9110 §11.6.1, D46)',
            curl=pep.curl(answer),
            operation=operation,
        )


@pytest.mark.parametrize("operation", OPERATIONS)
@covers(rules.GARBAGE_REFUSED)
def test_garbage_x_authorization(pep: Pep, operation: str) -> None:
    for value in GARBAGE:
        _refused(pep, rules.GARBAGE_REFUSED, operation, value, f"x-authorization {value!r}")


@pytest.mark.parametrize("operation", OPERATIONS)
@covers(rules.FORGED_REFUSED)
def test_forged_token(pep: Pep, operation: str, issued: str) -> None:
    changes: list[tuple[str, Callable[[str], str | None]]] = [
        ("the claims signed with another key", forged),
        ("the signature altered", altered_signature),
    ]
    for what, change in changes:
        token = change(issued)
        if token is not None:
            _refused(pep, rules.FORGED_REFUSED, operation, token, what)


@pytest.mark.parametrize("operation", OPERATIONS)
@covers(rules.ALG_NONE_REFUSED)
def test_alg_none_token(pep: Pep, operation: str, issued: str) -> None:
    _refused(pep, rules.ALG_NONE_REFUSED, operation, unsigned(issued), "the claims unsigned")


@pytest.mark.parametrize("operation", OPERATIONS)
@covers(rules.OTHER_AUDIENCE_REFUSED)
def test_other_audience_token(pep: Pep, operation: str, issued: str) -> None:
    _refused(
        pep, rules.OTHER_AUDIENCE_REFUSED, operation, other_audience(issued),
        "a token of another audience (sinatra)",
    )


@covers(rules.LOGOUT_REVOKES, operation=f"DELETE {SESSION}")
def test_session_end_revokes_token(pep: Pep, operator: HarnessOperator) -> None:
    if f"DELETE {SESSION}" not in OPERATIONS:
        not_verified("the contract has no DELETE /api/auth/v1/session")
    token = access_token(pep.login(operator.program()))
    if token is None:
        not_verified("the login issued no token")
    ended = pep.call(f"DELETE {SESSION}", token)
    if ended.status_code in (404, 405, 501):
        not_verified(f"the PEP has no DELETE {SESSION} ({ended.status_code})")
    reads = [op for op in OPERATIONS if op.startswith("GET ")]
    for operation in reads:
        answer = pep.call(operation, token)
        if answer.status_code != 401:
            fail(
                rules.LOGOUT_REVOKES,
                f"after DELETE {SESSION} ({ended.status_code}) the token still opens {operation}",
                received=summarize(answer),
                documented="401 invalid_token (D47)",
                curl=pep.curl(answer),
                operation=operation,
            )
