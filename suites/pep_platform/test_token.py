"""The token endpoint (RFC 6749 §4.4): a token by Basic, form and JSON credentials, its answer's
headers, the §5.2 errors in their order, its lifetime, and its expiry on the target's clock."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest
import requests

from pepharness.suites.http import summarize
from pepharness.suites.jwts import jwt_claims
from pepharness.suites.pep_platform import rules
from pepharness.suites.pep_platform.client import (
    TASK_OPERATION,
    TOKEN,
    TOKEN_OPERATION,
    ClockControl,
    Platform,
    body_of,
    error_code,
    unique,
)
from pepharness.suites.rules import Rule, covers, fail, not_verified

MAX_LIFETIME_SECONDS = 24 * 3600
EARLY_MARGIN_SECONDS = 10
"""How long before its expires_in a token may already be refused (clock steps, rounding)."""

Request = Callable[[Platform], requests.Response]

# (the answer's key for the token, its type, its lifetime) of each request shape.
SHAPES: dict[str, tuple[Rule, Request, tuple[str, str, str]]] = {
    "basic": (rules.TOKEN_BY_BASIC, lambda p: p.token_by_basic(),
              ("access_token", "token_type", "expires_in")),
    "form": (rules.TOKEN_BY_FORM, lambda p: p.token_by_form(),
             ("access_token", "token_type", "expires_in")),
    "json": (rules.TOKEN_BY_JSON, lambda p: p.token_by_json(),
             ("accessToken", "tokenType", "expiresIn")),
}


def _granted(platform: Platform, shape: str) -> tuple[requests.Response, str, int]:
    """The token answer of `shape`, failing its rule unless it is a usable token: (answer,
    token, expires_in)."""
    rule, send, (token_key, type_key, lifetime_key) = SHAPES[shape]
    response = send(platform)
    body = body_of(response)
    documented = (
        f'200 {{"{token_key}": "…", "{type_key}": "Bearer", "{lifetime_key}": 3600, '
        '"scope": "…"}'
    )

    def broken(title: str) -> None:
        fail(rule, title, received=summarize(response, 300), documented=documented,
             curl=platform.curl(response), operation=TOKEN_OPERATION)

    if response.status_code != 200 or not isinstance(body, dict):
        broken(f"a token request by {shape} credentials is not a 200 JSON object")
    token, kind, lifetime = body.get(token_key), body.get(type_key), body.get(lifetime_key)
    if not isinstance(token, str) or not token:
        broken(f"the 200 has no {token_key}")
    if not isinstance(kind, str) or kind.lower() != "bearer":
        broken(f"{type_key} is {kind!r}, not Bearer (RFC 6749 §7.1, any case)")
    if isinstance(lifetime, bool) or not isinstance(lifetime, int) or lifetime <= 0:
        broken(f"{lifetime_key} is {lifetime!r}, not a number of seconds > 0")
    return response, token, lifetime


def _check_answer(platform: Platform, shape: str) -> None:
    response, _, _ = _granted(platform, shape)
    cache = response.headers.get("Cache-Control", "")
    if "no-store" not in [part.strip().lower() for part in cache.split(",")]:
        fail(
            rules.TOKEN_NOT_STORED,
            f"the token answer ({shape} credentials) may be stored",
            received=f"Cache-Control: {cache or '(absent)'}",
            documented="Cache-Control: no-store (RFC 6749 §5.1)",
            curl=platform.curl(response),
        )
    pragma = response.headers.get("Pragma", "")
    if "no-cache" not in pragma.lower():
        fail(
            rules.JSON_TOKEN_PRAGMA if shape == "json" else rules.TOKEN_PRAGMA,
            f"the token answer ({shape} credentials) has no Pragma: no-cache",
            received=f"Pragma: {pragma or '(absent)'}",
            documented="Pragma: no-cache (RFC 6749 §5.1)",
            curl=platform.curl(response),
        )
    body = body_of(response)
    refresh = [key for key in ("refresh_token", "refreshToken") if key in body]
    if refresh:
        fail(
            rules.NO_REFRESH_TOKEN,
            f"the client credentials token comes with a {refresh[0]}",
            received=summarize(response, 300),
            documented="no refresh token (RFC 6749 §4.4.3)",
            curl=platform.curl(response),
        )


ANSWER_RULES = (rules.TOKEN_NOT_STORED, rules.TOKEN_PRAGMA, rules.NO_REFRESH_TOKEN)
JSON_ANSWER_RULES = (rules.TOKEN_NOT_STORED, rules.JSON_TOKEN_PRAGMA, rules.NO_REFRESH_TOKEN)


@covers(rules.TOKEN_BY_BASIC, *ANSWER_RULES, operation=TOKEN_OPERATION)
def test_token_by_basic_credentials(platform: Platform) -> None:
    _check_answer(platform, "basic")


@covers(rules.TOKEN_BY_FORM, *ANSWER_RULES, operation=TOKEN_OPERATION)
def test_token_by_form_credentials(platform: Platform) -> None:
    _check_answer(platform, "form")


@covers(rules.TOKEN_BY_JSON, *JSON_ANSWER_RULES, operation=TOKEN_OPERATION)
def test_token_by_json_credentials(platform: Platform) -> None:
    _check_answer(platform, "json")


def _refused(
    platform: Platform,
    rule: Rule,
    response: requests.Response,
    status: int,
    error: str,
    what: str,
) -> None:
    if response.status_code != status or error_code(response) != error:
        fail(
            rule,
            f"{what} is not {status} {error}",
            received=summarize(response, 300),
            documented=f'{status} {{"error": "{error}", "error_description": "…"}} '
            "(RFC 6749 §5.2)",
            curl=platform.curl(response),
            operation=TOKEN_OPERATION,
        )
    body = body_of(response)
    if isinstance(body, dict) and any(key in body for key in ("access_token", "accessToken")):
        fail(
            rule,
            f"{what} comes with a token",
            received=summarize(response, 300),
            documented=f"{status} {error}, no token",
            curl=platform.curl(response),
            operation=TOKEN_OPERATION,
        )


@covers(rules.BOTH_METHODS, operation=TOKEN_OPERATION)
def test_both_client_auth_methods_is_invalid_request(platform: Platform) -> None:
    response = platform.token_by_basic(
        form={
            "grant_type": "client_credentials",
            "client_id": platform.client_id,
            "client_secret": platform.secret,
        }
    )
    _refused(platform, rules.BOTH_METHODS, response, 400, "invalid_request",
             "HTTP Basic and form credentials together")


BAD_CLIENTS: dict[str, Request] = {
    "a wrong secret by Basic": lambda p: p.token_by_basic(secret="pepharness-wrong-secret"),
    "an unknown client by Basic": lambda p: p.token_by_basic(
        client_id=unique("client"), secret="pepharness-wrong-secret"
    ),
    "a wrong secret in the form": lambda p: p.token_by_form(secret="pepharness-wrong-secret"),
    "an unknown client in the form": lambda p: p.token_by_form(
        client_id=unique("client"), secret="pepharness-wrong-secret"
    ),
    "a wrong secret in JSON": lambda p: p.token_by_json(secret="pepharness-wrong-secret"),
}
BY_BASIC = ("a wrong secret by Basic", "an unknown client by Basic")
"""The cases where RFC 6749 §5.2 makes the challenge a MUST; the others are D52's choice."""


