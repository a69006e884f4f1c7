"""The jwt-auth token lives exactly 20 minutes: by its claims, the clock control, or waiting."""

from __future__ import annotations

import math
import time

from pepharness.suites.http import summarize
from pepharness.suites.jwts import jwt_claims
from pepharness.suites.rules import covers, fail, not_verified
from pepharness.suites.sinatra import rules
from pepharness.suites.sinatra.client import (
    LOGIN,
    NO_TOKEN,
    PROVIDERS,
    ClockControl,
    Sinatra,
    label,
)

LIFETIME_SECONDS = 20 * 60
LOGIN_OPERATION = label("POST", LOGIN)


@covers(rules.TOKEN_LIFETIME, operation=LOGIN_OPERATION)
def test_token_lifetime_is_20_minutes(sinatra: Sinatra) -> None:
    response = sinatra.login()
    token = response.headers.get("jwt-auth", "")
    claims = jwt_claims(token)
    if claims is None or not isinstance(claims.get("exp"), int | float) or not isinstance(
        claims.get("iat"), int | float
    ):
        not_verified("the token carries no exp/iat claims; check_token_expires_after_20_minutes "
                     "measures its lifetime instead")
    lifetime = claims["exp"] - claims["iat"]
    if lifetime != LIFETIME_SECONDS:
        fail(
            rules.TOKEN_LIFETIME,
            f"the token lives {lifetime:g} s by its own claims",
            received=f"exp - iat = {claims['exp']} - {claims['iat']} = {lifetime:g} s",
            documented=f"exp - iat = {LIFETIME_SECONDS} s (20 minutes)",
            curl=sinatra.curl(response),
        )


def _opens(sinatra: Sinatra, token: str) -> tuple[bool, object]:
    response = sinatra.get(sinatra.path(PROVIDERS), token=NO_TOKEN, headers={"jwt-auth": token})
    return response.status_code != 401, response


@covers(rules.TOKEN_EXPIRES, operation=LOGIN_OPERATION)
def test_token_expires_after_20_minutes(sinatra: Sinatra) -> None:
    options = sinatra.options
    if options.clock_control is not None:
        _expires_by_clock(sinatra, ClockControl(sinatra, options.clock_control))
    elif options.include_slow:
        _expires_by_waiting(sinatra)
    else:
        not_verified("needs --clock-control URL (moves the target's clock) or --include-slow "
                     "(waits 20 minutes)")


def _judge(sinatra: Sinatra, accepted_early: bool, early: object, accepted_late: bool,
           late: object) -> None:
    if not accepted_early:
        fail(
            rules.TOKEN_EXPIRES,
            "the token is refused before its 20 minutes are up",
            received=f"at 19:59: {summarize(early)}",  # type: ignore[arg-type]
            documented="accepted at 19:59, 401 'unauthorized' from 20:00",
            curl=sinatra.curl(early),  # type: ignore[arg-type]
        )
    if accepted_late:
        fail(
            rules.TOKEN_EXPIRES,
            "the token still works after 20 minutes",
            received=f"at 20:01: {summarize(late)}",  # type: ignore[arg-type]
            documented="401 'unauthorized' from 20:00",
            curl=sinatra.curl(late),  # type: ignore[arg-type]
        )


def _expires_by_clock(sinatra: Sinatra, clock: ClockControl) -> None:
    before = clock.now()
    token = sinatra.issue_token()
    after = clock.now()
    claims = jwt_claims(token) or {}
    iat = claims.get("iat")
    # The service may floor its issue time to whole seconds: 19:59 counts from the earliest
    # moment the token can have been issued, 20:01 from the latest.
    earliest = float(iat) if isinstance(iat, int | float) and before - 1 <= iat <= after else (
        math.floor(before)
    )
    latest = max(earliest, math.ceil(after))
    # Forward only, and left there (D230).
    clock.advance_to(earliest + LIFETIME_SECONDS - 1)
    accepted_early, early = _opens(sinatra, token)
    clock.advance_to(latest + LIFETIME_SECONDS + 1)
    accepted_late, late = _opens(sinatra, token)
    _judge(sinatra, accepted_early, early, accepted_late, late)


def _expires_by_waiting(sinatra: Sinatra) -> None:
    started = time.monotonic()
    token = sinatra.issue_token()
    issued = time.monotonic()
    time.sleep(max(0.0, started + LIFETIME_SECONDS - 1 - time.monotonic()))
    accepted_early, early = _opens(sinatra, token)
    time.sleep(max(0.0, issued + LIFETIME_SECONDS + 1 - time.monotonic()))
    accepted_late, late = _opens(sinatra, token)
    _judge(sinatra, accepted_early, early, accepted_late, late)
