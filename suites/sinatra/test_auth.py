"""Authentication: jwt-auth on every protected operation, Basic on the paginated history, login."""

from __future__ import annotations

import json
import os
import time

import jwt
import pytest

from pepharness.suites.http import summarize
from pepharness.suites.jwts import b64url, jwt_claims, jwt_header
from pepharness.suites.rules import Rule, covers, fail, not_verified
from pepharness.suites.sinatra import rules
from pepharness.suites.sinatra.client import (
    CONTRACT,
    LOGIN,
    NO_TOKEN,
    PAGINATED,
    Sinatra,
    body_of,
    jwt_operations,
    label,
)

JWT_OPERATIONS = jwt_operations()
PAGINATED_OPERATION = label("GET", PAGINATED)
LOGIN_OPERATION = label("POST", LOGIN)
# D8: the marketing assets need a token but no permission.
PERMISSIONED = [op for op in JWT_OPERATIONS if "/assets/" not in op] + [PAGINATED_OPERATION]


def _claims_for(sinatra: Sinatra, token: str) -> dict[str, object]:
    """The genuine token's claims, or (for an opaque token) plausible ones."""
    claims = jwt_claims(token)
    if claims is not None:
        return claims
    now = int(time.time())
    return {"sub": sinatra.options.email, "iat": now, "exp": now + 1200}


def forged(sinatra: Sinatra, token: str) -> str:
    """The genuine claims signed with a key the service has never seen."""
    header = jwt_header(token) or {"alg": "HS256", "typ": "JWT"}
    algorithm = str(header.get("alg", "HS256"))
    algorithm = algorithm if algorithm.startswith("HS") else "HS256"
    extra = {k: v for k, v in header.items() if k not in ("alg", "typ")}
    return jwt.encode(
        _claims_for(sinatra, token), os.urandom(32), algorithm=algorithm, headers=extra or None
    )