def _bad_client(platform: Platform, case: str, challenge_rule: Rule) -> None:
    response = BAD_CLIENTS[case](platform)
    _refused(platform, rules.BAD_CLIENT, response, 401, "invalid_client", case)
    challenge = response.headers.get("WWW-Authenticate", "")
    if not challenge.strip():
        fail(
            challenge_rule,
            f"the 401 to {case} carries no WWW-Authenticate",
            received=f"{summarize(response)}; headers {dict(response.headers)}",
            documented='WWW-Authenticate: Basic realm="pep-platform" (RFC 6749 §5.2, D52)',
            curl=platform.curl(response),
        )


@pytest.mark.parametrize("case", BY_BASIC)
@covers(rules.BAD_CLIENT, rules.CLIENT_CHALLENGE, operation=TOKEN_OPERATION)
def test_bad_basic_credentials(platform: Platform, case: str) -> None:
    _bad_client(platform, case, rules.CLIENT_CHALLENGE)


@pytest.mark.parametrize("case", [case for case in BAD_CLIENTS if case not in BY_BASIC])
@covers(rules.BAD_CLIENT, rules.BODY_CLIENT_CHALLENGE, operation=TOKEN_OPERATION)
def test_bad_body_credentials(platform: Platform, case: str) -> None:
    _bad_client(platform, case, rules.BODY_CLIENT_CHALLENGE)


