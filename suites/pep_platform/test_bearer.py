"""Authorization: Bearer on every protected endpoint: nothing opens without a token the PEP
issued, signed, and holding the operation's scope (RFC 6750 §3.1, D55)."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable

import pytest
import requests

from pepharness.suites import documents
from pepharness.suites.http import summarize
from pepharness.suites.jwts import altered_signature, b64url, forged, unsigned
from pepharness.suites.pep_platform import rules
from pepharness.suites.pep_platform.client import (
    ALL_SCOPES,
    CONTRACT,
    Platform,
    error_code,
    protected_operations,
)
from pepharness.suites.rules import Rule, covers, fail

OPERATIONS = protected_operations()


def required_scope(operation: str) -> str:
    """The scope the contract requires of `operation` (`platformOAuth: [scope]`)."""
    method, template = operation.split(" ", 1)
    found = documents.load(CONTRACT)["paths"][template][method.lower()]
    for requirement in found.get("security", []):
        scopes = requirement.get("platformOAuth")
        if scopes:
            return str(scopes[0])
    raise LookupError(f"{operation} requires no platformOAuth scope")


def _challenge_problem(answer: requests.Response, *, refused_token: bool) -> str | None:
    """What is wrong with the 401's challenge, None if nothing."""
    challenge = answer.headers.get("WWW-Authenticate", "").strip()
    if not challenge:
        return "no WWW-Authenticate"
    if challenge.split(" ", 1)[0].lower() != "bearer":
        return f"a challenge of another scheme: {challenge!r}"
    if refused_token and 'error="invalid_token"' not in challenge:
        return f'no error="invalid_token" in {challenge!r}'
    return None


def _refused(
    platform: Platform,
    rule: Rule,
    operation: str,
    authorization: str | None,
    what: str,
    *,
    refused_token: bool = True,
) -> None:
    """Fail `rule` unless `operation` with `authorization` is 401; fail the challenge rule
    when that 401 carries no proper challenge."""
    answer = platform.call(operation, authorization=authorization)
    if answer.status_code != 401:
        fail(
            rule,
            f"{operation} with {what} is not 401",
            received=summarize(answer),
            documented="401 (D55: missing_token or invalid_token)",
            curl=platform.curl(answer),
            operation=operation,
        )
    problem = _challenge_problem(answer, refused_token=refused_token)
    if problem:
        fail(
            rules.BEARER_CHALLENGE,
            f"the 401 of {operation} with {what} has {problem}",
            received=f"{summarize(answer)}; WWW-Authenticate: "
            f"{answer.headers.get('WWW-Authenticate', '(absent)')}",
            documented='WWW-Authenticate: Bearer realm="pep-platform"'
            + (', error="invalid_token"' if refused_token else "")
            + " (RFC 6750 §3, D55)",
            curl=platform.curl(answer),
            operation=operation,
        )


@pytest.mark.parametrize("operation", OPERATIONS)
@covers(rules.MISSING_BEARER, rules.BEARER_CHALLENGE)
def test_missing_bearer_is_401(platform: Platform, operation: str) -> None:
    _refused(platform, rules.MISSING_BEARER, operation, None, "no Authorization",
             refused_token=False)


def _basic(platform: Platform) -> str:
    pair = f"{platform.client_id}:{platform.secret}".encode()
    return "Basic " + base64.b64encode(pair).decode()


GARBAGE: dict[str, tuple[Callable[[Platform], str], bool]] = {
    "Bearer not-a-token": (lambda p: "Bearer not-a-token", True),
    "Bearer and random bytes": (lambda p: "Bearer " + b64url(os.urandom(48)), True),
    "Bearer a.b.c": (lambda p: "Bearer a.b.c", True),
    # The client's own credentials on a resource: no Bearer token at all (RFC 6750 §3.1).
    "the client's Basic credentials": (_basic, False),
}


@pytest.mark.parametrize("operation", OPERATIONS)
@covers(rules.GARBAGE_BEARER, rules.BEARER_CHALLENGE)
def test_garbage_bearer_is_401(platform: Platform, operation: str) -> None:
    for what, (value, refused_token) in GARBAGE.items():
        _refused(platform, rules.GARBAGE_BEARER, operation, value(platform), what,
                 refused_token=refused_token)


@pytest.mark.parametrize("operation", OPERATIONS)
@covers(rules.FORGED_BEARER, rules.BEARER_CHALLENGE)
def test_forged_bearer_is_401(platform: Platform, operation: str) -> None:
    token = platform.token()
    changes: list[tuple[str, Callable[[str], str | None]]] = [
        ("the claims signed with another key", forged),
        ("the signature altered", altered_signature),
    ]
    for what, change in changes:
        changed = change(token)
        if changed is not None:
            _refused(platform, rules.FORGED_BEARER, operation, f"Bearer {changed}", what)


@pytest.mark.parametrize("operation", OPERATIONS)
@covers(rules.ALG_NONE_BEARER, rules.BEARER_CHALLENGE)
def test_alg_none_bearer_is_401(platform: Platform, operation: str) -> None:
    _refused(platform, rules.ALG_NONE_BEARER, operation, f"Bearer {unsigned(platform.token())}",
             "the claims unsigned (alg none)")


def _insufficient(answer: requests.Response) -> bool:
    """Whether the answer names insufficient_scope: in its body (D55) or its challenge (RFC
    6750 §3.1)."""
    challenge = answer.headers.get("WWW-Authenticate", "")
    return error_code(answer) == "insufficient_scope" or 'error="insufficient_scope"' in challenge


@pytest.mark.parametrize("operation", OPERATIONS)
@covers(rules.SCOPE_ENFORCED)
def test_scope_is_enforced(platform: Platform, operation: str) -> None:
    needed = required_scope(operation)
    for scope in (s for s in ALL_SCOPES.split() if s != needed):
        answer = platform.call(operation, authorization=platform.bearer(scope))
        if answer.status_code != 403 or not _insufficient(answer):
            fail(
                rules.SCOPE_ENFORCED,
                f"{operation} with a token of scope {scope} only is not 403 "
                "insufficient_scope",
                received=f"{summarize(answer)}; WWW-Authenticate: "
                f"{answer.headers.get('WWW-Authenticate', '(absent)')}",
                documented=f'403 insufficient_scope (RFC 6750 §3.1): it needs {needed} (D53, '
                "D55)",
                curl=platform.curl(answer),
                operation=operation,
            )