def truncated(token: str) -> str:
    return token[: len(token) - max(4, len(token) // 10)]


def alg_none(sinatra: Sinatra, token: str) -> str:
    """An unsigned token (RFC 7519 §6) carrying the genuine claims."""
    header = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = b64url(json.dumps(_claims_for(sinatra, token)).encode())
    return f"{header}.{payload}."


def _refused(
    sinatra: Sinatra, operation: str, token: str | None, rule: Rule, what: str
) -> None:
    template = operation.split(" ", 1)[1]
    headers = {} if token is None else {"jwt-auth": token}
    response = sinatra.get(sinatra.sample_path(template), token=NO_TOKEN, headers=headers)
    sinatra.expect(rule, response, 401, err="unauthorized", what=what)


@pytest.mark.parametrize("operation", JWT_OPERATIONS)
@covers(rules.ISSUED_TOKEN_OPENS)
def test_issued_token_opens_protected_operation(sinatra: Sinatra, operation: str) -> None:
    response = sinatra.request_operation(operation)
    if response.status_code in (401, 403):
        fail(
            rules.ISSUED_TOKEN_OPENS,
            "a fresh token of a user with every permission is refused",
            received=summarize(response),
            documented="anything but 401/403: the token opens the operation",
            curl=sinatra.curl(response),
        )


@pytest.mark.parametrize("operation", JWT_OPERATIONS)
@covers(rules.MISSING_TOKEN_REFUSED)
def test_missing_token_is_401(sinatra: Sinatra, operation: str) -> None:
    _refused(sinatra, operation, None, rules.MISSING_TOKEN_REFUSED, "no jwt-auth header")


@pytest.mark.parametrize("operation", JWT_OPERATIONS)
@covers(rules.FORGED_TOKEN_REFUSED)
def test_forged_token_is_401(sinatra: Sinatra, operation: str) -> None:
    token = forged(sinatra, sinatra.token())
    _refused(sinatra, operation, token, rules.FORGED_TOKEN_REFUSED, "a token signed elsewhere")


@pytest.mark.parametrize("operation", JWT_OPERATIONS)
@covers(rules.TRUNCATED_TOKEN_REFUSED)
def test_truncated_token_is_401(sinatra: Sinatra, operation: str) -> None:
    token = truncated(sinatra.token())
    _refused(sinatra, operation, token, rules.TRUNCATED_TOKEN_REFUSED, "a token cut short")


@pytest.mark.parametrize("operation", JWT_OPERATIONS)
@covers(rules.ALG_NONE_TOKEN_REFUSED)
def test_alg_none_token_is_401(sinatra: Sinatra, operation: str) -> None:
    token = alg_none(sinatra, sinatra.token())
    _refused(sinatra, operation, token, rules.ALG_NONE_TOKEN_REFUSED, "an alg none token")


@pytest.mark.xdist_group("paginated")
@covers(rules.BASIC_MISSING_REFUSED, rules.BASIC_CHALLENGE, operation=PAGINATED_OPERATION)
def test_paginated_history_without_basic_is_401(sinatra: Sinatra) -> None:
    response = sinatra.get(sinatra.path(PAGINATED), token=NO_TOKEN)
    sinatra.expect(rules.BASIC_MISSING_REFUSED, response, 401, err="unauthorized",
                   what="no Authorization header")
    challenge = response.headers.get("WWW-Authenticate", "")
    if not challenge.lower().startswith("basic") or "realm=" not in challenge.lower():
        fail(
            rules.BASIC_CHALLENGE,
            "the 401 does not challenge for Basic with a realm",
            received=f"WWW-Authenticate: {challenge or '(absent)'}",
            documented='WWW-Authenticate: Basic realm="…"',
            curl=sinatra.curl(response),
        )


@pytest.mark.xdist_group("paginated")
@covers(rules.BASIC_WRONG_REFUSED, operation=PAGINATED_OPERATION)
def test_paginated_history_with_wrong_basic_is_401(sinatra: Sinatra) -> None:
    wrong = (sinatra.options.email, sinatra.options.password + "-not-it")
    response = sinatra.get(sinatra.path(PAGINATED), basic=wrong)
    sinatra.expect(rules.BASIC_WRONG_REFUSED, response, 401, err="unauthorized",
                   what="Basic credentials with a wrong password")


@pytest.mark.xdist_group("paginated")
@covers(rules.JWT_DOES_NOT_OPEN_BASIC, operation=PAGINATED_OPERATION)
def test_paginated_history_refuses_jwt_alone(sinatra: Sinatra) -> None:
    response = sinatra.get(sinatra.path(PAGINATED))
    sinatra.expect(rules.JWT_DOES_NOT_OPEN_BASIC, response, 401, err="unauthorized",
                   what="a valid jwt-auth token and no Basic credentials")


@pytest.mark.parametrize("case", ["wrong password", "unknown email"])
@covers(rules.BAD_LOGIN_IS_400, operation=LOGIN_OPERATION)
def test_bad_login_is_400(sinatra: Sinatra, case: str) -> None:
    if case == "wrong password":
        response = sinatra.login(password=sinatra.options.password + "-not-it")
    else:
        response = sinatra.login(email="nobody-" + sinatra.options.email)
    sinatra.expect(rules.BAD_LOGIN_IS_400, response, 400, err="Username or Password incorrect",
                   what=f"a login with a {case}")


@covers(rules.LOGIN_RETURNS_TOKEN, operation=LOGIN_OPERATION)
def test_login_returns_jwt_auth_header(sinatra: Sinatra) -> None:
    response = sinatra.login()
    body = sinatra.expect(rules.LOGIN_RETURNS_TOKEN, response, 200, what="a good login")
    token = response.headers.get("jwt-auth", "")
    from pepharness import contracts  # the validators: imported by the checks that use them

    problems = contracts.record_errors(CONTRACT, "LoginResponse", body)
    if not token or problems:
        fail(
            rules.LOGIN_RETURNS_TOKEN,
            "no token in the jwt-auth header" if not token else "the login document is off",
            received=f"jwt-auth: {'(absent)' if not token else '…'}; "
            + ("; ".join(problems[:3]) or "body ok"),
            documented="200, a jwt-auth response header, a LoginResponse body",
            curl=sinatra.curl(response),
        )


@pytest.mark.parametrize("operation", PERMISSIONED)
@covers(rules.MISSING_PERMISSION_IS_403)
def test_missing_permission_is_403(sinatra: Sinatra, operation: str) -> None:
    options = sinatra.options
    login = sinatra.login(options.restricted_email, options.restricted_password)
    if login.status_code != 200 or not login.headers.get("jwt-auth"):
        not_verified(f"the user without permissions ({options.restricted_email}) cannot log in")
    body = body_of(login)
    if isinstance(body, dict) and body.get("permissions"):
        not_verified(f"{options.restricted_email} has permissions")
    template = operation.split(" ", 1)[1]
    path = sinatra.sample_path(template)
    if template == PAGINATED:
        response = sinatra.get(path, basic=(options.restricted_email, options.restricted_password))
        text = "forbidden"
    else:
        response = sinatra.get(path, token=login.headers["jwt-auth"])
        text = "forbidden_operation"
    sinatra.expect(rules.MISSING_PERMISSION_IS_403, response, 403, err=text,
                   what="a user without the permission")