GRANTS = ("password", "authorization_code", "pepharness_invented")


@pytest.mark.parametrize("grant", GRANTS)
@covers(rules.UNSUPPORTED_GRANT, operation=TOKEN_OPERATION)
def test_unsupported_grant_type_is_400(platform: Platform, grant: str) -> None:
    response = platform.token_by_basic(form={"grant_type": grant})
    _refused(platform, rules.UNSUPPORTED_GRANT, response, 400, "unsupported_grant_type",
             f"grant_type={grant}")


@pytest.mark.parametrize("scope", ["players:write", "data:read admin", "openid"])
@covers(rules.UNKNOWN_SCOPE, operation=TOKEN_OPERATION)
def test_unknown_scope_is_invalid_scope(platform: Platform, scope: str) -> None:
    response = platform.token_by_basic(scope=scope)
    _refused(platform, rules.UNKNOWN_SCOPE, response, 400, "invalid_scope", f"scope={scope!r}")


@covers(rules.MISSING_GRANT, operation=TOKEN_OPERATION)
def test_missing_grant_type_is_invalid_request(platform: Platform) -> None:
    response = platform.token_by_basic(form={"scope": "data:read"})
    _refused(platform, rules.MISSING_GRANT, response, 400, "invalid_request",
             "a form without grant_type")


REPEATED_FORMS = {
    "grant_type twice": "grant_type=client_credentials&grant_type=password",
    "scope twice": "grant_type=client_credentials&scope=data%3Aread&scope=events%3Awrite",
}


@pytest.mark.parametrize("case", list(REPEATED_FORMS))
@covers(rules.REPEATED_PARAMETER, operation=TOKEN_OPERATION)
def test_token_repeated_parameter_is_invalid_request(platform: Platform, case: str) -> None:
    response = platform.target.request(
        "POST", TOKEN, data=REPEATED_FORMS[case],
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        auth=(platform.client_id, platform.secret),
    )
    _refused(platform, rules.REPEATED_PARAMETER, response, 400, "invalid_request",
             f"a token request with {case} in the form")


MALFORMED_BASIC = {
    # base64 of bytes that are not UTF-8: the decoding, not the lookup, is what breaks.
    "Basic credentials that are not UTF-8": "Basic " + base64.b64encode(b"\xff\xfe:\xe9").decode(),
    # Werkzeug-style servers see the header's bytes as Latin-1 (RFC 9110 §5.5).
    "a Basic header with bytes past ASCII": "Basic \xff\xfe\xe9",
    "Basic credentials that are not base64": "Basic !!not~base64!!",
    "Basic credentials without a colon": "Basic " + base64.b64encode(b"pepharness").decode(),
}


@pytest.mark.parametrize("case", list(MALFORMED_BASIC))
@covers(rules.MALFORMED_CLIENT_AUTH, rules.CLIENT_CHALLENGE, operation=TOKEN_OPERATION)
def test_malformed_client_auth_is_400_or_401(platform: Platform, case: str) -> None:
    response = platform.target.request(
        "POST", TOKEN, data={"grant_type": "client_credentials"},
        headers={"Authorization": MALFORMED_BASIC[case]},
    )
    documented = ('401 {"error": "invalid_client"} with WWW-Authenticate, or 400 '
                  '{"error": "invalid_request"} (RFC 6749 §5.2, D76)')
    expected = {401: "invalid_client", 400: "invalid_request"}
    if expected.get(response.status_code) != error_code(response):
        fail(
            rules.MALFORMED_CLIENT_AUTH,
            f"{case}: answered {response.status_code}, not 401 invalid_client or 400 "
            "invalid_request",
            received=summarize(response, 300),
            documented=documented,
            curl=platform.curl(response),
            operation=TOKEN_OPERATION,
        )
    if response.status_code == 401 and not response.headers.get("WWW-Authenticate", "").strip():
        fail(
            rules.CLIENT_CHALLENGE,
            f"the 401 to {case} carries no WWW-Authenticate",
            received=f"{summarize(response)}; headers {dict(response.headers)}",
            documented='WWW-Authenticate: Basic realm="pep-platform" (RFC 6749 §5.2, D52)',
            curl=platform.curl(response),
        )


@covers(rules.LIFETIME_BOUNDED, operation=TOKEN_OPERATION)
def test_token_lifetime_is_bounded(platform: Platform) -> None:
    response, token, lifetime = _granted(platform, "basic")
    if lifetime > MAX_LIFETIME_SECONDS:
        fail(
            rules.LIFETIME_BOUNDED,
            f"the token lives {lifetime} s by its expires_in",
            received=summarize(response, 300),
            documented=f"expires_in at most {MAX_LIFETIME_SECONDS} s (D54: 3600)",
            curl=platform.curl(response),
        )
    claims = jwt_claims(token) or {}
    exp, iat = claims.get("exp"), claims.get("iat")
    if isinstance(exp, int | float) and isinstance(iat, int | float):
        if exp - iat > MAX_LIFETIME_SECONDS:
            fail(
                rules.LIFETIME_BOUNDED,
                f"the token lives {exp - iat:g} s by its claims",
                received=f"exp - iat = {exp} - {iat}",
                documented=f"exp - iat at most {MAX_LIFETIME_SECONDS} s (D54: 3600)",
                curl=platform.curl(response),
            )
    elif "exp" in claims:
        fail(
            rules.LIFETIME_BOUNDED,
            "the JWT's exp or iat is not a number",
            received=f"claims {claims}",
            documented="exp and iat NumericDates (RFC 7519 §4.1.4, §4.1.6)",
            curl=platform.curl(response),
        )


def _opens(platform: Platform, token: str) -> requests.Response:
    """A request the token opens (an unknown task: 404) unless refused (401). Nothing is
    stored and nothing counts against the data-fetch budget."""
    return platform.call(TASK_OPERATION, authorization=f"Bearer {token}", raw=True)


@covers(rules.TOKEN_EXPIRES, operation=TOKEN_OPERATION)
def test_token_expires(platform: Platform) -> None:
    url = platform.options.clock_control
    if url is None:
        not_verified(
            "needs --clock-control URL (moves the target's clock past expires_in); "
            "check_token_lifetime_is_bounded reads the lifetime from the token instead"
        )
    clock = ClockControl(platform.target, url, platform.window)
    _, token, lifetime = _granted(platform, "basic")
    early = None  # the clock moved forward only, and left there (D230)
    if lifetime > EARLY_MARGIN_SECONDS:
        clock.advance(lifetime - EARLY_MARGIN_SECONDS)
        early = _opens(platform, token)
    clock.advance(lifetime + 1 - clock.moved)
    late = _opens(platform, token)
    if early is not None and early.status_code == 401:
        fail(
            rules.TOKEN_EXPIRES,
            f"the token is refused {EARLY_MARGIN_SECONDS} s before its expires_in "
            f"({lifetime} s) is up",
            received=f"at +{lifetime - EARLY_MARGIN_SECONDS} s: {summarize(early)}",
            documented="accepted until expires_in has passed (RFC 6749 §5.1)",
            curl=platform.curl(early),
        )
    if late.status_code != 401:
        fail(
            rules.TOKEN_EXPIRES,
            f"the token is still accepted once its expires_in ({lifetime} s) has passed",
            received=f"at +{lifetime + 1} s: {summarize(late)}",
            documented="401 invalid_token from exp on (D55)",
            curl=platform.curl(late),
        )
